//! Outputs never overwrite an input: before anything is opened for writing, every output path
//! (`--flows`, `--write`) is compared with every input (the capture or record files, the site
//! file) and with the other outputs. Two paths are the same file when they reach the same
//! device and inode: through a symlink, a hard link, `./` or `..` alike. Standard input (`-`)
//! is compared through `/dev/stdin` (a `< c.pcap` redirect is the file `c.pcap`).
//!
//! Outputs are opened by [`create`] so that a file that is not ours is never clobbered, even
//! when exflow runs as root (live capture) in a directory others can write to (`/tmp`):
//!
//! - the path itself is never a symbolic link (`O_NOFOLLOW`; a link is refused, not followed),
//!   except the links to exflow's own descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
//!   `/proc/self/fd/N`: a shell's `>(…)`), which are opened as they are;
//! - a path that does not exist is created (`O_CREAT | O_EXCL`: a file or link put there
//!   meanwhile makes the open fail, it is not followed or truncated);
//! - an existing regular file is overwritten only if it belongs to the user exflow runs as and
//!   has no other hard link (a link to someone else's file cannot be planted), checked again on
//!   the opened file before it is truncated;
//! - a FIFO is written to only if it belongs to that user; a character device (`/dev/null`; only
//!   root can make one) is written to as it is; anything else (a directory, a block device, a
//!   socket) is refused.
//!
//! A refusal is a usage error (exit 2) naming the option, the path and the reason.
//!
//! [`RecordWriter`] buffers an output's records and counts them: how many reached the file and
//! how many did not after a write failed (a full disk), for the warning.

use crate::error::Error;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An output: the option that names it (`--flows`) and the path given (`-` is standard
/// output, never checked).
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    pub option: &'static str,
    pub path: &'a str,
}

/// What makes two paths the same file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file: its device and inode (on Unix), else its canonical path.
    File(FileId),
    /// A file not created yet: its canonical directory and name.
    New(PathBuf),
}

#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> Option<FileId> {
    std::fs::canonicalize(path).ok()
}

/// The file an input names, if it exists and is a regular file (`-`: what standard input is).
fn input_identity(path: &str) -> Option<Identity> {
    let p: &Path = if path == "-" {
        Path::new("/dev/stdin")
    } else {
        Path::new(path)
    };
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_file() {
        return None;
    }
    file_id(p, &meta).map(Identity::File)
}

/// The file an output would write, unless it is standard output or something other than a
/// regular file (a device, a pipe), which writing cannot clobber.
fn output_identity(path: &str) -> Option<Identity> {
    if path == "-" {
        return None;
    }
    let p = Path::new(path);
    match std::fs::metadata(p) {
        Ok(meta) if meta.is_file() => file_id(p, &meta).map(Identity::File),
        Ok(_) => None,
        // Not there yet (or a dangling symlink): the directory it would be made in, and its
        // name, tell two outputs apart.
        Err(_) => {
            let name = p.file_name()?;
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            Some(Identity::New(dir.join(name)))
        }
    }
}

/// A name for an input in a message.
fn input_name(path: &str) -> &str {
    if path == "-" {
        "standard input"
    } else {
        path
    }
}

/// Refuses (a usage error, exit 2) an output that is the same file as an input or as another
/// output. Nothing is opened: only `stat`ed.
pub fn refuse_overwrite(inputs: &[&str], outputs: &[Output<'_>]) -> Result<(), Error> {
    let ins: Vec<(&str, Identity)> = inputs
        .iter()
        .filter_map(|p| input_identity(p).map(|id| (*p, id)))
        .collect();
    let mut seen: Vec<(&Output<'_>, Identity)> = vec![];
    for out in outputs {
        let Some(id) = output_identity(out.path) else {
            continue;
        };
        if let Some((input, _)) = ins.iter().find(|(_, i)| *i == id) {
            let how = if *input == out.path {
                String::new()
            } else {
                " (the same file by another name)".to_string()
            };
            return Err(Error::Usage(format!(
                "{} {}: that is the input {}{how}; refusing to overwrite an input, nothing was \
                 written (name another file)",
                out.option,
                out.path,
                input_name(input)
            )));
        }
        if let Some((other, _)) = seen.iter().find(|(_, i)| *i == id) {
            return Err(Error::Usage(format!(
                "{} {} and {} {} are the same file: name two different files",
                other.option, other.path, out.option, out.path
            )));
        }
        seen.push((out, id));
    }
    Ok(())
}

/// What an existing output path is, as `lstat` sees it (the link itself, not its target).
#[cfg(unix)]
fn refusal(meta: &std::fs::Metadata, me: u32) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let t = meta.file_type();
    let owner = |what: &str| {
        (meta.uid() != me).then(|| {
            format!(
                "{what} owned by uid {} (exflow runs as uid {me}); refusing to write to a file \
                 that is not ours (remove it, or name another file)",
                meta.uid()
            )
        })
    };
    if t.is_symlink() {
        Some(
            "is a symbolic link; refusing to follow it (name the file itself, or another file)"
                .into(),
        )
    } else if t.is_file() {
        owner("is a file").or_else(|| {
            (meta.nlink() > 1).then(|| {
                format!(
                    "has {} hard links; refusing to overwrite a file that has other names \
                     (remove it, or name another file)",
                    meta.nlink()
                )
            })
        })
    } else if t.is_fifo() {
        owner("is a FIFO")
    } else if t.is_char_device() {
        None
    } else if t.is_dir() {
        Some("is a directory".into())
    } else if t.is_block_device() {
        Some("is a block device; refusing to write to it".into())
    } else {
        Some("is not a file (a socket?); refusing to write to it".into())
    }
}

/// Whether `path` names one of this process's own open descriptors: `/dev/stdout`,
/// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N` (symbolic links in directories only root can
/// change, so nobody else can plant them).
fn is_own_descriptor(path: &str) -> bool {
    let fd = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    matches!(path, "/dev/stdout" | "/dev/stderr")
        || path.strip_prefix("/dev/fd/").is_some_and(fd)
        || path.strip_prefix("/proc/self/fd/").is_some_and(fd)
}

/// Opens an output for writing (`option` names it in messages) by the rules in the module's
/// documentation: a new file is created (mode 0644 before the umask), an existing file of ours
/// truncated, a FIFO of ours or a character device written to; a symbolic link or another
/// user's file is refused (exit 2), never followed or clobbered. Standard output (`-`) is the
/// caller's.
#[cfg(unix)]
pub fn create(option: &str, path: &str) -> Result<File, Error> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |why: String| Error::Usage(format!("{option} {path}: {why}"));
    let failed = |e: io::Error| Error::Output {
        file: path.to_string(),
        problem: format!("cannot create: {e}"),
    };
    if is_own_descriptor(path) {
        // A link to a descriptor exflow already holds (`--write >(tcpdump -r -)`, `--flows
        // /dev/stderr`): what the shell opened for it, not a file anyone could plant.
        return std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(failed);
    }
    let nofollow = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    let me = nix::unistd::geteuid().as_raw();
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(nofollow)
                .open(path)
                .map_err(failed);
        }
        Err(e) => return Err(failed(e)),
    };
    if let Some(why) = refusal(&before, me) {
        return Err(refuse(why));
    }
    // Opened without truncating; truncated only once the opened file is known to be the one
    // checked (a swap between the check and the open is caught here).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nofollow)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
                refuse("is a symbolic link; refusing to follow it (name the file itself)".into())
            } else {
                failed(e)
            }
        })?;
    let after = f.metadata().map_err(failed)?;
    if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
        return Err(refuse(
            "changed while it was opened; refusing to write to it".into(),
        ));
    }
    if let Some(why) = refusal(&after, me) {
        return Err(refuse(why));
    }
    if after.is_file() {
        f.set_len(0).map_err(failed)?;
    }
    Ok(f)
}

/// Opens an output for writing, creating or truncating it.
#[cfg(not(unix))]
pub fn create(_option: &str, path: &str) -> Result<File, Error> {
    File::create(path).map_err(|e| Error::Output {
        file: path.to_string(),
        problem: format!("cannot create: {e}"),
    })
}

/// How many records an output got, and the write error that stopped it, if one did.
#[derive(Debug, Default)]
pub struct WriteCounts {
    /// Records that reached the file whole.
    pub written: u64,
    /// Records that did not (the one the error cut, and every one after it).
    pub not_written: u64,
    /// The first write error.
    pub error: Option<io::Error>,
}

/// An output that failed to be written whole: the option, the path, and the counts.
#[derive(Clone, Debug)]
pub struct WriteFailure {
    /// `--write` or `--flows`.
    pub option: &'static str,
    pub file: String,
    /// What a record is: "packets", "connections".
    pub unit: &'static str,
    pub written: u64,
    pub not_written: u64,
    pub error: String,
}

/// A buffered writer of whole records that counts them: after a write error (a full disk) it
/// writes nothing more and counts the records it could not write, so the run can go on and
/// say exactly how much of the output is missing. The buffer and the list of where records end
/// in it are allocated once; writing a record allocates nothing.
pub struct RecordWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    /// Where each record in `buf` ends.
    ends: Vec<usize>,
    /// `buf` is written out once it holds this many bytes.
    limit: usize,
    counts: WriteCounts,
}

impl<W: Write> RecordWriter<W> {
    /// A writer that hands `inner` about `limit` bytes at a time.
    pub fn new(inner: W, limit: usize) -> RecordWriter<W> {
        RecordWriter {
            inner,
            buf: Vec::with_capacity(limit.max(1) * 2),
            ends: Vec::with_capacity(1024),
            limit: limit.max(1),
            counts: WriteCounts::default(),
        }
    }

    /// Adds one record, written into the buffer by `fill`. After an error the record is only
    /// counted. An error from `fill` itself (not an I/O error: a record that cannot be
    /// serialised) is returned and the record dropped.
    pub fn record(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        if self.counts.error.is_some() {
            self.counts.not_written += 1;
            return Ok(());
        }
        let start = self.buf.len();
        if let Err(e) = fill(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        self.ends.push(self.buf.len());
        if self.buf.len() >= self.limit {
            self.write_out();
        }
        Ok(())
    }

    /// Bytes that go before the first record (a file header): written with it, not counted.
    pub fn preamble(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether a write has failed (every record since is counted as not written).
    pub fn failed(&self) -> bool {
        self.counts.error.is_some()
    }

    /// Writes the buffer out, counting the records that made it whole.
    fn write_out(&mut self) {
        let mut done = 0;
        while done < self.buf.len() {
            let rest = self.buf.get(done..).unwrap_or(&[]);
            match self.inner.write(rest) {
                Ok(0) => {
                    self.fail(done, io::Error::from(io::ErrorKind::WriteZero));
                    return;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(done, e);
                    return;
                }
            }
        }
        self.counts.written += self.ends.len() as u64;
        self.buf.clear();
        self.ends.clear();
    }

    fn fail(&mut self, done: usize, e: io::Error) {
        let whole = self.ends.iter().take_while(|&&end| end <= done).count();
        self.counts.written += whole as u64;
        self.counts.not_written += (self.ends.len() - whole) as u64;
        self.counts.error = Some(e);
        self.buf = Vec::new();
        self.ends = Vec::new();
    }

    /// Writes out what is buffered and flushes the file (its own error counts too).
    pub fn flush(&mut self) {
        if self.counts.error.is_some() {
            return;
        }
        self.write_out();
        if self.counts.error.is_none() {
            if let Err(e) = self.inner.flush() {
                self.counts.error = Some(e);
            }
        }
    }

    /// Flushes, and gives the counts.
    pub fn finish(mut self) -> WriteCounts {
        self.flush();
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("exflow-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn flows(path: &str) -> Output<'_> {
        Output {
            option: "--flows",
            path,
        }
    }

    #[test]
    fn same_path_hard_link_and_symlink_are_refused_other_files_are_not() {
        let d = dir();
        let cap = d.join("c.pcap");
        std::fs::write(&cap, b"capture").unwrap();
        let cap_s = cap.to_str().unwrap();
        assert!(refuse_overwrite(&[cap_s], &[flows(cap_s)]).is_err());
        let hard = d.join("hard.pcap");
        let _ = std::fs::remove_file(&hard);
        std::fs::hard_link(&cap, &hard).unwrap();
        assert!(refuse_overwrite(&[cap_s], &[flows(hard.to_str().unwrap())]).is_err());
        #[cfg(unix)]
        {
            let link = d.join("link.jsonl");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&cap, &link).unwrap();
            assert!(refuse_overwrite(&[cap_s], &[flows(link.to_str().unwrap())]).is_err());
        }
        let other = d.join("new.jsonl");
        let _ = std::fs::remove_file(&other);
        let other_s = other.to_str().unwrap();
        assert!(refuse_overwrite(&[cap_s], &[flows(other_s)]).is_ok());
        assert!(refuse_overwrite(&[cap_s], &[flows("-"), flows("/dev/null")]).is_ok());
        // Two outputs naming one file, created or not.
        let write = Output {
            option: "--write",
            path: other_s,
        };
        assert!(refuse_overwrite(&[cap_s], &[flows(other_s), write]).is_err());
    }

    /// Takes `room` bytes, a few at a time, then fails as a full disk does.
    struct Disk {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Disk {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.room {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = b.len().min(self.room - self.got.len()).min(7);
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_counts_whole_records_written_and_the_rest_not() {
        for room in [0, 5, 10, 99, 100, 101, 1000, 5000] {
            let mut w = RecordWriter::new(Disk { room, got: vec![] }, 64);
            w.preamble(b"HEAD");
            for i in 0..300u32 {
                w.record(|b| {
                    b.extend_from_slice(format!("{i:09}\n").as_bytes());
                    Ok(())
                })
                .unwrap();
            }
            let counts = w.finish();
            // 4 bytes of header, then 10 bytes a record.
            let fit = (room.saturating_sub(4) / 10).min(300) as u64;
            assert_eq!(counts.written, fit, "room {room}");
            assert_eq!(counts.written + counts.not_written, 300, "room {room}");
            assert_eq!(counts.error.is_some(), fit < 300, "room {room}");
        }
    }
}

//! Outputs never overwrite an input: before anything is opened for writing, every output path
//! (`--flows`, `--write`) is compared with every input (the capture or record files, the site
//! file) and with the other outputs. Two paths are the same file when they reach the same
//! device and inode: through a symlink, a hard link, `./` or `..` alike. Standard input (`-`)
//! is compared through `/dev/stdin` (a `< c.pcap` redirect is the file `c.pcap`).
//!
//! Only a regular file can be clobbered: an output that is a device (`/dev/null`), a pipe or a
//! terminal is never refused.

use crate::error::Error;
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
}

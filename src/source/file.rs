//! Capture files: pcap and pcapng (any byte order, micro/nano timestamps, several sections and
//! interfaces with their own link types and timestamp resolutions), gzip- or zstd-compressed,
//! `-` for standard input, and several files read in order as one capture.
//!
//! Formats handled:
//! - legacy pcap: the microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magics in either byte
//!   order, and the little-endian "modified" (Kuznetzov, `a1b2cd34`) format with its 24-byte
//!   record headers (the big-endian modified format is refused: pcap-parser cannot read it);
//! - pcapng: any number of sections, each in its own byte order, with interface ids restarting
//!   at 0 in each section; every interface's link type, `if_tsresol` (powers of 10 or of 2) and
//!   `if_tsoffset`; Enhanced Packet Blocks, Simple Packet Blocks (no timestamp of their own: they
//!   get the last timestamp seen) and the obsolete Packet Blocks; every other block is skipped;
//! - any of these compressed with gzip (`1f 8b`, several members allowed) or zstd
//!   (`28 b5 2f fd`), recognised by their magic bytes and decompressed as a stream.
//!
//! Reading is streaming and bounded: pcap-parser's `LegacyPcapReader` / `PcapNGReader` keep one
//! circular buffer per file (256 KiB, grown only for a record or block larger than that, up to
//! 16 MiB), and every frame is lent to the callback as a [`Frame`] borrowing that buffer;
//! nothing is allocated per packet. pcap-parser frames the records and parses the file header,
//! the section headers and the interface descriptions; the packet blocks are parsed here, from
//! the buffer, because pcap-parser allocates a `Vec` for a packet block's options and takes a
//! packet block whose captured length exceeds the block for a block still incomplete (it would
//! read on into the next blocks).
//!
//! A frame's wire length is never below its captured length (a writer that wrote a smaller
//! original length gets it raised to the captured one).
//!
//! A file that ends inside a record, or holds a record or block that cannot be one (an
//! impossible length, a packet on an undeclared interface, ...), is not an error: reading that
//! file stops there with a warning in [`SourceStats::warnings`] and goes on with the next file.

use super::clock::{ClockGuard, ClockStats};
use super::filter::Filter;
use super::{Frame, LinkType};
use crate::error::Error;
use crate::time::Timestamp;
use flate2::read::MultiGzDecoder;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    Block, InterfaceDescriptionBlock, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError,
    PcapNGReader,
};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::rc::Rc;

/// What reading the files found, besides the frames themselves.
#[derive(Clone, Debug, Default)]
pub struct SourceStats {
    /// The files, as given.
    pub files: Vec<String>,
    /// Link types seen, in order of first appearance.
    pub link_types: Vec<LinkType>,
    /// The same, to look a link type up without a scan (a capture may hold 65,535 of them).
    pub link_set: HashSet<LinkType>,
    /// Frames read (before the filter).
    pub frames: u64,
    /// Frames the BPF filter rejected.
    pub filtered_out: u64,
    /// Frames skipped because the filter cannot be compiled for their link type (libpcap
    /// refuses it): not analysed.
    pub unfilterable: u64,
    /// The link types of those frames (each once, at most [`MAX_LISTED_LINKS`]).
    pub unfilterable_links: Vec<LinkType>,
    /// What the timestamps looked like (see [`super::clock`]).
    pub clock: ClockStats,
    /// pcapng interface descriptions past [`MAX_INTERFACES`] in their section: ignored.
    pub ignored_interfaces: u64,
    /// Frames on those interfaces: skipped, not analysed.
    pub frames_on_ignored_interfaces: u64,
    /// Files whose first packet is earlier than the last packet of the file read before it
    /// (after sorting by first packet): their times overlap.
    pub overlapping_files: u64,
    /// Whether the files were read in another order than given (sorted by first packet).
    pub reordered_files: bool,
    /// The `--filter` expression the frames went through, if any.
    pub filter: Option<String>,
    /// Ethernet frames carrying an 802.1Q / 802.1ad VLAN tag (before the filter): a filter
    /// without `vlan` in it never looks past the tag.
    pub vlan_tagged: u64,
    /// Captured bytes of the frames handed on.
    pub bytes: u64,
    /// Earliest timestamp of the frames read (before the filter).
    pub first_ts: Option<Timestamp>,
    /// Latest timestamp of the frames read (before the filter).
    pub last_ts: Option<Timestamp>,
    /// Non-fatal problems, one line each, naming the file (e.g. a record cut off at the end).
    pub warnings: Vec<String>,
    /// The capture interfaces, in the order they were described: a pcap file is one, every
    /// pcapng interface description block is one. A frame's [`Frame::iface`] indexes this.
    /// At most [`MAX_INTERFACES`]; the frames of any further ones count on the last.
    pub interfaces: Vec<InterfaceInfo>,
}

/// A capture interface: its file, name (pcapng `if_name`), link type and packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Index into [`SourceStats::files`].
    pub file: usize,
    pub name: Option<String>,
    pub link: LinkType,
    /// Frames read on it (before the filter).
    pub packets: u64,
}

fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// The most interfaces told apart (a pcapng file may describe any number), and the most
/// interfaces read in one pcapng section: the descriptions past it are counted
/// ([`SourceStats::ignored_interfaces`]) and the frames on them skipped and counted.
pub const MAX_INTERFACES: usize = 1024;

/// The most link types listed in [`SourceStats::unfilterable_links`].
pub const MAX_LISTED_LINKS: usize = 16;

impl SourceStats {
    /// Adds an interface and returns its id (the last one's, past [`MAX_INTERFACES`]).
    pub fn add_interface(&mut self, file: usize, name: Option<String>, link: LinkType) -> u16 {
        if self.interfaces.len() < MAX_INTERFACES {
            self.interfaces.push(InterfaceInfo {
                file,
                name,
                link,
                packets: 0,
            });
        }
        u16::try_from(self.interfaces.len().saturating_sub(1)).unwrap_or(u16::MAX)
    }

    /// Adds a link type to those seen, if it is new.
    pub fn note_link(&mut self, link: LinkType) {
        if self.link_types.last() != Some(&link) && self.link_set.insert(link) {
            self.link_types.push(link);
        }
    }

    /// Counts a frame read: its number, link type and time (its bytes are counted once it
    /// passes the filter).
    pub fn saw(&mut self, frame: &Frame<'_>) {
        self.frames += 1;
        if let Some(i) = self.interfaces.get_mut(usize::from(frame.iface)) {
            i.packets += 1;
        }
        self.note_link(frame.link);
        if frame.link == LinkType::ETHERNET {
            if let Some(&[a, b]) = frame.bytes.get(12..14) {
                if matches!(u16::from_be_bytes([a, b]), 0x8100 | 0x88a8 | 0x9100) {
                    self.vlan_tagged += 1;
                }
            }
        }
        self.first_ts = Some(self.first_ts.map_or(frame.ts, |t| t.min(frame.ts)));
        self.last_ts = Some(self.last_ts.map_or(frame.ts, |t| t.max(frame.ts)));
    }
}

/// Reads `paths` as one capture, handing every frame that passes `filter` to `on_frame`.
/// Errors (exit 2) name the file: missing, unreadable, not a capture. Every file other than
/// `-` is opened and its magic checked before the first frame is read, so a bad name in the
/// list fails at once.
///
/// Several regular files are read in time order: sorted by their first packet's time (a file
/// without packets keeps its place relative to the others; equal times keep the order
/// given), so that a shell glob of rotated files (`x.pcap x.pcap1 x.pcap10 x.pcap2`) reads
/// as captured. [`SourceStats::reordered_files`] says when that order differs from the one
/// given, [`SourceStats::overlapping_files`] counts files starting before the previous one
/// ended. Standard input or a pipe among them: read in the order given.
pub fn read_files<F: FnMut(&Frame<'_>)>(
    paths: &[String],
    filter: Option<&mut Filter>,
    on_frame: &mut F,
) -> Result<SourceStats, Error> {
    for path in paths.iter().filter(|p| p.as_str() != "-") {
        check_early(path)?;
    }
    let order = time_order(paths)?;
    let mut sink = Feed {
        summary: SourceStats {
            files: paths.to_vec(),
            filter: filter.as_ref().map(|f| f.expr().to_string()),
            reordered_files: order.iter().enumerate().any(|(i, &j)| i != j),
            ..SourceStats::default()
        },
        filter,
        on_frame,
        last_ts: Timestamp::ZERO,
        clock: ClockGuard::default(),
        probe: None,
        file_first: None,
    };
    let mut previous_last: Option<Timestamp> = None;
    for &i in &order {
        let path = &paths[i];
        let before = sink.summary.frames;
        sink.clock.new_file();
        sink.file_first = None;
        read_file(path, &mut sink)?;
        if sink.summary.frames > before {
            if let (Some(prev), Some(first)) = (previous_last, sink.file_first) {
                if first < prev {
                    sink.summary.overlapping_files += 1;
                }
            }
            previous_last = sink.clock.last().map(Timestamp);
        }
    }
    sink.summary.clock = sink.clock.stats;
    Ok(sink.summary)
}

/// The order to read `paths` in: by their first packet's time when there are several and all
/// are regular files, else as given.
fn time_order(paths: &[String]) -> Result<Vec<usize>, Error> {
    let given: Vec<usize> = (0..paths.len()).collect();
    if paths.len() < 2
        || !paths
            .iter()
            .all(|p| p != "-" && std::fs::metadata(fs_path(p)).is_ok_and(|m| m.is_file()))
    {
        return Ok(given);
    }
    let mut firsts = Vec::with_capacity(paths.len());
    for path in paths {
        firsts.push(first_timestamp(path)?);
    }
    // Files without a packet go with the file given before them (the first: at the start).
    let mut key = Vec::with_capacity(paths.len());
    let mut carried = i64::MIN;
    for t in &firsts {
        if let Some(t) = t {
            carried = t.0;
        }
        key.push(carried);
    }
    let mut order = given;
    order.sort_by_key(|&i| key[i]);
    Ok(order)
}

/// The time of a file's first packet (checked as reading it would), if it has one.
fn first_timestamp(path: &str) -> Result<Option<Timestamp>, Error> {
    let mut nothing = |_: &Frame<'_>| {};
    let mut sink = Feed {
        summary: SourceStats {
            files: vec![path.to_string()],
            ..SourceStats::default()
        },
        filter: None,
        on_frame: &mut nothing,
        last_ts: Timestamp::ZERO,
        clock: ClockGuard::default(),
        probe: Some(None),
        file_first: None,
    };
    read_file(path, &mut sink)?;
    Ok(sink.probe.flatten())
}

/// Opens a file and checks its magic, before any file is read. Only regular files: the first
/// bytes of a pipe (`<(zcat x.pcap)`) would be lost to a second opening.
fn check_early(path: &str) -> Result<(), Error> {
    let meta = std::fs::metadata(fs_path(path))
        .map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    if meta.is_file() || meta.is_dir() {
        open(path)?;
    }
    Ok(())
}

/// Initial size of a reader's buffer.
const BUFFER_SIZE: usize = 256 * 1024;
/// Largest record or block accepted (libpcap's own limit for a pcapng block); anything larger is
/// taken for corrupt data rather than grown into.
const MAX_BLOCK: usize = 16 * 1024 * 1024;
/// The upper bits of a pcap file's link-type field may carry the FCS length; the link type is
/// the lower 26 bits (libpcap's `LT_LINKTYPE`).
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// File names that are not UTF-8, by the name they are given in messages and reports (their
/// invalid bytes written `\xNN`): [`name_of_path`] registers them, opening looks them up.
static RAW_PATHS: std::sync::Mutex<Vec<(String, std::path::PathBuf)>> =
    std::sync::Mutex::new(Vec::new());

/// The name a file given on the command line goes by: the path itself when it is UTF-8, else
/// its bytes with every byte that is not part of UTF-8 written `\xNN` (and a backslash
/// doubled), registered so that opening that name opens the file.
pub fn name_of_path(path: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    if let Some(s) = path.to_str() {
        return s.to_string();
    }
    let mut name = String::new();
    for chunk in path.as_bytes().utf8_chunks() {
        name.push_str(&chunk.valid().replace('\\', "\\\\"));
        for b in chunk.invalid() {
            name.push_str(&format!("\\x{b:02x}"));
        }
    }
    let mut raw = RAW_PATHS.lock().unwrap_or_else(|p| p.into_inner());
    if !raw.iter().any(|(n, _)| *n == name) {
        raw.push((name.clone(), std::path::PathBuf::from(path)));
    }
    name
}

/// The path to open for a file's name ([`name_of_path`]).
pub fn fs_path(name: &str) -> std::path::PathBuf {
    let raw = RAW_PATHS.lock().unwrap_or_else(|p| p.into_inner());
    raw.iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}

/// The name of a file in messages.
fn display_name(path: &str) -> &str {
    if path == "-" {
        "standard input"
    } else {
        path
    }
}

// ---------------------------------------------------------------------------------------------
// Delivering frames

/// A frame's timestamp as its file gives it.
#[derive(Clone, Copy, Debug)]
enum Stamp {
    /// Written: nanoseconds (unbounded), and the same without the interface's `if_tsoffset`
    /// when it has one.
    Written {
        ns: i128,
        without_offset: Option<i128>,
    },
    /// None of its own (a pcapng simple packet block): the last frame's, unchecked.
    Last,
}

/// Where frames go: the summary being filled, the filter and the callback.
struct Feed<'f, 'c, F: FnMut(&Frame<'_>)> {
    summary: SourceStats,
    filter: Option<&'f mut Filter>,
    /// Generic rather than `dyn`: the callback (decoding, in the pipeline) is inlined into
    /// the record loop.
    on_frame: &'c mut F,
    /// Timestamp of the last frame, for pcapng Simple Packet Blocks, which carry none.
    last_ts: Timestamp,
    /// The checks of the timestamps (see [`super::clock`]).
    clock: ClockGuard,
    /// Looking only for the file's first timestamp (to sort the files): set to it, then the
    /// reading stops.
    probe: Option<Option<Timestamp>>,
    /// The time of the current file's first frame.
    file_first: Option<Timestamp>,
}

impl<F: FnMut(&Frame<'_>)> Feed<'_, '_, F> {
    /// Counts a frame, runs the filter and hands the frame on if it passes. The frame gets the
    /// time [`ClockGuard::admit`] gives its stamp. Returns false when reading should stop (a
    /// probe has its timestamp).
    #[inline]
    fn deliver(&mut self, frame: &mut Frame<'_>, stamp: Stamp) -> Result<bool, Error> {
        let ts = match stamp {
            Stamp::Written { ns, without_offset } => {
                self.clock.admit(frame.iface, ns, without_offset)
            }
            Stamp::Last => self.last_ts,
        };
        if let Some(p) = self.probe.as_mut() {
            *p = Some(ts);
            return Ok(false);
        }
        // Set in place: a copy of the frame read back its narrow fields with wide loads, which
        // waited for the stores before them (1-2 % of the reading thread).
        frame.ts = ts;
        let frame = &*frame;
        if self.file_first.is_none() {
            self.file_first = Some(ts);
        }
        let s = &mut self.summary;
        s.saw(frame);
        self.last_ts = frame.ts;
        if let Some(filter) = self.filter.as_deref_mut() {
            match filter.try_matches(frame) {
                Some(true) => {}
                Some(false) => {
                    s.filtered_out += 1;
                    return Ok(true);
                }
                None => {
                    // libpcap cannot filter this link type: skipped, counted.
                    s.unfilterable += 1;
                    if s.unfilterable_links.len() < MAX_LISTED_LINKS
                        && !s.unfilterable_links.contains(&frame.link)
                    {
                        s.unfilterable_links.push(frame.link);
                    }
                    return Ok(true);
                }
            }
        }
        s.bytes += u64::from(frame.caplen);
        (self.on_frame)(frame);
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------
// Opening a file

/// The capture format, from the first bytes (after decompression).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pcap,
    PcapNg,
}

/// An opened file: the (decompressed) byte stream, its first bytes not yet consumed.
struct Opened {
    format: Format,
    /// `Some("gzip")` or `Some("zstd")` when the file is compressed.
    compression: Option<&'static str>,
    /// pcapng: the length of the first section header block.
    first_block: usize,
    stream: Box<dyn Read>,
}

/// Bytes peeked at the start of a stream: enough for the pcapng SHB's type, length and
/// byte-order magic.
const HEAD: usize = 12;

/// Opens `path` (`-`: standard input), recognises compression and the capture format.
fn open(path: &str) -> Result<Opened, Error> {
    let name = display_name(path);
    let fail = |what: &str, e: io::Error| Error::input(name, format!("{what}: {e}"));
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin())
    } else if let Some(pre) = take_sniffed(path) {
        pre
    } else {
        Box::new(File::open(fs_path(path)).map_err(|e| fail("cannot open", e))?)
    };
    let (head, len, raw) = peek(raw).map_err(|e| fail("cannot read", e))?;
    let (compression, stream) = decompress(name, &head[..len], raw)?;
    let (head, len, stream) = match compression {
        None => (head, len, stream),
        Some(kind) => peek(stream).map_err(|e| fail(&format!("cannot decompress ({kind})"), e))?,
    };
    let inside = compression
        .map(|c| format!(" ({c}-compressed)"))
        .unwrap_or_default();
    let format = match head[..len] {
        [] => {
            return Err(Error::input(
                name,
                format!("empty file{inside}: not a pcap or pcapng capture"),
            ))
        }
        [0x0a, 0x0d, 0x0d, 0x0a, ..] => Format::PcapNg,
        [0xd4, 0xc3, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0xc3, 0xd4, ..]
        | [0x4d, 0x3c, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0x3c, 0x4d, ..]
        | [0x34, 0xcd, 0xb2, 0xa1, ..] => Format::Pcap,
        [0xa1, 0xb2, 0xcd, 0x34, ..] => {
            return Err(Error::input(
                name,
                format!("big-endian modified (Kuznetzov) pcap{inside} is not supported"),
            ))
        }
        ref start => {
            let bytes: Vec<String> = start.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(Error::input(
                name,
                format!(
                    "not a pcap or pcapng capture{inside}: it starts with {}",
                    bytes.join(" ")
                ),
            ));
        }
    };
    // A pcapng file starts with its first section header, whose length (in the byte order its
    // byte-order magic gives) sizes the reader's buffer: pcap-parser needs it whole at once.
    let first_block = match (format, len >= HEAD) {
        (Format::PcapNg, true) => {
            let big_endian = head[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
            u32_at(&head, 4, big_endian) as usize
        }
        _ => 0,
    };
    Ok(Opened {
        format,
        compression,
        first_block,
        stream,
    })
}

/// The decompressing stream over `raw` (which still starts with `head`, its first bytes):
/// gzip (`1f 8b`, several members allowed) and zstd (`28 b5 2f fd`) by their magic, else
/// `raw` itself.
fn decompress(
    name: &str,
    head: &[u8],
    raw: Box<dyn Read>,
) -> Result<(Option<&'static str>, Box<dyn Read>), Error> {
    Ok(match head {
        [0x1f, 0x8b, ..] => (Some("gzip"), Box::new(MultiGzDecoder::new(raw))),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            let fail = |e: io::Error| Error::input(name, format!("cannot decompress (zstd): {e}"));
            let mut decoder = zstd::Decoder::new(raw).map_err(fail)?;
            // `zstd --long=31` (and any level up to --ultra -22) writes windows up to 2 GiB;
            // the decoder refuses more than 128 MiB unless told. Memory follows the window
            // the file declares, as for the zstd command itself.
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(fail)?;
            (Some("zstd"), Box::new(decoder))
        }
        _ => (None, raw),
    })
}

/// The largest zstd window accepted: 2^31 bytes, the most `zstd --long` writes.
const ZSTD_WINDOW_LOG_MAX: u32 = 31;

/// A file opened for a reader of another format than packets (connection logs): its bytes,
/// decompressed the way captures are (gzip, zstd), with the compression's name. `-` is
/// standard input.
pub fn open_decompressed(path: &str) -> Result<(Option<&'static str>, Box<dyn Read>), Error> {
    let name = display_name(path);
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin())
    } else if let Some(pre) = take_sniffed(path) {
        pre
    } else {
        Box::new(
            File::open(fs_path(path))
                .map_err(|e| Error::input(name, format!("cannot open: {e}")))?,
        )
    };
    let (head, len, raw) =
        peek(raw).map_err(|e| Error::input(name, format!("cannot read: {e}")))?;
    decompress(name, &head[..len], raw)
}

/// Streams that [`sniff`] had to read from (a pipe such as `<(zcat x.log.gz)` cannot be
/// opened twice), kept with their first bytes put back for the one reader that follows.
static SNIFFED: std::sync::Mutex<Vec<(String, SniffedStream)>> = std::sync::Mutex::new(Vec::new());

type SniffedStream = io::Chain<io::Cursor<Vec<u8>>, File>;

fn take_sniffed(path: &str) -> Option<Box<dyn Read>> {
    let mut kept = SNIFFED.lock().unwrap_or_else(|p| p.into_inner());
    let i = kept.iter().position(|(p, _)| p == path)?;
    Some(Box::new(kept.swap_remove(i).1))
}

/// What a file holds, from its first bytes (decompressed): a capture, or something else
/// whose first bytes (up to [`SNIFF`]) are returned for other readers to recognise.
#[derive(Clone, Debug)]
pub enum Sniffed {
    Pcap,
    PcapNg,
    Other(Vec<u8>),
}

/// Decompressed bytes looked at to tell a file's kind.
pub const SNIFF: usize = 16 * 1024;

/// Looks at the start of a file without consuming it: for `-`, the bytes standard input has
/// buffered already (read again by whoever reads it next), else a separate opening.
pub fn sniff(path: &str) -> Result<Sniffed, Error> {
    let name = display_name(path);
    let raw: Box<dyn Read> = if path == "-" {
        use std::io::BufRead;
        let mut lock = io::stdin().lock();
        let buffered = lock
            .fill_buf()
            .map_err(|e| Error::input(name, format!("cannot read: {e}")))?;
        Box::new(io::Cursor::new(buffered.to_vec()))
    } else {
        let mut file = File::open(fs_path(path))
            .map_err(|e| Error::input(name, format!("cannot open: {e}")))?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        if regular {
            Box::new(file)
        } else {
            // A pipe: what is read here is kept for the reader that follows.
            let mut head = vec![0u8; SNIFF];
            let n = read_full(&mut file, &mut head)
                .map_err(|e| Error::input(name, format!("cannot read: {e}")))?;
            head.truncate(n);
            let copy = head.clone();
            let mut kept = SNIFFED.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|(p, _)| p != path);
            kept.push((path.to_string(), io::Cursor::new(head).chain(file)));
            Box::new(io::Cursor::new(copy))
        }
    };
    let (head, len, raw) =
        peek(raw).map_err(|e| Error::input(name, format!("cannot read: {e}")))?;
    let (_, mut stream) = decompress(name, &head[..len], raw)?;
    let mut buf = vec![0u8; SNIFF];
    // A stream cut short (standard input's first buffer of a compressed file) gives what
    // decompressed before the cut.
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    buf.truncate(n);
    Ok(match buf[..] {
        [0x0a, 0x0d, 0x0d, 0x0a, ..] => Sniffed::PcapNg,
        [0xd4, 0xc3, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0xc3, 0xd4, ..]
        | [0x4d, 0x3c, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0x3c, 0x4d, ..]
        | [0x34, 0xcd, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0xcd, 0x34, ..] => Sniffed::Pcap,
        _ => Sniffed::Other(buf),
    })
}

/// Looks at the first [`HEAD`] bytes of `r` (fewer if it is shorter): returns them and a
/// stream that still starts with them.
fn peek(mut r: Box<dyn Read>) -> io::Result<([u8; HEAD], usize, Box<dyn Read>)> {
    let mut head = [0u8; HEAD];
    let len = read_full(&mut r, &mut head)?;
    let unpeeked = io::Cursor::new(head).take(len as u64).chain(r);
    Ok((head, len, Box::new(unpeeked)))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match r.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// The stream pcap-parser reads from. It fills pcap-parser's buffer completely at each read
/// (pcap-parser needs the whole file header from its first read), and a read error, which
/// pcap-parser would reduce to a bare `ReadError`, is kept in `failure` for the warning and
/// reported to pcap-parser as the end of the input.
struct Input {
    stream: Box<dyn Read>,
    failure: Rc<RefCell<Option<io::Error>>>,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.borrow().is_some() {
            return Ok(0);
        }
        let mut len = 0;
        while len < buf.len() {
            match self.stream.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    break;
                }
            }
        }
        Ok(len)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading one file

/// How reading a file ended; each with the byte offset (in the decompressed data) where.
enum End {
    /// At the end of the input, after a whole record or block.
    Clean(u64),
    /// The input ended inside the record or block starting at this offset.
    CutOff(u64),
    /// The record or block at this offset cannot be one.
    Corrupt(u64, String),
}

/// Reads one file to its end (or to the point where it cannot be read further, with a
/// warning), handing its frames to `sink`.
fn read_file<F: FnMut(&Frame<'_>)>(path: &str, sink: &mut Feed<'_, '_, F>) -> Result<(), Error> {
    let name = display_name(path);
    let opened = open(path)?;
    let failure = Rc::new(RefCell::new(None));
    let input = Input {
        stream: opened.stream,
        failure: Rc::clone(&failure),
    };
    let mut oversized = 0u64;
    let end = match opened.format {
        Format::Pcap => read_pcap(name, input, sink)?,
        Format::PcapNg => read_pcapng(name, input, opened.first_block, sink, &mut oversized)?,
    };

    let unit = if opened.format == Format::Pcap {
        "record"
    } else {
        "block"
    };
    let at = |offset: u64| match opened.compression {
        Some(c) => format!("byte offset {offset} of the {c}-decompressed data"),
        None => format!("byte offset {offset}"),
    };
    let rest = "the report covers the packets before it";
    let failure = failure.borrow_mut().take();
    let warning = match (end, failure) {
        // A read error ends the input early: report it rather than the cut it causes.
        (End::Clean(o) | End::CutOff(o) | End::Corrupt(o, _), Some(e)) => {
            let place = format!(" in the {unit} at {}", at(o));
            let what = match (opened.compression, e.kind()) {
                (Some(c), io::ErrorKind::UnexpectedEof) => format!("{c} data cut off"),
                (Some(c), _) => format!("{c} decompression failed ({e})"),
                (None, _) => format!("read error ({e})"),
            };
            Some(format!("{name}: {what}{place}; {rest}"))
        }
        (End::CutOff(o), None) => Some(format!(
            "{name}: capture cut off in a {unit} at {}; {rest}",
            at(o)
        )),
        (End::Corrupt(o, what), None) => Some(format!(
            "{name}: {what} at {}; stopped reading this file, {rest}",
            at(o)
        )),
        (End::Clean(_), None) => None,
    };
    sink.summary.warnings.extend(warning);
    if oversized > 0 {
        sink.summary.warnings.push(format!(
            "{name}: {oversized} packet block(s) claimed more captured bytes than the block \
             holds; those frames were cut to the block's data"
        ));
    }
    Ok(())
}

/// Whether the bytes a record or block needs are in the buffer.
enum Fill {
    Ready,
    /// The input ended with nothing left: a clean end.
    End,
    /// The input ended with part of a record or block left.
    Short,
}

/// Makes the first `need` bytes (at most [`MAX_BLOCK`]) of the rest of the input available in
/// `reader.data()`: refills, and grows the buffer (tracked in `capacity`) for a record larger
/// than it. pcap-parser's own `next()` would report such a record as `Incomplete` or
/// `BufferTooSmall` forever; here every round either reads more or finds the end.
#[inline]
fn fill<R: PcapReaderIterator + ?Sized>(reader: &mut R, capacity: &mut usize, need: usize) -> Fill {
    loop {
        let have = reader.data().len();
        if have >= need {
            return Fill::Ready;
        }
        if reader.reader_exhausted() {
            return if have == 0 { Fill::End } else { Fill::Short };
        }
        if need > *capacity {
            let size = need
                .max(capacity.saturating_mul(2))
                .min(MAX_BLOCK.max(need));
            reader.grow(size);
            *capacity = size;
        }
        if reader.refill().is_err() {
            // `Input` never fails a read (it keeps the error and ends the input instead).
            return if have == 0 { Fill::End } else { Fill::Short };
        }
    }
}

/// A `u32` at `at` in `b`, in the given byte order (0 if `b` is too short: callers check).
fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut word = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        word.copy_from_slice(s);
    }
    if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    }
}

/// The captured bytes of a frame as a `u32` (a block never holds more than `u32::MAX`).
fn len_u32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Legacy pcap

/// Reads a legacy pcap stream.
fn read_pcap<F: FnMut(&Frame<'_>)>(
    name: &str,
    input: Input,
    sink: &mut Feed<'_, '_, F>,
) -> Result<End, Error> {
    let mut reader = LegacyPcapReader::new(BUFFER_SIZE, input)
        .map_err(|_| Error::input(name, "pcap capture cut off inside its 24-byte file header"))?;
    let mut capacity = BUFFER_SIZE;
    // The first "block" is the file header.
    let (used, header) = match reader.next() {
        Ok((used, PcapBlockOwned::LegacyHeader(h))) => (used, h),
        _ => return Err(Error::input(name, "unreadable pcap file header")),
    };
    reader.consume_noshift(used);
    let big_endian = header.is_bigendian();
    let nanos_per_unit: i64 = if header.is_nanosecond_precision() {
        1
    } else {
        1000
    };
    let record_header = if header.is_modified_format() { 24 } else { 16 };
    // pcap-parser keeps the field as an i32; it is a u32 in the file.
    let link = LinkType((header.network.0 as u32) & LINKTYPE_MASK);
    // Listed even when no record follows, so that the pipeline can refuse a capture of a
    // link type it cannot decode (`pipeline::check_link_types`).
    sink.summary.note_link(link);
    let file = sink
        .summary
        .files
        .iter()
        .position(|f| f == name)
        .unwrap_or(0);
    let iface = sink.summary.add_interface(file, None, link);
    sink.clock.reserve(iface);

    loop {
        let offset = reader.consumed() as u64;
        match fill(&mut reader, &mut capacity, record_header) {
            Fill::Ready => {}
            Fill::End => return Ok(End::Clean(offset)),
            Fill::Short => return Ok(End::CutOff(offset)),
        }
        let caplen = u32_at(reader.data(), 8, big_endian) as usize;
        if caplen > MAX_BLOCK {
            let what = format!("record claiming {caplen} captured bytes");
            return Ok(End::Corrupt(offset, what));
        }
        match fill(&mut reader, &mut capacity, record_header + caplen) {
            Fill::Ready => {}
            Fill::End | Fill::Short => return Ok(End::CutOff(offset)),
        }
        // The whole record is in the buffer: read in place (its header's fields as
        // pcap-parser's `parse_pcap_frame` reads them, the data right after the header).
        let Some(record) = reader.data().get(..record_header + caplen) else {
            return Ok(End::Corrupt(offset, "unreadable record".into()));
        };
        let bytes = record.get(record_header..).unwrap_or_default();
        let raw = i128::from(u32_at(record, 0, big_endian)) * 1_000_000_000
            + i128::from(u32_at(record, 4, big_endian)) * i128::from(nanos_per_unit);
        let mut frame = Frame {
            ts: Timestamp::ZERO,
            link,
            caplen: len_u32(bytes),
            wire_len: u32_at(record, 12, big_endian).max(len_u32(bytes)),
            iface,
            interfaces: len_u16(sink.summary.interfaces.len()),
            bytes,
        };
        let stamp = Stamp::Written {
            ns: raw,
            without_offset: None,
        };
        if !sink.deliver(&mut frame, stamp)? {
            return Ok(End::Clean(offset));
        }
        // Without moving what is left to the front of the buffer each time half of it has
        // been read (pcap-parser's `consume`): `refill` moves only the partial record left.
        reader.consume_noshift(record_header + caplen);
    }
}

// ---------------------------------------------------------------------------------------------
// pcapng

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
/// The obsolete Packet Block.
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// An interface of the current section.
struct Interface {
    /// Its id among all the capture's interfaces ([`SourceStats::interfaces`]).
    id: u16,
    /// `if_name`, when given.
    name: Option<String>,
    link: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    /// Reads an Interface Description Block (parsed by pcap-parser) in a section of the given
    /// byte order. pcap-parser's own `if_tsoffset` is always read little-endian, so the options
    /// are read here.
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Result<Self, String> {
        let mut tsresol = 6u8;
        let mut offset_s = 0i64;
        let mut name = None;
        for opt in &idb.options {
            if opt.code == OptionCode::IfName {
                let v = opt.value.get(..usize::from(opt.len)).unwrap_or(&opt.value);
                let v = v.split(|b| *b == 0).next().unwrap_or_default();
                // Bounded: a name is for people; a longer one is cut.
                name = Some(String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned());
            } else if opt.code == OptionCode::IfTsresol && opt.len >= 1 {
                tsresol = opt.value.first().copied().unwrap_or(6);
            } else if opt.code == OptionCode::IfTsoffset && opt.len == 8 {
                let mut b = [0u8; 8];
                if let Some(v) = opt.value.get(..8) {
                    b.copy_from_slice(v);
                }
                offset_s = if big_endian {
                    i64::from_be_bytes(b)
                } else {
                    i64::from_le_bytes(b)
                };
            }
        }
        let scale = TsScale::from_tsresol(tsresol).ok_or_else(|| {
            format!("interface description with an unusable if_tsresol {tsresol}")
        })?;
        Ok(Interface {
            id: 0,
            name,
            link: LinkType(idb.linktype.0 as u32), // read from a u16
            snaplen: idb.snaplen,
            scale,
            offset_ns: i128::from(offset_s) * 1_000_000_000,
        })
    }

    /// The time of a 64-bit pcapng timestamp on this interface, in nanoseconds (unbounded:
    /// [`ClockGuard::admit`] checks it), and the same without `if_tsoffset` when it has one.
    fn ts(&self, high: u32, low: u32) -> (i128, Option<i128>) {
        let units = (u64::from(high) << 32) | u64::from(low);
        let ns = self.scale.to_ns(units);
        (ns + self.offset_ns, (self.offset_ns != 0).then_some(ns))
    }
}

/// How to turn an interface's timestamp units into nanoseconds, from `if_tsresol`.
#[derive(Clone, Copy, Debug)]
enum TsScale {
    /// Units of 10^-n s, n <= 9: multiply.
    Mul(u64),
    /// Units of 10^-n s, 9 < n <= 19: divide.
    Div(u64),
    /// Units of 2^-n s: multiply by 10^9, shift right by n.
    Shift(u32),
}

impl TsScale {
    fn from_tsresol(tsresol: u8) -> Option<TsScale> {
        let n = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            Some(TsScale::Shift(n))
        } else if n <= 9 {
            Some(TsScale::Mul(10u64.pow(9 - n)))
        } else if n <= 19 {
            Some(TsScale::Div(10u64.pow(n - 9)))
        } else {
            None
        }
    }

    /// Nanoseconds; at most 2^64 * 10^9, which an `i128` holds.
    fn to_ns(self, units: u64) -> i128 {
        let ns = match self {
            TsScale::Mul(m) => u128::from(units) * u128::from(m),
            TsScale::Div(d) => u128::from(units / d),
            TsScale::Shift(n) => (u128::from(units) * 1_000_000_000) >> n.min(127),
        };
        i128::try_from(ns).unwrap_or(i128::MAX)
    }
}

/// Reads a pcapng stream. `oversized` counts packet blocks whose captured length exceeds the
/// block (their frames are cut to the block).
fn read_pcapng<F: FnMut(&Frame<'_>)>(
    name: &str,
    input: Input,
    first_block: usize,
    sink: &mut Feed<'_, '_, F>,
    oversized: &mut u64,
) -> Result<End, Error> {
    let mut capacity = BUFFER_SIZE.max(first_block.min(MAX_BLOCK));
    let mut reader = PcapNGReader::new(capacity, input).map_err(|e| match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => Error::input(
            name,
            "pcapng capture cut off inside its first section header",
        ),
        other => Error::input(name, format!("unreadable pcapng section header ({other})")),
    })?;
    let mut big_endian = false;
    let file = sink
        .summary
        .files
        .iter()
        .position(|f| f == name)
        .unwrap_or(0);
    // The interfaces of the current section: ids restart at 0 in each section. At most
    // MAX_INTERFACES; `described` counts them all.
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut described = 0usize;

    loop {
        let offset = reader.consumed() as u64;
        let corrupt = |what: String| Ok(End::Corrupt(offset, what));
        // Block type and total length; a section header also needs its byte-order magic to
        // say in which order the length is written.
        match fill(&mut reader, &mut capacity, 8) {
            Fill::Ready => {}
            Fill::End => return Ok(End::Clean(offset)),
            Fill::Short => return Ok(End::CutOff(offset)),
        }
        if u32_at(reader.data(), 0, false) == SHB {
            match fill(&mut reader, &mut capacity, 12) {
                Fill::Ready => {}
                Fill::End | Fill::Short => return Ok(End::CutOff(offset)),
            }
            big_endian = match u32_at(reader.data(), 8, false) {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                _ => return corrupt("section header with an unknown byte-order magic".into()),
            };
        }
        let block_type = u32_at(reader.data(), 0, big_endian);
        let len = u32_at(reader.data(), 4, big_endian) as usize;
        if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
            return corrupt(format!(
                "block of type {block_type:#x} with impossible length {len}"
            ));
        }
        match fill(&mut reader, &mut capacity, len) {
            Fill::Ready => {}
            Fill::End | Fill::Short => return Ok(End::CutOff(offset)),
        }
        if u32_at(reader.data(), len - 4, big_endian) as usize != len {
            return corrupt(format!(
                "block of type {block_type:#x} whose two lengths differ"
            ));
        }

        match block_type {
            SHB | IDB => {
                // The whole block is in the buffer: pcap-parser parses it at once (it follows
                // the byte order of each section itself).
                let parsed = match reader.next() {
                    Ok((used, PcapBlockOwned::NG(Block::SectionHeader(shb)))) if used == len => {
                        if shb.major_version != 1 {
                            let (major, minor) = (shb.major_version, shb.minor_version);
                            return corrupt(format!(
                                "section header of unsupported pcapng version {major}.{minor}"
                            ));
                        }
                        interfaces.clear();
                        described = 0;
                        sink.clock.new_file();
                        Ok(())
                    }
                    Ok((used, PcapBlockOwned::NG(Block::InterfaceDescription(idb))))
                        if used == len =>
                    {
                        described = described.saturating_add(1);
                        if interfaces.len() >= MAX_INTERFACES {
                            // Past the bound: counted, its frames skipped.
                            sink.summary.ignored_interfaces += 1;
                            Ok(())
                        } else {
                            Interface::from_idb(&idb, big_endian).map(|mut i| {
                                i.id = sink.summary.add_interface(file, i.name.clone(), i.link);
                                sink.clock.reserve(i.id);
                                interfaces.push(i)
                            })
                        }
                    }
                    _ => Err(if block_type == SHB {
                        "unreadable section header block".to_string()
                    } else {
                        "unreadable interface description block".to_string()
                    }),
                };
                if let Err(what) = parsed {
                    return corrupt(what);
                }
            }
            EPB | PB => {
                // EPB: interface id (u32); obsolete PB: interface id (u16), drops (u16). Then
                // both: timestamp high and low, captured length, original length, data.
                let block = &reader.data()[..len];
                if len < 32 {
                    return corrupt(format!("packet block of impossible length {len}"));
                }
                let if_id = if block_type == EPB {
                    u32_at(block, 8, big_endian) as usize
                } else if big_endian {
                    usize::from(u16::from_be_bytes([block[8], block[9]]))
                } else {
                    usize::from(u16::from_le_bytes([block[8], block[9]]))
                };
                let Some(iface) = interfaces.get(if_id) else {
                    if if_id < described {
                        sink.summary.frames_on_ignored_interfaces += 1;
                        reader.consume_noshift(len);
                        continue;
                    }
                    return corrupt(format!(
                        "packet on interface {if_id}, which this section does not describe"
                    ));
                };
                let claimed = u32_at(block, 20, big_endian) as usize;
                let room = len - 32;
                if claimed > room {
                    *oversized += 1;
                }
                let bytes = &block[28..28 + claimed.min(room)];
                let caplen = len_u32(bytes);
                let (raw, without_offset) =
                    iface.ts(u32_at(block, 12, big_endian), u32_at(block, 16, big_endian));
                let mut frame = Frame {
                    ts: Timestamp::ZERO,
                    link: iface.link,
                    caplen,
                    wire_len: u32_at(block, 24, big_endian).max(caplen),
                    iface: iface.id,
                    interfaces: len_u16(sink.summary.interfaces.len()),
                    bytes,
                };
                let stamp = Stamp::Written {
                    ns: raw,
                    without_offset,
                };
                if !sink.deliver(&mut frame, stamp)? {
                    return Ok(End::Clean(offset));
                }
            }
            SPB => {
                // Original length, then data; the interface is the section's first, the
                // captured length min(original length, snaplen), the time the last one seen.
                let block = &reader.data()[..len];
                if len < 16 {
                    return corrupt(format!("simple packet block of impossible length {len}"));
                }
                let Some(iface) = interfaces.first() else {
                    return corrupt("simple packet block in a section with no interface".into());
                };
                let wire_len = u32_at(block, 8, big_endian);
                let mut caplen = (wire_len as usize).min(len - 16);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let bytes = &block[12..12 + caplen];
                let mut frame = Frame {
                    ts: sink.last_ts,
                    link: iface.link,
                    caplen: len_u32(bytes),
                    wire_len: wire_len.max(len_u32(bytes)),
                    iface: iface.id,
                    interfaces: len_u16(sink.summary.interfaces.len()),
                    bytes,
                };
                if !sink.deliver(&mut frame, Stamp::Last)? {
                    return Ok(End::Clean(offset));
                }
            }
            // Statistics, name resolution, secrets, custom blocks...: nothing for us.
            _ => {}
        }
        reader.consume_noshift(len);
    }
}

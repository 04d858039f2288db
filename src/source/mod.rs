//! `source`: where frames come from. Files (pcap, pcapng, gzip/zstd-compressed, `-` for
//! standard input, several files read as one capture) and, later, live interfaces.
//!
//! A source lends each frame to a callback as a [`Frame`] borrowed from its own buffer; it never
//! copies a frame onto the heap.

pub mod clock;
pub mod file;
pub mod filter;
pub mod live;
pub mod outputs;
pub mod privileges;

pub use file::SourceStats;

use crate::time::Timestamp;
use std::fmt;

/// A link-layer header type, numbered as libpcap's `LINKTYPE_*` values (what pcap and pcapng
/// files store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const IEEE802_11: LinkType = LinkType(105);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// libpcap's name for the link type (`tcpdump -L` / `EN10MB` style), for reports.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NULL",
            1 => "EN10MB",
            9 => "PPP",
            50 => "PPP_SERIAL",
            104 => "C_HDLC",
            12 | 101 => "RAW",
            105 => "IEEE802_11",
            108 => "LOOP",
            113 => "LINUX_SLL",
            127 => "IEEE802_11_RADIO",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "UNKNOWN" => write!(f, "LINKTYPE_{}", self.0),
            n => f.write_str(n),
        }
    }
}

/// Where a live source hands its frames (files take a closure: they have no clock to tick).
pub trait FrameSink {
    /// One frame (the hot path: no allocation).
    fn frame(&mut self, frame: &Frame<'_>);
    /// Called every interval with the packets lost so far; an error stops the capture.
    fn tick(&mut self, drops: live::Drops) -> Result<(), crate::error::Error>;
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Bytes captured (`bytes.len()`).
    pub caplen: u32,
    /// Length of the frame on the wire (may exceed `caplen` when cut by the snap length).
    pub wire_len: u32,
    /// The capture interface it was taken on: an index into [`SourceStats::interfaces`]
    /// (every interface of every pcapng section and every pcap file has its own; 0 live).
    pub iface: u16,
    /// How many interfaces the source has described so far (more than `iface`): a capture of
    /// several interfaces is known as such before their packets interleave.
    pub interfaces: u16,
    pub bytes: &'a [u8],
}

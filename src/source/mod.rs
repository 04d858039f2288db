//! `source`: where frames come from. Files (pcap, pcapng, gzip/zstd-compressed, `-` for
//! standard input, several files read as one capture) and, later, live interfaces.
//!
//! A source lends each frame to a callback as a [`Frame`] borrowed from its own buffer; it never
//! copies a frame onto the heap.

pub mod file;
pub mod filter;
pub mod live;

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

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Bytes captured (`bytes.len()`).
    pub caplen: u32,
    /// Length of the frame on the wire (may exceed `caplen` when cut by the snap length).
    pub wire_len: u32,
    pub bytes: &'a [u8],
}

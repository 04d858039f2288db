//! The IP protocol of a packet, a connection or a catalogue role: one enum for every stage.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// IP protocol numbers (IANA) the decoder and the flow table know by name.
pub const ICMP: u8 = 1;
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMPV6: u8 = 58;

/// A transport with ports, or a bare IP protocol number (ICMP, ICMPv6, ESP, ...).
///
/// Written `"tcp"`, `"udp"`, or a number (`50` for ESP, `51` for AH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// Another IP protocol, without ports. Never 6 or 17.
    Ip(u8),
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => TCP,
            Proto::Udp => UDP,
            Proto::Ip(n) => n,
        }
    }

    /// The protocol for an IP protocol number (6 and 17 become `Tcp` and `Udp`).
    pub fn from_number(n: u8) -> Proto {
        match n {
            TCP => Proto::Tcp,
            UDP => Proto::Udp,
            n => Proto::Ip(n),
        }
    }

    /// Zeek's conn.log name: tcp, udp, icmp (ICMP and ICMPv6 alike), unknown.
    pub fn zeek_name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Ip(ICMP | ICMPV6) => "icmp",
            Proto::Ip(_) => "unknown",
        }
    }

    /// Whether the protocol has ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Tcp => f.write_str("tcp"),
            Proto::Udp => f.write_str("udp"),
            Proto::Ip(n) => write!(f, "ip-{n}"),
        }
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Proto::Tcp => serializer.serialize_str("tcp"),
            Proto::Udp => serializer.serialize_str("udp"),
            Proto::Ip(n) => serializer.serialize_u8(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Proto {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProtoVisitor;
        impl Visitor<'_> for ProtoVisitor {
            type Value = Proto;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"tcp\", \"udp\" or an IP protocol number (0-255)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Proto, E> {
                match v {
                    "tcp" => Ok(Proto::Tcp),
                    "udp" => Ok(Proto::Udp),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Proto, E> {
                u8::try_from(v)
                    .map(Proto::Ip)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Proto, E> {
                u8::try_from(v)
                    .map(Proto::Ip)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        deserializer.deserialize_any(ProtoVisitor)
    }
}

//! Kinds of frames the decoder could not (fully) use, counted in a fixed array.

/// Why a frame gave no usable packet, or what was odd about it. Names are for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// Not an IP packet (ARP, LLDP, STP, ...). Not an error; reported apart.
    NotIp,
    /// The link type is one exflow does not decode.
    UnsupportedLinkType,
    /// Cut by the snap length before the headers exflow needs.
    SnaplenCut,
    /// A link-layer header is malformed or too short.
    BadLinkHeader,
    /// An IPv4 header is malformed (version, IHL, total length).
    BadIpv4Header,
    /// An IPv6 header or extension header is malformed.
    BadIpv6Header,
    /// A TCP header is malformed (data offset).
    BadTcpHeader,
    /// A UDP header is malformed.
    BadUdpHeader,
    /// An ICMP or ICMPv6 header is malformed.
    BadIcmpHeader,
    /// A non-first IP fragment (its transport header is in the first fragment).
    IpFragment,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 10] = [
        AnomalyKind::NotIp,
        AnomalyKind::UnsupportedLinkType,
        AnomalyKind::SnaplenCut,
        AnomalyKind::BadLinkHeader,
        AnomalyKind::BadIpv4Header,
        AnomalyKind::BadIpv6Header,
        AnomalyKind::BadTcpHeader,
        AnomalyKind::BadUdpHeader,
        AnomalyKind::BadIcmpHeader,
        AnomalyKind::IpFragment,
    ];

    /// The stable name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::NotIp => "not_ip",
            AnomalyKind::UnsupportedLinkType => "unsupported_link_type",
            AnomalyKind::SnaplenCut => "snaplen_cut",
            AnomalyKind::BadLinkHeader => "bad_link_header",
            AnomalyKind::BadIpv4Header => "bad_ipv4_header",
            AnomalyKind::BadIpv6Header => "bad_ipv6_header",
            AnomalyKind::BadTcpHeader => "bad_tcp_header",
            AnomalyKind::BadUdpHeader => "bad_udp_header",
            AnomalyKind::BadIcmpHeader => "bad_icmp_header",
            AnomalyKind::IpFragment => "ip_fragment",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A counter per [`AnomalyKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnomalyCounts([u64; AnomalyKind::ALL.len()]);

impl AnomalyCounts {
    pub fn add(&mut self, kind: AnomalyKind) {
        let c = &mut self.0[kind.index()];
        *c = c.saturating_add(1);
    }
    pub fn get(&self, kind: AnomalyKind) -> u64 {
        self.0[kind.index()]
    }
    /// Non-zero counters, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (AnomalyKind, u64)> + '_ {
        AnomalyKind::ALL.iter().map(|&k| (k, self.get(k))).filter(|&(_, n)| n > 0)
    }
}

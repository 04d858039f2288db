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
    /// A raw-IP frame (link types RAW, IPV4, IPV6, NULL/LOOP's address family aside) whose
    /// first nibble is neither 4 nor 6, or that is empty.
    UnsupportedIpVersion,
    /// An 802.11 data frame with the Protected bit set: its payload is encrypted (WEP, WPA,
    /// WPA2/3), so the IP packet inside cannot be read.
    WlanProtected,
    /// An 802.11 QoS data frame carrying an A-MSDU (several packets aggregated in one frame),
    /// which exflow does not split.
    WlanAmsdu,
    /// A frame the capture itself marks as corrupt: an 802.11 frame whose radiotap flags say
    /// it failed its FCS (frame check sequence) check.
    BadFcs,
    /// A tunnel header (GRE, ERSPAN, VXLAN, Geneve) is malformed or too short.
    BadTunnelHeader,
    /// Tunnels nested deeper than `decode::MAX_TUNNEL_DEPTH`.
    TunnelTooDeep,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 16] = [
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
        AnomalyKind::UnsupportedIpVersion,
        AnomalyKind::WlanProtected,
        AnomalyKind::WlanAmsdu,
        AnomalyKind::BadFcs,
        AnomalyKind::BadTunnelHeader,
        AnomalyKind::TunnelTooDeep,
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
            AnomalyKind::UnsupportedIpVersion => "unsupported_ip_version",
            AnomalyKind::WlanProtected => "wlan_protected",
            AnomalyKind::WlanAmsdu => "wlan_amsdu",
            AnomalyKind::BadFcs => "bad_fcs",
            AnomalyKind::BadTunnelHeader => "bad_tunnel_header",
            AnomalyKind::TunnelTooDeep => "tunnel_too_deep",
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
        AnomalyKind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_in_declaration_order_with_unique_snake_case_names() {
        for (i, k) in AnomalyKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
            let n = k.name();
            assert!(
                n.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{n}"
            );
            let dups = AnomalyKind::ALL.iter().filter(|o| o.name() == n).count();
            assert_eq!(dups, 1, "{n}");
        }
    }

    #[test]
    fn counts() {
        let mut c = AnomalyCounts::default();
        c.add(AnomalyKind::BadFcs);
        c.add(AnomalyKind::BadFcs);
        c.add(AnomalyKind::NotIp);
        assert_eq!(c.get(AnomalyKind::BadFcs), 2);
        let v: Vec<_> = c.iter().collect();
        assert_eq!(v, [(AnomalyKind::NotIp, 1), (AnomalyKind::BadFcs, 2)]);
    }
}

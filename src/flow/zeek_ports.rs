//! Zeek's "likely server ports": the ports its protocol analyzers register. When a connection's
//! first packet is not a pure SYN, Zeek guesses the originator from them
//! (`TCPAnalyzer::WantConnection`, `src/packet_analysis/protocol/tcp/TCP.cc`; UDP in `UDP.cc`).
//! The list is data: the well-known ports of the analyzers a default Zeek loads, and only
//! those (Exchange's own ports — 808, 3343, 50636, 64327 — are the catalogue's business, not
//! Zeek's originator rule).

/// TCP ports, sorted.
const TCP: &[u16] = &[
    21, 22, 23, 25, 53, 80, 81, 88, 102, 110, 111, 119, 135, 139, 143, 389, 443, 445, 465, 502,
    563, 587, 593, 631, 636, 989, 990, 992, 993, 994, 995, 1080, 1194, 1433, 1521, 1723, 1883,
    2049, 2121, 3128, 3268, 3269, 3306, 3389, 4369, 5060, 5061, 5062, 5222, 5223, 5269, 5432, 5672,
    5900, 6379, 6588, 6666, 6667, 6668, 6669, 8000, 8080, 8081, 8443, 8883, 8888, 9200, 11211,
    20000, 27017,
];

/// UDP ports, sorted.
const UDP: &[u16] = &[
    53, 67, 68, 69, 88, 123, 137, 138, 161, 162, 389, 443, 500, 514, 520, 546, 547, 1812, 1813,
    3478, 4500, 4789, 5060, 5353, 5355, 6081, 8472,
];

pub fn likely_tcp_server_port(port: u16) -> bool {
    TCP.binary_search(&port).is_ok()
}

pub fn likely_udp_server_port(port: u16) -> bool {
    UDP.binary_search(&port).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_are_sorted_for_binary_search() {
        assert!(TCP.windows(2).all(|w| w[0] < w[1]));
        assert!(UDP.windows(2).all(|w| w[0] < w[1]));
        assert!(likely_tcp_server_port(443) && !likely_tcp_server_port(50000));
    }
}

//! What one finished connection says about the flow it belongs to: attempted, established,
//! dropped, refused, rejected, reset mid-stream (by whom), one-sided, a scan probe.

use crate::decode::Proto;
use crate::flow::{iface_bit, ConnRecord, ConnState, Side, SimOpen};

/// Why an attempt failed, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// SYNs (or UDP requests) never answered.
    Dropped,
    /// Answered by a RST, with that RST's TTL (`None`: the record carries no TTL, as a
    /// conn.log or EVE record; who sent the RST cannot be told).
    Refused { rst_ttl: Option<u8> },
    /// Answered by an ICMP unreachable.
    Rejected {
        v6: bool,
        icmp_type: u8,
        code: u8,
        from: std::net::IpAddr,
        /// Matched by time and addresses (a log's separate ICMP record).
        by_address: bool,
    },
}

/// An established connection that was reset before a normal close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MidstreamReset {
    /// The side the RST claims to come from.
    pub side: Side,
    /// `None` when the record carries no TTL.
    pub rst_ttl: Option<u8>,
    /// The TTL that side's other packets showed.
    pub usual_ttl: Option<u8>,
    /// The interfaces the RST was seen on (0: not known).
    pub rst_ifaces: u32,
    /// The interfaces the claimed sender's packets were seen on, and where they showed up
    /// first (its side of the firewall, in a firewall's own capture).
    pub side_ifaces: u32,
    pub side_first: u16,
}

impl MidstreamReset {
    /// From a capture on several interfaces: the claimed sender's packets crossed the
    /// firewall, entering on its side; a RST that was never seen on that side did not come
    /// from there — the firewall made it. `None` when the interfaces cannot tell.
    pub fn by_interfaces(&self) -> Option<bool> {
        if self.rst_ifaces == 0 || self.side_ifaces.count_ones() < 2 {
            return None;
        }
        Some(self.rst_ifaces & iface_bit(self.side_first) == 0)
    }

    /// A RST made by a device in between (a firewall forging the sender's address): by the
    /// interfaces it was seen on where the capture can tell, else by a TTL that differs from
    /// its claimed sender's usual TTL.
    pub fn by_middlebox(&self) -> Option<bool> {
        self.by_interfaces()
            .or(match (self.usual_ttl, self.rst_ttl) {
                (Some(usual), Some(rst)) => Some(usual != rst),
                _ => None,
            })
    }
}

/// What one finished connection says about the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The originator tried to connect (a SYN, a UDP request, or a one-sided view of one).
    pub attempt: bool,
    /// The responder answered the handshake (TCP SYN-ACK, or a UDP answer).
    pub established: bool,
    /// Only one direction of the connection was captured.
    pub one_sided: bool,
    pub failure: Option<Failure>,
    pub reset: Option<MidstreamReset>,
    pub syn_retries: u32,
    /// SYN → SYN-ACK in microseconds.
    pub handshake_us: Option<u32>,
    /// No payload from the originator and no completed exchange: what a port scanner sends.
    pub probe: bool,
    /// The responder's usual TTL (its first packet), when it answered.
    pub resp_ttl: Option<u8>,
    /// RSTs taken for spoofed or ignored ([`ConnRecord::ignored_rsts`]).
    pub ignored_rsts: u32,
    /// Nothing but the responder's SYN-ACK, answering no SYN the capture saw: backscatter of
    /// someone else's spoofed SYNs, or a forged packet. No attempt, not one-sided, not
    /// established: it says nothing of the flow (a few of them would otherwise turn a
    /// blocked row one-sided).
    pub lone_synack: bool,
    /// A completed handshake with data both ways: a service proven in use, where a few
    /// packets a blind spoofer can send (SYN, SYN-ACK, ACK) only make it likely.
    pub confirmed: bool,
}

fn has(h: &str, c: char) -> bool {
    h.contains(c)
}

/// The first RST came after a FIN from either side: an abortive close (an MTA that resets
/// once the session is over, a browser closing a kept-alive connection), not a reset
/// mid-stream. Zeek's history records each side's first FIN and first RST in the order they
/// came, so the order of the letters is the order of the packets. `conn_state` stays Zeek's
/// (RSTO or RSTR when the peer had not closed too); only the verdict's evidence reads it as
/// a close.
fn reset_after_fin(h: &str) -> bool {
    match (h.find(['F', 'f']), h.find(['R', 'r'])) {
        (Some(fin), Some(rst)) => fin < rst,
        _ => false,
    }
}

impl Evidence {
    /// Reads a connection record.
    pub fn of(r: &ConnRecord) -> Evidence {
        let h = r.history.as_str();
        let (op, rp) = (r.orig_stats.pkts, r.resp_stats.pkts);
        let rejected = r
            .icmp
            .iter()
            .flatten()
            .find(|e| (!e.v6 && e.icmp_type == 3) || (e.v6 && e.icmp_type == 1))
            .map(|e| Failure::Rejected {
                v6: e.v6,
                icmp_type: e.icmp_type,
                code: e.code,
                from: e.from,
                by_address: e.by_address,
            });
        if r.proto == Proto::Udp {
            let established = rp > 0 && op > 0;
            let failure = if established || op == 0 {
                None
            } else {
                rejected.or(Some(Failure::Dropped))
            };
            return Evidence {
                attempt: op > 0,
                established,
                one_sided: op == 0 && rp > 0,
                failure,
                reset: None,
                syn_retries: 0,
                handshake_us: None,
                probe: false,
                resp_ttl: r.resp_stats.first_ttl,
                ignored_rsts: 0,
                lone_synack: false,
                confirmed: established && r.orig_bytes > 0 && r.resp_bytes > 0,
            };
        }
        let orig_syn = has(h, 'S');
        let synack = has(h, 'h');
        // One direction only: the originator ACKs or sends data the capture never saw answered,
        // or only the responder's packets are there.
        let lone_synack = op == 0 && synack && h.chars().all(|c| c == '^' || c == 'h');
        let one_sided = ((rp == 0 && op > 0 && (has(h, 'A') || has(h, 'D')))
            || (op == 0 && rp > 0))
            && !lone_synack;
        // A connection already open when the capture started (no handshake seen) that carries
        // packets both ways is proof the flow works: count it as established.
        let midstream = !orig_syn && !synack && op > 0 && rp > 0 && !has(h, 'R') && !has(h, 'r');
        let established = (synack || midstream) && !one_sided && !lone_synack;
        let attempt = orig_syn || one_sided || established;
        let failure = if established || one_sided || !orig_syn {
            None
        } else if r.conn_state == ConnState::REJ {
            // A REJ without a RST side recorded (a log's record): its TTL is unknown.
            let ttl = r.rst_by.map_or(Some(0), |(_, t)| t);
            Some(Failure::Refused { rst_ttl: ttl })
        } else if rejected.is_some() {
            rejected
        } else if rp == 0 {
            Some(Failure::Dropped)
        } else {
            None
        };
        let reset = match (established, r.conn_state, r.rst_by) {
            _ if reset_after_fin(h) => None,
            (true, ConnState::RSTR | ConnState::RSTO, Some((side, ttl))) => {
                let stats = match side {
                    Side::Orig => &r.orig_stats,
                    Side::Resp => &r.resp_stats,
                };
                Some(MidstreamReset {
                    side,
                    rst_ttl: ttl,
                    usual_ttl: stats.first_ttl,
                    rst_ifaces: r.rst_ifaces,
                    side_ifaces: stats.ifaces,
                    side_first: stats.first_iface,
                })
            }
            _ => None,
        };
        // What a scanner's SYN leaves: unanswered, refused, or answered with a SYN-ACK that
        // the scanner reset (its kernel) or never answered at all (a scanner whose kernel
        // does not see its raw SYNs, or whose firewall drops the SYN-ACKs): no ACK, no data.
        let probe = !has(h, 'D')
            && (matches!(
                r.conn_state,
                ConnState::S0 | ConnState::REJ | ConnState::RSTOS0
            ) || (synack && has(h, 'R') && !has(h, 'd'))
                || (synack && !has(h, 'A') && !has(h, 'd')));
        Evidence {
            attempt,
            established,
            one_sided,
            failure,
            reset,
            syn_retries: r.syn_retries,
            handshake_us: r
                .rtt_syn_synack
                .map(|d| (d.0 / 1000).clamp(0, u32::MAX as i64) as u32),
            probe,
            // The half of a simultaneous open that the crossing SYN began is read the other
            // way round (see `SimOpen::Crossing`): its originator is the server.
            resp_ttl: match (synack, r.sim_open) {
                (false, _) => None,
                (true, SimOpen::Crossing) => r.orig_stats.first_ttl,
                (true, _) => r.resp_stats.first_ttl,
            },
            ignored_rsts: r.ignored_rsts,
            lone_synack,
            confirmed: established
                && orig_syn
                && synack
                && has(h, 'A')
                && has(h, 'D')
                && has(h, 'd'),
        }
    }
}

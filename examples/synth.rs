//! A deterministic capture synthesizer: a pcap of a busy, somewhat troubled Exchange site, the
//! ground truth of what it generated, and the site file that describes it.
//!
//! ```sh
//! cargo run --release --example synth -- --packets 1000000 --seed 1 \
//!     --out site.pcap --truth site.truth.json --site site.toml
//! cargo run --release --example synth -- --flood 2000000 --out flood.pcap --truth flood.json
//! ```
//!
//! What it writes (documentation addresses only: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32, and 198.18.0.0/15 — RFC 2544's benchmarking range — for flood sources):
//!
//! - A Mailbox server 198.51.100.10 / 2001:db8:200::10, DNS servers 198.51.100.53 and .54,
//!   optionally (`--edge`) an Edge Transport server 198.51.100.200 in the perimeter
//!   198.51.100.192/26. Internet clients in 203.0.113.0/24 and 2001:db8:1::/64, internal
//!   clients in 198.51.100.64-126 and 2001:db8:200::1:0/112, remote mail servers in
//!   192.0.2.0/24.
//! - The catalogue's roles weighted like a real site: HTTPS dominant (some of it ActiveSync
//!   long polls that sit for tens of seconds), HTTP, SMTP in and out, submission, DNS over UDP
//!   from the Mailbox (and Edge), a little IMAP/POP with `--imap-pop`, EdgeSync and the Edge
//!   relays with `--edge`.
//! - Full TCP connections: handshake with options, TLS-sized and SMTP-sized dialogues split
//!   into MSS segments in slow-start rounds, an ACK every second segment, FIN close; timing
//!   as seen by a capture point near the servers (server-side and client-side round trips).
//! - Payloads with the protocols' framing, so that dissectors and DPI tools get the work a
//!   real site gives them (exflow itself reads only headers). Each dialogue is a sequence of
//!   messages whose sizes set the segments; a message's bytes are a function of (connection,
//!   message, offset), so every segment is built alone and the same seed gives the same bytes:
//!   - TLS (443, the IMAP/POP ports, EdgeSync's 50636, SMTP and submission after STARTTLS):
//!     the client's first message one handshake record (0x0301) holding a TLS 1.3 ClientHello
//!     of exactly its size (server_name of an example domain, supported_versions, an x25519
//!     key share, ALPN on HTTPS, a padding extension taking up the slack); the server's first
//!     a ServerHello record, a ChangeCipherSpec record, then application data; every later
//!     message application-data records (23, 0x0303, random contents, full-size 16401-byte
//!     bodies and a shorter last one) tiling it, spanning segments as they do in reality.
//!   - SMTP (25) and submission (587) in clear up to STARTTLS: banner, EHLO, the multi-line
//!     250 answer, STARTTLS, "220 2.0.0 Ready to start TLS", each line fitted to its size.
//!   - HTTP (80): a GET with browser or Outlook headers (a cookie taking up the slack), and
//!     IIS's 301 redirect to HTTPS with a Content-Length that matches its body.
//!   - DNS over TCP: the length prefix, the query and its large answer, EDNS0 padding (RFC
//!     7830) making them exact.
//! - The failures of a troubled site (`--healthy` switches them off): SYNs dropped with
//!   Linux's retransmission backoff (1, 2, 4, ... s, same ISN), a first SYN lost and the
//!   retransmission answered, RST answers to SYNs (with the server's TTL or a middlebox's),
//!   ICMP administratively prohibited (3/13, ICMPv6 1/1) quoting the SYN, resets mid-stream
//!   forged by a middlebox (TTL differs from the claimed sender's), one-sided connections
//!   (only one direction written), DNS queries unanswered or answered by ICMP port
//!   unreachable.
//! - IPv6 for a share of clients, 802.1Q tags on a share of connections, Ethernet padding of
//!   short frames to 60 bytes as a mirror port delivers them, correct IPv4/TCP/UDP/ICMP
//!   checksums and lengths.
//! - `--flood N`: N SYNs to one Mailbox port from distinct sources (each SYN its own
//!   connection), never answered; `--scan`: a SYN scan of ports 1-1024 of the Mailbox from
//!   203.0.113.250. Both mix with the normal traffic (`--packets`, 0 by default with
//!   `--flood`).
//!
//! `--packets N` is exact: the normal traffic has exactly N frames (flood SYNs and scan
//! packets come on top). Packets are written in timestamp order, with many connections open
//! at once. The same arguments give the same bytes.
//!
//! The ground truth (`--truth`) counts, per catalogue role, what exflow's report should sum
//! over that role's expected entries: attempts, established, dropped, refused, rejected,
//! reset (mid-stream), one_sided, syn_retries; plus the flood and the scan.

use clap::Parser;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
/// 2025-03-10 09:00:00 UTC: where every capture starts.
const EPOCH_NS: u64 = 1_741_597_200 * SEC;

// ---------------------------------------------------------------------------------------------
// Command line and configuration

#[derive(Parser, Debug, Clone)]
#[command(
    name = "synth",
    about = "Writes a deterministic synthetic Exchange-site capture, its ground truth and site file"
)]
pub struct Args {
    /// Frames of normal site traffic (exact). Default 100000, or 0 with --flood.
    #[arg(long)]
    pub packets: Option<u64>,
    /// Seed of the generator: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The pcap to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the ground truth (JSON).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Where to write the site file (TOML) describing the synthetic site.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// Nanosecond timestamps (pcap magic 0xa1b23c4d) instead of microseconds.
    #[arg(long)]
    pub nanos: bool,
    /// Average frames per second of the normal traffic (sets the capture's time span).
    #[arg(long, default_value_t = 5000.0)]
    pub pps: f64,
    /// An Edge Transport server in the perimeter (site profile "edge").
    #[arg(long)]
    pub edge: bool,
    /// Switch IMAP4 and POP3 on in the site and generate a little of both.
    #[arg(long)]
    pub imap_pop: bool,
    /// No failures: every connection is answered and closes normally.
    #[arg(long)]
    pub healthy: bool,
    /// Add N SYNs from distinct sources to one Mailbox port, never answered.
    #[arg(long)]
    pub flood: Option<u64>,
    /// The flooded port of the Mailbox: 443, 80, 587 (or 25 in the mailbox profile).
    #[arg(long, default_value_t = 443)]
    pub flood_port: u16,
    /// Flood SYNs per second.
    #[arg(long, default_value_t = 100_000.0)]
    pub flood_pps: f64,
    /// Flood from a distinct IPv6 address per SYN (2001:db8:f000::/36) instead of
    /// 198.18.0.0/15 (131072 addresses, then distinct source ports).
    #[arg(long)]
    pub flood_v6: bool,
    /// Add a SYN scan of ports 1-1024 of the Mailbox from 203.0.113.250.
    #[arg(long)]
    pub scan: bool,
}

/// Everything `generate` needs; `Args` without the file names.
#[derive(Clone, Debug)]
pub struct Config {
    pub packets: u64,
    pub seed: u64,
    pub nanos: bool,
    pub pps: f64,
    pub edge: bool,
    pub imap_pop: bool,
    pub healthy: bool,
    pub flood: u64,
    pub flood_port: u16,
    pub flood_pps: f64,
    pub flood_v6: bool,
    pub scan: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            packets: 100_000,
            seed: 1,
            nanos: false,
            pps: 5000.0,
            edge: false,
            imap_pop: false,
            healthy: false,
            flood: 0,
            flood_port: 443,
            flood_pps: 100_000.0,
            flood_v6: false,
            scan: false,
        }
    }
}

impl Args {
    pub fn config(&self) -> Config {
        Config {
            packets: self
                .packets
                .unwrap_or(if self.flood.is_some() { 0 } else { 100_000 }),
            seed: self.seed,
            nanos: self.nanos,
            pps: self.pps,
            edge: self.edge,
            imap_pop: self.imap_pop,
            healthy: self.healthy,
            flood: self.flood.unwrap_or(0),
            flood_port: self.flood_port,
            flood_pps: self.flood_pps,
            flood_v6: self.flood_v6,
            scan: self.scan,
        }
    }
}

fn main() {
    let args = Args::parse();
    let cfg = args.config();
    let started = std::time::Instant::now();
    let result = (|| -> io::Result<Truth> {
        let file = File::create(&args.out)?;
        let truth = generate(&cfg, BufWriter::with_capacity(1 << 20, file))?;
        if let Some(p) = &args.truth {
            std::fs::write(p, truth.to_json())?;
        }
        if let Some(p) = &args.site {
            std::fs::write(p, site_toml(&cfg))?;
        }
        Ok(truth)
    })();
    match result {
        Ok(t) => eprintln!(
            "synth: {} packets ({} normal, {} flood SYNs, {} scan), {} connections, {} bytes in {:.2} s -> {}",
            t.packets,
            t.normal_packets,
            t.flood_syns,
            t.scan_packets,
            t.connections,
            t.bytes,
            started.elapsed().as_secs_f64(),
            args.out.display()
        ),
        Err(e) => {
            eprintln!("synth: {e}");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random numbers: splitmix64, deterministic everywhere.

#[derive(Clone, Copy, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_F42D_4C95_7F2D)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in 0..n (0 for n = 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in lo..=hi: many small values, a long tail.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        ((a + (b - a) * self.unit()).exp() as u64).clamp(lo, hi)
    }

    /// A child generator (for one connection).
    fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// splitmix64's finalizer: a bijection of u64.
fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// Addresses and hosts

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addr {
    v6: bool,
    b: [u8; 16],
}

impl Addr {
    fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
        let mut x = [0; 16];
        x[..4].copy_from_slice(&[a, b, c, d]);
        Addr { v6: false, b: x }
    }

    fn v4_u32(v: u32) -> Addr {
        let o = v.to_be_bytes();
        Addr::v4(o[0], o[1], o[2], o[3])
    }

    fn v6(v: u128) -> Addr {
        Addr {
            v6: true,
            b: v.to_be_bytes(),
        }
    }

    fn bytes(&self) -> &[u8] {
        if self.v6 {
            &self.b
        } else {
            &self.b[..4]
        }
    }

    fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.b))
        } else {
            IpAddr::V4(Ipv4Addr::new(self.b[0], self.b[1], self.b[2], self.b[3]))
        }
    }
}

const MAILBOX4: Addr = Addr {
    v6: false,
    b: [198, 51, 100, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};
const MAILBOX6: u128 = 0x2001_0db8_0200_0000_0000_0000_0000_0010;
const EDGE4: Addr = Addr {
    v6: false,
    b: [198, 51, 100, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};
const INET6_NET: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0000;
const INT6_NET: u128 = 0x2001_0db8_0200_0000_0000_0000_0001_0000;
const FLOOD6_NET: u128 = 0x2001_0db8_f000_0000_0000_0000_0000_0000;
const FW_OUT4: [u8; 4] = [203, 0, 113, 1];
const FW_IN4: [u8; 4] = [198, 51, 100, 1];
const FW_OUT6: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0001;
const FW_IN6: u128 = 0x2001_0db8_0200_0000_0000_0000_0000_0001;
const SCANNER: [u8; 4] = [203, 0, 113, 250];
/// The firewall's MAC: every packet from or to the internet crosses it.
const FW_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];

#[derive(Clone, Copy, Debug)]
struct Host {
    addr: Addr,
    /// TTL / hop limit of its packets as the capture point sees them.
    ttl: u8,
    internet: bool,
}

fn mac_of(a: &Addr, internet: bool) -> [u8; 6] {
    if internet {
        return FW_MAC;
    }
    let b = a.bytes();
    let n = b.len();
    [0x02, 0x00, 0x5e, b[n - 3], b[n - 2], b[n - 1]]
}

/// Index ranges of the host table.
#[derive(Clone, Copy, Debug)]
struct Pool {
    start: u32,
    len: u32,
}

struct Hosts {
    all: Vec<Host>,
    mailbox4: u32,
    mailbox6: u32,
    edge: u32,
    dns: Pool,
    inet4: Pool,
    inet6: Pool,
    int4: Pool,
    int6: Pool,
    mx: Pool,
    scanner: u32,
}

impl Hosts {
    fn new(rng: &mut Rng) -> Hosts {
        let mut all = vec![];
        let push = |all: &mut Vec<Host>, addr: Addr, ttl: u8, internet: bool| {
            all.push(Host {
                addr,
                ttl,
                internet,
            });
            (all.len() - 1) as u32
        };
        let mailbox4 = push(&mut all, MAILBOX4, 128, false);
        let mailbox6 = push(&mut all, Addr::v6(MAILBOX6), 128, false);
        let edge = push(&mut all, EDGE4, 128, false);
        let start = all.len() as u32;
        push(&mut all, Addr::v4(198, 51, 100, 53), 128, false);
        push(&mut all, Addr::v4(198, 51, 100, 54), 128, false);
        let dns = Pool { start, len: 2 };
        let remote_ttl = |rng: &mut Rng, linux_share: u32| {
            let base = if rng.chance(linux_share) { 64 } else { 128 };
            (base - rng.range(5, 22)) as u8
        };
        let start = all.len() as u32;
        for d in 10..=249u8 {
            let t = remote_ttl(rng, 400);
            push(&mut all, Addr::v4(203, 0, 113, d), t, true);
        }
        let inet4 = Pool { start, len: 240 };
        let start = all.len() as u32;
        for i in 0..2048u128 {
            let iid = mix64(i as u64 ^ 0xC1) as u128;
            let t = remote_ttl(rng, 400);
            push(&mut all, Addr::v6(INET6_NET | iid), t, true);
        }
        let inet6 = Pool { start, len: 2048 };
        let start = all.len() as u32;
        for d in 64..=126u8 {
            let t = if rng.chance(200) { 64 } else { 128 };
            push(&mut all, Addr::v4(198, 51, 100, d), t, false);
        }
        let int4 = Pool { start, len: 63 };
        let start = all.len() as u32;
        for i in 0..256u128 {
            let t = if rng.chance(200) { 64 } else { 128 };
            push(&mut all, Addr::v6(INT6_NET | i), t, false);
        }
        let int6 = Pool { start, len: 256 };
        let start = all.len() as u32;
        for d in 10..=249u8 {
            let t = remote_ttl(rng, 700);
            push(&mut all, Addr::v4(192, 0, 2, d), t, true);
        }
        let mx = Pool { start, len: 240 };
        let scanner = push(
            &mut all,
            Addr::v4(SCANNER[0], SCANNER[1], SCANNER[2], SCANNER[3]),
            51,
            true,
        );
        Hosts {
            all,
            mailbox4,
            mailbox6,
            edge,
            dns,
            inet4,
            inet6,
            int4,
            int6,
            mx,
            scanner,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roles: the catalogue ids the report uses, and how this site uses them.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tmpl {
    Https,
    LongPoll,
    Http,
    Smtp,
    Submission,
    MailClient,
    EdgeSync,
    /// DNS over TCP: one query, one large answer (a truncated UDP answer retried).
    DnsTcp,
    Dns,
    Probe,
}

/// Where one side of a role's connections comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Internet or internal clients; the share from the internet in per mille.
    Clients(u32),
    Mx,
    Mailbox,
    Edge,
    Dns,
}

struct RoleSpec {
    id: &'static str,
    port: u16,
    udp: bool,
    tmpl: Tmpl,
    client: Side,
    server: Side,
    /// Connection share (per 10000) in the mailbox and edge profiles.
    w_mailbox: u32,
    w_edge: u32,
    imap_pop: bool,
}

const ROLES: [RoleSpec; 18] = [
    RoleSpec {
        id: "https-client",
        port: 443,
        udp: false,
        tmpl: Tmpl::Https,
        client: Side::Clients(700),
        server: Side::Mailbox,
        w_mailbox: 6400,
        w_edge: 6000,
        imap_pop: false,
    },
    RoleSpec {
        id: "http-client",
        port: 80,
        udp: false,
        tmpl: Tmpl::Http,
        client: Side::Clients(800),
        server: Side::Mailbox,
        w_mailbox: 500,
        w_edge: 500,
        imap_pop: false,
    },
    RoleSpec {
        id: "smtp-submission",
        port: 587,
        udp: false,
        tmpl: Tmpl::Submission,
        client: Side::Clients(800),
        server: Side::Mailbox,
        w_mailbox: 250,
        w_edge: 250,
        imap_pop: false,
    },
    RoleSpec {
        id: "imap4",
        port: 143,
        udp: false,
        tmpl: Tmpl::MailClient,
        client: Side::Clients(600),
        server: Side::Mailbox,
        w_mailbox: 20,
        w_edge: 20,
        imap_pop: true,
    },
    RoleSpec {
        id: "imap4s",
        port: 993,
        udp: false,
        tmpl: Tmpl::MailClient,
        client: Side::Clients(800),
        server: Side::Mailbox,
        w_mailbox: 60,
        w_edge: 60,
        imap_pop: true,
    },
    RoleSpec {
        id: "pop3",
        port: 110,
        udp: false,
        tmpl: Tmpl::MailClient,
        client: Side::Clients(600),
        server: Side::Mailbox,
        w_mailbox: 10,
        w_edge: 10,
        imap_pop: true,
    },
    RoleSpec {
        id: "pop3s",
        port: 995,
        udp: false,
        tmpl: Tmpl::MailClient,
        client: Side::Clients(800),
        server: Side::Mailbox,
        w_mailbox: 30,
        w_edge: 30,
        imap_pop: true,
    },
    RoleSpec {
        id: "smtp-inbound",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Mx,
        server: Side::Mailbox,
        w_mailbox: 900,
        w_edge: 0,
        imap_pop: false,
    },
    RoleSpec {
        id: "smtp-outbound",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Mailbox,
        server: Side::Mx,
        w_mailbox: 450,
        w_edge: 0,
        imap_pop: false,
    },
    RoleSpec {
        id: "dns-udp",
        port: 53,
        udp: true,
        tmpl: Tmpl::Dns,
        client: Side::Mailbox,
        server: Side::Dns,
        w_mailbox: 1000,
        w_edge: 600,
        imap_pop: false,
    },
    RoleSpec {
        id: "dns-tcp",
        port: 53,
        udp: false,
        tmpl: Tmpl::DnsTcp,
        client: Side::Mailbox,
        server: Side::Dns,
        w_mailbox: 40,
        w_edge: 30,
        imap_pop: false,
    },
    RoleSpec {
        id: "edge-smtp-inbound",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Mx,
        server: Side::Edge,
        w_mailbox: 0,
        w_edge: 900,
        imap_pop: false,
    },
    RoleSpec {
        id: "edge-to-mailbox-smtp",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Edge,
        server: Side::Mailbox,
        w_mailbox: 0,
        w_edge: 300,
        imap_pop: false,
    },
    RoleSpec {
        id: "mailbox-to-edge-smtp",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Mailbox,
        server: Side::Edge,
        w_mailbox: 0,
        w_edge: 200,
        imap_pop: false,
    },
    RoleSpec {
        id: "edge-smtp-outbound",
        port: 25,
        udp: false,
        tmpl: Tmpl::Smtp,
        client: Side::Edge,
        server: Side::Mx,
        w_mailbox: 0,
        w_edge: 400,
        imap_pop: false,
    },
    RoleSpec {
        id: "edgesync",
        port: 50636,
        udp: false,
        tmpl: Tmpl::EdgeSync,
        client: Side::Mailbox,
        server: Side::Edge,
        w_mailbox: 0,
        w_edge: 30,
        imap_pop: false,
    },
    RoleSpec {
        id: "edge-dns-udp",
        port: 53,
        udp: true,
        tmpl: Tmpl::Dns,
        client: Side::Edge,
        server: Side::Dns,
        w_mailbox: 0,
        w_edge: 500,
        imap_pop: false,
    },
    RoleSpec {
        id: "edge-dns-tcp",
        port: 53,
        udp: false,
        tmpl: Tmpl::DnsTcp,
        client: Side::Edge,
        server: Side::Dns,
        w_mailbox: 0,
        w_edge: 20,
        imap_pop: false,
    },
];
const NROLES: usize = ROLES.len();

fn role_weight(r: &RoleSpec, cfg: &Config) -> u32 {
    if r.imap_pop && !cfg.imap_pop {
        return 0;
    }
    if cfg.edge {
        r.w_edge
    } else {
        r.w_mailbox
    }
}

fn role_index(id: &str) -> Option<usize> {
    ROLES.iter().position(|r| r.id == id)
}

/// The catalogue role a flood of Mailbox port `port` from the internet falls in.
fn flood_role(port: u16, edge: bool) -> Option<usize> {
    match port {
        443 => role_index("https-client"),
        80 => role_index("http-client"),
        587 => role_index("smtp-submission"),
        25 if !edge => role_index("smtp-inbound"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Ground truth

/// What one role's connections amount to, in the report's terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub established: u64,
    pub dropped: u64,
    pub refused: u64,
    pub rejected: u64,
    pub reset: u64,
    pub one_sided: u64,
    pub syn_retries: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.attempts += o.attempts;
        self.established += o.established;
        self.dropped += o.dropped;
        self.refused += o.refused;
        self.rejected += o.rejected;
        self.reset += o.reset;
        self.one_sided += o.one_sided;
        self.syn_retries += o.syn_retries;
    }

    fn sub(&mut self, o: &Counts) {
        self.attempts -= o.attempts;
        self.established -= o.established;
        self.dropped -= o.dropped;
        self.refused -= o.refused;
        self.rejected -= o.rejected;
        self.reset -= o.reset;
        self.one_sided -= o.one_sided;
        self.syn_retries -= o.syn_retries;
    }
}

/// One conversation of the normal traffic: a (role, peer host) pair is one (client, server,
/// port) conversation in exflow's terms.
#[derive(Clone, Copy, Debug, Default)]
struct Group {
    counts: Counts,
    lookalike: bool,
}

#[derive(Clone, Debug)]
pub struct ScanTruth {
    pub source: IpAddr,
    pub target: IpAddr,
    pub ports_probed: u64,
    pub open: Vec<u16>,
    pub closed: u64,
    pub filtered: u64,
}

/// The flood, and what a report that keeps flood SYNs out of the verdicts should show.
#[derive(Clone, Debug)]
pub struct FloodTruth {
    pub target: IpAddr,
    pub port: u16,
    pub role: &'static str,
    pub syns: u64,
    /// Distinct source addresses of the flood SYNs.
    pub distinct_sources: u64,
    /// Normal conversations with the flooded service that look exactly like flood sources:
    /// every connection a single SYN, never retransmitted, never answered by a SYN-ACK
    /// (dropped, refused or rejected). Their counts are not in `roles`.
    pub lookalike_sources: u64,
    pub lookalike: Counts,
    /// `distinct_sources + lookalike_sources` and `syns + lookalike.attempts`.
    pub sources: u64,
    pub attempts: u64,
}

/// Everything the generator did.
#[derive(Clone, Debug)]
pub struct Truth {
    pub seed: u64,
    pub profile: &'static str,
    pub packets: u64,
    pub normal_packets: u64,
    pub flood_syns: u64,
    pub scan_packets: u64,
    pub bytes: u64,
    pub connections: u64,
    pub first_ts: f64,
    pub last_ts: f64,
    /// Per catalogue role id, every role this site can generate (zeros included).
    pub roles: Vec<(&'static str, Counts)>,
    pub flood: Option<FloodTruth>,
    pub scan: Option<ScanTruth>,
}

impl Truth {
    pub fn role(&self, id: &str) -> Option<Counts> {
        self.roles.iter().find(|(r, _)| *r == id).map(|(_, c)| *c)
    }

    pub fn to_json(&self) -> String {
        let mut roles = serde_json::Map::new();
        for (id, c) in &self.roles {
            roles.insert((*id).to_string(), counts_json(c));
        }
        let flood = self.flood.as_ref().map(|f| {
            serde_json::json!({
                "target": f.target.to_string(), "port": f.port, "role": f.role,
                "syns": f.syns, "distinct_sources": f.distinct_sources,
                "lookalike_sources": f.lookalike_sources,
                "lookalike": counts_json(&f.lookalike),
                "sources": f.sources, "attempts": f.attempts,
            })
        });
        let scan = self.scan.as_ref().map(|s| {
            serde_json::json!({
                "source": s.source.to_string(), "target": s.target.to_string(),
                "ports_probed": s.ports_probed, "open": s.open,
                "closed": s.closed, "filtered": s.filtered,
            })
        });
        let v = serde_json::json!({
            "generator": "exflow examples/synth.rs",
            "seed": self.seed,
            "profile": self.profile,
            "packets": self.packets,
            "normal_packets": self.normal_packets,
            "flood_syns": self.flood_syns,
            "scan_packets": self.scan_packets,
            "bytes": self.bytes,
            "connections": self.connections,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "roles": roles,
            "flood": flood,
            "scan": scan,
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn counts_json(c: &Counts) -> serde_json::Value {
    serde_json::json!({
        "attempts": c.attempts,
        "established": c.established,
        "dropped": c.dropped,
        "refused": c.refused,
        "rejected": c.rejected,
        "reset": c.reset,
        "one_sided": c.one_sided,
        "syn_retries": c.syn_retries,
    })
}

/// The site file of the synthetic site ("Site file, version 1").
pub fn site_toml(cfg: &Config) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# The synthetic Exchange site of exflow's examples/synth.rs (seed {}).\n\
         # Documentation addresses only; everything not internal or perimeter is internet.\n",
        cfg.seed
    ));
    s.push_str(if cfg.edge {
        "profile = \"edge\"\n"
    } else {
        "profile = \"mailbox\"\n"
    });
    s.push_str("internal = [\"198.51.100.0/25\", \"2001:db8:200::/64\"]\n");
    if cfg.edge {
        s.push_str("perimeter = [\"198.51.100.192/26\"]\n");
    }
    s.push_str(
        "\n[[host]]\nrole = \"mailbox\"\naddresses = [\"198.51.100.10\", \"2001:db8:200::10\"]\n",
    );
    s.push_str("\n[[host]]\nrole = \"dns\"\naddresses = [\"198.51.100.53\"]\n");
    s.push_str("\n[[host]]\nrole = \"dns\"\naddresses = [\"198.51.100.54\"]\n");
    if cfg.edge {
        s.push_str("\n[[host]]\nrole = \"edge\"\naddresses = [\"198.51.100.200\"]\n");
    }
    if cfg.imap_pop {
        s.push_str("\n[services]\nimap4 = true\npop3 = true\n");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Connections: one small state machine each, stepped packet by packet.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Handshake, dialogue, FIN close.
    Ok,
    /// The first SYN is lost, the retransmission 1 s later is answered.
    Late,
    /// SYN and this many retransmissions, never answered.
    Dropped(u8),
    /// A RST answers the SYN: from a middlebox (true: its TTL) or the server.
    Refused(bool),
    /// ICMP administratively prohibited answers the SYN.
    Rejected,
    /// Reset mid-stream by a middlebox forging the server's (R) or client's (O) address.
    ResetR,
    ResetO,
    /// Only the client's (C) or the server's (S) packets are captured.
    OneSidedC,
    OneSidedS,
    DnsOk,
    DnsDropped,
    DnsUnreach,
    ProbeOpen,
    ProbeClosed,
    ProbeFiltered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Syn,
    SynAck,
    Ack3,
    Refuse,
    Icmp,
    Burst,
    Acks,
    Reset,
    Fin1,
    Fin2,
    FinAck,
    ProbeRst,
    Query,
    Answer,
    UdpIcmp,
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

/// A packet a connection sends; the writer turns it into bytes.
#[derive(Clone, Copy, Debug)]
enum Pkt {
    Tcp {
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
        ttl: u8,
        /// The bytes it carries: `off..off + len` of message `msg`, `msg_len` bytes long.
        msg: u16,
        msg_len: u32,
        off: u32,
    },
    Udp {
        from_client: bool,
    },
    /// ICMP administratively prohibited from the firewall, quoting the client's SYN.
    IcmpSyn,
    /// ICMP port unreachable from the DNS server, quoting the query.
    IcmpUdp,
}

#[derive(Clone, Copy, Debug)]
struct Conn {
    tmpl: Tmpl,
    fate: Fate,
    c: Addr,
    s: Addr,
    c_internet: bool,
    s_internet: bool,
    fw: Addr,
    cport: u16,
    sport: u16,
    vlan: u16,
    c_ttl: u8,
    s_ttl: u8,
    mb_ttl: u8,
    /// Round trips from the capture point to the client and to the server, and the spacing
    /// of back-to-back segments each sends.
    d_c: u64,
    d_s: u64,
    gap_c: u64,
    gap_s: u64,
    c_isn: u32,
    s_isn: u32,
    c_nxt: u32,
    s_nxt: u32,
    c_id: u16,
    s_id: u16,
    c_flow: u32,
    s_flow: u32,
    mss: u32,
    rng: Rng,
    phase: Phase,
    syn_sent: u8,
    msg_idx: u16,
    msgs: u16,
    from_client: bool,
    last_from_client: bool,
    msg_left: u32,
    /// The size of message `msg_idx`, and of the one before it.
    msg_len: u32,
    prev_len: u32,
    /// When the connection started (the dates its dialogue quotes).
    t0: u64,
    cwnd_c: u16,
    cwnd_s: u16,
    round_segs: u16,
    seg_i: u16,
    ack_i: u16,
    round_start: u32,
    round_bytes: u32,
    reset_msg: u16,
    close_by_client: bool,
    /// One-sided: a short dialogue with short pauses, so that it stays one connection.
    short: bool,
    dns_id: u16,
    dns_q: u8,
}

impl Conn {
    fn hidden(&self, from_client: bool) -> bool {
        match self.fate {
            Fate::OneSidedC => !from_client,
            Fate::OneSidedS => from_client,
            _ => false,
        }
    }

    fn server_first(&self) -> bool {
        matches!(self.tmpl, Tmpl::Smtp | Tmpl::Submission)
    }

    fn msg_is_client(&self, idx: u16) -> bool {
        (idx % 2 == 0) != self.server_first()
    }

    fn lat(&self, client: bool) -> u64 {
        if client {
            self.d_c
        } else {
            self.d_s
        }
    }

    fn tcp(&self, from_client: bool, flags: u8, seq: u32, ack: u32, len: u32) -> Pkt {
        Pkt::Tcp {
            from_client,
            flags,
            seq,
            ack,
            len,
            ttl: if from_client { self.c_ttl } else { self.s_ttl },
            msg: 0,
            msg_len: 0,
            off: 0,
        }
    }

    /// The size of message `msg_idx` and the pause before its sender starts it.
    fn message(&mut self) -> Option<(u32, u64)> {
        let i = self.msg_idx;
        if i >= self.msgs {
            return None;
        }
        let client = self.msg_is_client(i);
        let r = &mut self.rng;
        let tls = |r: &mut Rng, k: u16| -> (u64, u64) {
            match k {
                0 => (r.range(250, 600), r.range(50 * US, 500 * US)),
                1 => (r.range(2800, 5200), r.range(300 * US, 3 * MS)),
                2 => (r.range(93, 160), r.range(500 * US, 5 * MS)),
                _ => (r.range(51, 290), r.range(200 * US, 2 * MS)),
            }
        };
        let (bytes, delay) = match self.tmpl {
            Tmpl::Https | Tmpl::LongPoll | Tmpl::MailClient | Tmpl::EdgeSync if i < 4 => tls(r, i),
            Tmpl::Https | Tmpl::LongPoll => {
                if client {
                    let b = if r.chance(20) {
                        r.log_range(5_000, 100_000)
                    } else {
                        r.log_range(280, 2600)
                    };
                    (b, r.log_range(2 * MS, 1500 * MS))
                } else {
                    let b = if r.chance(10) {
                        r.log_range(100_000, 800_000)
                    } else {
                        r.log_range(150, 24_000)
                    };
                    let d = if self.tmpl == Tmpl::LongPoll {
                        r.range(5 * SEC, 45 * SEC)
                    } else {
                        r.log_range(MS, 150 * MS)
                    };
                    (b, d)
                }
            }
            Tmpl::MailClient => {
                if client {
                    (r.range(20, 120), r.log_range(5 * MS, 800 * MS))
                } else {
                    (r.log_range(40, 30_000), r.log_range(500 * US, 20 * MS))
                }
            }
            Tmpl::EdgeSync => {
                if client {
                    (r.range(150, 700), r.log_range(MS, 50 * MS))
                } else {
                    (r.log_range(300, 40_000), r.log_range(MS, 30 * MS))
                }
            }
            Tmpl::DnsTcp => {
                if client {
                    (r.range(30, 70), r.range(50 * US, 500 * US))
                } else {
                    (r.range(520, 3000), r.log_range(100 * US, 30 * MS))
                }
            }
            Tmpl::Http => {
                if client {
                    (r.range(320, 640), r.range(100 * US, 2 * MS))
                } else {
                    (r.range(180, 1400), r.log_range(500 * US, 15 * MS))
                }
            }
            Tmpl::Smtp | Tmpl::Submission => {
                let auth = if self.tmpl == Tmpl::Submission { 2 } else { 0 };
                let base = 11 + auth;
                match i {
                    0 => (r.range(70, 120), r.log_range(MS, 20 * MS)),
                    1 | 9 => (r.range(18, 45), r.range(100 * US, 2 * MS)),
                    2 | 10 => (r.range(150, 280), r.range(200 * US, 2 * MS)),
                    3 => (10, r.range(100 * US, MS)),
                    4 => (r.range(30, 35), r.range(200 * US, MS)),
                    5..=8 => tls(r, i - 5),
                    11 | 12 if auth > 0 => {
                        if i == 11 {
                            (r.range(30, 90), r.range(100 * US, MS))
                        } else {
                            (r.range(30, 40), r.log_range(2 * MS, 60 * MS))
                        }
                    }
                    _ if i + 2 >= self.msgs => {
                        if i + 2 == self.msgs {
                            (6, r.range(100 * US, MS))
                        } else {
                            (r.range(30, 45), r.range(200 * US, 2 * MS))
                        }
                    }
                    _ => match (i - base) % 4 {
                        0 => (r.range(80, 400), r.range(100 * US, 3 * MS)),
                        1 => (r.range(60, 140), r.log_range(MS, 30 * MS)),
                        2 => {
                            let b = if r.chance(10) {
                                r.log_range(400_000, 3_000_000)
                            } else {
                                r.log_range(1_200, 100_000)
                            };
                            (b, r.range(100 * US, MS))
                        }
                        _ => (r.range(60, 95), r.log_range(5 * MS, 200 * MS)),
                    },
                }
            }
            Tmpl::Dns | Tmpl::Probe => return None,
        };
        let delay = if self.short {
            delay.min(30 * MS)
        } else {
            delay
        };
        Some((bytes as u32, delay))
    }

    fn start_round(&mut self) {
        let segs = self.msg_left.div_ceil(self.mss).max(1);
        let cwnd = if self.from_client {
            &mut self.cwnd_c
        } else {
            &mut self.cwnd_s
        };
        let k = segs.min(u32::from(*cwnd)) as u16;
        *cwnd = (*cwnd * 2).min(64);
        self.round_segs = k;
        self.round_bytes = self.msg_left.min(u32::from(k) * self.mss);
        self.round_start = if self.from_client {
            self.c_nxt
        } else {
            self.s_nxt
        };
        self.seg_i = 0;
        self.ack_i = 0;
    }

    /// After the last packet of a message (or the handshake): the next message, or the close.
    fn next_message(&mut self, now: u64) -> u64 {
        if let Some((bytes, delay)) = self.message() {
            self.from_client = self.msg_is_client(self.msg_idx);
            self.msg_left = bytes;
            self.prev_len = self.msg_len;
            self.msg_len = bytes;
            self.start_round();
            self.phase = Phase::Burst;
            let lat = if self.from_client == self.last_from_client {
                0
            } else {
                self.lat(self.from_client)
            };
            now + lat + delay
        } else {
            self.phase = Phase::Fin1;
            let lat = if self.close_by_client == self.last_from_client {
                0
            } else {
                self.lat(self.close_by_client)
            };
            let pause = self
                .rng
                .range(100 * US, if self.short { MS } else { 50 * MS });
            now + lat + pause
        }
    }

    /// Sends the packet due now. Returns it (None when this side is not captured) and when
    /// the next one is due (None: the connection is over).
    fn step(&mut self, now: u64) -> (Option<Pkt>, Option<u64>) {
        let (pkt, next) = self.step_inner(now);
        let pkt = match pkt {
            Pkt::Tcp { from_client, .. } | Pkt::Udp { from_client } if self.hidden(from_client) => {
                None
            }
            p => Some(p),
        };
        (pkt, next)
    }

    fn step_inner(&mut self, now: u64) -> (Pkt, Option<u64>) {
        match self.phase {
            Phase::Syn => {
                self.syn_sent += 1;
                let p = self.tcp(true, SYN, self.c_isn, 0, 0);
                let next = match self.fate {
                    Fate::Dropped(r) => {
                        if self.syn_sent <= r {
                            Some(now + (SEC << (self.syn_sent - 1)))
                        } else {
                            None
                        }
                    }
                    Fate::Late if self.syn_sent == 1 => Some(now + SEC),
                    Fate::Refused(mb) => {
                        self.phase = Phase::Refuse;
                        Some(
                            now + if mb {
                                self.rng.range(20 * US, 200 * US)
                            } else {
                                self.d_s
                            },
                        )
                    }
                    Fate::ProbeClosed => {
                        self.phase = Phase::Refuse;
                        Some(now + self.d_s)
                    }
                    Fate::Rejected => {
                        self.phase = Phase::Icmp;
                        Some(now + self.rng.range(20 * US, 200 * US))
                    }
                    Fate::ProbeFiltered => None,
                    _ => {
                        self.phase = Phase::SynAck;
                        Some(now + self.d_s)
                    }
                };
                (p, next)
            }
            Phase::SynAck => {
                let p = self.tcp(false, SYN | ACK, self.s_isn, self.c_nxt, 0);
                self.phase = if self.fate == Fate::ProbeOpen {
                    Phase::ProbeRst
                } else {
                    Phase::Ack3
                };
                (p, Some(now + self.d_c))
            }
            Phase::ProbeRst => (self.tcp(true, RST, self.c_nxt, 0, 0), None),
            Phase::Ack3 => {
                let p = self.tcp(true, ACK, self.c_nxt, self.s_nxt, 0);
                self.last_from_client = true;
                let next = self.next_message(now);
                (p, Some(next))
            }
            Phase::Refuse => {
                let ttl = match self.fate {
                    Fate::Refused(true) => self.mb_ttl,
                    _ => self.s_ttl,
                };
                let p = Pkt::Tcp {
                    from_client: false,
                    flags: RST | ACK,
                    seq: 0,
                    ack: self.c_isn.wrapping_add(1),
                    len: 0,
                    ttl,
                    msg: 0,
                    msg_len: 0,
                    off: 0,
                };
                (p, None)
            }
            Phase::Icmp => (Pkt::IcmpSyn, None),
            Phase::Burst => {
                let fc = self.from_client;
                let len = self.msg_left.min(self.mss);
                let off = self.msg_len - self.msg_left;
                let (seq, ack) = if fc {
                    (self.c_nxt, self.s_nxt)
                } else {
                    (self.s_nxt, self.c_nxt)
                };
                if fc {
                    self.c_nxt = self.c_nxt.wrapping_add(len);
                } else {
                    self.s_nxt = self.s_nxt.wrapping_add(len);
                }
                self.msg_left -= len;
                self.seg_i += 1;
                let last = self.seg_i == self.round_segs;
                let flags = if self.msg_left == 0 || last {
                    ACK | PSH
                } else {
                    ACK
                };
                let mut p = self.tcp(fc, flags, seq, ack, len);
                if let Pkt::Tcp {
                    msg,
                    msg_len,
                    off: o,
                    ..
                } = &mut p
                {
                    (*msg, *msg_len, *o) = (self.msg_idx, self.msg_len, off);
                }
                self.last_from_client = fc;
                let next = if !last {
                    now + if fc { self.gap_c } else { self.gap_s }
                } else if matches!(self.fate, Fate::ResetR | Fate::ResetO)
                    && self.msg_idx == self.reset_msg
                {
                    self.phase = Phase::Reset;
                    now + self.rng.range(30 * US, 300 * US)
                } else {
                    self.phase = Phase::Acks;
                    now + self.lat(!fc)
                };
                (p, Some(next))
            }
            Phase::Acks => {
                let fc = !self.from_client;
                self.ack_i += 1;
                let acked = (u32::from(self.ack_i) * 2 * self.mss).min(self.round_bytes);
                let ack = self.round_start.wrapping_add(acked);
                let seq = if fc { self.c_nxt } else { self.s_nxt };
                let p = self.tcp(fc, ACK, seq, ack, 0);
                self.last_from_client = fc;
                let next = if self.ack_i < self.round_segs.div_ceil(2) {
                    now + 2 * if fc { self.gap_s } else { self.gap_c }
                } else if self.msg_left > 0 {
                    self.start_round();
                    self.phase = Phase::Burst;
                    now + self.lat(self.from_client)
                } else {
                    self.msg_idx += 1;
                    self.next_message(now)
                };
                (p, Some(next))
            }
            Phase::Reset => {
                let p = if self.fate == Fate::ResetR {
                    Pkt::Tcp {
                        from_client: false,
                        flags: RST | ACK,
                        seq: self.s_nxt,
                        ack: self.c_nxt,
                        len: 0,
                        ttl: self.mb_ttl,
                        msg: 0,
                        msg_len: 0,
                        off: 0,
                    }
                } else {
                    Pkt::Tcp {
                        from_client: true,
                        flags: RST | ACK,
                        seq: self.c_nxt,
                        ack: self.s_nxt,
                        len: 0,
                        ttl: self.mb_ttl,
                        msg: 0,
                        msg_len: 0,
                        off: 0,
                    }
                };
                (p, None)
            }
            Phase::Fin1 => {
                let fc = self.close_by_client;
                let p = if fc {
                    let p = self.tcp(true, FIN | ACK, self.c_nxt, self.s_nxt, 0);
                    self.c_nxt = self.c_nxt.wrapping_add(1);
                    p
                } else {
                    let p = self.tcp(false, FIN | ACK, self.s_nxt, self.c_nxt, 0);
                    self.s_nxt = self.s_nxt.wrapping_add(1);
                    p
                };
                self.phase = Phase::Fin2;
                (
                    p,
                    Some(now + self.lat(!fc) + self.rng.range(10 * US, 200 * US)),
                )
            }
            Phase::Fin2 => {
                let fc = !self.close_by_client;
                let p = if fc {
                    let p = self.tcp(true, FIN | ACK, self.c_nxt, self.s_nxt, 0);
                    self.c_nxt = self.c_nxt.wrapping_add(1);
                    p
                } else {
                    let p = self.tcp(false, FIN | ACK, self.s_nxt, self.c_nxt, 0);
                    self.s_nxt = self.s_nxt.wrapping_add(1);
                    p
                };
                self.phase = Phase::FinAck;
                (p, Some(now + self.lat(!fc)))
            }
            Phase::FinAck => {
                let fc = self.close_by_client;
                let (seq, ack) = if fc {
                    (self.c_nxt, self.s_nxt)
                } else {
                    (self.s_nxt, self.c_nxt)
                };
                (self.tcp(fc, ACK, seq, ack, 0), None)
            }
            Phase::Query => {
                let p = Pkt::Udp { from_client: true };
                let next = match self.fate {
                    Fate::DnsOk => {
                        self.phase = Phase::Answer;
                        Some(now + self.d_s + self.rng.log_range(50 * US, 40 * MS))
                    }
                    Fate::DnsUnreach => {
                        self.phase = Phase::UdpIcmp;
                        Some(now + self.d_s)
                    }
                    _ => None,
                };
                (p, next)
            }
            Phase::Answer => (Pkt::Udp { from_client: false }, None),
            Phase::UdpIcmp => (Pkt::IcmpUdp, None),
        }
    }

    /// Visible packets this connection will write, and when it starts.
    fn plan(&self, start: u64) -> u64 {
        let mut c = *self;
        let mut t = start;
        let mut n = 0;
        loop {
            let (p, next) = c.step(t);
            n += u64::from(p.is_some());
            match next {
                Some(x) => t = x,
                None => return n,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes: Ethernet, IPv4/IPv6, TCP/UDP/ICMP with checksums, into the pcap.

/// Draws of the generator spent on the capture's payload key: the block of random payload
/// bytes earlier versions took them for; kept so that a seed still gives the same connections.
const KEY_DRAWS: usize = (1 << 17) / 8;

/// The sum of `b`'s big-endian 16-bit words (an odd last byte as the high half), up to
/// multiples of 0xffff: `fold` makes the Internet checksum of it. Payloads are summed a
/// 32-bit word at a time (2^16 = 1 mod 0xffff).
fn sum16(b: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut quads = b.chunks_exact(4);
    for q in &mut quads {
        s += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
    }
    let mut ch = quads.remainder().chunks_exact(2);
    for w in &mut ch {
        s += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [x] = ch.remainder() {
        s += u64::from(*x) << 8;
    }
    s
}

fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

struct Pcap<W: Write> {
    out: W,
    nanos: bool,
    /// The frame being built; the 16-byte record header first.
    buf: Vec<u8>,
    /// The capture's payload key: every payload byte follows from it (see `payload`).
    key: u64,
    packets: u64,
    bytes: u64,
    first_ts: Option<u64>,
    last_ts: u64,
}

impl<W: Write> Pcap<W> {
    fn new(mut out: W, nanos: bool, rng: &mut Rng) -> io::Result<Pcap<W>> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        let mut key = 0;
        for _ in 0..KEY_DRAWS {
            key ^= rng.next_u64();
        }
        Ok(Pcap {
            out,
            nanos,
            buf: Vec::with_capacity(2048),
            key,
            packets: 0,
            bytes: 0,
            first_ts: None,
            last_ts: 0,
        })
    }

    /// Starts a frame: record header placeholder, Ethernet (and 802.1Q), the IP header.
    /// Returns the offset of the transport header in `buf`.
    #[allow(clippy::too_many_arguments)]
    fn ip(
        &mut self,
        src: &Addr,
        src_mac: [u8; 6],
        dst: &Addr,
        dst_mac: [u8; 6],
        vlan: u16,
        proto: u8,
        l4_len: usize,
        ttl: u8,
        ip_id: u16,
        flow: u32,
    ) -> usize {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&dst_mac);
        b.extend_from_slice(&src_mac);
        if vlan != 0 {
            b.extend_from_slice(&[0x81, 0x00]);
            b.extend_from_slice(&vlan.to_be_bytes());
        }
        if src.v6 {
            b.extend_from_slice(&[0x86, 0xdd]);
            let w = 0x6000_0000u32 | (flow & 0xfffff);
            b.extend_from_slice(&w.to_be_bytes());
            b.extend_from_slice(&(l4_len as u16).to_be_bytes());
            b.push(proto);
            b.push(ttl);
            b.extend_from_slice(&src.b);
            b.extend_from_slice(&dst.b);
        } else {
            b.extend_from_slice(&[0x08, 0x00]);
            let start = b.len();
            let total = (20 + l4_len) as u16;
            let df: u16 = if proto == 6 { 0x4000 } else { 0 };
            b.extend_from_slice(&[0x45, 0x00]);
            b.extend_from_slice(&total.to_be_bytes());
            b.extend_from_slice(&ip_id.to_be_bytes());
            b.extend_from_slice(&df.to_be_bytes());
            b.extend_from_slice(&[ttl, proto, 0, 0]);
            b.extend_from_slice(src.bytes());
            b.extend_from_slice(dst.bytes());
            let c = fold(sum16(&b[start..start + 20]));
            b[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
        }
        b.len()
    }

    fn pseudo(src: &Addr, dst: &Addr, proto: u8, len: usize) -> u64 {
        sum16(src.bytes()) + sum16(dst.bytes()) + u64::from(proto) + len as u64
    }

    /// Sets the transport checksum at `at` (offset in `buf`).
    fn l4_checksum(&mut self, l4: usize, at: usize, pseudo: u64, udp: bool) {
        let mut c = fold(pseudo + sum16(&self.buf[l4..]));
        if udp && c == 0 {
            c = 0xffff;
        }
        self.buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Writes the frame in `buf`, padded to Ethernet's 60-byte minimum.
    fn emit(&mut self, ts: u64) -> io::Result<()> {
        let frame = self.buf.len() - 16;
        let pad = 60usize.saturating_sub(frame);
        let caplen = (frame + pad) as u32;
        let secs = (ts / SEC) as u32;
        let frac = if self.nanos {
            (ts % SEC) as u32
        } else {
            ((ts % SEC) / US) as u32
        };
        self.buf[0..4].copy_from_slice(&secs.to_le_bytes());
        self.buf[4..8].copy_from_slice(&frac.to_le_bytes());
        self.buf[8..12].copy_from_slice(&caplen.to_le_bytes());
        self.buf[12..16].copy_from_slice(&caplen.to_le_bytes());
        self.buf.resize(self.buf.len() + pad, 0);
        self.out.write_all(&self.buf)?;
        self.packets += 1;
        self.bytes += u64::from(caplen) + 16;
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        Ok(())
    }

    /// A TCP segment carrying `payload`. `mss`: the SYN options (MSS, window scale, SACK
    /// permitted).
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        ts: u64,
        src: (&Addr, u16, bool),
        dst: (&Addr, u16, bool),
        vlan: u16,
        ttl: u8,
        ip_id: u16,
        flow: u32,
        flags: u8,
        seq: u32,
        ack: u32,
        window: u16,
        mss: Option<u16>,
        payload: &[u8],
    ) -> io::Result<()> {
        let hl = if mss.is_some() { 32 } else { 20 };
        let len = payload.len();
        let l4 = self.ip(
            src.0,
            mac_of(src.0, src.2),
            dst.0,
            mac_of(dst.0, dst.2),
            vlan,
            6,
            hl + len,
            ttl,
            ip_id,
            flow,
        );
        let b = &mut self.buf;
        b.extend_from_slice(&src.1.to_be_bytes());
        b.extend_from_slice(&dst.1.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ack.to_be_bytes());
        b.push(((hl / 4) as u8) << 4);
        b.push(flags);
        b.extend_from_slice(&window.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        if let Some(m) = mss {
            let m = m.to_be_bytes();
            b.extend_from_slice(&[2, 4, m[0], m[1], 1, 3, 3, 8, 1, 1, 4, 2]);
        }
        b.extend_from_slice(payload);
        let pseudo = Self::pseudo(src.0, dst.0, 6, hl + len);
        self.l4_checksum(l4, l4 + 16, pseudo, false);
        self.emit(ts)
    }
}

/// Names the DNS queries ask for (example domains only).
const DNS_NAMES: [&str; 8] = [
    "mx1.example.net",
    "mx2.example.net",
    "mail.example.org",
    "smtp.example.com",
    "autodiscover.example.com",
    "dc1.corp.example.com",
    "mail-in.example.org",
    "relay.example.net",
];

/// A DNS query (and with `answer`, its answer) into `out`.
fn dns_message(out: &mut Vec<u8>, id: u16, q: u8, answer: bool) {
    let name = DNS_NAMES[usize::from(q) % DNS_NAMES.len()];
    let qtype = dns_qtype(q);
    dns_question(out, id, answer, u16::from(answer), name, qtype);
    if answer {
        dns_answer_head(out, qtype);
        match qtype {
            1 => out.extend_from_slice(&[0, 4, 192, 0, 2, 10 + q % 200]),
            28 => dns_aaaa(out, u16::from(q)),
            _ => out.extend_from_slice(&[0, 8, 0, 10, 3, b'm', b'x', b'1', 0xc0, 0x0c]),
        }
    }
}

/// The query type of query number `q`: A, MX or AAAA.
fn dns_qtype(q: u8) -> u16 {
    match q / 8 % 3 {
        0 => 1,
        1 => 15,
        _ => 28,
    }
}

/// A DNS header (one question, `answers` answers) and its question for `name`.
fn dns_question(out: &mut Vec<u8>, id: u16, response: bool, answers: u16, name: &str, qtype: u16) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(if response {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
}

/// An answer's name (a pointer to the question's), type, class IN and TTL of an hour.
fn dns_answer_head(out: &mut Vec<u8>, qtype: u16) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
}

/// An AAAA record's data: 2001:db8:1::`n`.
fn dns_aaaa(out: &mut Vec<u8>, n: u16) {
    out.extend_from_slice(&[0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&n.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Payloads: what each message of a connection carries. A byte of a message is a function of
// (connection, message, offset) alone, so every segment of a message is built on its own and
// consistently, however the message is cut.

/// The largest TLS 1.3 record on the wire: 16384 bytes of plaintext, the inner content type
/// and a 16-byte AEAD tag, behind the 5-byte record header.
const TLS_RECORD: u32 = 5 + 16384 + 1 + 16;
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Which bytes of which message a segment carries.
#[derive(Clone, Copy, Debug)]
struct Segment {
    msg: u16,
    msg_len: u32,
    off: u32,
    len: u32,
}

/// The key of a connection's payload bytes.
fn conn_key(c: &Conn, capture: u64) -> u64 {
    mix64(capture ^ (u64::from(c.c_isn) << 32 | u64::from(c.s_isn)))
        ^ mix64(u64::from(c.cport) << 16 | u64::from(c.sport))
}

/// The bytes of `seg` of connection `c`, built into `out`: returns where they are in it.
/// `head` is scratch space for the structured start of the message.
fn payload(
    c: &Conn,
    capture: u64,
    seg: Segment,
    out: &mut Vec<u8>,
    head: &mut Vec<u8>,
) -> std::ops::Range<usize> {
    let k = conn_key(c, capture);
    let mk = mix64(k ^ (u64::from(seg.msg) + 1).wrapping_mul(GOLDEN));
    // Random bytes first (ciphertext, record contents), by 8-byte words of the message.
    let (off, len) = (seg.off, seg.len);
    let w0 = off / 8;
    let words = (off + len).div_ceil(8) - w0;
    out.clear();
    out.resize(words as usize * 8, 0);
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let x = mix64(mk.wrapping_add((u64::from(w0) + i as u64).wrapping_mul(GOLDEN)));
        w.copy_from_slice(&x.to_le_bytes());
    }
    let skip = (off % 8) as usize;
    let range = skip..skip + len as usize;
    let bytes = &mut out[range.clone()];
    // Then the protocol: the message's structured start, TLS record headers over the rest.
    head.clear();
    let tiled = layout(c, k, seg.msg, seg.msg_len, head);
    head.truncate(seg.msg_len as usize);
    let h = head.len() as u32;
    if off < h {
        let end = h.min(off + len);
        bytes[..(end - off) as usize].copy_from_slice(&head[off as usize..end as usize]);
    }
    if tiled {
        tls_records(bytes, off, h, seg.msg_len);
    }
    range
}

/// The structured start of message `msg` (`n` bytes) into `head`; true when TLS
/// application-data records fill the rest of it.
fn layout(c: &Conn, k: u64, msg: u16, n: u32, head: &mut Vec<u8>) -> bool {
    let tls_from = match c.tmpl {
        Tmpl::Https | Tmpl::LongPoll | Tmpl::MailClient | Tmpl::EdgeSync => 0,
        // Banner, EHLO, its answer, STARTTLS, 220; then TLS.
        Tmpl::Smtp | Tmpl::Submission => 5,
        Tmpl::Http => {
            http(c, k, msg, n as usize, head);
            return false;
        }
        Tmpl::DnsTcp => {
            dns_tcp(k, msg == 0, if msg == 0 { n } else { c.prev_len }, n, head);
            return false;
        }
        Tmpl::Dns | Tmpl::Probe => return false,
    };
    if msg < tls_from {
        smtp(c, k, msg, n as usize, head);
        return false;
    }
    match msg - tls_from {
        0 => {
            client_hello(c, k, n as usize, head);
            false
        }
        1 => {
            server_hello(k, head);
            true
        }
        _ => true,
    }
}

/// Headers of the TLS application-data records that tile message bytes `start..n`, over
/// `bytes` (message bytes `off..`): full-size records, the last one shorter; a remainder too
/// short for a record of its own (under 6 bytes) goes into the one before.
fn tls_records(bytes: &mut [u8], off: u32, start: u32, n: u32) {
    let total = n.saturating_sub(start);
    if total < 6 {
        return;
    }
    let (full, rem) = (total / TLS_RECORD, total % TLS_RECORD);
    let (count, last) = match rem {
        0 => (full, TLS_RECORD),
        1..6 => (full, TLS_RECORD + rem),
        _ => (full + 1, rem),
    };
    let end = off + bytes.len() as u32;
    let mut i = ((off.max(start) - start) / TLS_RECORD).min(count - 1);
    while i < count {
        let at = start + i * TLS_RECORD;
        if at >= end {
            break;
        }
        let size = if i + 1 == count { last } else { TLS_RECORD };
        let body = ((size - 5) as u16).to_be_bytes();
        for (j, b) in [23, 3, 3, body[0], body[1]].into_iter().enumerate() {
            let p = at + j as u32;
            if p >= off && p < end {
                bytes[(p - off) as usize] = b;
            }
        }
        i += 1;
    }
}

/// The name a host goes by in its dialogues (example domains only).
fn host_name(a: &Addr) -> String {
    let b = a.bytes();
    let last = b[b.len() - 1];
    if *a == MAILBOX4 || *a == Addr::v6(MAILBOX6) {
        "mail.example.com".into()
    } else if *a == EDGE4 {
        "edge.example.com".into()
    } else if !a.v6 && b[..3] == [192, 0, 2] {
        format!("mx{last}.example.net")
    } else if !a.v6 && b[..3] == [198, 51, 100] {
        format!("ws{last}.corp.example.com")
    } else {
        format!("pc{:02x}{last:02x}.example.org", b[b.len() - 2])
    }
}

fn push_random(out: &mut Vec<u8>, r: &mut Rng, n: usize) {
    for _ in 0..n {
        out.push(r.next_u64() as u8);
    }
}

fn push_hex(out: &mut Vec<u8>, r: &mut Rng, n: usize) {
    for _ in 0..n {
        out.push(b"0123456789ABCDEF"[r.below(16) as usize]);
    }
}

/// A domain name of exactly `len` characters: `label` (cut, or lengthened with hex digits)
/// under `suffix` or a shorter parent of it, else under RFC 2606's `.example`.
fn fqdn(label: &str, suffix: &str, len: usize, r: &mut Rng) -> String {
    let mut suffix = suffix;
    loop {
        if len == suffix.len() {
            return suffix.into();
        }
        if len >= suffix.len() + 2 {
            break;
        }
        match suffix.split_once('.') {
            Some((_, rest)) if rest.contains('.') => suffix = rest,
            _ => {
                suffix = "example";
                break;
            }
        }
    }
    let m = len.saturating_sub(suffix.len() + 1);
    let mut l: Vec<u8> = label.bytes().take(m).collect();
    let pad = m - l.len();
    push_hex(&mut l, r, pad);
    l.make_ascii_lowercase();
    let mut s = String::from_utf8_lossy(&l).into_owned();
    s.push('.');
    s.push_str(suffix);
    s.truncate(len);
    s
}

/// One text line of exactly `n` bytes, CRLF included (as far as `n` allows): the first of
/// `texts` that fits, padded with " [hex]" (like Exchange Online's banner id) or spaces; when
/// none fits, the last one cut.
fn fit_line(out: &mut Vec<u8>, texts: &[&str], n: usize, r: &mut Rng) {
    let room = n.saturating_sub(2);
    let t = texts
        .iter()
        .find(|t| t.len() <= room)
        .or(texts.last())
        .copied()
        .unwrap_or("");
    let start = out.len();
    let t = &t.as_bytes()[..t.len().min(room)];
    out.extend_from_slice(t);
    let slack = room - t.len();
    if slack >= 4 {
        out.extend_from_slice(b" [");
        push_hex(out, r, slack - 3);
        out.push(b']');
    } else {
        out.resize(out.len() + slack, b' ');
    }
    out.extend_from_slice(b"\r\n");
    out.truncate(start + n);
}

/// "Mon, 10 Mar 2025 09:00:00" of a capture time (UTC).
fn date_text(t: u64) -> String {
    let secs = t / SEC;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = exflow::time::civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The SMTP dialogue before TLS: banner, EHLO, its multi-line answer, STARTTLS, 220.
fn smtp(c: &Conn, k: u64, msg: u16, n: usize, out: &mut Vec<u8>) {
    let mut r = Rng(mix64(k ^ u64::from(msg) ^ 0x5319));
    let server = host_name(&c.s);
    match msg {
        0 => {
            let date = date_text(c.t0);
            let full = format!("220 {server} Microsoft ESMTP MAIL Service ready at {date} +0000");
            let short = format!("220 {server} Microsoft ESMTP MAIL Service ready");
            let shorter = format!("220 {server} ESMTP");
            fit_line(out, &[&full, &short, &shorter, "220 ESMTP"], n, &mut r);
        }
        1 => {
            let client = host_name(&c.c);
            let (label, suffix) = client.split_once('.').unwrap_or(("mail", "example.com"));
            let name = fqdn(label, suffix, n.saturating_sub(7), &mut r);
            fit_line(out, &[&format!("EHLO {name}")], n, &mut r);
        }
        2 => {
            let greet = format!("250-{server} Hello [{}]", c.c.ip());
            let last = "250 SMTPUTF8";
            let exts = [
                "SIZE 37748736",
                "PIPELINING",
                "DSN",
                "ENHANCEDSTATUSCODES",
                "STARTTLS",
                "X-ANONYMOUSTLS",
                "AUTH NTLM",
                "X-EXPS GSSAPI NTLM",
                "8BITMIME",
                "BINARYMIME",
                "CHUNKING",
                "XRDST",
            ];
            let mut total = greet.len() + 2 + last.len() + 2;
            if total > n {
                fit_line(out, &[last], n, &mut r);
                return;
            }
            let mut lines = vec![];
            for e in exts {
                if total + e.len() + 6 <= n {
                    total += e.len() + 6;
                    lines.push(e);
                }
            }
            fit_line(out, &[&greet], greet.len() + 2 + n - total, &mut r);
            for e in lines {
                out.extend_from_slice(b"250-");
                out.extend_from_slice(e.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(last.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        3 => fit_line(out, &["STARTTLS"], n, &mut r),
        _ => fit_line(out, &["220 2.0.0 Ready to start TLS"], n, &mut r),
    }
}

/// The TLS client's 32-byte legacy session id (the server's hello echoes it).
fn session_id(k: u64) -> [u8; 32] {
    let mut r = Rng(mix64(k ^ 0x5E55_101D));
    let mut id = [0u8; 32];
    for w in id.chunks_exact_mut(8) {
        w.copy_from_slice(&r.next_u64().to_le_bytes());
    }
    id
}

/// A TLS 1.3 ClientHello in one handshake record of exactly `n` bytes: a padding extension
/// takes up the slack; optional extensions are left out when `n` is short.
fn client_hello(c: &Conn, k: u64, n: usize, out: &mut Vec<u8>) {
    let mut r = Rng(mix64(k ^ 0xC11E_0001));
    let sni = match c.tmpl {
        Tmpl::Https => match k % 8 {
            0 | 1 => "autodiscover.example.com".to_string(),
            2 => "outlook.example.com".to_string(),
            _ => "mail.example.com".to_string(),
        },
        Tmpl::MailClient if matches!(c.sport, 143 | 993) => "imap.example.com".to_string(),
        Tmpl::MailClient => "pop.example.com".to_string(),
        Tmpl::LongPoll => "mail.example.com".to_string(),
        _ => host_name(&c.s),
    };
    let start = out.len();
    out.extend_from_slice(&[22, 3, 1, 0, 0, 1, 0, 0, 0, 3, 3]);
    push_random(out, &mut r, 32);
    out.push(32);
    out.extend_from_slice(&session_id(k));
    let suites: [u16; 13] = [
        0x1302, 0x1301, 0x1303, 0xc02c, 0xc02b, 0xc030, 0xc02f, 0xc024, 0xc023, 0xc028, 0xc027,
        0x009d, 0x009c,
    ];
    out.extend_from_slice(&((2 * suites.len()) as u16).to_be_bytes());
    for s in suites {
        out.extend_from_slice(&s.to_be_bytes());
    }
    out.extend_from_slice(&[1, 0]);
    let ext_at = out.len();
    out.extend_from_slice(&[0, 0]);
    // (type, body, always there)
    let mut sni_body = vec![];
    sni_body.extend_from_slice(&(sni.len() as u16 + 3).to_be_bytes());
    sni_body.push(0);
    sni_body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sni_body.extend_from_slice(sni.as_bytes());
    let mut alpn = vec![];
    let protocols: &[&str] = match c.tmpl {
        Tmpl::Https => &["h2", "http/1.1"],
        Tmpl::LongPoll => &["http/1.1"],
        _ => &[],
    };
    for p in protocols {
        alpn.push(p.len() as u8);
        alpn.extend_from_slice(p.as_bytes());
    }
    let alpn_len = (alpn.len() as u16).to_be_bytes();
    alpn.splice(0..0, alpn_len);
    let mut sigalgs = vec![0, 20];
    for s in [
        0x0804u16, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201,
    ] {
        sigalgs.extend_from_slice(&s.to_be_bytes());
    }
    let mut key_share = vec![0, 36, 0, 0x1d, 0, 32];
    push_random(&mut key_share, &mut r, 32);
    let exts: Vec<(u16, Vec<u8>, bool)> = vec![
        (0, sni_body, true),
        (23, vec![], false),
        (0xff01, vec![0], false),
        (10, vec![0, 6, 0, 0x1d, 0, 0x17, 0, 0x18], false),
        (11, vec![1, 0], false),
        (35, vec![], false),
        (16, alpn, !protocols.is_empty()),
        (5, vec![1, 0, 0, 0, 0], false),
        (13, sigalgs, false),
        (51, key_share, true),
        (45, vec![1, 1], false),
        (43, vec![4, 3, 4, 3, 3], true),
    ];
    let room = n.saturating_sub(4);
    let mut used = out.len() - start;
    for (_, body, must) in &exts {
        if *must {
            used += 4 + body.len();
        }
    }
    let mut keep = [false; 12];
    for (i, (ty, body, must)) in exts.iter().enumerate() {
        let empty_alpn = *ty == 16 && protocols.is_empty();
        keep[i] = *must || (!empty_alpn && used + 4 + body.len() <= room);
        if keep[i] && !*must {
            used += 4 + body.len();
        }
    }
    for (i, (ty, body, _)) in exts.iter().enumerate() {
        if keep[i] {
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
    }
    let pad = room.saturating_sub(out.len() - start);
    out.extend_from_slice(&21u16.to_be_bytes());
    out.extend_from_slice(&(pad as u16).to_be_bytes());
    out.resize(out.len() + pad, 0);
    let len = out.len() - start;
    out[start + 3..start + 5].copy_from_slice(&((len - 5) as u16).to_be_bytes());
    out[start + 6..start + 9].copy_from_slice(&((len - 9) as u32).to_be_bytes()[1..]);
    out[ext_at..ext_at + 2].copy_from_slice(&((len - (ext_at - start) - 2) as u16).to_be_bytes());
}

/// A TLS 1.3 ServerHello record and a ChangeCipherSpec record; the encrypted rest of the
/// server's flight follows as application data.
fn server_hello(k: u64, out: &mut Vec<u8>) {
    let mut r = Rng(mix64(k ^ 0x5E2F_0002));
    let start = out.len();
    out.extend_from_slice(&[22, 3, 3, 0, 0, 2, 0, 0, 0, 3, 3]);
    push_random(out, &mut r, 32);
    out.push(32);
    out.extend_from_slice(&session_id(k));
    out.extend_from_slice(if k & 0x100 == 0 {
        &[0x13, 0x02]
    } else {
        &[0x13, 0x01]
    });
    out.extend_from_slice(&[0, 0, 46, 0, 0x2b, 0, 2, 3, 4]);
    out.extend_from_slice(&[0, 0x33, 0, 36, 0, 0x1d, 0, 32]);
    push_random(out, &mut r, 32);
    let len = out.len() - start;
    out[start + 3..start + 5].copy_from_slice(&((len - 5) as u16).to_be_bytes());
    out[start + 6..start + 9].copy_from_slice(&((len - 9) as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
}

/// HTTP on port 80: a request, and IIS's redirect to HTTPS, each exactly `n` bytes.
fn http(c: &Conn, k: u64, msg: u16, n: usize, out: &mut Vec<u8>) {
    let mut r = Rng(mix64(k ^ u64::from(msg) ^ 0x4774));
    const PATHS: [(&str, &str); 6] = [
        ("/owa/", "mail.example.com"),
        ("/", "mail.example.com"),
        ("/owa", "mail.example.com"),
        ("/autodiscover/autodiscover.xml", "autodiscover.example.com"),
        ("/ecp/", "mail.example.com"),
        ("/Microsoft-Server-ActiveSync", "mail.example.com"),
    ];
    let (path, host) = PATHS[(k >> 8) as usize % PATHS.len()];
    let start = out.len();
    let line = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    if msg == 0 {
        let ua = if path.starts_with("/autodiscover") {
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
        } else {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0"
        };
        let first = [
            format!("GET {path} HTTP/1.1"),
            format!("Host: {host}"),
            format!("User-Agent: {ua}"),
        ];
        let optional = [
            "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language: en-US,en;q=0.5",
            "Accept-Encoding: gzip, deflate",
            "Connection: keep-alive",
            "Upgrade-Insecure-Requests: 1",
        ];
        // A cookie takes up the slack: its name, CRLF and at least one byte of value.
        const COOKIE: &str = "Cookie: ClientId=";
        let reserve = COOKIE.len() + 3;
        let mut total = first.iter().map(|l| l.len() + 2).sum::<usize>() + 2;
        let mut keep = [false; 5];
        for (i, o) in optional.iter().enumerate() {
            if total + o.len() + 2 + reserve <= n {
                total += o.len() + 2;
                keep[i] = true;
            }
        }
        let slack = n.saturating_sub(total);
        for l in &first {
            line(out, l);
        }
        if slack > 0 && slack < reserve {
            // Too little for a cookie: the User-Agent ends in spaces instead.
            out.truncate(out.len() - 2);
            out.resize(out.len() + slack, b' ');
            out.extend_from_slice(b"\r\n");
        }
        for (i, o) in optional.iter().enumerate() {
            if keep[i] {
                line(out, o);
            }
        }
        if slack >= reserve {
            out.extend_from_slice(COOKIE.as_bytes());
            push_hex(out, &mut r, slack - COOKIE.len() - 2);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    } else {
        let location = format!("https://{host}{path}");
        let body = format!(
            "<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This \
             document may be found <a HREF=\"{location}\">here</a></body>"
        );
        let first = [
            "HTTP/1.1 301 Moved Permanently".to_string(),
            format!("Location: {location}"),
        ];
        let date = format!("Date: {} GMT", date_text(c.t0));
        let optional = [
            "Content-Type: text/html; charset=UTF-8",
            "Server: Microsoft-IIS/10.0",
            "X-Powered-By: ASP.NET",
            &date,
        ];
        const LENGTH: &str = "Content-Length: ";
        // Headers without the length's digits.
        let mut total = first.iter().map(|l| l.len() + 2).sum::<usize>() + LENGTH.len() + 4;
        let mut keep = [false; 4];
        for (i, o) in optional.iter().enumerate() {
            if total + o.len() + 2 + 4 + body.len() <= n {
                total += o.len() + 2;
                keep[i] = true;
            }
        }
        // The body's length, as few digits as its value allows (leading zeros if need be).
        let mut digits = 1;
        while n.saturating_sub(total + digits).to_string().len() > digits {
            digits += 1;
        }
        let blen = n.saturating_sub(total + digits);
        line(out, &first[0]);
        for (i, o) in optional.iter().enumerate() {
            if keep[i] {
                line(out, o);
            }
        }
        line(out, &first[1]);
        line(out, &format!("{LENGTH}{blen:0digits$}"));
        out.extend_from_slice(b"\r\n");
        let b = &body.as_bytes()[..body.len().min(blen)];
        out.extend_from_slice(b);
        out.resize(out.len() + blen - b.len(), b' ');
    }
    out.truncate(start + n);
}

/// DNS over TCP: the 2-byte length, then a query or its (large) answer, EDNS0 padding
/// (RFC 7830) making it exactly `n` bytes. `qn`: the query's size, which its name is chosen
/// by (the answer repeats the question).
fn dns_tcp(k: u64, query: bool, qn: u32, n: u32, out: &mut Vec<u8>) {
    let mut r = Rng(mix64(k ^ 0xD45));
    let q = (k % 24) as u8;
    let qtype = dns_qtype(q);
    // A query is its header (12), question name, type and class (4), then padding that an
    // OPT record can take: none, an OPT record alone (11) or one with a padding option (15+).
    let natural = DNS_NAMES[usize::from(q) % DNS_NAMES.len()];
    let slack = (qn as usize).checked_sub(2 + 12 + 4 + natural.len() + 2);
    let name = match slack {
        Some(s) if s == 0 || s == 11 || s >= 15 => natural.to_string(),
        _ => {
            let text_len = (qn as usize).saturating_sub(2 + 12 + 4 + 2).max(1);
            let label = natural.split('.').next().unwrap_or("mx");
            fqdn(label, "example.net", text_len, &mut r)
        }
    };
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    // The answer count is set below, once the answers that fit are written.
    dns_question(out, (k >> 16) as u16, !query, 0, &name, qtype);
    let mut answers = 0u16;
    if !query {
        let rr = match qtype {
            1 => 16,
            28 => 28,
            _ => 32,
        };
        let avail = (n as usize).saturating_sub(out.len() - start);
        let count = avail.saturating_sub(15) / rr;
        for i in 0..count {
            let i8 = (i % 240) as u8;
            dns_answer_head(out, qtype);
            match qtype {
                1 => out.extend_from_slice(&[0, 4, 192, 0, 2, 10 + i8]),
                28 => dns_aaaa(out, i as u16),
                _ => {
                    out.extend_from_slice(&[0, 20, 0, 10 + i8 % 90]);
                    let mx = format!("mx{:02}", i % 100);
                    out.push(4);
                    out.extend_from_slice(mx.as_bytes());
                    out.extend_from_slice(b"\x07example\x03net\x00");
                }
            }
        }
        answers = count as u16;
    }
    let slack = (n as usize).saturating_sub(out.len() - start);
    if slack >= 11 {
        out.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        if slack >= 15 {
            let pad = slack - 15;
            out.extend_from_slice(&((pad + 4) as u16).to_be_bytes());
            out.extend_from_slice(&[0, 12]);
            out.extend_from_slice(&(pad as u16).to_be_bytes());
            out.resize(out.len() + pad, 0);
        } else {
            out.extend_from_slice(&[0, 0]);
        }
        out[start + 13] = 1;
    }
    out[start + 8..start + 10].copy_from_slice(&answers.to_be_bytes());
    let len = (out.len() - start - 2) as u16;
    out[start..start + 2].copy_from_slice(&len.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// The generator

/// Source ports of one (role, peer) pair: a cursor through 49152-65535 and a token bucket,
/// so that no 5-tuple comes back while exflow could still hold its previous connection.
#[derive(Clone, Copy, Debug, Default)]
struct Ports {
    init: bool,
    cursor: u16,
    tokens: f64,
    t: u64,
}

const EPHEMERAL: u16 = 16384;

struct Gen<W: Write> {
    cfg: Config,
    rng: Rng,
    hosts: Hosts,
    ports: Vec<Ports>,
    weights: Vec<(usize, u32)>,
    weight_total: u32,
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Conn>,
    free: Vec<u32>,
    order: u64,
    pcap: Pcap<W>,
    counts: [Counts; NROLES],
    /// Per (role, peer host): the conversation's counts and whether it looks like a flood's.
    groups: Vec<Group>,
    conns: u64,
    dns_buf: Vec<u8>,
    scratch: Vec<u8>,
    /// A segment's payload, and the structured start of its message (`payload`).
    seg_buf: Vec<u8>,
    head_buf: Vec<u8>,
}

/// Generates the capture into `out` and returns its ground truth.
pub fn generate<W: Write>(cfg: &Config, out: W) -> io::Result<Truth> {
    let mut rng = Rng::new(cfg.seed);
    let hosts = Hosts::new(&mut rng);
    let pcap = Pcap::new(out, cfg.nanos, &mut rng)?;
    let weights: Vec<(usize, u32)> = ROLES
        .iter()
        .enumerate()
        .map(|(i, r)| (i, role_weight(r, cfg)))
        .filter(|&(_, w)| w > 0)
        .collect();
    let weight_total = weights.iter().map(|w| w.1).sum();
    let flood_role_i = if cfg.flood > 0 {
        Some(flood_role(cfg.flood_port, cfg.edge).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--flood-port {} is not a Mailbox client port of this profile (443, 80, 587{})",
                    cfg.flood_port,
                    if cfg.edge { "" } else { ", 25" }
                ),
            )
        })?)
    } else {
        None
    };
    if cfg.pps <= 0.0 || cfg.flood_pps <= 0.0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--pps and --flood-pps must be positive",
        ));
    }
    let nports = NROLES * hosts.all.len();
    let g = Gen {
        cfg: cfg.clone(),
        rng,
        hosts,
        ports: vec![Ports::default(); nports],
        weights,
        weight_total,
        heap: BinaryHeap::with_capacity(4096),
        slab: Vec::with_capacity(4096),
        free: Vec::with_capacity(4096),
        order: 0,
        pcap,
        counts: [Counts::default(); NROLES],
        groups: vec![Group::default(); nports],
        conns: 0,
        dns_buf: Vec::with_capacity(512),
        scratch: Vec::with_capacity(1024),
        seg_buf: Vec::with_capacity(2048),
        head_buf: Vec::with_capacity(8192),
    };
    g.run(flood_role_i)
}

impl<W: Write> Gen<W> {
    fn run(mut self, flood_role_i: Option<usize>) -> io::Result<Truth> {
        let cfg = self.cfg.clone();
        let normal_span = (cfg.packets as f64 / cfg.pps * SEC as f64) as u64;
        // The normal traffic.
        let mut planned = 0u64;
        let mut next_spawn = EPOCH_NS;
        // The flood: evenly spaced SYNs, starting a fifth into the normal traffic.
        let flood_start = EPOCH_NS + normal_span / 5 + SEC / 10;
        let flood_gap = (SEC as f64 / cfg.flood_pps).max(1.0) as u64;
        let mut flood_i = 0u64;
        let flood_target = if cfg.flood_v6 {
            Addr::v6(MAILBOX6)
        } else {
            MAILBOX4
        };
        // The scan: a probe every 400 us, a third into the normal traffic (or the flood).
        let mut scan_ports: Vec<u16> = if cfg.scan {
            (1..=1024).collect()
        } else {
            vec![]
        };
        for i in (1..scan_ports.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            scan_ports.swap(i, j);
        }
        let mut scan_i = 0usize;
        let mut scan_next = EPOCH_NS + normal_span / 3 + SEC / 2;
        let open_ports = self.open_ports();
        let mut scan_truth = ScanTruth {
            source: self.hosts.all[self.hosts.scanner as usize].addr.ip(),
            target: MAILBOX4.ip(),
            ports_probed: scan_ports.len() as u64,
            open: vec![],
            closed: 0,
            filtered: 0,
        };
        let mut scan_packets = 0u64;
        let mut normal_written = 0u64;
        loop {
            let t_heap = self.heap.peek().map(|Reverse((t, _, _))| *t);
            let t_spawn = (planned < cfg.packets).then_some(next_spawn);
            let t_flood = (flood_i < cfg.flood).then(|| flood_start + flood_i * flood_gap);
            let t_scan = (scan_i < scan_ports.len()).then_some(scan_next);
            let Some(t) = [t_spawn, t_scan, t_flood, t_heap]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            if Some(t) == t_spawn {
                let (n, mean_gap) = self.spawn(t, cfg.packets - planned)?;
                planned += n;
                // Exponential gaps whose mean keeps the average at --pps.
                let u = self.rng.unit().max(1e-12);
                next_spawn = t + ((-u.ln()) * mean_gap) as u64 + 1;
            } else if Some(t) == t_scan {
                let port = scan_ports[scan_i];
                scan_i += 1;
                scan_next = t + 400 * US;
                let fate = if open_ports.contains(&port) {
                    scan_truth.open.push(port);
                    Fate::ProbeOpen
                } else if self.rng.chance(300) {
                    scan_truth.closed += 1;
                    Fate::ProbeClosed
                } else {
                    scan_truth.filtered += 1;
                    Fate::ProbeFiltered
                };
                let c = self.probe(port, fate);
                self.push(t, c);
            } else if Some(t) == t_flood {
                self.flood_syn(t, flood_i, &flood_target)?;
                flood_i += 1;
            } else if let Some(Reverse((t, _, slot))) = self.heap.pop() {
                let (pkt, next) = self.slab[slot as usize].step(t);
                if let Some(p) = pkt {
                    self.write(t, slot, p)?;
                    if self.slab[slot as usize].tmpl == Tmpl::Probe {
                        scan_packets += 1;
                    } else {
                        normal_written += 1;
                    }
                }
                match next {
                    Some(n) => {
                        self.order += 1;
                        self.heap.push(Reverse((n.max(t), self.order, slot)));
                    }
                    None => self.free.push(slot),
                }
            }
        }
        self.pcap.out.flush()?;
        debug_assert_eq!(normal_written, cfg.packets);
        // The flood is kept out of the role's counts, and so are the normal conversations
        // with the flooded service that cannot be told from flood sources.
        let mut lookalike = Counts::default();
        let mut lookalike_sources = 0;
        if let Some(ri) = flood_role_i {
            let n = self.hosts.all.len();
            for (peer, h) in self.hosts.all.iter().enumerate() {
                let g = self.groups[ri * n + peer];
                if g.lookalike && h.addr.v6 == cfg.flood_v6 {
                    lookalike.add(&g.counts);
                    lookalike_sources += 1;
                }
            }
            self.counts[ri].sub(&lookalike);
        }
        scan_truth.open.sort_unstable();
        let mut roles = vec![];
        for (i, r) in ROLES.iter().enumerate() {
            if role_weight(r, &cfg) > 0 || flood_role_i == Some(i) {
                roles.push((r.id, self.counts[i]));
            }
        }
        let flood_sources = if cfg.flood_v6 {
            cfg.flood
        } else {
            cfg.flood.min(1 << 17)
        };
        let flood = (cfg.flood > 0).then(|| FloodTruth {
            target: flood_target.ip(),
            port: cfg.flood_port,
            role: flood_role_i.map_or("", |i| ROLES[i].id),
            syns: cfg.flood,
            distinct_sources: flood_sources,
            lookalike_sources,
            lookalike,
            sources: flood_sources + lookalike_sources,
            attempts: cfg.flood + lookalike.attempts,
        });
        let ts = |t: u64| t as f64 / SEC as f64;
        Ok(Truth {
            seed: cfg.seed,
            profile: if cfg.edge { "edge" } else { "mailbox" },
            packets: self.pcap.packets,
            normal_packets: normal_written,
            flood_syns: cfg.flood,
            scan_packets,
            bytes: self.pcap.bytes + 24,
            connections: self.conns,
            first_ts: ts(self.pcap.first_ts.unwrap_or(EPOCH_NS)),
            last_ts: ts(self.pcap.last_ts),
            roles,
            flood,
            scan: cfg.scan.then_some(scan_truth),
        })
    }

    fn open_ports(&self) -> Vec<u16> {
        let mut v = vec![80, 443, 587];
        if !self.cfg.edge {
            v.push(25);
        }
        if self.cfg.imap_pop {
            v.extend_from_slice(&[110, 143, 993, 995]);
        }
        v
    }

    fn push(&mut self, t: u64, c: Conn) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = c;
                s
            }
            None => {
                self.slab.push(c);
                (self.slab.len() - 1) as u32
            }
        };
        self.order += 1;
        self.heap.push(Reverse((t, self.order, slot)));
    }

    /// Starts one connection of the normal traffic at `t`, no larger than `room` packets.
    /// Returns its packet count and the mean gap to the next start.
    fn spawn(&mut self, t: u64, room: u64) -> io::Result<(u64, f64)> {
        let dns = role_index("dns-udp").unwrap_or(0);
        for attempt in 0..40 {
            // The tail: when random connections no longer fit, small ones fill the count
            // exactly (a DNS exchange of two packets; a lone refused or dropped attempt only
            // if nothing else fits).
            let (role, fate) = match attempt {
                0..32 => (self.pick_role(), None),
                32..36 => (dns, Some(Fate::DnsOk)),
                _ if room >= 2 => (0, Some(Fate::Refused(false))),
                _ => (0, Some(Fate::Dropped(0))),
            };
            let Some((c, peer)) = self.connection(t, role, fate) else {
                continue;
            };
            let n = c.plan(t);
            // Near the end, leave an even count (DNS exchanges fill it) unless there is no
            // other way.
            let left = room.saturating_sub(n);
            if n == 0 || n > room || (left % 2 == 1 && left < 64 && attempt < 36) {
                continue;
            }
            self.account(role, peer, &c);
            self.push(t, c);
            return Ok((n, n as f64 / self.cfg.pps * SEC as f64));
        }
        // Nothing fits now (source ports of the pairs exhausted): try again a little later.
        Ok((0, MS as f64))
    }

    fn pick_role(&mut self) -> usize {
        let mut x = self.rng.below(u64::from(self.weight_total)) as u32;
        for &(i, w) in &self.weights {
            if x < w {
                return i;
            }
            x -= w;
        }
        0
    }

    fn account(&mut self, role: usize, peer: u32, c: &Conn) {
        self.conns += 1;
        let mut d = Counts {
            attempts: 1,
            ..Counts::default()
        };
        let k = &mut d;
        match c.fate {
            Fate::Ok | Fate::DnsOk => k.established += 1,
            Fate::Late => {
                k.established += 1;
                k.syn_retries += 1;
            }
            Fate::Dropped(r) => {
                k.dropped += 1;
                k.syn_retries += u64::from(r);
            }
            Fate::DnsDropped => k.dropped += 1,
            Fate::Refused(_) => k.refused += 1,
            Fate::Rejected | Fate::DnsUnreach => k.rejected += 1,
            Fate::ResetR | Fate::ResetO => {
                k.established += 1;
                k.reset += 1;
            }
            Fate::OneSidedC | Fate::OneSidedS => k.one_sided += 1,
            Fate::ProbeOpen | Fate::ProbeClosed | Fate::ProbeFiltered => {}
        }
        self.counts[role].add(&d);
        // Conversations (client, server, port) made only of single SYNs that were never
        // retransmitted nor answered at all look exactly like a flood's (a RST or an ICMP
        // error is an answer: exflow never counts those as flood).
        let single_syn = matches!(c.fate, Fate::Dropped(0));
        let g = &mut self.groups[role * self.hosts.all.len() + peer as usize];
        g.lookalike = (g.counts.attempts == 0 || g.lookalike) && single_syn && !ROLES[role].udp;
        g.counts.add(&d);
    }

    /// A host for one side of a role; (host index, port-pair key host) .
    fn pick_host(&mut self, side: Side, v6: bool) -> u32 {
        let h = &self.hosts;
        let pick = |rng: &mut Rng, p: Pool| p.start + rng.below(u64::from(p.len)) as u32;
        match side {
            Side::Clients(inet) => {
                let internet = self.rng.chance(inet);
                let pool = match (internet, v6) {
                    (true, false) => h.inet4,
                    (true, true) => h.inet6,
                    (false, false) => h.int4,
                    (false, true) => h.int6,
                };
                pick(&mut self.rng, pool)
            }
            Side::Mx => pick(&mut self.rng, h.mx),
            Side::Dns => pick(&mut self.rng, h.dns),
            Side::Mailbox => {
                if v6 {
                    h.mailbox6
                } else {
                    h.mailbox4
                }
            }
            Side::Edge => h.edge,
        }
    }

    /// A source port for (role, peer), or None while that pair would reuse a 5-tuple too soon.
    fn source_port(&mut self, role: usize, peer: u32, udp: bool, now: u64) -> Option<u16> {
        // Any window of S seconds holds at most burst + rate * S < 16384 allocations, so a port
        // comes back only after S seconds: longer than any connection plus exflow's timeouts.
        let (burst, rate) = if udp { (4000.0, 100.0) } else { (2000.0, 15.0) };
        let i = role * self.hosts.all.len() + peer as usize;
        let first = self.rng.below(u64::from(EPHEMERAL)) as u16;
        let p = &mut self.ports[i];
        if !p.init {
            *p = Ports {
                init: true,
                cursor: first,
                tokens: burst,
                t: now,
            };
        }
        let dt = now.saturating_sub(p.t) as f64 / SEC as f64;
        p.tokens = (p.tokens + dt * rate).min(burst);
        p.t = now;
        if p.tokens < 1.0 {
            return None;
        }
        p.tokens -= 1.0;
        let port = 49152 + p.cursor;
        p.cursor = (p.cursor + 1) % EPHEMERAL;
        Some(port)
    }

    fn fate(&mut self, role: usize) -> Fate {
        let r = &ROLES[role];
        if self.cfg.healthy {
            return if r.udp { Fate::DnsOk } else { Fate::Ok };
        }
        let x = self.rng.below(1000) as u32;
        if r.udp {
            return match x {
                0..40 => Fate::DnsDropped,
                40..50 => Fate::DnsUnreach,
                _ => Fate::DnsOk,
            };
        }
        // A troubled site: per mille of connections, with a few role-specific problems.
        let (dropped, refused) = match r.id {
            "smtp-outbound" | "edge-smtp-outbound" => (60, 20),
            "http-client" => (25, 60),
            _ => (25, 20),
        };
        let edges = [
            (dropped, Fate::Dropped(0)),
            (20, Fate::Late),
            (refused, Fate::Refused(false)),
            (12, Fate::Rejected),
            (15, Fate::ResetR),
            (5, Fate::ResetO),
            (8, Fate::OneSidedC),
            (7, Fate::OneSidedS),
        ];
        let mut acc = 0;
        for (share, fate) in edges {
            acc += share;
            if x < acc {
                return match fate {
                    // Real clients retransmit (1 to 5 times here, Linux's backoff); only the
                    // one-packet filler at the very end of a capture sends a lone SYN.
                    Fate::Dropped(_) => Fate::Dropped(self.rng.range(1, 5) as u8),
                    Fate::Refused(_) => Fate::Refused(self.rng.chance(500)),
                    f => f,
                };
            }
        }
        Fate::Ok
    }

    /// A new connection of `role` starting at `t`, or None if no source port is free.
    fn connection(&mut self, t: u64, role: usize, fate: Option<Fate>) -> Option<(Conn, u32)> {
        let spec = &ROLES[role];
        let v6 = matches!(spec.client, Side::Clients(_)) && self.rng.chance(150);
        let ci = self.pick_host(spec.client, v6);
        let si = self.pick_host(spec.server, v6);
        let peer = if matches!(spec.client, Side::Mailbox | Side::Edge) {
            si
        } else {
            ci
        };
        let cport = self.source_port(role, peer, spec.udp, t)?;
        let fate = fate.unwrap_or_else(|| self.fate(role));
        let tmpl = if spec.tmpl == Tmpl::Https && self.rng.chance(100) {
            Tmpl::LongPoll
        } else {
            spec.tmpl
        };
        let (ch, sh) = (self.hosts.all[ci as usize], self.hosts.all[si as usize]);
        let mut rng = self.rng.fork();
        let mut c = self.base_conn(&mut rng, tmpl, fate, ch, sh, cport, spec.port);
        let short = matches!(fate, Fate::OneSidedC | Fate::OneSidedS);
        let msgs = match tmpl {
            Tmpl::Https => 4 + 2 * rng.log_range(1, 10),
            Tmpl::LongPoll => 4 + 2 * rng.range(2, 5),
            Tmpl::Http | Tmpl::DnsTcp => 2,
            Tmpl::MailClient => 4 + 2 * rng.range(2, 12),
            Tmpl::EdgeSync => 4 + 2 * rng.range(1, 6),
            Tmpl::Smtp => {
                let relay = matches!(spec.client, Side::Mailbox | Side::Edge)
                    && matches!(spec.server, Side::Mailbox | Side::Edge);
                13 + 4 * rng.range(1, if relay { 4 } else { 2 })
            }
            Tmpl::Submission => 15 + 4 * rng.range(1, 2),
            Tmpl::Dns | Tmpl::Probe => 0,
        } as u16;
        c.msgs = if short { msgs.min(4) } else { msgs };
        c.t0 = t;
        c.short = short;
        c.reset_msg = rng.below(u64::from(c.msgs.max(1))) as u16;
        c.close_by_client = match tmpl {
            Tmpl::Http | Tmpl::Smtp | Tmpl::Submission => false,
            Tmpl::Https | Tmpl::LongPoll => !rng.chance(200),
            _ => true,
        };
        if spec.udp {
            c.phase = Phase::Query;
            c.dns_id = rng.next_u64() as u16;
            c.dns_q = rng.below(24) as u8;
        }
        c.rng = rng;
        Some((c, peer))
    }

    #[allow(clippy::too_many_arguments)]
    fn base_conn(
        &self,
        rng: &mut Rng,
        tmpl: Tmpl,
        fate: Fate,
        ch: Host,
        sh: Host,
        cport: u16,
        sport: u16,
    ) -> Conn {
        let (d_c, gap_c) = if ch.internet {
            (
                rng.log_range(8 * MS, 180 * MS),
                rng.range(60 * US, 150 * US),
            )
        } else {
            (rng.range(100 * US, 1200 * US), rng.range(12 * US, 20 * US))
        };
        let (d_s, gap_s) = if sh.internet {
            (
                rng.log_range(8 * MS, 180 * MS),
                rng.range(60 * US, 150 * US),
            )
        } else {
            (rng.range(80 * US, 800 * US), rng.range(12 * US, 20 * US))
        };
        let mb_ttl = if ch.ttl == 64 || sh.ttl == 64 {
            255
        } else {
            64
        };
        let c_isn = rng.next_u64() as u32;
        let s_isn = rng.next_u64() as u32;
        let fw = match (ch.addr.v6, ch.internet) {
            (false, true) => Addr::v4(FW_OUT4[0], FW_OUT4[1], FW_OUT4[2], FW_OUT4[3]),
            (false, false) => Addr::v4(FW_IN4[0], FW_IN4[1], FW_IN4[2], FW_IN4[3]),
            (true, true) => Addr::v6(FW_OUT6),
            (true, false) => Addr::v6(FW_IN6),
        };
        let vlan = if rng.chance(250) {
            if ch.internet {
                200
            } else {
                100
            }
        } else {
            0
        };
        Conn {
            tmpl,
            fate,
            c: ch.addr,
            s: sh.addr,
            c_internet: ch.internet,
            s_internet: sh.internet,
            fw,
            cport,
            sport,
            vlan,
            c_ttl: ch.ttl,
            s_ttl: sh.ttl,
            mb_ttl,
            d_c,
            d_s,
            gap_c,
            gap_s,
            c_isn,
            s_isn,
            c_nxt: c_isn.wrapping_add(1),
            s_nxt: s_isn.wrapping_add(1),
            c_id: rng.next_u64() as u16,
            s_id: rng.next_u64() as u16,
            c_flow: rng.next_u64() as u32 & 0xfffff,
            s_flow: rng.next_u64() as u32 & 0xfffff,
            mss: if ch.addr.v6 { 1440 } else { 1460 },
            rng: Rng(0),
            phase: Phase::Syn,
            syn_sent: 0,
            msg_idx: 0,
            msgs: 0,
            from_client: true,
            last_from_client: true,
            msg_left: 0,
            msg_len: 0,
            prev_len: 0,
            t0: 0,
            cwnd_c: 10,
            cwnd_s: 10,
            round_segs: 0,
            seg_i: 0,
            ack_i: 0,
            round_start: 0,
            round_bytes: 0,
            reset_msg: 0,
            close_by_client: true,
            short: false,
            dns_id: 0,
            dns_q: 0,
        }
    }

    /// One probe of the scan.
    fn probe(&mut self, port: u16, fate: Fate) -> Conn {
        let ch = self.hosts.all[self.hosts.scanner as usize];
        let sh = self.hosts.all[self.hosts.mailbox4 as usize];
        let mut rng = self.rng.fork();
        let mut c = self.base_conn(&mut rng, Tmpl::Probe, fate, ch, sh, 61_234, port);
        c.vlan = 0;
        c.d_c = 50 * US;
        c.rng = rng;
        c
    }

    fn write(&mut self, t: u64, slot: u32, p: Pkt) -> io::Result<()> {
        let c = &mut self.slab[slot as usize];
        match p {
            Pkt::Tcp {
                from_client,
                flags,
                seq,
                ack,
                len,
                ttl,
                msg,
                msg_len,
                off,
            } => {
                let bytes = if len > 0 {
                    let seg = Segment {
                        msg,
                        msg_len,
                        off,
                        len,
                    };
                    payload(c, self.pcap.key, seg, &mut self.seg_buf, &mut self.head_buf)
                } else {
                    0..0
                };
                let (src, dst, id, flow) = if from_client {
                    c.c_id = c.c_id.wrapping_add(1);
                    (
                        (&c.c, c.cport, c.c_internet),
                        (&c.s, c.sport, c.s_internet),
                        c.c_id,
                        c.c_flow,
                    )
                } else {
                    c.s_id = c.s_id.wrapping_add(1);
                    (
                        (&c.s, c.sport, c.s_internet),
                        (&c.c, c.cport, c.c_internet),
                        c.s_id,
                        c.s_flow,
                    )
                };
                let syn = flags & SYN != 0;
                let window: u16 = if syn {
                    if from_client {
                        64240
                    } else {
                        65535
                    }
                } else if flags & RST != 0 {
                    0
                } else {
                    1026
                };
                let mss = syn.then_some(c.mss as u16);
                // A forged packet is not the endpoint's: its own IP ID counter.
                let id = if ttl == c.mb_ttl && ttl != c.c_ttl && ttl != c.s_ttl {
                    (seq >> 16) as u16 ^ 0x5a5a
                } else {
                    id
                };
                self.pcap.tcp(
                    t,
                    src,
                    dst,
                    c.vlan,
                    ttl,
                    id,
                    flow,
                    flags,
                    seq,
                    ack,
                    window,
                    mss,
                    &self.seg_buf[bytes],
                )
            }
            Pkt::Udp { from_client } => {
                let mut msg = std::mem::take(&mut self.dns_buf);
                msg.clear();
                let c = self.slab[slot as usize];
                dns_message(&mut msg, c.dns_id, c.dns_q, !from_client);
                let r = self.udp(t, &c, from_client, &msg);
                self.dns_buf = msg;
                r
            }
            Pkt::IcmpSyn => {
                let c = self.slab[slot as usize];
                self.icmp_syn(t, &c)
            }
            Pkt::IcmpUdp => {
                let c = self.slab[slot as usize];
                let mut msg = std::mem::take(&mut self.dns_buf);
                msg.clear();
                dns_message(&mut msg, c.dns_id, c.dns_q, false);
                let r = self.icmp_udp(t, &c, &msg);
                self.dns_buf = msg;
                r
            }
        }
    }

    fn udp(&mut self, t: u64, c: &Conn, from_client: bool, msg: &[u8]) -> io::Result<()> {
        let (src, sp, si, dst, dp, di, ttl) = if from_client {
            (
                &c.c,
                c.cport,
                c.c_internet,
                &c.s,
                c.sport,
                c.s_internet,
                c.c_ttl,
            )
        } else {
            (
                &c.s,
                c.sport,
                c.s_internet,
                &c.c,
                c.cport,
                c.c_internet,
                c.s_ttl,
            )
        };
        let len = 8 + msg.len();
        let id = c.dns_id ^ u16::from(from_client);
        let l4 = self.pcap.ip(
            src,
            mac_of(src, si),
            dst,
            mac_of(dst, di),
            c.vlan,
            17,
            len,
            ttl,
            id,
            c.c_flow,
        );
        let b = &mut self.pcap.buf;
        b.extend_from_slice(&sp.to_be_bytes());
        b.extend_from_slice(&dp.to_be_bytes());
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(msg);
        let pseudo = Pcap::<W>::pseudo(src, dst, 17, len);
        self.pcap.l4_checksum(l4, l4 + 6, pseudo, true);
        self.pcap.emit(t)
    }

    /// The client's SYN as it was sent (the packet an ICMP error quotes): IP header and TCP
    /// header with options, appended to `out`.
    fn syn_bytes(c: &Conn, out: &mut Vec<u8>) {
        let start = out.len();
        let tcp_len = 32usize;
        if c.c.v6 {
            out.extend_from_slice(&(0x6000_0000u32 | c.c_flow).to_be_bytes());
            out.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            out.extend_from_slice(&[6, c.c_ttl]);
            out.extend_from_slice(&c.c.b);
            out.extend_from_slice(&c.s.b);
        } else {
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            out.extend_from_slice(&c.c_id.to_be_bytes());
            out.extend_from_slice(&[0x40, 0, c.c_ttl, 6, 0, 0]);
            out.extend_from_slice(c.c.bytes());
            out.extend_from_slice(c.s.bytes());
            let ck = fold(sum16(&out[start..start + 20]));
            out[start + 10..start + 12].copy_from_slice(&ck.to_be_bytes());
        }
        let l4 = out.len();
        out.extend_from_slice(&c.cport.to_be_bytes());
        out.extend_from_slice(&c.sport.to_be_bytes());
        out.extend_from_slice(&c.c_isn.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0x80, SYN]);
        out.extend_from_slice(&64240u16.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let m = (c.mss as u16).to_be_bytes();
        out.extend_from_slice(&[2, 4, m[0], m[1], 1, 3, 3, 8, 1, 1, 4, 2]);
        let ck = fold(Pcap::<W>::pseudo(&c.c, &c.s, 6, tcp_len) + sum16(&out[l4..]));
        out[l4 + 16..l4 + 18].copy_from_slice(&ck.to_be_bytes());
    }

    /// ICMP administratively prohibited (3/13, or ICMPv6 1/1) from the firewall to the client.
    fn icmp_syn(&mut self, t: u64, c: &Conn) -> io::Result<()> {
        let mut quote = std::mem::take(&mut self.dns_buf);
        quote.clear();
        Self::syn_bytes(c, &mut quote);
        let r = self.icmp(
            t,
            c,
            (&c.fw, true, 64),
            (&c.c, c.c_internet),
            if c.c.v6 { (1, 1) } else { (3, 13) },
            &quote,
        );
        self.dns_buf = quote;
        r
    }

    /// ICMP port unreachable from the DNS server, quoting the query.
    fn icmp_udp(&mut self, t: u64, c: &Conn, msg: &[u8]) -> io::Result<()> {
        let mut q = std::mem::take(&mut self.scratch);
        q.clear();
        let ulen = 8 + msg.len();
        q.extend_from_slice(&[0x45, 0]);
        q.extend_from_slice(&((20 + ulen) as u16).to_be_bytes());
        q.extend_from_slice(&(c.dns_id ^ 1).to_be_bytes());
        q.extend_from_slice(&[0, 0, c.c_ttl, 17, 0, 0]);
        q.extend_from_slice(c.c.bytes());
        q.extend_from_slice(c.s.bytes());
        let ck = fold(sum16(&q[..20]));
        q[10..12].copy_from_slice(&ck.to_be_bytes());
        q.extend_from_slice(&c.cport.to_be_bytes());
        q.extend_from_slice(&c.sport.to_be_bytes());
        q.extend_from_slice(&(ulen as u16).to_be_bytes());
        q.extend_from_slice(&[0, 0]);
        q.extend_from_slice(msg);
        let mut ck = fold(Pcap::<W>::pseudo(&c.c, &c.s, 17, ulen) + sum16(&q[20..]));
        if ck == 0 {
            ck = 0xffff;
        }
        q[26..28].copy_from_slice(&ck.to_be_bytes());
        let r = self.icmp(
            t,
            c,
            (&c.s, c.s_internet, c.s_ttl),
            (&c.c, c.c_internet),
            (3, 3),
            &q,
        );
        self.scratch = q;
        r
    }

    fn icmp(
        &mut self,
        t: u64,
        c: &Conn,
        from: (&Addr, bool, u8),
        to: (&Addr, bool),
        (ty, code): (u8, u8),
        quote: &[u8],
    ) -> io::Result<()> {
        let v6 = from.0.v6;
        let len = 8 + quote.len();
        let proto = if v6 { 58 } else { 1 };
        let id = (c.c_isn >> 8) as u16;
        let l4 = self.pcap.ip(
            from.0,
            mac_of(from.0, from.1),
            to.0,
            mac_of(to.0, to.1),
            c.vlan,
            proto,
            len,
            from.2,
            id,
            0,
        );
        let b = &mut self.pcap.buf;
        b.extend_from_slice(&[ty, code, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(quote);
        let pseudo = if v6 {
            Pcap::<W>::pseudo(from.0, to.0, 58, len)
        } else {
            0
        };
        self.pcap.l4_checksum(l4, l4 + 2, pseudo, false);
        self.pcap.emit(t)
    }

    /// Flood SYN number `i`: its own source (address, port), never answered.
    fn flood_syn(&mut self, t: u64, i: u64, target: &Addr) -> io::Result<()> {
        let h = mix64(i ^ self.cfg.seed.rotate_left(17) ^ 0xF100D);
        let (src, sport) = if self.cfg.flood_v6 {
            let iid = mix64(i ^ 0xF10D_0000_0000) as u128;
            (
                Addr::v6(FLOOD6_NET | (u128::from((h >> 40) as u16 & 0x0fff) << 64) | iid),
                1024 + (h % 64000) as u16,
            )
        } else {
            // A bijection of i mod 2^17 onto 198.18.0.0/15; the port tells repeats apart.
            let a = ((i & 0x1ffff).wrapping_mul(0x9E37_79B1) ^ 0x0a5a5) & 0x1ffff;
            let q = i >> 17;
            let base = 0xC612_0000u32; // 198.18.0.0
            (
                Addr::v4_u32(base | a as u32),
                1024 + ((q + a * 31) % 64000) as u16,
            )
        };
        let ttl = 40 + (h >> 8) as u8 % 200;
        self.pcap.tcp(
            t,
            (&src, sport, true),
            (target, self.cfg.flood_port, false),
            0,
            ttl,
            (h >> 24) as u16,
            (h >> 32) as u32,
            SYN,
            (h >> 16) as u32,
            0,
            512,
            None,
            &[],
        )
    }
}

//! Connection records that did not come from packets: Zeek's conn.log (TSV with its `#fields`
//! header, or JSON lines), Suricata's eve.json (`flow` events) and exflow's own `--flows`
//! lines. Each line becomes a [`ConnRecord`] handed to a callback, one at a time: nothing is
//! kept per file beyond the line being read (at most [`MAX_LINE`] bytes) and, for a TSV,
//! its header.
//!
//! What a kind cannot carry is left out, never guessed: conn.log and EVE have no TTL (the
//! records' `first_ttl` are `None` and `rst_by` has no TTL, so a refusal cannot be told to come
//! from the server or from a device in between), no handshake times, and EVE has only the
//! TCP flags OR'ed per direction (see [`eve`] for the mapping). ICMP errors, which the logs
//! write as connections of their own, are attached to the unanswered attempt they most
//! likely answered by time and addresses ([`icmp`], a simple version), and marked so.
//!
//! A malformed line (not UTF-8, bad JSON, a missing or mistyped field, a line longer than
//! [`MAX_LINE`]) is counted with its line number ([`ImportStats`]) and skipped; reading goes
//! on. The kind of a file is told from its first bytes ([`detect`]).

pub mod eve;
pub mod exflow;
pub mod icmp;
pub mod merge;
pub mod zeek;

use super::ConnRecord;
use crate::time::{Duration, Timestamp};
use std::io::{self, BufRead};

/// The kinds of connection records read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Zeek's conn.log: TSV with its header, or JSON lines (`LogAscii::use_json`).
    Zeek,
    /// Suricata's eve.json.
    Eve,
    /// exflow's own `--flows` lines.
    Exflow,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Zeek => "zeek",
            Kind::Eve => "eve",
            Kind::Exflow => "exflow",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        match s {
            "zeek" => Some(Kind::Zeek),
            "eve" => Some(Kind::Eve),
            "exflow" => Some(Kind::Exflow),
            _ => None,
        }
    }
}

/// The longest line read; a longer one is counted as malformed and skipped (its bytes are
/// read through, never kept).
pub const MAX_LINE: usize = 1 << 20;

/// Line numbers of malformed lines kept for the warning.
pub const BAD_LINES_KEPT: usize = 5;

/// What reading one file of records found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Connection records handed on.
    pub records: u64,
    /// Lines that could not be read as a record.
    pub malformed: u64,
    /// The first [`BAD_LINES_KEPT`] malformed lines' numbers (1-based).
    pub bad_lines: Vec<u64>,
    /// Lines of other kinds of event (EVE's alerts, dns, …), skipped.
    pub other_events: u64,
    /// Records whose start time is blanked or absent (read as unknown: the epoch).
    pub unknown_times: u64,
    /// ICMP error records attached to the attempt they answered, by time and addresses
    /// ([`icmp`]); no longer connections of their own.
    pub icmp_attached: u64,
    /// Earliest and latest start / end times of the records.
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

impl ImportStats {
    fn bad(&mut self, line: u64) {
        self.malformed += 1;
        if self.bad_lines.len() < BAD_LINES_KEPT {
            self.bad_lines.push(line);
        }
    }

    fn record(&mut self, r: &ConnRecord) {
        self.records += 1;
        if r.ts == Timestamp::ZERO {
            self.unknown_times += 1;
            return;
        }
        let end = r.ts.plus(r.duration);
        self.first_ts = Some(self.first_ts.map_or(r.ts, |t| t.min(r.ts)));
        self.last_ts = Some(self.last_ts.map_or(end, |t| t.max(end)));
    }
}

/// A file's kind from its first bytes (decompressed): a TSV with Zeek's `#separator` or
/// `#fields` header line, or JSON lines whose first object has EVE's `event_type`, exflow's
/// `syn_retries` beside Zeek's `id.orig_h`, or Zeek's `id.orig_h` alone. `None`: none of
/// these.
pub fn detect(head: &[u8]) -> Option<Kind> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('#') {
        let zeek = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .any(|l| l.starts_with("#separator") || l.starts_with("#fields"));
        return zeek.then_some(Kind::Zeek);
    }
    if !text.starts_with('{') {
        return None;
    }
    let first = text.lines().next().unwrap_or("");
    if first.contains("\"event_type\"") {
        Some(Kind::Eve)
    } else if first.contains("\"id.orig_h\"") && first.contains("\"syn_retries\"") {
        Some(Kind::Exflow)
    } else if first.contains("\"id.orig_h\"") {
        Some(Kind::Zeek)
    } else {
        None
    }
}

/// Hands every line of `r` (without its end of line) to `each` with its 1-based number;
/// a line longer than [`MAX_LINE`] is read through and given as `None`.
fn lines(mut r: impl BufRead, mut each: impl FnMut(u64, Option<&[u8]>)) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0u64;
    loop {
        buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], Some(i + 1)),
                None => (avail, None),
            };
            if !too_long {
                if buf.len() + chunk.len() > MAX_LINE {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            let used = done.unwrap_or(avail.len());
            r.consume(used);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(());
        }
        n += 1;
        if too_long {
            each(n, None);
        } else {
            let line = buf.strip_suffix(b"\r").unwrap_or(&buf);
            each(n, Some(line));
        }
    }
}

/// Reads a file of records of `kind`, handing each record to `on`. A read error (a
/// decompression failure, a file cut off) ends the file: returned with what was read before.
pub fn read(
    kind: Kind,
    r: impl BufRead,
    on: &mut dyn FnMut(ConnRecord),
) -> (ImportStats, Option<io::Error>) {
    let mut stats = ImportStats::default();
    let mut zeek = zeek::Tsv::default();
    // exflow's lines carry the ICMP errors that quoted them; the logs' are records apart.
    let mut attach = (kind != Kind::Exflow).then(icmp::Attach::default);
    let result = lines(r, |n, line| {
        let Some(line) = line else {
            stats.bad(n);
            return;
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let parsed = match kind {
            Kind::Zeek if line.first() == Some(&b'{') => zeek::json_line(line).map(Some),
            Kind::Zeek => zeek.line(line),
            Kind::Exflow => exflow::line(line).map(Some),
            Kind::Eve => eve::line(line),
        };
        match parsed {
            Ok(Some(rec)) => {
                stats.record(&rec);
                match &mut attach {
                    Some(a) => a.push(rec, &mut *on),
                    None => on(rec),
                }
            }
            Ok(None) if kind == Kind::Eve => stats.other_events += 1,
            Ok(None) => {}
            Err(Malformed) => stats.bad(n),
        }
    });
    if let Some(a) = &mut attach {
        a.finish(&mut *on);
        stats.icmp_attached = a.attached;
    }
    (stats, result.err())
}

/// A line that is not a record of its file's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Seconds since the epoch (a float, as Zeek writes `ts`) as a timestamp; `None` if it is
/// not a finite time within ±10,000 years.
pub(crate) fn secs(v: f64) -> Option<Timestamp> {
    (v.is_finite() && v.abs() < 3.2e11).then(|| Timestamp((v * 1e9).round() as i64))
}

/// Seconds (a float) as a duration; negative or absurd values are malformed.
pub(crate) fn span(v: f64) -> Option<Duration> {
    (v.is_finite() && (0.0..3.2e11).contains(&v)).then(|| Duration((v * 1e9).round() as i64))
}

/// A record with every field at its "nothing known" value, to be filled by a reader.
pub(crate) fn blank(
    orig: super::Endpoint,
    resp: super::Endpoint,
    proto: crate::decode::Proto,
) -> ConnRecord {
    ConnRecord {
        ts: Timestamp::ZERO,
        uid: 0,
        input_uid: None,
        orig,
        resp,
        proto,
        duration: Duration(0),
        orig_bytes: 0,
        resp_bytes: 0,
        conn_state: super::ConnState::OTH,
        missed_bytes: 0,
        history: super::history::History::default(),
        orig_stats: super::DirStats::default(),
        resp_stats: super::DirStats::default(),
        syn_retries: 0,
        rtt_syn_synack: None,
        rtt_synack_ack: None,
        rst_by: None,
        rst_ifaces: 0,
        ignored_rsts: 0,
        sim_open: crate::flow::SimOpen::No,
        via: None,
        icmp: [None; super::record::ICMP_KEPT],
        icmp_count: 0,
        end: super::EndReason::Closed,
        idle: super::IdleGap::default(),
        look: None,
    }
}

/// Zeek's conn_state name.
pub(crate) fn conn_state(s: &str) -> Option<super::ConnState> {
    super::ConnState::ALL.into_iter().find(|c| c.as_str() == s)
}

/// The side of the first RST in a Zeek history (`R` the originator's, `r` the responder's),
/// with no TTL: logs carry none.
pub(crate) fn rst_from_history(h: &str) -> Option<(super::Side, Option<u8>)> {
    h.bytes().find_map(|b| match b {
        b'R' => Some((super::Side::Orig, None)),
        b'r' => Some((super::Side::Resp, None)),
        _ => None,
    })
}

/// Zeek's `proto` name and the address family as the record's protocol.
pub(crate) fn proto(name: &str, v6: bool) -> Option<crate::decode::Proto> {
    use crate::decode::Proto;
    Some(match name.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Proto::Tcp,
        "udp" | "17" => Proto::Udp,
        "icmp" | "1" if !v6 => Proto::Ip(1),
        "icmp" | "ipv6-icmp" | "icmpv6" | "58" => Proto::Ip(58),
        _ => return None,
    })
}

/// A record's fields as every reader fills them: the TCP side's extras that logs lack.
pub(crate) fn finish(mut r: ConnRecord) -> ConnRecord {
    let h = r.history.as_str();
    r.rst_by = rst_from_history(h);
    // Zeek writes `S` once however many SYNs went unanswered: the attempt's packets beyond
    // the first are its retransmissions.
    if r.proto == crate::decode::Proto::Tcp
        && r.conn_state == super::ConnState::S0
        && r.resp_stats.pkts == 0
    {
        r.syn_retries = r.orig_stats.pkts.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_from_the_first_bytes() {
        assert_eq!(detect(b"#separator \\x09\n#fields\tts\n"), Some(Kind::Zeek));
        assert_eq!(detect(b"### BTest\n#separator \\x09\n"), Some(Kind::Zeek));
        assert_eq!(detect(b"{\"ts\":1,\"id.orig_h\":\"a\"}"), Some(Kind::Zeek));
        assert_eq!(
            detect(b"{\"ts\":1,\"id.orig_h\":\"a\",\"syn_retries\":0}"),
            Some(Kind::Exflow)
        );
        assert_eq!(detect(b"{\"event_type\":\"flow\"}"), Some(Kind::Eve));
        assert_eq!(detect(b"1.0\tCx\t10.0.0.1\n"), None);
        assert_eq!(detect(b"{\"x\":1}"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn a_line_too_long_is_skipped_not_kept() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nshort\n");
        let mut seen = vec![];
        lines(&input[..], |n, l| seen.push((n, l.map(<[u8]>::to_vec)))).unwrap();
        assert_eq!(seen, vec![(1, None), (2, Some(b"short".to_vec()))]);
    }
}

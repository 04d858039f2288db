//! Zeek's conn.log: TSV (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`,
//! `#fields`, `#types` header; columns in the order `#fields` gives, extra columns ignored)
//! and JSON lines (`LogAscii::use_json=T`: the same names, unset fields left out).
//!
//! Two marks of Zeek's test harness are read as a production log would not have them: a
//! first line `### BTest …` (any `#` line that is not a known directive is skipped), and a
//! time blanked to `XXXXXXXXXX.XXXXXX`, read as unknown (the record's `ts` is the epoch and
//! counted in [`super::ImportStats::unknown_times`]). A data line before any `#fields` line
//! is malformed: the columns are not known.

use super::{blank, conn_state, finish, proto, secs, span, Malformed};
use crate::flow::history::History;
use crate::flow::{ConnRecord, Endpoint};
use crate::time::Timestamp;
use serde::Deserialize;
use std::net::IpAddr;

/// The columns exflow reads, by their `#fields` names.
const NAMES: [&str; 17] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
];

/// A TSV file's header, as read so far.
#[derive(Debug)]
pub struct Tsv {
    separator: Vec<u8>,
    unset: Vec<u8>,
    empty: Vec<u8>,
    /// The column of each of [`NAMES`], once `#fields` was read.
    columns: Option<[Option<usize>; 17]>,
}

impl Default for Tsv {
    fn default() -> Self {
        Tsv {
            separator: b"\t".to_vec(),
            unset: b"-".to_vec(),
            empty: b"(empty)".to_vec(),
            columns: None,
        }
    }
}

/// `\x09`-style escapes of Zeek's `#separator` line, decoded.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s.get(i + 1) == Some(&b'x') {
            if let Some(b) = std::str::from_utf8(&s[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn split<'a>(line: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let r = rest?;
        if sep.is_empty() {
            rest = None;
            return Some(r);
        }
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

impl Tsv {
    /// One line: a header line (`Ok(None)`), a record, or malformed.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<ConnRecord>, Malformed> {
        if line.first() == Some(&b'#') {
            self.header(line);
            return Ok(None);
        }
        let Some(columns) = self.columns else {
            return Err(Malformed);
        };
        let mut values: [Option<&[u8]>; 17] = [None; 17];
        let mut n = 0;
        for (i, v) in split(line, &self.separator).enumerate() {
            n = i + 1;
            if let Some(k) = columns.iter().position(|c| *c == Some(i)) {
                if v != self.unset.as_slice() {
                    values[k] = Some(if v == self.empty.as_slice() { b"" } else { v });
                }
            }
        }
        let needed = columns.iter().flatten().max().map_or(0, |m| m + 1);
        if n < needed {
            return Err(Malformed);
        }
        let text = |k: usize| -> Result<Option<&str>, Malformed> {
            values[k]
                .map(|v| std::str::from_utf8(v).map_err(|_| Malformed))
                .transpose()
        };
        let num = |k: usize| -> Result<Option<u64>, Malformed> {
            text(k)?
                .map(|s| s.parse().map_err(|_| Malformed))
                .transpose()
        };
        let float = |k: usize| -> Result<Option<f64>, Malformed> {
            text(k)?
                .map(|s| s.parse().map_err(|_| Malformed))
                .transpose()
        };
        let ts = match text(0)? {
            None => None,
            Some(s) if s.bytes().all(|b| b == b'X' || b == b'.') => None,
            Some(s) => Some(secs(s.parse().map_err(|_| Malformed)?).ok_or(Malformed)?),
        };
        let fields = Fields {
            ts,
            uid: text(1)?.map(str::to_string),
            orig_h: text(2)?.ok_or(Malformed)?,
            orig_p: num(3)?.ok_or(Malformed)?,
            resp_h: text(4)?.ok_or(Malformed)?,
            resp_p: num(5)?.ok_or(Malformed)?,
            proto: text(6)?.ok_or(Malformed)?,
            duration: float(7)?,
            orig_bytes: num(8)?,
            resp_bytes: num(9)?,
            conn_state: text(10)?,
            missed_bytes: num(11)?,
            history: text(12)?,
            orig_pkts: num(13)?,
            orig_ip_bytes: num(14)?,
            resp_pkts: num(15)?,
            resp_ip_bytes: num(16)?,
        };
        fields.record().map(Some)
    }

    fn header(&mut self, line: &[u8]) {
        let (key, value) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        match key {
            b"#separator" => self.separator = unescape(value),
            b"#unset_field" => {
                self.unset = split(value, &self.separator)
                    .next()
                    .unwrap_or(b"-")
                    .to_vec()
            }
            b"#empty_field" => {
                self.empty = split(value, &self.separator)
                    .next()
                    .unwrap_or(b"(empty)")
                    .to_vec()
            }
            b"#fields" => {
                let mut columns = [None; 17];
                for (i, name) in split(value, &self.separator).enumerate() {
                    if let Some(k) = NAMES.iter().position(|n| n.as_bytes() == name) {
                        columns[k] = Some(i);
                    }
                }
                self.columns = Some(columns);
            }
            _ => {}
        }
    }
}

/// The fields of a conn.log line, however it was written.
struct Fields<'a> {
    ts: Option<Timestamp>,
    uid: Option<String>,
    orig_h: &'a str,
    orig_p: u64,
    resp_h: &'a str,
    resp_p: u64,
    proto: &'a str,
    duration: Option<f64>,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    conn_state: Option<&'a str>,
    missed_bytes: Option<u64>,
    history: Option<&'a str>,
    orig_pkts: Option<u64>,
    orig_ip_bytes: Option<u64>,
    resp_pkts: Option<u64>,
    resp_ip_bytes: Option<u64>,
}

fn port(p: u64) -> Result<u16, Malformed> {
    u16::try_from(p).map_err(|_| Malformed)
}

impl Fields<'_> {
    fn record(self) -> Result<ConnRecord, Malformed> {
        let oh: IpAddr = self.orig_h.parse().map_err(|_| Malformed)?;
        let rh: IpAddr = self.resp_h.parse().map_err(|_| Malformed)?;
        let proto = proto(self.proto, oh.is_ipv6()).ok_or(Malformed)?;
        let mut r = blank(
            Endpoint::new(oh, port(self.orig_p)?),
            Endpoint::new(rh, port(self.resp_p)?),
            proto,
        );
        r.ts = self.ts.unwrap_or(Timestamp::ZERO);
        r.input_uid = self.uid.map(String::into_boxed_str);
        if let Some(d) = self.duration {
            r.duration = span(d).ok_or(Malformed)?;
        }
        r.orig_bytes = self.orig_bytes.unwrap_or(0);
        r.resp_bytes = self.resp_bytes.unwrap_or(0);
        r.missed_bytes = self.missed_bytes.unwrap_or(0);
        if let Some(s) = self.conn_state {
            r.conn_state = conn_state(s).ok_or(Malformed)?;
        }
        if let Some(h) = self.history {
            if !h.bytes().all(|b| b.is_ascii_alphabetic() || b == b'^') {
                return Err(Malformed);
            }
            let mut history = History::default();
            history.set(h);
            r.history = history;
        }
        r.orig_stats.pkts = self.orig_pkts.unwrap_or(0);
        r.orig_stats.ip_bytes = self.orig_ip_bytes.unwrap_or(0);
        r.resp_stats.pkts = self.resp_pkts.unwrap_or(0);
        r.resp_stats.ip_bytes = self.resp_ip_bytes.unwrap_or(0);
        Ok(finish(r))
    }
}

/// A time in a JSON log: seconds as a number, or a string (Zeek's ISO 8601 with
/// `LogAscii::json_timestamps`, or the test harness's blanked `XXXXXXXXXX.XXXXXX`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum JsonTime {
    Secs(f64),
    Text(String),
}

impl JsonTime {
    /// `Ok(None)`: blanked (unknown).
    pub(crate) fn get(&self) -> Result<Option<Timestamp>, Malformed> {
        match self {
            JsonTime::Secs(v) => secs(*v).map(Some).ok_or(Malformed),
            JsonTime::Text(s) if s.bytes().all(|b| b == b'X' || b == b'.') => Ok(None),
            JsonTime::Text(s) => match s.parse::<f64>() {
                Ok(v) => secs(v).map(Some).ok_or(Malformed),
                Err(_) => super::eve::iso8601(s).map(Some).ok_or(Malformed),
            },
        }
    }
}

#[derive(Deserialize)]
struct JsonLine<'a> {
    ts: Option<JsonTime>,
    uid: Option<String>,
    #[serde(rename = "id.orig_h", borrow)]
    orig_h: &'a str,
    #[serde(rename = "id.orig_p")]
    orig_p: u64,
    #[serde(rename = "id.resp_h", borrow)]
    resp_h: &'a str,
    #[serde(rename = "id.resp_p")]
    resp_p: u64,
    #[serde(borrow)]
    proto: &'a str,
    duration: Option<f64>,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    #[serde(borrow)]
    conn_state: Option<&'a str>,
    missed_bytes: Option<u64>,
    #[serde(borrow)]
    history: Option<&'a str>,
    orig_pkts: Option<u64>,
    orig_ip_bytes: Option<u64>,
    resp_pkts: Option<u64>,
    resp_ip_bytes: Option<u64>,
}

/// One line of a conn.log written as JSON.
pub fn json_line(line: &[u8]) -> Result<ConnRecord, Malformed> {
    let l: JsonLine<'_> = serde_json::from_slice(line).map_err(|_| Malformed)?;
    let ts = match &l.ts {
        Some(t) => t.get()?,
        None => None,
    };
    Fields {
        ts,
        uid: l.uid,
        orig_h: l.orig_h,
        orig_p: l.orig_p,
        resp_h: l.resp_h,
        resp_p: l.resp_p,
        proto: l.proto,
        duration: l.duration,
        orig_bytes: l.orig_bytes,
        resp_bytes: l.resp_bytes,
        conn_state: l.conn_state,
        missed_bytes: l.missed_bytes,
        history: l.history,
        orig_pkts: l.orig_pkts,
        orig_ip_bytes: l.orig_ip_bytes,
        resp_pkts: l.resp_pkts,
        resp_ip_bytes: l.resp_ip_bytes,
    }
    .record()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "### BTest baseline data\n#separator \\x09\n#set_separator\t,\n\
#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
#fields\tuid\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tconn_state\thistory\torig_pkts\tresp_pkts\textra\n\
#types\tstring\ttime\taddr\tport\taddr\tport\tenum\tstring\tinterval\tstring\tstring\tcount\tcount\tstring\n\
CAbc\tXXXXXXXXXX.XXXXXX\t10.0.0.1\t40000\t10.0.0.2\t25\ttcp\t-\t-\tREJ\tSr\t1\t1\t(empty)\n\
CDef\t1300000000.500000\t2001:db8::1\t5\t2001:db8::2\t443\ttcp\tssl\t1.25\tSF\tShADadFf\t9\t8\tx\n\
broken\tline\n";

    #[test]
    fn tsv_in_any_column_order_with_blanked_times() {
        let mut t = Tsv::default();
        let mut recs = vec![];
        let mut bad = 0;
        for l in LOG.lines() {
            match t.line(l.as_bytes()) {
                Ok(Some(r)) => recs.push(r),
                Ok(None) => {}
                Err(_) => bad += 1,
            }
        }
        assert_eq!(bad, 1);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].input_uid.as_deref(), Some("CAbc"));
        assert_eq!(recs[0].ts, Timestamp::ZERO);
        assert_eq!(recs[0].conn_state.as_str(), "REJ");
        assert_eq!(recs[0].rst_by, Some((crate::flow::Side::Resp, None)));
        assert_eq!(recs[1].ts, Timestamp(1_300_000_000_500_000_000));
        assert_eq!(recs[1].history.as_str(), "ShADadFf");
        assert_eq!(recs[1].resp_stats.pkts, 8);
        assert_eq!(recs[1].duration.0, 1_250_000_000);
    }

    #[test]
    fn a_data_line_without_a_header_is_malformed() {
        assert!(Tsv::default()
            .line(b"1.0\tC\t10.0.0.1\t1\t10.0.0.2\t2\ttcp")
            .is_err());
    }

    #[test]
    fn json_lines() {
        let r = json_line(
            br#"{"ts":1300000000.25,"uid":"CX","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":25,"proto":"tcp","conn_state":"S0","history":"S","orig_pkts":3,"resp_pkts":0}"#,
        )
        .unwrap();
        assert_eq!(r.syn_retries, 2);
        assert!(json_line(br#"{"id.orig_h":"10.0.0.1","id.orig_p":"x"}"#).is_err());
    }
}

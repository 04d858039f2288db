//! `--flows OUT.jsonl`: one JSON object per connection, written when the connection ends.
//! Zeek's conn.log field names where Zeek has the field; exflow's own fields after them.

use crate::flow::payload::Facts;
use crate::flow::ConnRecord;
use serde_json::ser::{CompactFormatter, Formatter};
use std::io::{self, Write};
use std::net::IpAddr;

// A line is written field by field straight into the writer: the same bytes
// `serde_json::to_writer` gave for a `#[derive(Serialize)]` struct of these fields (key
// order, `null` for absent values, serde_json's own number formatting), at a tenth of the
// instructions: every string here is an ASCII name exflow chose, so nothing needs
// escaping, and addresses are written without `fmt`. `tests::matches_serde_json` keeps
// the two equal.
//
// Fields, in order: Zeek's conn.log names where Zeek has the field (`ts`, `uid`,
// `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`, `proto`, `service` (always null:
// Zeek fills it from payload inspection; exflow's own payload look gives `smtp`/`tls`/`http`), `duration`,
// `orig_bytes`, `resp_bytes`, `conn_state`, `missed_bytes`, `history`, `orig_pkts`,
// `orig_ip_bytes`, `resp_pkts`, `resp_ip_bytes`), then exflow's own: `role` (the catalogue
// role the connection is, by the site file; `null` without one, the site then being inferred
// only after the whole input, and for a connection none of Exchange's business), `syn_retries` (SYNs
// the originator sent again before an answer), `rtt` (handshake round trips in
// milliseconds), `rst_by` (who sent the first RST and that packet's TTL), `ttls` (the TTL
// or hop limit each side normally shows: its first packet), `icmp` (the ICMP errors that
// quoted this connection's packets, the first few), `icmp_count` (how many quoted it),
// `via` (left out unless a NAT translated it: the public address its other leg used, the
// record showing the host's own), `interfaces` (the capture interfaces that saw it, left out
// when only interface 0 did, as in every one-interface capture), `idle_max_s` and
// `idle_after` (left out unless an established TCP connection was quiet at least 5 s: its
// longest gap in seconds, and what came after it: answered, reset_in_between, reset_by_peer,
// unanswered, pending), `end` (why the record was
// written: closed, idle, reused, evicted, end_of_capture); before `end`, where the payload look
// saw them, `smtp`, `tls` or `http` ([`write_look`]; an SMTP connection that started TLS has
// `smtp` and `tls`, the handshake after its STARTTLS; an IMAP or POP3 connection that did
// has `tls` only).

/// serde_json's output with one more rule: the characters the terminal's `sanitize` escapes
/// that JSON allows raw (C1 controls U+0080–U+009F, the bidi marks, embeddings, overrides and
/// isolates U+200E/F, U+202A–U+202E, U+2066–U+2069, U+061C, the other invisibles that reorder
/// or break lines) are written as `\uXXXX`, so a wire string cannot reorder or hide what a
/// viewer of the JSON shows. The value read back is the same.
struct Escaping<F>(F);

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !super::terminal::needs_escape(c) {
                continue;
            }
            w.write_all(fragment.get(start..i).unwrap_or("").as_bytes())?;
            // Every such character is in the Basic Multilingual Plane: one \u escape.
            write!(w, "\\u{:04x}", u32::from(c))?;
            start = i + c.len_utf8();
        }
        w.write_all(fragment.get(start..).unwrap_or("").as_bytes())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A value as JSON (indented when `pretty`), with C1 controls, bidi and the other invisible
/// reordering characters written as `\uXXXX`: how every JSON report is written.
pub fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(4096);
    if pretty {
        let f = Escaping(serde_json::ser::PrettyFormatter::new());
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
    } else {
        let f = Escaping(CompactFormatter);
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
    }
    // serde_json writes valid UTF-8 only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A string from the data as a JSON string, escaped like [`to_json`].
fn text(w: &mut impl Write, s: &str) -> io::Result<()> {
    let f = Escaping(CompactFormatter);
    serde::Serialize::serialize(s, &mut serde_json::Serializer::with_formatter(&mut *w, f))
        .map_err(io::Error::from)
}

/// A JSON number as serde_json writes an `f64` (non-finite: `null`).
fn f64_value(w: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_finite() {
        CompactFormatter.write_f64(w, v)
    } else {
        w.write_all(b"null")
    }
}

fn u64_value(w: &mut impl Write, v: u64) -> io::Result<()> {
    CompactFormatter.write_u64(w, v)
}

fn opt_u8(w: &mut impl Write, v: Option<u8>) -> io::Result<()> {
    match v {
        Some(v) => CompactFormatter.write_u8(w, v),
        None => w.write_all(b"null"),
    }
}

fn opt_f64(w: &mut impl Write, v: Option<f64>) -> io::Result<()> {
    match v {
        Some(v) => f64_value(w, v),
        None => w.write_all(b"null"),
    }
}

/// A quoted string of characters that need no escaping (exflow's own ASCII names).
fn name(w: &mut impl Write, s: &str) -> io::Result<()> {
    debug_assert!(s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f));
    w.write_all(b"\"")?;
    w.write_all(s.as_bytes())?;
    w.write_all(b"\"")
}

/// An address as a quoted string: IPv4 by hand (the common case), IPv6 through its
/// `Display` (RFC 5952 text) into a stack buffer.
fn addr(w: &mut impl Write, ip: IpAddr) -> io::Result<()> {
    let mut buf = [0u8; 48];
    let n = match ip {
        IpAddr::V4(a) => {
            let mut n = 0;
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if o >= 100 {
                    buf[n] = b'0' + o / 100;
                    n += 1;
                }
                if o >= 10 {
                    buf[n] = b'0' + o / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + o % 10;
                n += 1;
            }
            n
        }
        IpAddr::V6(a) => {
            let mut cur = io::Cursor::new(&mut buf[..]);
            write!(cur, "{a}")?;
            cur.position() as usize
        }
    };
    w.write_all(b"\"")?;
    w.write_all(&buf[..n])?;
    w.write_all(b"\"")
}

pub fn icmp_meaning(v6: bool, t: u8, code: u8) -> &'static str {
    if v6 {
        match (t, code) {
            (1, 0) => "no-route",
            (1, 1) => "admin-prohibited",
            (1, 3) => "address-unreachable",
            (1, 4) => "port-unreachable",
            (1, 5) => "source-policy-failed",
            (1, 6) => "reject-route",
            (1, _) => "unreachable",
            (2, _) => "packet-too-big",
            (3, _) => "time-exceeded",
            (4, _) => "parameter-problem",
            _ => "other",
        }
    } else {
        match (t, code) {
            (3, 0) => "net-unreachable",
            (3, 1) => "host-unreachable",
            (3, 2) => "protocol-unreachable",
            (3, 3) => "port-unreachable",
            (3, 4) => "fragmentation-needed",
            (3, 9) => "net-admin-prohibited",
            (3, 10) => "host-admin-prohibited",
            (3, 13) => "admin-prohibited",
            (3, _) => "unreachable",
            (11, _) => "time-exceeded",
            (4, _) => "source-quench",
            (5, _) => "redirect",
            (12, _) => "parameter-problem",
            _ => "other",
        }
    }
}

fn ms(d: Option<crate::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_millis_f64() * 1000.0).round() / 1000.0)
}

/// An object written field by field (no `serde_json::Value` built per connection).
struct Obj<'a, W: Write> {
    w: &'a mut W,
    first: bool,
}

impl<'a, W: Write> Obj<'a, W> {
    fn open(w: &'a mut W) -> io::Result<Self> {
        w.write_all(b"{")?;
        Ok(Obj { w, first: true })
    }

    /// Writes the key (a name of ours, never wire text) and returns the writer for its value.
    fn key(&mut self, k: &str) -> io::Result<&mut W> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        self.first = false;
        name(self.w, k)?;
        self.w.write_all(b":")?;
        Ok(&mut *self.w)
    }

    fn close(self) -> io::Result<()> {
        self.w.write_all(b"}")
    }
}

/// Wire bytes as a JSON string (invalid UTF-8 replaced), escaped like [`to_json`].
fn wire(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    text(w, &String::from_utf8_lossy(b))
}

/// Wire bytes as a JSON string, or `null` when none were seen.
fn wire_or_null(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    if b.is_empty() {
        w.write_all(b"null")
    } else {
        wire(w, b)
    }
}

fn boolean(w: &mut impl Write, b: bool) -> io::Result<()> {
    w.write_all(if b { b"true" } else { b"false" })
}

/// Comma-separated wire names as a JSON array of strings (`drop_last`: the last one was cut).
fn wire_list(w: &mut impl Write, b: &[u8], drop_last: bool) -> io::Result<()> {
    w.write_all(b"[")?;
    let mut names = b.split(|&c| c == b',').filter(|n| !n.is_empty()).peekable();
    let mut first = true;
    while let Some(n) = names.next() {
        if drop_last && names.peek().is_none() {
            break;
        }
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        wire(w, n)?;
    }
    w.write_all(b"]")
}

/// The payload look's facts as `--flows` fields (PRODUCT.md's names): each key (`smtp`,
/// `tls`, `http`; an SMTP connection that started TLS has `smtp` and `tls`, an IMAP or POP3
/// connection that did only `tls`: PRODUCT.md names no object of their own), written after
/// a comma, each object's keys in name order. Wire strings are escaped like every JSON
/// string of exflow's ([`to_json`]: C1 controls and bidi marks too); they are bounded where
/// they were copied (`flow::payload`).
fn write_look(w: &mut impl Write, f: &Facts) -> io::Result<()> {
    match f {
        Facts::Smtp(s, t) => {
            w.write_all(b",\"smtp\":")?;
            write_smtp(w, s)?;
            if let Some(t) = t {
                w.write_all(b",\"tls\":")?;
                write_tls(w, t)?;
            }
        }
        Facts::Tls(t) | Facts::Mail(_, Some(t)) => {
            w.write_all(b",\"tls\":")?;
            write_tls(w, t)?;
        }
        Facts::Mail(_, None) => {}
        Facts::Http(h) => {
            w.write_all(b",\"http\":")?;
            write_http(w, h)?;
        }
    }
    Ok(())
}

fn write_smtp(w: &mut impl Write, s: &crate::flow::payload::SmtpFacts) -> io::Result<()> {
    let mut o = Obj::open(w)?;
    wire(o.key("banner")?, s.banner.bytes())?;
    write!(o.key("banner_code")?, "{}", s.banner_code)?;
    boolean(o.key("banner_masked")?, s.banner_masked)?;
    boolean(o.key("commands_masked")?, s.commands_masked)?;
    let v = o.key("rejected")?;
    match s.rejected {
        Some((cmd, code)) => {
            let mut r = Obj::open(v)?;
            write!(r.key("code")?, "{code}")?;
            name(r.key("command")?, cmd.as_str())?;
            wire(r.key("text")?, s.reject_text.bytes())?;
            r.close()?;
        }
        None => v.write_all(b"null")?,
    }
    let v = o.key("reply_codes")?;
    v.write_all(b"[")?;
    for (i, c) in s.codes().iter().enumerate() {
        if i > 0 {
            v.write_all(b",")?;
        }
        write!(v, "{c}")?;
    }
    v.write_all(b"]")?;
    boolean(o.key("starttls")?, s.starttls)?;
    boolean(o.key("starttls_masked")?, s.starttls_masked)?;
    boolean(o.key("starttls_offered")?, s.starttls_offered)?;
    o.close()
}

fn write_tls(w: &mut impl Write, t: &crate::flow::payload::TlsFacts) -> io::Result<()> {
    let mut o = Obj::open(w)?;
    let v = o.key("alert")?;
    match t.alert {
        Some((by_resp, level, desc)) => {
            let mut a = Obj::open(v)?;
            name(a.key("by")?, if by_resp { "resp" } else { "orig" })?;
            write!(a.key("description")?, "{desc}")?;
            write!(a.key("level")?, "{level}")?;
            a.close()?;
        }
        None => v.write_all(b"null")?,
    }
    // The last ALPN name is left out when it did not fit whole.
    wire_list(o.key("alpn")?, t.alpn.bytes(), t.alpn.is_cut())?;
    boolean(o.key("client_hello")?, t.client_hello)?;
    boolean(o.key("established")?, !t.aborted())?;
    wire_or_null(o.key("sni")?, t.sni.bytes())?;
    o.close()
}

fn write_http(w: &mut impl Write, h: &crate::flow::payload::HttpFacts) -> io::Result<()> {
    let path = String::from_utf8_lossy(h.path.bytes());
    // As the report's `services` tell it: the path, else the Host header.
    let service = crate::classify::catalogue::Catalogue::embedded()
        .ok()
        .and_then(|c| crate::aggregate::services::of_http(h, c));
    let mut o = Obj::open(w)?;
    wire_or_null(o.key("host")?, h.host.bytes())?;
    wire_or_null(o.key("location")?, h.location.bytes())?;
    wire(o.key("method")?, h.method.bytes())?;
    text(o.key("path")?, &path)?;
    wire_or_null(o.key("server")?, h.server.bytes())?;
    let v = o.key("service")?;
    match service {
        Some(s) => text(v, s)?,
        None => v.write_all(b"null")?,
    }
    let v = o.key("status")?;
    if h.status != 0 {
        write!(v, "{}", h.status)?;
    } else {
        v.write_all(b"null")?;
    }
    wire_list(o.key("x_headers")?, h.x_headers.bytes(), false)?;
    o.close()
}

/// Writes one record as a JSON line; `role` is the catalogue role the connection is (`null`
/// when unknown: no site file, or none of Exchange's business).
pub fn write_record(w: &mut impl Write, r: &ConnRecord, role: Option<&str>) -> io::Result<()> {
    w.write_all(b"{\"ts\":")?;
    f64_value(w, r.ts.as_secs_f64())?;
    w.write_all(b",\"uid\":")?;
    match &r.input_uid {
        // A log's own uid, as it was: any text, so escaped.
        Some(uid) => text(w, uid)?,
        None => {
            w.write_all(b"\"")?;
            w.write_all(&r.uid_bytes())?;
            w.write_all(b"\"")?;
        }
    }
    w.write_all(b",\"id.orig_h\":")?;
    addr(w, r.orig.ip())?;
    w.write_all(b",\"id.orig_p\":")?;
    CompactFormatter.write_u16(w, r.orig.port())?;
    w.write_all(b",\"id.resp_h\":")?;
    addr(w, r.resp.ip())?;
    w.write_all(b",\"id.resp_p\":")?;
    CompactFormatter.write_u16(w, r.resp.port())?;
    w.write_all(b",\"proto\":")?;
    name(w, r.proto_name())?;
    w.write_all(b",\"service\":null,\"duration\":")?;
    f64_value(w, r.duration.as_secs_f64())?;
    w.write_all(b",\"orig_bytes\":")?;
    u64_value(w, r.orig_bytes)?;
    w.write_all(b",\"resp_bytes\":")?;
    u64_value(w, r.resp_bytes)?;
    w.write_all(b",\"conn_state\":")?;
    name(w, r.conn_state.as_str())?;
    w.write_all(b",\"missed_bytes\":")?;
    u64_value(w, r.missed_bytes)?;
    w.write_all(b",\"history\":")?;
    name(w, r.history.as_str())?;
    w.write_all(b",\"orig_pkts\":")?;
    u64_value(w, r.orig_stats.pkts)?;
    w.write_all(b",\"orig_ip_bytes\":")?;
    u64_value(w, r.orig_stats.ip_bytes)?;
    w.write_all(b",\"resp_pkts\":")?;
    u64_value(w, r.resp_stats.pkts)?;
    w.write_all(b",\"resp_ip_bytes\":")?;
    u64_value(w, r.resp_stats.ip_bytes)?;
    w.write_all(b",\"role\":")?;
    match role {
        // A catalogue role's id: kebab-case, checked when the catalogue was read.
        Some(id) => name(w, id)?,
        None => w.write_all(b"null")?,
    }
    w.write_all(b",\"syn_retries\":")?;
    CompactFormatter.write_u32(w, r.syn_retries)?;
    w.write_all(b",\"rtt\":{\"syn_synack_ms\":")?;
    opt_f64(w, ms(r.rtt_syn_synack))?;
    w.write_all(b",\"synack_ack_ms\":")?;
    opt_f64(w, ms(r.rtt_synack_ack))?;
    w.write_all(b"},\"rst_by\":")?;
    match r.rst_by {
        Some((side, ttl)) => {
            w.write_all(b"{\"side\":")?;
            name(w, side.as_str())?;
            w.write_all(b",\"ttl\":")?;
            opt_u8(w, ttl)?;
            w.write_all(b"}")?;
        }
        None => w.write_all(b"null")?,
    }
    w.write_all(b",\"ttls\":{\"orig\":")?;
    opt_u8(w, r.orig_stats.first_ttl)?;
    w.write_all(b",\"resp\":")?;
    opt_u8(w, r.resp_stats.first_ttl)?;
    w.write_all(b"},\"icmp\":[")?;
    for (i, e) in r.icmp.iter().flatten().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"ts\":")?;
        f64_value(w, e.ts.as_secs_f64())?;
        w.write_all(b",\"from\":")?;
        addr(w, e.from)?;
        w.write_all(b",\"type\":")?;
        CompactFormatter.write_u8(w, e.icmp_type)?;
        w.write_all(b",\"code\":")?;
        CompactFormatter.write_u8(w, e.code)?;
        w.write_all(b",\"ttl\":")?;
        CompactFormatter.write_u8(w, e.ttl)?;
        w.write_all(b",\"meaning\":")?;
        name(w, icmp_meaning(e.v6, e.icmp_type, e.code))?;
        if e.by_address {
            // Only for records read from a log: packets' lines stay as they were.
            w.write_all(b",\"matched\":\"time_and_addresses\"")?;
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"],\"icmp_count\":")?;
    CompactFormatter.write_u32(w, r.icmp_count)?;
    if let Some(v) = r.via {
        w.write_all(b",\"via\":")?;
        addr(w, v)?;
    }
    let seen = r.orig_stats.ifaces | r.resp_stats.ifaces;
    if seen > 1 {
        w.write_all(b",\"interfaces\":[")?;
        let mut first = true;
        for id in (0..32u16).filter(|&i| seen & crate::flow::iface_bit(i) != 0) {
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            CompactFormatter.write_u16(w, id)?;
        }
        w.write_all(b"]")?;
    }
    if r.idle.meaningful() {
        w.write_all(b",\"idle_max_s\":")?;
        f64_value(w, f64::from(r.idle.max_ms) / 1000.0)?;
        w.write_all(b",\"idle_after\":")?;
        name(w, r.idle.after.as_str())?;
    }
    if let Some(f) = &r.look {
        write_look(w, f)?;
    }
    w.write_all(b",\"end\":")?;
    name(w, r.end.as_str())?;
    w.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the look's fields were before they were written by hand: serde_json::Value.
    // The ALPN protocols offered (the last one left out if it did not fit).
    fn alpn(t: &crate::flow::payload::TlsFacts) -> Vec<String> {
        let mut v: Vec<String> = String::from_utf8_lossy(t.alpn.bytes())
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if t.alpn.is_cut() {
            v.pop();
        }
        v
    }
    // The payload look's facts as `--flows` fields (PRODUCT.md's names): each key (`smtp`,
    // `tls`, `http`; an SMTP connection that started TLS has `smtp` and `tls`) and its object.
    // Wire strings go through serde_json, which escapes them; they are bounded where they were
    // copied (`flow::payload`).
    fn look_json(f: &Facts) -> Vec<(&'static str, serde_json::Value)> {
        match f {
            Facts::Smtp(s, Some(t)) => vec![one(&Facts::Smtp(*s, None)), one(&Facts::Tls(*t))],
            Facts::Mail(_, t) => t.iter().map(|t| one(&Facts::Tls(*t))).collect(),
            _ => vec![one(f)],
        }
    }

    fn one(f: &Facts) -> (&'static str, serde_json::Value) {
        use serde_json::json;
        let text = |t: &[u8]| String::from_utf8_lossy(t).into_owned();
        match f {
            Facts::Smtp(s, _) => (
                "smtp",
                json!({
                    "banner_code": s.banner_code,
                    "banner": text(s.banner.bytes()),
                    "banner_masked": s.banner_masked,
                    "starttls_offered": s.starttls_offered,
                    "starttls_masked": s.starttls_masked,
                    "starttls": s.starttls,
                    "commands_masked": s.commands_masked,
                    "reply_codes": s.codes(),
                    "rejected": s.rejected.map(|(cmd, code)| json!({
                        "command": cmd.as_str(),
                        "code": code,
                        "text": text(s.reject_text.bytes()),
                    })),
                }),
            ),
            Facts::Tls(t) | Facts::Mail(_, Some(t)) => (
                "tls",
                json!({
                    "sni": (!t.sni.is_empty()).then(|| text(t.sni.bytes())),
                    "alpn": alpn(t),
                    "client_hello": t.client_hello,
                    "established": !t.aborted(),
                    "alert": t.alert.map(|(by_resp, level, desc)| json!({
                        "by": if by_resp { "resp" } else { "orig" },
                        "level": level,
                        "description": desc,
                    })),
                }),
            ),
            Facts::Mail(_, None) => ("tls", serde_json::Value::Null),
            Facts::Http(h) => {
                let path = text(h.path.bytes());
                // As the report's `services` tell it: the path, else the Host header.
                let host = text(h.host.bytes());
                let service = crate::classify::catalogue::Catalogue::embedded()
                    .ok()
                    .and_then(|c| {
                        c.service_of_path(&path)
                            .or_else(|| c.service_of_name(&host))
                    })
                    .map(str::to_string);
                (
                    "http",
                    json!({
                        "method": text(h.method.bytes()),
                        "host": (!h.host.is_empty()).then(|| text(h.host.bytes())),
                        "path": path,
                        "status": (h.status != 0).then_some(h.status),
                        "service": service,
                        "server": (!h.server.is_empty()).then(|| text(h.server.bytes())),
                        "location": (!h.location.is_empty()).then(|| text(h.location.bytes())),
                        "x_headers": h
                            .x_headers
                            .bytes()
                            .split(|&c| c == b',')
                            .filter(|n| !n.is_empty())
                            .map(text)
                            .collect::<Vec<String>>(),
                    }),
                )
            }
        }
    }

    use crate::flow::history::History;
    use crate::flow::{ConnState, DirStats, EndReason, Endpoint, IcmpError, Side};
    use crate::time::{Duration, Timestamp};
    use serde::ser::{SerializeSeq, Serializer};
    use serde::Serialize;

    // What the lines were before they were written by hand: serde_json over derived structs.
    #[derive(Serialize)]
    struct Line<'a> {
        ts: f64,
        uid: &'a str,
        #[serde(rename = "id.orig_h")]
        orig_h: String,
        #[serde(rename = "id.orig_p")]
        orig_p: u16,
        #[serde(rename = "id.resp_h")]
        resp_h: String,
        #[serde(rename = "id.resp_p")]
        resp_p: u16,
        proto: &'static str,
        service: Option<&'static str>,
        duration: f64,
        orig_bytes: u64,
        resp_bytes: u64,
        conn_state: &'static str,
        missed_bytes: u64,
        history: &'a str,
        orig_pkts: u64,
        orig_ip_bytes: u64,
        resp_pkts: u64,
        resp_ip_bytes: u64,
        role: Option<&'a str>,
        syn_retries: u32,
        rtt: Rtt,
        rst_by: Option<RstBy>,
        ttls: Ttls,
        icmp: IcmpList<'a>,
        icmp_count: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        interfaces: Option<Vec<u16>>,
        end: &'static str,
    }

    #[derive(Serialize)]
    struct Rtt {
        syn_synack_ms: Option<f64>,
        synack_ack_ms: Option<f64>,
    }

    #[derive(Serialize)]
    struct RstBy {
        side: &'static str,
        ttl: Option<u8>,
    }

    #[derive(Serialize)]
    struct Ttls {
        orig: Option<u8>,
        resp: Option<u8>,
    }

    #[derive(Serialize)]
    struct Icmp {
        ts: f64,
        from: String,
        #[serde(rename = "type")]
        icmp_type: u8,
        code: u8,
        ttl: u8,
        meaning: &'static str,
    }

    struct IcmpList<'a>(&'a [Option<IcmpError>]);

    impl Serialize for IcmpList<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.iter().flatten().count()))?;
            for e in self.0.iter().flatten() {
                seq.serialize_element(&Icmp {
                    ts: e.ts.as_secs_f64(),
                    from: e.from.to_string(),
                    icmp_type: e.icmp_type,
                    code: e.code,
                    ttl: e.ttl,
                    meaning: icmp_meaning(e.v6, e.icmp_type, e.code),
                })?;
            }
            seq.end()
        }
    }

    fn serde_line(r: &ConnRecord, role: Option<&str>) -> Vec<u8> {
        let uid = r.uid_bytes();
        let line = Line {
            ts: r.ts.as_secs_f64(),
            uid: std::str::from_utf8(&uid).unwrap(),
            orig_h: r.orig.ip().to_string(),
            orig_p: r.orig.port(),
            resp_h: r.resp.ip().to_string(),
            resp_p: r.resp.port(),
            proto: r.proto_name(),
            service: None,
            duration: r.duration.as_secs_f64(),
            orig_bytes: r.orig_bytes,
            resp_bytes: r.resp_bytes,
            conn_state: r.conn_state.as_str(),
            missed_bytes: r.missed_bytes,
            history: r.history.as_str(),
            orig_pkts: r.orig_stats.pkts,
            orig_ip_bytes: r.orig_stats.ip_bytes,
            resp_pkts: r.resp_stats.pkts,
            resp_ip_bytes: r.resp_stats.ip_bytes,
            role,
            syn_retries: r.syn_retries,
            rtt: Rtt {
                syn_synack_ms: ms(r.rtt_syn_synack),
                synack_ack_ms: ms(r.rtt_synack_ack),
            },
            rst_by: r.rst_by.map(|(s, ttl)| RstBy {
                side: s.as_str(),
                ttl,
            }),
            ttls: Ttls {
                orig: r.orig_stats.first_ttl,
                resp: r.resp_stats.first_ttl,
            },
            icmp: IcmpList(&r.icmp),
            icmp_count: r.icmp_count,
            via: r.via.map(|v| v.to_string()),
            interfaces: {
                let seen = r.orig_stats.ifaces | r.resp_stats.ifaces;
                (seen > 1).then(|| (0..32).filter(|i| seen & (1 << i) != 0).collect())
            },
            end: r.end.as_str(),
        };
        let mut v = serde_json::to_vec(&line).unwrap();
        v.push(b'\n');
        v
    }

    fn record(i: u64) -> ConnRecord {
        let v4 = |a: u8, b: u8, c: u8, d: u8| IpAddr::from([a, b, c, d]);
        let (orig, resp) = match i % 4 {
            0 => (v4(203, 0, 113, 7), v4(198, 51, 100, 10)),
            1 => (v4(0, 0, 0, 0), v4(255, 255, 255, 255)),
            2 => (
                "2001:db8::1".parse().unwrap(),
                "2001:db8:0:0:1:0:0:1".parse().unwrap(),
            ),
            _ => (v4(10, 99, 100, 9), "::ffff:192.0.2.1".parse().unwrap()),
        };
        let mut history = History::default();
        history.set(["ShADadFf", "S", "^hR", ""][(i % 4) as usize]);
        let stats = |p: u64, ttl: Option<u8>| DirStats {
            pkts: p,
            ip_bytes: p * 1500 + i,
            payload_bytes: p * 1460,
            first_ttl: ttl,
            ifaces: [0, 1, 3, 0x8000_0001][(i % 4) as usize],
            first_iface: 0,
        };
        ConnRecord {
            ts: Timestamp(1_741_597_200_123_456_789 + i as i64 * 1_000_003),
            uid: i * 7919,
            input_uid: None,
            orig: Endpoint::new(orig, (i * 13) as u16),
            resp: Endpoint::new(resp, [443, 25, 0, 65535][(i % 4) as usize]),
            proto: crate::decode::Proto::from_number([6, 17, 1, 58][(i % 4) as usize]),
            duration: Duration([0, 1, 999_999_999, 86_400_000_000_007][(i % 4) as usize]),
            orig_bytes: i * 1000,
            resp_bytes: u64::MAX - i,
            conn_state: [ConnState::SF, ConnState::S0, ConnState::REJ, ConnState::OTH]
                [(i % 4) as usize],
            missed_bytes: i % 3,
            history,
            orig_stats: stats(i, Some(64)),
            resp_stats: stats(i / 2, if i % 2 == 0 { None } else { Some(255) }),
            syn_retries: (i % 5) as u32,
            rtt_syn_synack: (i % 3 != 0).then_some(Duration(i as i64 * 123_457)),
            rtt_synack_ack: (i % 2 == 0).then_some(Duration(1)),
            rst_by: match i % 3 {
                0 => None,
                1 => Some((Side::Orig, Some(63))),
                _ => Some((Side::Resp, (i % 2 == 0).then_some(0))),
            },
            rst_ifaces: 0,
            ignored_rsts: 0,
            sim_open: crate::flow::SimOpen::No,
            via: (i % 3 == 1).then(|| v4(203, 0, 113, 80)),
            icmp: [(i % 2 == 1).then(|| IcmpError {
                by_address: false,
                ts: Timestamp(i as i64 * 1_000_000_001),
                from: if i % 4 == 3 {
                    "2001:db8::fe".parse().unwrap()
                } else {
                    v4(192, 0, 2, 254)
                },
                v6: i % 4 == 3,
                icmp_type: 3,
                code: (i % 16) as u8,
                ttl: 250,
            })],
            icmp_count: (i % 2) as u32 * 3,
            end: [
                EndReason::Closed,
                EndReason::Idle,
                EndReason::Evicted,
                EndReason::EndOfCapture,
            ][(i % 4) as usize],
            idle: crate::flow::IdleGap::default(),
            look: None,
        }
    }

    #[test]
    fn matches_serde_json() {
        for i in 0..64 {
            let r = record(i);
            let role = [None, Some("smtp-inbound"), Some("https-client")][(i % 3) as usize];
            let mut mine = Vec::new();
            write_record(&mut mine, &r, role).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&serde_line(&r, role)),
                "record {i}"
            );
            let v: serde_json::Value = serde_json::from_slice(&mine).unwrap();
            assert_eq!(v["uid"].as_str().unwrap().as_bytes(), &r.uid_bytes()[..]);
        }
    }

    /// C1 controls and the characters that reorder or hide text, in the data, as JSON shows
    /// them: never raw, read back the same.
    const HOSTILE: &str =
        "a\u{85}b\u{9b}31m\u{202e}fdp.exe\u{2066}x\u{2069}\u{200e}\u{200f}\u{61c}\u{202a}\u{202d}";

    fn assert_no_raw_hostile(json: &str) {
        for c in json.chars() {
            assert!(
                !crate::report::terminal::needs_escape(c) || c == '\n',
                "raw U+{:04X} in {json:?}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn json_escapes_c1_and_bidi_characters_and_reads_back_the_same() {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            file: &'a str,
            files: Vec<&'a str>,
        }
        let doc = Doc {
            file: HOSTILE,
            files: vec![HOSTILE, "plain"],
        };
        for pretty in [false, true] {
            let json = to_json(&doc, pretty).unwrap();
            assert_no_raw_hostile(&json);
            assert!(
                json.contains("\\u202e") && json.contains("\\u0085"),
                "{json}"
            );
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(v["file"], HOSTILE);
            assert_eq!(v["files"][0], HOSTILE);
            // Everything else as serde_json writes it.
            let plain = if pretty {
                serde_json::to_string_pretty(&Doc {
                    file: "x",
                    files: vec!["y"],
                })
            } else {
                serde_json::to_string(&Doc {
                    file: "x",
                    files: vec!["y"],
                })
            };
            assert_eq!(
                to_json(
                    &Doc {
                        file: "x",
                        files: vec!["y"]
                    },
                    pretty
                )
                .unwrap(),
                plain.unwrap()
            );
        }
    }

    #[test]
    fn a_logs_uid_is_escaped_in_the_flows_line() {
        let mut r = record(1);
        r.input_uid = Some(HOSTILE.into());
        let mut line = Vec::new();
        write_record(&mut line, &r, None).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert_no_raw_hostile(&text);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["uid"], HOSTILE);
    }

    /// Looks of many kinds, fed from dialogues as the wire carries them.
    fn looks() -> Vec<Facts> {
        use crate::flow::payload::tests::client_hello;
        use crate::flow::payload::Look;
        let feed = |parts: &[(usize, &[u8])]| {
            let mut l = Look::new();
            let mut off = [0u32; 2];
            for (d, b) in parts {
                l.feed(*d, off[*d], b, true);
                off[*d] += b.len() as u32;
            }
            l.facts()
        };
        let hostile = format!("220 {HOSTILE} ESMTP\r\n");
        let ch = client_hello("mail.example.test", &["h2", "http/1.1"]);
        let long = client_hello(
            "autodiscover.example.test",
            &["a-protocol-name-that-is-long", "another-long-protocol-name"],
        );
        let alert: &[u8] = &[0x15, 3, 3, 0, 2, 2, 70];
        let dialogues: Vec<Vec<(usize, &[u8])>> = vec![
            vec![
                (1, b"220 ***************************\r\n"),
                (0, b"EHLO a\r\n"),
                (1, b"250-mail\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n"),
                (0, b"MAIL FROM:<a@b>\r\n"),
                (1, b"250 ok\r\n"),
                (0, b"RCPT TO:<c@d>\r\n"),
                (1, b"550 5.1.1 <c@d>: Recipient \"x\" rejected\\\r\n"),
            ],
            vec![
                (1, b"220 mail Microsoft ESMTP MAIL Service ready\r\n"),
                (0, b"EHLO a\r\n"),
                (1, b"250-mail\r\n250 STARTTLS\r\n"),
                (0, b"STARTTLS\r\n"),
                (1, b"220 go ahead\r\n"),
                (0, &ch),
                (1, alert),
            ],
            vec![(1, hostile.as_bytes()), (0, b"EHLO a\r\n")],
            vec![(0, &ch)],
            vec![(0, &long), (1, alert)],
            vec![
                (0, b"GET /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.test\r\n\r\n"),
                (1, b"HTTP/1.1 302 Found\r\nLocation: https://mail.example.test/autodiscover/autodiscover.xml\r\nServer: Microsoft-IIS/10.0\r\nX-FEServer: EX1\r\nX-OWA-Version: 15\r\n\r\n"),
            ],
            vec![(0, b"POST /weird HTTP/1.1\r\nHost: owa.example.test\r\n\r\n")],
            vec![(0, b"GET /EWS/Exchange.asmx HTTP/1.1\r\n\r\n"), (1, b"HTTP/1.1 401 x\r\n")],
            vec![
                (1, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                (0, b"a1 STARTTLS\r\n"),
                (1, b"a1 OK Begin TLS negotiation now\r\n"),
                (0, &ch),
                (1, alert),
            ],
            vec![
                (1, b"+OK ready\r\n"),
                (0, b"STLS\r\n"),
                (1, b"+OK Begin TLS\r\n"),
                (0, &long),
            ],
        ];
        let out: Vec<Facts> = dialogues.iter().filter_map(|d| feed(d)).collect();
        assert_eq!(out.len(), dialogues.len(), "every dialogue gives facts");
        out
    }

    /// The look's fields written by hand are serde_json's over the same values, byte for
    /// byte (keys in name order, as serde_json's map keeps them), save that the wire strings
    /// are escaped like the rest of the JSON (C1 controls and bidi marks too).
    #[test]
    fn the_looks_fields_match_serde_json_and_are_escaped() {
        for (i, f) in looks().into_iter().enumerate() {
            let mut r = record(i as u64);
            r.look = Some(Box::new(f));
            let mut line = Vec::new();
            write_record(&mut line, &r, None).unwrap();
            let text = String::from_utf8(line).unwrap();
            assert_no_raw_hostile(&text);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let want = look_json(&f);
            assert!(!want.is_empty());
            for (key, value) in &want {
                assert_eq!(&v[*key], value, "look {i}: {key} in {text}");
                if !text.contains('\u{202e}')
                    && !serde_json::to_string(value).unwrap().contains('\u{202e}')
                {
                    let exact = format!("\"{key}\":{}", serde_json::to_string(value).unwrap());
                    assert!(text.contains(&exact), "look {i}: {exact} not in {text}");
                }
            }
            let mut bare = record(i as u64);
            bare.look = None;
            let mut base = Vec::new();
            write_record(&mut base, &bare, None).unwrap();
            let base: serde_json::Value = serde_json::from_slice(&base).unwrap();
            assert_eq!(
                v.as_object().unwrap().len(),
                base.as_object().unwrap().len() + want.len(),
                "look {i}: no other key"
            );
        }
    }
}

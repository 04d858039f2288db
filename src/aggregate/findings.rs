//! Exchange-level findings from the payload look (`flow::payload`): what an ESMTP inspection
//! did to SMTP (greeting masked, STARTTLS masked or missing on one path, commands
//! overwritten), mail the server refused, TLS handshakes that never got a ServerHello.
//! Facts only; the sentences are the report's (`report::words`).
//!
//! Connections are summed per conversation as they end (only those that carried a look: a
//! few dozen bytes each), then, when the report is made, classified like their
//! conversations and summed per finding kind, destination and port.

use super::rows::{Example, Finalized};
use super::verdict::Verdict;
use super::GroupKey;
use crate::classify::catalogue::Catalogue;
use crate::classify::rules::{classify, Class, Side};
use crate::classify::site::Site;
use crate::flow::payload::smtp::Command;
use crate::flow::payload::Facts;
use crate::flow::{ConnRecord, ConnState, EndReason};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// The kinds of finding, worst first (the report's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    SmtpRejected,
    StarttlsStripped,
    TlsBlockedByName,
    TlsHandshakeFailed,
    SmtpBannerMasked,
    SmtpCommandsMasked,
    IdleTimeoutKill,
}

impl Kind {
    /// The name in the JSON report (PRODUCT.md).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SmtpBannerMasked => "smtp_banner_masked",
            Kind::StarttlsStripped => "starttls_stripped",
            Kind::SmtpCommandsMasked => "smtp_commands_masked",
            Kind::SmtpRejected => "smtp_rejected",
            Kind::TlsHandshakeFailed => "tls_handshake_failed",
            Kind::TlsBlockedByName => "tls_blocked_by_name",
            Kind::IdleTimeoutKill => "idle_timeout_kill",
        }
    }
}

/// Who did what a finding describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Firewall,
    Server,
    /// The client ended it (a TLS alert of its own: it did not accept the server's hello).
    Client,
    Unknown,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Firewall => "firewall",
            By::Server => "server",
            By::Client => "client",
            By::Unknown => "unknown",
        }
    }
}

/// How STARTTLS went missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stripped {
    /// `XXXXXXXA` in its place: an inspection masked it.
    Masked,
    /// Offered by the same server on another path, not on this one.
    Missing,
}

/// One finding: a kind, where, how many connections, an example, and its particulars.
#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: Kind,
    pub port: u16,
    pub src: Side,
    pub dst: Side,
    pub count: u64,
    pub by: By,
    pub example: Example,
    pub example_ts: Timestamp,
    /// smtp_rejected: the command, the code and the server's text (raw; escaped where
    /// printed).
    pub rejection: Option<(Command, u16, String)>,
    /// smtp_banner_masked: the greeting as it arrived (raw).
    pub banner: Option<String>,
    /// starttls_stripped: how.
    pub stripped: Option<Stripped>,
    /// tls kinds: the server name asked for, and an alert (by the responder, level,
    /// description).
    pub sni: Option<String>,
    pub alert: Option<(bool, u8, u8)>,
    /// tls_blocked_by_name: names whose handshakes completed with the same server and port
    /// (raw, at most [`PASSING_MAX`]).
    pub passing_sni: Vec<String>,
    /// idle_timeout_kill: the bounds the gaps gave ([`super::idle`]).
    pub idle: Option<super::idle::Estimate>,
}

/// Names that passed kept per server and port.
pub const PASSING_MAX: usize = 8;

/// What splits one kind's connections into several findings: the reply code (smtp_rejected)
/// or the alert that ended a failed handshake (its sender in the high byte, 1 the server's,
/// 2 the client's, and its description: each has its own cause and fix), the server name
/// (TLS kinds), and for a failed handshake whether a device in between cut it (a reset whose
/// TTL is not the server's, or silence after the ClientHello): the candidates for
/// tls_blocked_by_name.
type Sub = (u16, String, bool);

/// Per conversation: what its connections' looks showed.
#[derive(Clone, Debug, Default)]
pub struct Acc {
    /// Per kind: connections, and the first one's example.
    kinds: BTreeMap<(Kind, Sub), (u64, Example, Timestamp, Particulars)>,
    /// Server names whose handshakes completed (ServerHello seen), at most [`PASSING_MAX`].
    passed: Vec<String>,
    /// EHLO answered with 250, and of those, STARTTLS offered.
    ehlo_ok: u64,
    starttls_offered: u64,
    /// EHLO answered without STARTTLS (not masked), and STARTTLS not used anyway.
    lacking: u64,
    no_starttls: Option<(Example, Timestamp)>,
    /// Sessions whose mail got a reply, and of those, refused.
    mail_replied: u64,
    mail_refused: u64,
}

#[derive(Clone, Debug, Default)]
struct Particulars {
    rejection: Option<(Command, u16, String)>,
    banner: Option<String>,
    stripped: Option<Stripped>,
    sni: Option<String>,
    alert: Option<(bool, u8, u8)>,
    by: Option<By>,
}

/// The looks of every conversation (only conversations with a look have an entry).
#[derive(Clone, Debug, Default)]
pub struct Looks {
    accs: super::FastMap<GroupKey, Acc>,
}

/// The Zeek id fields and state of `r`, as a finding's example (idle.rs uses it too).
pub(super) fn example(r: &ConnRecord) -> Example {
    Example {
        orig_h: r.orig.ip(),
        orig_p: r.orig.port(),
        resp_h: r.resp.ip(),
        resp_p: r.resp.port(),
        conn_state: r.conn_state,
        history: r.history,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Who reset a connection: in a capture on several interfaces that saw the responder's
/// packets cross the firewall, a RST never seen on the responder's side of it was made by the
/// firewall (TTLs cannot tell there: the server's packets show one TTL before the firewall and
/// another after it); otherwise the responder's side with its usual TTL is the server, another
/// TTL a device in between.
fn reset_by(r: &ConnRecord) -> By {
    let s = &r.resp_stats;
    if matches!(r.rst_by, Some((crate::flow::Side::Resp, _)))
        && r.rst_ifaces != 0
        && s.ifaces.count_ones() >= 2
    {
        return if r.rst_ifaces & crate::flow::iface_bit(s.first_iface) == 0 {
            By::Firewall
        } else {
            By::Server
        };
    }
    match r.rst_by {
        Some((crate::flow::Side::Resp, Some(ttl))) => match r.resp_stats.first_ttl {
            Some(t) if t == ttl => By::Server,
            Some(_) => By::Firewall,
            None => By::Unknown,
        },
        _ => By::Unknown,
    }
}

impl Acc {
    fn hit(&mut self, kind: Kind, r: &ConnRecord, p: impl FnOnce() -> Particulars) {
        self.hit_sub(kind, (0, String::new(), false), r, p);
    }

    fn hit_sub(&mut self, kind: Kind, sub: Sub, r: &ConnRecord, p: impl FnOnce() -> Particulars) {
        let e = self
            .kinds
            .entry((kind, sub))
            .or_insert_with(|| (0, example(r), r.ts, p()));
        e.0 += 1;
    }

    fn add(&mut self, r: &ConnRecord, f: &Facts) {
        match f {
            Facts::Smtp(s, tls) => {
                if let Some(t) = tls {
                    // The handshake after STARTTLS: judged like one on 443.
                    self.tls(r, t);
                }
                if s.banner_masked {
                    self.hit(Kind::SmtpBannerMasked, r, || Particulars {
                        banner: Some(text(s.banner.bytes())),
                        by: Some(By::Firewall),
                        ..Particulars::default()
                    });
                }
                if s.commands_masked {
                    self.hit(Kind::SmtpCommandsMasked, r, || Particulars {
                        by: Some(By::Firewall),
                        ..Particulars::default()
                    });
                }
                if s.starttls_masked {
                    self.hit(Kind::StarttlsStripped, r, || Particulars {
                        stripped: Some(Stripped::Masked),
                        by: Some(By::Firewall),
                        ..Particulars::default()
                    });
                }
                if s.ehlo_ok {
                    self.ehlo_ok += 1;
                    if s.starttls_offered {
                        self.starttls_offered += 1;
                    } else if !s.starttls_masked && !s.starttls {
                        self.lacking += 1;
                        if self.no_starttls.is_none() {
                            self.no_starttls = Some((example(r), r.ts));
                        }
                    }
                }
                if !s.codes().is_empty() {
                    self.mail_replied += 1;
                    if let Some((cmd, code)) = s.rejected {
                        if !s.message_accepted {
                            self.mail_refused += 1;
                        }
                        let sub = (code, String::new(), false);
                        self.hit_sub(Kind::SmtpRejected, sub, r, || Particulars {
                            rejection: Some((cmd, code, text(s.reject_text.bytes()))),
                            by: Some(By::Server),
                            ..Particulars::default()
                        });
                    }
                }
            }
            // IMAP or POP3: the handshake after STARTTLS (STLS), judged like one on 993/995.
            Facts::Mail(_, Some(t)) | Facts::Tls(t) => self.tls(r, t),
            Facts::Mail(_, None) | Facts::Http(_) => {}
        }
    }

    /// A TLS handshake: a name that passed, or a failed handshake.
    fn tls(&mut self, r: &ConnRecord, t: &crate::flow::payload::TlsFacts) {
        let ended = matches!(r.end, EndReason::Closed)
            || matches!(
                r.conn_state,
                ConnState::RSTO | ConnState::RSTR | ConnState::SF
            );
        // The server's side seen: it answered the handshake, and either its bytes
        // were read (no ServerHello among them) or it sent none. A capture that cut
        // the server's payload away (a short snap length) or saw one direction only
        // tells nothing.
        let answered = r.history.contains(b'h') || r.history.contains(b'H');
        let server_known = t.server_seen || r.resp_bytes <= u64::from(t.resp_start);
        // Borrowed unless the name is not UTF-8: no allocation for a name already kept.
        let sni = String::from_utf8_lossy(t.sni.bytes());
        if !t.aborted() && !sni.is_empty() {
            if self.passed.len() < PASSING_MAX && !self.passed.iter().any(|p| *p == sni) {
                self.passed.push(sni.into_owned());
            }
        } else if t.client_hello && t.aborted() && ended && answered && server_known {
            // An alert names who ended the handshake: after a ServerHello, the client
            // gave up on it (the server's certificate, say); before one, the server
            // refused the ClientHello.
            let by = match t.alert {
                Some((true, ..)) => By::Server,
                Some((false, ..)) if t.server_hello => By::Client,
                _ => reset_by(r),
            };
            let alert = t.alert.map_or(0, |(resp, _, d)| {
                u16::from(if resp { 1u8 } else { 2 }) << 8 | u16::from(d)
            });
            // Cut by a device in between: its reset (TTL not the server's), or no
            // byte, FIN or RST from the server after the ClientHello and no alert (a
            // server that closes on a name it does not serve sends its FIN).
            let cut = t.alert.is_none()
                && (by == By::Firewall
                    || (r.resp_bytes == 0
                        && !r.history.contains(b'f')
                        && r.rst_by.is_none_or(|(s, _)| s != crate::flow::Side::Resp)));
            let sni = sni.into_owned();
            let sub = (alert, sni.clone(), cut && !sni.is_empty());
            self.hit_sub(Kind::TlsHandshakeFailed, sub, r, || Particulars {
                sni: (!sni.is_empty()).then_some(sni),
                alert: t.alert,
                by: Some(by),
                ..Particulars::default()
            });
        }
    }
}

impl Looks {
    /// A finished connection (those without a look cost nothing).
    pub fn add(&mut self, key: &GroupKey, r: &ConnRecord) {
        if let Some(f) = &r.look {
            self.accs.entry(*key).or_default().add(r, f);
        }
    }

    /// The findings, worst first, and the verdicts of expected rows whose sessions opened but
    /// whose mail the server refused: "rejected" when it refused every session's mail,
    /// "flaky" when some.
    pub fn apply(&self, site: &Site, cat: &Catalogue, fin: &mut Finalized) {
        type At = (Kind, u16, Side, Side, u16, String);
        let mut out: BTreeMap<At, Finding> = BTreeMap::new();
        // STARTTLS offered by a server on some paths: the paths without it lost it.
        let mut offers: HashMap<(IpAddr, u16), u64> = HashMap::new();
        // Server names whose handshakes completed, per server and port.
        let mut passed: HashMap<(IpAddr, u16), Vec<String>> = HashMap::new();
        for (k, a) in &self.accs {
            *offers.entry((k.resp, k.port)).or_default() += a.starttls_offered;
            let names = passed.entry((k.resp, k.port)).or_default();
            for n in &a.passed {
                if !names.contains(n) && names.len() < PASSING_MAX {
                    names.push(n.clone());
                }
            }
        }
        for names in passed.values_mut() {
            names.sort();
        }
        let mut keys: Vec<&GroupKey> = self.accs.keys().collect();
        keys.sort();
        for k in keys {
            let a = &self.accs[k];
            let (src, dst, row) = match classify(k, site, cat) {
                Class::Expected(i, s, d) => (s, d, Some((i, s, d))),
                Class::Unexpected { src, dst, .. } => (src, dst, None),
                Class::Unrestricted(_, s, d) => (s, d, None),
                Class::Unrelated => continue,
            };
            let none = Vec::new();
            let names = passed.get(&(k.resp, k.port)).unwrap_or(&none);
            let mut put =
                |kind: Kind, sub: &Sub, n: u64, ex: &Example, ts: Timestamp, p: &Particulars| {
                    // A handshake cut by a device in between for a name while other names to the
                    // same server and port completed: blocked by name.
                    let (kind, by, passing) = if kind == Kind::TlsHandshakeFailed
                        && sub.2
                        && !names.is_empty()
                        && !names.contains(&sub.1)
                    {
                        (Kind::TlsBlockedByName, Some(By::Firewall), names.clone())
                    } else {
                        (kind, p.by, Vec::new())
                    };
                    let f = out
                        .entry((kind, k.port, src, dst, sub.0, sub.1.clone()))
                        .or_insert_with(|| Finding {
                            kind,
                            port: k.port,
                            src,
                            dst,
                            count: 0,
                            by: by.unwrap_or(By::Unknown),
                            example: *ex,
                            example_ts: ts,
                            rejection: p.rejection.clone(),
                            banner: p.banner.clone(),
                            stripped: p.stripped,
                            sni: p.sni.clone(),
                            alert: p.alert,
                            passing_sni: passing,
                            idle: None,
                        });
                    f.count += n;
                    if ts < f.example_ts {
                        f.example = *ex;
                        f.example_ts = ts;
                    }
                };
            for ((kind, sub), (n, ex, ts, p)) in &a.kinds {
                put(*kind, sub, *n, ex, *ts, p);
            }
            let missing = a.lacking;
            if missing > 0 && offers.get(&(k.resp, k.port)).copied().unwrap_or(0) > 0 {
                if let Some((ex, ts)) = &a.no_starttls {
                    let p = Particulars {
                        stripped: Some(Stripped::Missing),
                        by: Some(By::Firewall),
                        ..Particulars::default()
                    };
                    let sub = (0, String::new(), false);
                    put(Kind::StarttlsStripped, &sub, missing, ex, *ts, &p);
                }
            }
            if let Some((i, s, d)) = row {
                if a.mail_refused > 0 {
                    if let Some(r) = fin
                        .expected
                        .iter_mut()
                        .find(|r| r.role == i && r.src == s && r.dst == d)
                    {
                        r.mail_replied += a.mail_replied;
                        r.mail_refused += a.mail_refused;
                    }
                }
            }
        }
        for r in &mut fin.expected {
            if r.mail_refused > 0 && r.verdict == Verdict::Ok {
                r.verdict = if r.mail_refused >= r.mail_replied {
                    Verdict::Rejected
                } else {
                    Verdict::Flaky
                };
            }
        }
        fin.findings = out.into_values().collect();
        fin.findings.sort_by_key(|f| {
            // Of two refusals as common, the permanent one (5xx) first.
            let code = f.rejection.as_ref().map_or(0, |r| r.1);
            (f.kind, std::cmp::Reverse(f.count), std::cmp::Reverse(code))
        });
    }
}

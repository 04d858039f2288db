//! The payload look: each TCP connection's first bytes each way, read by small incremental
//! parsers into Exchange-level facts (SMTP greeting and EHLO reply, IMAP and POP3 greeting
//! and STARTTLS, TLS ClientHello and ServerHello, HTTP request and status lines).
//!
//! # Budget
//! At most [`BUDGET`] bytes of each direction are looked at (the first 2 KiB of its stream:
//! enough for a greeting, an EHLO reply, a ClientHello with a post-quantum key share, an
//! HTTP request's first lines), and less when the parser has what it wants: then that
//! direction is not looked at again, at no cost beyond a flag. A direction stops too at a
//! gap (a segment beyond the next expected byte: lost, or not captured) and where the
//! snap length cut the payload.
//!
//! # Memory
//! A connection carries one pointer for it ([`Look`], boxed). The box is allocated at the
//! first payload byte within the budget of a connection whose start was seen, once per
//! connection, never per packet, and only for connections that carry payload: 512 bytes
//! (per direction a 96-byte line buffer or a TLS walk's counters, 44 bytes, sharing its
//! room; and the largest protocol state, SMTP's: its dialogue and facts, 192 bytes, with the
//! facts of the TLS handshake STARTTLS hands over to, 108: about 100 bytes more than before
//! STARTTLS was followed, by the sizes of the parts; IMAP's and POP3's state, with the same
//! TLS facts, is smaller than SMTP's and left the size as it was). The
//! facts keep bounded strings: SNI 64, ALPN 32, greeting 64, reply text 80, Host 64, path 96
//! bytes, an IMAP tag 16. The size is pinned by a test (`size`). A
//! connection whose first bytes are no SMTP, IMAP, POP3, TLS or HTTP drops its box at once.
//!
//! Which protocol is told by the first bytes, not by ports: a server that greets with
//! `ddd `/`ddd-` is SMTP, one that greets with `* OK` is IMAP, with `+OK` POP3, a client that
//! opens with a TLS handshake record is TLS, a client that opens with an HTTP method is HTTP.
//! (The server's first segment must hold the greeting's first four bytes.)
//!
//! # STARTTLS
//! An SMTP, IMAP or POP3 connection's directions hand over to the TLS record walk where the
//! handshake starts: the client's after its `STARTTLS` line (IMAP: `<tag> STARTTLS`; POP3:
//! `STLS`) when its next byte opens a handshake record (a server that refused gets more lines
//! instead: SMTP's 454, IMAP's `<tag> BAD`/`NO`, POP3's `-ERR`), the server's after its
//! positive reply to it (SMTP's 220, IMAP's `<tag> OK`, POP3's `+OK`); both within the same
//! [`BUDGET`], counted from the stream's start (the client's commands and a ClientHello
//! usually fit; if not, the look stops there). The facts are then the protocol's and, once
//! the client's TLS bytes were read, the handshake's ([`Facts::Smtp`], [`Facts::Mail`]): the
//! aggregator judges that handshake like one on 443, 993 or 995. An IMAP or POP3 client that
//! logs in in the clear (`LOGIN`, `AUTHENTICATE`; `USER`, `PASS`, `APOP`, `AUTH`) ends the
//! look: no STARTTLS can follow.

pub mod gate;
pub mod http;
pub mod mail;
pub mod smtp;
pub mod text;
pub mod tls;

pub use gate::Gate;
pub use http::HttpFacts;
pub use mail::MailFacts;
pub use smtp::SmtpFacts;
pub use text::Text;
pub use tls::TlsFacts;

/// Bytes of each direction's stream looked at, at most.
pub const BUDGET: u32 = 2048;

/// What a connection's first bytes showed, handed on in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facts {
    /// SMTP, and the TLS handshake after STARTTLS where the client's TLS bytes were seen.
    Smtp(SmtpFacts, Option<TlsFacts>),
    /// IMAP or POP3, and the TLS handshake after STARTTLS (STLS) where the client's TLS
    /// bytes were seen.
    Mail(MailFacts, Option<TlsFacts>),
    Tls(TlsFacts),
    Http(HttpFacts),
}

#[derive(Clone, Copy, Debug)]
enum App {
    Unknown,
    /// SMTP, and the TLS handshake its directions hand over to after STARTTLS.
    Smtp {
        smtp: smtp::Smtp,
        tls: TlsFacts,
    },
    /// IMAP or POP3, and the TLS handshake after STARTTLS (STLS).
    Mail {
        mail: mail::Mail,
        tls: TlsFacts,
    },
    Tls {
        facts: TlsFacts,
    },
    Http(http::Http),
    /// Not a protocol looked into.
    Off,
}

/// One connection's look (see the module's documentation).
#[derive(Clone, Debug)]
pub struct Look {
    app: App,
    /// The next stream offset expected per direction (0: originator, 1: responder).
    next: [u32; 2],
    /// Stopped looking at this direction.
    done: [bool; 2],
    /// How each direction's bytes are read.
    rd: [Reader; 2],
}

/// How a direction's bytes are read: a line buffer and a TLS walk share its room (a
/// direction that STARTTLS hands over needs no more lines).
#[derive(Clone, Copy, Debug)]
enum Reader {
    /// Lines (SMTP, HTTP), through a buffer (a line longer than it keeps its start).
    Lines(Text<96>),
    /// The client sent STARTTLS (SMTP, IMAP) or STLS (POP3): its next bytes are a TLS
    /// record (the server accepted) or more lines (the server refused).
    AfterStartTls,
    /// TLS records: a TLS connection's, or an SMTP, IMAP or POP3 connection's after STARTTLS.
    Tls(tls::TlsDir),
}

impl App {
    /// The facts of the TLS handshake STARTTLS hands over to (SMTP, IMAP, POP3).
    fn starttls_facts(&mut self) -> Option<&mut TlsFacts> {
        match self {
            App::Smtp { tls, .. } | App::Mail { tls, .. } => Some(tls),
            _ => None,
        }
    }
}

impl Reader {
    fn is_tls(&self) -> bool {
        matches!(self, Reader::Tls(_))
    }
}

impl Look {
    pub fn new() -> Look {
        Look {
            app: App::Unknown,
            next: [0; 2],
            done: [false; 2],
            rd: [Reader::Lines(Text::default()); 2],
        }
    }

    /// Nothing more will be looked at.
    pub fn finished(&self) -> bool {
        matches!(self.app, App::Off) || (self.done[0] && self.done[1])
    }

    /// The facts so far (None: not a protocol looked into, or nothing learnt).
    pub fn facts(&self) -> Option<Facts> {
        match &self.app {
            App::Smtp { smtp, tls, .. } if smtp.confirmed => {
                Some(Facts::Smtp(smtp.facts, self.rd[0].is_tls().then_some(*tls)))
            }
            App::Smtp { .. } => None,
            App::Mail { mail, tls } => {
                Some(Facts::Mail(mail.facts, self.rd[0].is_tls().then_some(*tls)))
            }
            App::Tls { facts, .. } => Some(Facts::Tls(*facts)),
            App::Http(h) => Some(Facts::Http(h.facts)),
            App::Unknown | App::Off => None,
        }
    }

    /// Originator and responder swapped places.
    pub fn flip(&mut self) {
        // The facts are by role (client, server): a flip after the look started means the
        // guess of who is who was wrong; stop rather than mix them.
        self.app = App::Off;
    }

    /// Payload of direction `d` (0 originator, 1 responder) starting at stream offset `off`
    /// (0 = the first byte after the SYN); `complete`: the whole segment was captured.
    pub fn feed(&mut self, d: usize, off: u32, data: &[u8], complete: bool) {
        let (Some(next), Some(done)) = (self.next.get(d).copied(), self.done.get(d).copied())
        else {
            return;
        };
        if done || matches!(self.app, App::Off) {
            return;
        }
        let end = off.wrapping_add(data.len() as u32);
        // A retransmission of bytes already read, or a gap.
        if end.wrapping_sub(next) as i32 <= 0 {
            return;
        }
        if off.wrapping_sub(next) as i32 > 0 || off >= BUDGET {
            self.stop(d);
            return;
        }
        let skip = next.wrapping_sub(off) as usize;
        let room = BUDGET.saturating_sub(next) as usize;
        let Some(data) = data.get(skip..) else {
            return;
        };
        let data = data.get(..room.min(data.len())).unwrap_or(data);
        if let Some(n) = self.next.get_mut(d) {
            *n = next.wrapping_add(data.len() as u32);
        }
        if matches!(self.app, App::Unknown) {
            self.app = if next != 0 {
                App::Off
            } else if d == 1 && smtp::sniff_server(data) {
                App::Smtp {
                    smtp: smtp::Smtp::default(),
                    tls: TlsFacts::default(),
                }
            } else if let Some(proto) = (d == 1).then(|| mail::sniff_server(data)).flatten() {
                App::Mail {
                    mail: mail::Mail::new(proto),
                    tls: TlsFacts::default(),
                }
            } else if d == 0 && tls::sniff_client(data) {
                self.rd = [Reader::Tls(tls::TlsDir::default()); 2];
                App::Tls {
                    facts: TlsFacts::default(),
                }
            } else if d == 0 && http::sniff_client(data) {
                App::Http(http::Http::default())
            } else {
                App::Off
            };
        }
        let more = match &mut self.app {
            App::Tls { facts } => match self.rd.get_mut(d) {
                Some(Reader::Tls(t)) => t.feed(d == 1, facts, data),
                _ => false,
            },
            App::Smtp { .. } | App::Mail { .. } => self.starttls_lines(d, next, data),
            App::Http(_) => self.lines(d, data).0,
            App::Unknown | App::Off => false,
        };
        let full = self.next.get(d).is_some_and(|&n| n >= BUDGET);
        if !more || !complete || full {
            self.stop(d);
        }
    }

    fn stop(&mut self, d: usize) {
        if let Some(x) = self.done.get_mut(d) {
            *x = true;
        }
    }

    /// SMTP, IMAP or POP3 bytes of direction `d` starting at stream offset `off`: lines
    /// until STARTTLS (STLS) hands the direction over to the TLS record walk (at the byte
    /// after the client's STARTTLS line if a TLS record follows it, after the server's
    /// positive reply to it); false when nothing more is wanted from this direction.
    fn starttls_lines(&mut self, d: usize, off: u32, mut data: &[u8]) -> bool {
        let mut off = off;
        loop {
            let Some(rd) = self.rd.get_mut(d) else {
                return false;
            };
            match rd {
                Reader::Tls(t) => {
                    let Some(tls) = self.app.starttls_facts() else {
                        return false;
                    };
                    return t.feed(d == 1, tls, data);
                }
                Reader::AfterStartTls if !data.is_empty() => {
                    // A handshake record; SMTP, IMAP and POP3 text never start with 0x16.
                    *rd = if data.first() == Some(&0x16) {
                        Reader::Tls(tls::TlsDir::default())
                    } else {
                        Reader::Lines(Text::default())
                    };
                }
                Reader::AfterStartTls => return true,
                Reader::Lines(_) => {
                    let (more, used) = self.lines(d, data);
                    let end = off.wrapping_add(used as u32);
                    if let (1, Some(Reader::Tls(_)), Some(tls)) =
                        (d, self.rd.get(d), self.app.starttls_facts())
                    {
                        tls.resp_start = u16::try_from(end).unwrap_or(u16::MAX);
                    }
                    if !more || used >= data.len() {
                        return more;
                    }
                    // Handed over within this segment: the rest is the next mode's.
                    data = data.get(used..).unwrap_or_default();
                    off = end;
                }
            }
        }
    }

    /// Splits `data` into lines through direction `d`'s line buffer (a line longer than the
    /// buffer keeps its start) and hands each to the parser; false when the parser wants no
    /// more of this direction, and the bytes used (fewer than `data`'s when STARTTLS handed
    /// the direction over to TLS after a line).
    fn lines(&mut self, d: usize, data: &[u8]) -> (bool, usize) {
        let total = data.len();
        let mut data = data;
        let Some(Reader::Lines(buf)) = self.rd.get_mut(d) else {
            return (false, 0);
        };
        while !data.is_empty() {
            let (part, rest, eol) = match data.iter().position(|&c| c == b'\n') {
                Some(i) => (
                    data.get(..=i).unwrap_or(data),
                    data.get(i + 1..).unwrap_or_default(),
                    true,
                ),
                None => (data, &[][..], false),
            };
            data = rest;
            if let (1, App::Mail { mail, .. }) = (d, &mut self.app) {
                mail.scan(part);
            }
            buf.push(part);
            if !eol {
                break;
            }
            let line = *buf;
            *buf = Text::default();
            let next = match &mut self.app {
                App::Smtp { smtp: s, .. } => Some(if d == 0 {
                    s.client_line(line.bytes())
                } else {
                    s.server_line(line.bytes())
                }),
                App::Mail { mail: m, .. } => Some(if d == 0 {
                    m.client_line(line.bytes())
                } else {
                    m.server_line(line.bytes())
                }),
                _ => None,
            };
            let more = match (next, &mut self.app) {
                (Some(n), _) => {
                    match n {
                        smtp::Next::Stop => {
                            // Not the protocol, or nothing more to learn: both directions.
                            self.done = [true; 2];
                            return (false, total - data.len());
                        }
                        smtp::Next::Tls => {
                            if let Some(r) = self.rd.get_mut(d) {
                                *r = if d == 0 {
                                    Reader::AfterStartTls
                                } else {
                                    Reader::Tls(tls::TlsDir::default())
                                };
                            }
                            return (true, total - data.len());
                        }
                        smtp::Next::More => true,
                    }
                }
                (None, App::Http(h)) => {
                    if d == 0 {
                        h.client_line(line.bytes(), line.is_cut())
                    } else {
                        h.server_line(line.bytes())
                    }
                }
                _ => false,
            };
            if !more {
                return (false, total - data.len());
            }
        }
        (true, total)
    }
}

impl Default for Look {
    fn default() -> Self {
        Look::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn feed_all(l: &mut Look, parts: &[(usize, &[u8])]) {
        let mut off = [0u32; 2];
        for &(d, b) in parts {
            l.feed(d, off[d], b, true);
            off[d] += b.len() as u32;
        }
    }

    fn smtp(l: &Look) -> SmtpFacts {
        match l.facts() {
            Some(Facts::Smtp(s, _)) => s,
            other => panic!("not smtp: {other:?}"),
        }
    }

    #[test]
    fn an_asa_masked_smtp_session() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (1, b"220 ******************************************\r\n"),
                (0, b"EHLO client.example\r\n"),
                (
                    1,
                    b"250-mail.example.com\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n",
                ),
                (0, b"XXXX\r\n"),
                (1, b"500 5.5.2 Error: command not recognized XXXX\r\n"),
                (
                    0,
                    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n",
                ),
                (
                    1,
                    b"250 2.1.0 Ok\r\n550 5.1.1 <b@example.com>: Recipient address rejected\r\n",
                ),
            ],
        );
        let s = smtp(&l);
        assert_eq!(s.banner_code, 220);
        assert!(s.banner_masked);
        assert!(s.ehlo_ok && s.starttls_masked && !s.starttls_offered);
        assert!(s.commands_masked);
        assert_eq!(s.codes(), &[250, 550]);
        assert_eq!(s.rejected, Some((smtp::Command::Rcpt, 550)));
        assert!(s
            .reject_text
            .to_string_lossy()
            .starts_with("5.1.1 <b@example.com>"));
    }

    /// Seen from the client's side of an ESMTP inspection (the esmtp-inspection sample's
    /// third session): the commands arrive intact, the server got `XXXX` and says so only by
    /// answering a verb its own EHLO reply listed with 500.
    #[test]
    fn listed_verbs_refused_as_unknown_are_masked_commands() {
        let session = |verb: &'static [u8], listed: &'static [u8]| {
            let mut l = Look::new();
            feed_all(
                &mut l,
                &[
                    (1, b"220 mail.example.test ESMTP\r\n"),
                    (0, b"EHLO c\r\n"),
                    (1, listed),
                    (0, verb),
                    (1, b"500 5.5.2 Error: command not recognized\r\n"),
                ],
            );
            smtp(&l).commands_masked
        };
        let ehlo: &[u8] = b"250-mail.example.test\r\n250-ETRN\r\n250 XXXXXXXA\r\n";
        assert!(session(b"ETRN example.net\r\n", ehlo));
        assert!(session(b"STARTTLS\r\n", ehlo));
        // Not listed: the server may well not know it.
        assert!(!session(
            b"ETRN example.net\r\n",
            b"250-mail.example.test\r\n250 SIZE 1\r\n"
        ));
        assert!(!session(
            b"STARTTLS\r\n",
            b"250-mail.example.test\r\n250 SIZE 1\r\n"
        ));
        assert!(!session(b"FOO\r\n", ehlo));
    }

    #[test]
    fn a_clear_smtp_session_that_starts_tls_and_split_lines() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (
                    1,
                    b"220 mail.example.com Microsoft ESMTP MAIL Service ready\r",
                ),
                (1, b"\n"),
                (0, b"EHLO c\r\n"),
                (1, b"250-mail.example.com Hello\r\n250-STARTT"),
                (1, b"LS\r\n250 SIZE 37748736\r\n"),
                (0, b"STARTTLS\r\n"),
                (1, b"220 2.0.0 SMTP server ready\r\n"),
                (0, b"\x16\x03\x01\x02\x00\x01"),
            ],
        );
        let s = smtp(&l);
        assert!(!s.banner_masked);
        assert!(s.banner.to_string_lossy().contains("Microsoft ESMTP"));
        assert!(s.starttls_offered && s.starttls_sent && s.starttls);
        assert!(s.rejected.is_none() && !s.commands_masked);
        // The client's record was read as TLS (its header only: no hello in it yet).
        let Some(Facts::Smtp(_, Some(t))) = l.facts() else {
            panic!("no tls after STARTTLS: {:?}", l.facts());
        };
        assert!(!t.client_hello && !t.server_seen);
    }

    /// The SMTP dialogue up to the server's 220 to STARTTLS, then the handshake bytes.
    fn starttls(l: &mut Look, ch: &[u8], server_tls: &[u8]) -> [u32; 2] {
        let mut off = [0u32; 2];
        let parts: [(usize, &[u8]); 6] = [
            (1, b"220 mail.example.com ESMTP Postfix\r\n"),
            (0, b"EHLO client.example\r\n"),
            (
                1,
                b"250-mail.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            ),
            (0, b"STARTTLS\r\n"),
            (1, b"220 2.0.0 Ready to start TLS\r\n"),
            (0, ch),
        ];
        for (d, b) in parts {
            l.feed(d, off[d], b, true);
            off[d] += b.len() as u32;
        }
        if !server_tls.is_empty() {
            l.feed(1, off[1], server_tls, true);
            off[1] += server_tls.len() as u32;
        }
        off
    }

    #[test]
    fn starttls_hands_both_directions_over_to_the_tls_walk() {
        let ch = client_hello("mail.example.com", &["smtp"]);
        let mut l = Look::new();
        let off = starttls(&mut l, &ch, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0]);
        let Some(Facts::Smtp(s, Some(t))) = l.facts() else {
            panic!("not smtp with tls: {:?}", l.facts());
        };
        assert!(s.starttls_offered && s.starttls_sent && s.starttls);
        assert!(t.client_hello && t.server_hello && t.server_seen);
        assert_eq!(t.sni.to_string_lossy(), "mail.example.com");
        assert_eq!(t.alpn.to_string_lossy(), "smtp");
        assert!(!t.aborted() && t.alert.is_none());
        // The server's TLS starts after its 220 reply to STARTTLS.
        assert_eq!(u32::from(t.resp_start), off[1] - 9);

        // The ClientHello split over segments, one of them carrying the STARTTLS line too
        // (no client waits like that, but the walk must start at the right byte).
        for cut in [1, 5, 50, ch.len() - 1] {
            let mut l = Look::new();
            let mut a = b"STARTTLS\r\n".to_vec();
            a.extend_from_slice(&ch[..cut]);
            let mut off = [0u32; 2];
            let parts: [(usize, &[u8]); 6] = [
                (1, b"220 mail ESMTP\r\n"),
                (0, b"EHLO c\r\n"),
                (1, b"250-mail\r\n250 STARTTLS\r\n"),
                (0, &a),
                (1, b"220 go ahead\r\n"),
                (0, &ch[cut..]),
            ];
            for (d, b) in parts {
                l.feed(d, off[d], b, true);
                off[d] += b.len() as u32;
            }
            let Some(Facts::Smtp(_, Some(t))) = l.facts() else {
                panic!("cut {cut}: {:?}", l.facts());
            };
            assert_eq!(t.sni.to_string_lossy(), "mail.example.com", "cut {cut}");
            assert!(!t.server_seen && t.aborted(), "cut {cut}");
        }
    }

    #[test]
    fn a_server_alert_after_a_starttls_client_hello() {
        let ch = client_hello("mail.example.com", &[]);
        let mut l = Look::new();
        // handshake_failure (40), fatal.
        starttls(&mut l, &ch, &[0x15, 3, 3, 0, 2, 2, 40]);
        let Some(Facts::Smtp(s, Some(t))) = l.facts() else {
            panic!("not smtp with tls: {:?}", l.facts());
        };
        assert!(s.starttls);
        assert!(t.client_hello && !t.server_hello && t.server_seen && t.aborted());
        assert_eq!(t.alert, Some((true, 2, 40)));
        // Silence after the ClientHello: known silent (nothing after the 220 was read).
        let mut l = Look::new();
        starttls(&mut l, &ch, &[]);
        let Some(Facts::Smtp(_, Some(t))) = l.facts() else {
            panic!("not smtp with tls");
        };
        assert!(t.client_hello && !t.server_seen && t.aborted());
        assert!(t.resp_start > 0);
    }

    #[test]
    fn a_refused_starttls_keeps_reading_smtp() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (1, b"220 mail ESMTP\r\n"),
                (0, b"EHLO c\r\n"),
                (1, b"250-mail\r\n250 STARTTLS\r\n"),
                (0, b"STARTTLS\r\n"),
                (1, b"454 4.7.0 TLS not available due to local problem\r\n"),
                (0, b"MAIL FROM:<a@example.com>\r\n"),
                (1, b"250 2.1.0 Ok\r\n"),
            ],
        );
        let Some(Facts::Smtp(s, None)) = l.facts() else {
            panic!("{:?}", l.facts());
        };
        assert!(s.starttls_sent && !s.starttls);
        assert_eq!(s.codes(), &[250]);
    }

    /// A dialogue's bytes after the server's answer to STARTTLS: the client's, then the
    /// server's (either left out when empty).
    fn then(v: &mut Vec<(usize, Vec<u8>)>, after: &[u8], server_tls: &[u8]) {
        if !after.is_empty() {
            v.push((0, after.to_vec()));
        }
        if !server_tls.is_empty() {
            v.push((1, server_tls.to_vec()));
        }
    }

    /// An IMAP dialogue up to the server's answer to STARTTLS (`answer`), with dovecot's
    /// greeting (its capability list longer than the line buffer), then the client's bytes.
    fn imap(answer: &'static [u8], after: &[u8], server_tls: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut v: Vec<(usize, Vec<u8>)> = vec![
            (1, b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n".to_vec()),
            (0, b"A001 CAPABILITY\r\n".to_vec()),
            (1, b"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED\r\nA001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n".to_vec()),
            (0, b"A002 STARTTLS\r\n".to_vec()),
            (1, answer.to_vec()),
        ];
        then(&mut v, after, server_tls);
        v
    }

    /// A POP3 dialogue with CAPA and STLS, the same way.
    fn pop3(answer: &'static [u8], after: &[u8], server_tls: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut v: Vec<(usize, Vec<u8>)> = vec![
            (1, b"+OK Dovecot (Debian) ready.\r\n".to_vec()),
            (0, b"CAPA\r\n".to_vec()),
            (1, b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n".to_vec()),
            (0, b"STLS\r\n".to_vec()),
            (1, answer.to_vec()),
        ];
        then(&mut v, after, server_tls);
        v
    }

    /// The dialogue fed whole, then (the same dialogue) with each message cut in two at
    /// every byte, then a byte a segment: the facts must be the same every time. The
    /// server's first segment tells the protocol, as for SMTP and TLS: at least its first
    /// four bytes (`* OK`, `+OK `).
    fn mail_facts_every_split(parts: &[(usize, Vec<u8>)]) -> Option<Facts> {
        let run = |cut: Option<(usize, usize)>, bytewise: bool| {
            let mut l = Look::new();
            let mut off = [0u32; 2];
            for (i, (d, b)) in parts.iter().enumerate() {
                let mut segs: Vec<&[u8]> = vec![b];
                if bytewise {
                    let head = if i == 0 { 4 } else { 1 };
                    segs = vec![&b[..head]];
                    segs.extend(b[head..].chunks(1));
                } else if let Some((ci, c)) = cut {
                    if ci == i {
                        segs = vec![&b[..c], &b[c..]];
                    }
                }
                for s in segs {
                    l.feed(*d, off[*d], s, true);
                    off[*d] += s.len() as u32;
                }
            }
            l.facts()
        };
        let whole = run(None, false);
        for (i, (_, b)) in parts.iter().enumerate() {
            for c in if i == 0 { 4 } else { 1 }..b.len() {
                assert_eq!(run(Some((i, c)), false), whole, "message {i} cut at {c}");
            }
        }
        assert_eq!(run(None, true), whole, "a byte a segment");
        whole
    }

    #[test]
    fn imap_starttls_accepted_then_a_client_hello_with_sni() {
        let ch = client_hello("mail.example.com", &["imap"]);
        let sh = [0x16, 3, 3, 0, 4, 2, 0, 0, 0];
        let f = mail_facts_every_split(&imap(b"A002 OK Begin TLS negotiation now.\r\n", &ch, &sh));
        let Some(Facts::Mail(m, Some(t))) = f else {
            panic!("not imap with tls: {f:?}");
        };
        assert_eq!(m.proto, mail::Proto::Imap);
        assert!(m.starttls_offered && m.starttls_sent && m.starttls);
        assert!(t.client_hello && t.server_hello && t.server_seen && !t.aborted());
        assert_eq!(t.sni.to_string_lossy(), "mail.example.com");
        assert_eq!(t.alpn.to_string_lossy(), "imap");
    }

    #[test]
    fn pop3_stls_accepted_then_a_client_hello_with_sni() {
        let ch = client_hello("mail.example.com", &[]);
        let sh = [0x16, 3, 3, 0, 4, 2, 0, 0, 0];
        let f = mail_facts_every_split(&pop3(b"+OK Begin TLS negotiation now.\r\n", &ch, &sh));
        let Some(Facts::Mail(m, Some(t))) = f else {
            panic!("not pop3 with tls: {f:?}");
        };
        assert_eq!(m.proto, mail::Proto::Pop3);
        assert!(m.starttls_offered && m.starttls_sent && m.starttls);
        assert!(t.server_hello && !t.aborted());
        assert_eq!(t.sni.to_string_lossy(), "mail.example.com");
    }

    #[test]
    fn a_server_alert_after_an_imap_or_pop3_starttls_client_hello() {
        let ch = client_hello("mail.example.com", &[]);
        // handshake_failure (40), fatal, from the server.
        let alert = [0x15, 3, 3, 0, 2, 2, 40];
        for parts in [
            imap(b"A002 OK Begin TLS negotiation now.\r\n", &ch, &alert),
            pop3(b"+OK Begin TLS negotiation now.\r\n", &ch, &alert),
        ] {
            let f = mail_facts_every_split(&parts);
            let Some(Facts::Mail(m, Some(t))) = f else {
                panic!("no tls: {f:?}");
            };
            assert!(m.starttls);
            assert!(t.client_hello && !t.server_hello && t.server_seen && t.aborted());
            assert_eq!(t.alert, Some((true, 2, 40)));
        }
        // Silence after the ClientHello: the server's TLS bytes start after its OK, and
        // none came.
        let parts = imap(b"A002 OK Begin TLS negotiation now.\r\n", &ch, &[]);
        let mut l = Look::new();
        feed_all(
            &mut l,
            &parts.iter().map(|(d, b)| (*d, &b[..])).collect::<Vec<_>>(),
        );
        let Some(Facts::Mail(_, Some(t))) = l.facts() else {
            panic!("no tls");
        };
        let server: usize = parts.iter().filter(|p| p.0 == 1).map(|p| p.1.len()).sum();
        assert!(t.client_hello && !t.server_seen && t.aborted());
        assert_eq!(usize::from(t.resp_start), server);
        // A client's fatal unknown_ca after the ServerHello (TLS 1.2: in the clear).
        let mut parts = pop3(b"+OK go\r\n", &ch, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0]);
        parts.push((0, vec![0x15, 3, 3, 0, 2, 2, 48]));
        let Some(Facts::Mail(_, Some(t))) = mail_facts_every_split(&parts) else {
            panic!("no tls");
        };
        assert!(t.server_hello && t.aborted());
        assert_eq!(t.alert, Some((false, 2, 48)));
    }

    #[test]
    fn a_refused_imap_or_pop3_starttls_keeps_reading_lines() {
        // Refused, then the client logs in in the clear: no TLS, the lines were read (the
        // login ends the look).
        for (parts, login) in [
            (
                imap(
                    b"A002 BAD TLS support isn't enabled.\r\n",
                    b"A003 LOGIN bob secret\r\n",
                    &[],
                ),
                &b"A003 LOGIN bob secret\r\n"[..],
            ),
            (
                imap(b"A002 NO not now\r\n", b"A003 LOGIN bob secret\r\n", &[]),
                &b"A003 LOGIN bob secret\r\n"[..],
            ),
            (
                pop3(b"-ERR TLS support isn't enabled.\r\n", b"USER bob\r\n", &[]),
                &b"USER bob\r\n"[..],
            ),
        ] {
            let f = mail_facts_every_split(&parts);
            let Some(Facts::Mail(m, None)) = f else {
                panic!("{f:?}");
            };
            assert!(m.starttls_offered && m.starttls_sent && !m.starttls);
            let mut l = Look::new();
            feed_all(
                &mut l,
                &parts.iter().map(|(d, b)| (*d, &b[..])).collect::<Vec<_>>(),
            );
            // The login line was read as a line (not as TLS): nothing more is looked at.
            assert!(l.finished(), "{login:?}");
        }
        // Refused, and the client asks again: the second answer hands over.
        let ch = client_hello("mail.example.com", &[]);
        let mut parts = imap(b"A002 NO not now\r\n", b"A003 STARTTLS\r\n", &[]);
        parts.push((1, b"A003 OK Begin TLS negotiation now.\r\n".to_vec()));
        parts.push((0, ch));
        let Some(Facts::Mail(m, Some(t))) = mail_facts_every_split(&parts) else {
            panic!("no tls after the second STARTTLS");
        };
        assert!(m.starttls && t.client_hello);
        assert_eq!(t.sni.to_string_lossy(), "mail.example.com");
    }

    #[test]
    fn imap_and_pop3_in_the_clear_are_told_and_stop_at_the_login() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (
                    1,
                    b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n",
                ),
                (0, b"a1 LOGIN bob secret\r\n"),
                (1, b"a1 OK [CAPABILITY IMAP4rev1 STARTTLS] Logged in\r\n"),
            ],
        );
        let Some(Facts::Mail(m, None)) = l.facts() else {
            panic!("{:?}", l.facts());
        };
        assert!(!m.starttls_offered && !m.starttls_sent && l.finished());
        // STARTTLS outside a CAPABILITY list is not an offer.
        let mut l = Look::new();
        feed_all(&mut l, &[(1, b"* OK STARTTLS ready\r\n")]);
        let Some(Facts::Mail(m, None)) = l.facts() else {
            panic!("{:?}", l.facts());
        };
        assert!(!m.starttls_offered);
        // POP3 without CAPA: nothing offered; a "+OK" greeting is POP3, "+OKAY" is not.
        let mut l = Look::new();
        feed_all(&mut l, &[(1, b"+OK POP3 ready\r\n"), (0, b"USER bob\r\n")]);
        assert!(matches!(l.facts(), Some(Facts::Mail(m, None)) if m.proto == mail::Proto::Pop3));
        let mut l = Look::new();
        l.feed(1, 0, b"+OKAY\r\n", true);
        assert!(l.facts().is_none() && l.finished());
    }

    /// A ClientHello with SNI and ALPN, as `examples/synth.rs` and TLS libraries write it.
    pub(crate) fn client_hello(sni: &str, alpn: &[&str]) -> Vec<u8> {
        let mut ext = vec![];
        // A GREASE-like extension first, so SNI is not the first one.
        ext.extend_from_slice(&[0x0a, 0x0a, 0, 1, 0]);
        let name = sni.as_bytes();
        let list_len = name.len() + 3;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list_len as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
        let mut protos = vec![];
        for p in alpn {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p.as_bytes());
        }
        ext.extend_from_slice(&[0, 16]);
        ext.extend_from_slice(&((protos.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(protos.len() as u16).to_be_bytes());
        ext.extend_from_slice(&protos);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn a_client_hello_in_any_split_gives_sni_and_alpn() {
        let ch = client_hello("autodiscover.example.com", &["h2", "http/1.1"]);
        // The first segment tells the protocol: at least its first few bytes.
        for cut in 4..ch.len() {
            let (a, b) = ch.split_at(cut);
            let mut l = Look::new();
            feed_all(&mut l, &[(0, a), (0, b), (1, &[0x15, 3, 3, 0, 2, 2, 40])]);
            let Some(Facts::Tls(t)) = l.facts() else {
                panic!("not tls at {cut}");
            };
            assert!(t.client_hello, "cut {cut}");
            assert_eq!(
                t.sni.to_string_lossy(),
                "autodiscover.example.com",
                "cut {cut}"
            );
            assert_eq!(t.alpn.to_string_lossy(), "h2,http/1.1", "cut {cut}");
            assert!(!t.server_hello);
            assert_eq!(t.alert, Some((true, 2, 40)));
        }
    }

    #[test]
    fn a_server_hello_is_seen() {
        let mut l = Look::new();
        let ch = client_hello("mail.example.com", &[]);
        feed_all(&mut l, &[(0, &ch), (1, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0])]);
        let Some(Facts::Tls(t)) = l.facts() else {
            panic!("not tls");
        };
        assert!(t.server_hello && t.alert.is_none());
        assert!(t.alpn.is_empty());
    }

    #[test]
    fn a_client_that_gives_up_on_the_server_hello_is_seen() {
        let ch = client_hello("mail.example.com", &[]);
        let sh: &[u8] = &[0x16, 3, 3, 0, 4, 2, 0, 0, 0];
        // The certificate not trusted: a fatal unknown_ca (48) in the clear after the hello.
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[(0, &ch), (1, sh), (0, &[0x15, 3, 3, 0, 2, 2, 48])],
        );
        let Some(Facts::Tls(t)) = l.facts() else {
            panic!("not tls");
        };
        assert!(t.server_hello && t.aborted());
        assert_eq!(t.alert, Some((false, 2, 48)));
        // The handshake going on (ClientKeyExchange), then encrypted records: not aborted.
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (0, &ch),
                (1, sh),
                (0, &[0x16, 3, 3, 0, 2, 16, 0]),
                (0, &[0x15, 3, 3, 0, 2, 2, 48]),
            ],
        );
        let Some(Facts::Tls(t)) = l.facts() else {
            panic!("not tls");
        };
        assert!(t.server_hello && !t.aborted() && t.alert.is_none());
    }

    #[test]
    fn an_http_request_and_status() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (0, b"GET /owa/auth/logon.aspx?x=1 HTTP/1.1\r\nUser-Agent: x\r\nhOST: mail.example.com\r\n\r\n"),
                (1, b"HTTP/1.1 302 Found\r\nCache-Control: no-cache\r\nLocation: https://mail.example.com/owa/auth/logon.aspx?url=x\r\n"),
                (1, b"Server: Microsoft-IIS/10.0\r\nrequest-id: 1f\r\nX-CalculatedBETarget: ex1.example.com\r\nX-Content-Type-Options: nosniff\r\n"),
                (1, b"X-OWA-Version: 15.2.1118.7\r\nX-FEServer: EX1\r\nX-BEServer: EX2\r\nX-Powered-By: ASP.NET\r\n\r\n<html>"),
            ],
        );
        let Some(Facts::Http(h)) = l.facts() else {
            panic!("not http");
        };
        assert_eq!(h.method.to_string_lossy(), "GET");
        assert_eq!(h.path.to_string_lossy(), "/owa/auth/logon.aspx?x=1");
        assert_eq!(h.host.to_string_lossy(), "mail.example.com");
        assert_eq!(h.status, 302);
        assert_eq!(h.server.to_string_lossy(), "Microsoft-IIS/10.0");
        assert_eq!(
            h.location.to_string_lossy(),
            "https://mail.example.com/owa/auth/logon."
        );
        assert!(h.location.is_cut());
        // Whole names that fit; X-BEServer did not, the common ones are left out.
        assert_eq!(
            h.x_headers.to_string_lossy(),
            "X-CalculatedBETarget,X-OWA-Version,X-FEServer"
        );
        assert!(h.x_headers.is_cut());
        assert!(l.finished(), "the end of the headers ends the look");
    }

    #[test]
    fn an_http_response_without_headers_end_keeps_its_status() {
        let mut l = Look::new();
        feed_all(
            &mut l,
            &[
                (0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                (1, b"HTTP/1.1 200 OK\r\nServer: nginx\r\nX-Pad: 1\r\n"),
            ],
        );
        let Some(Facts::Http(h)) = l.facts() else {
            panic!("not http");
        };
        assert_eq!(h.status, 200);
        assert_eq!(h.server.to_string_lossy(), "nginx");
        assert_eq!(h.x_headers.to_string_lossy(), "X-Pad");
        assert!(!l.finished(), "more headers may come");
    }

    #[test]
    fn other_protocols_gaps_and_mid_stream_starts_are_not_looked_into() {
        let mut l = Look::new();
        l.feed(0, 0, b"SSH-2.0-OpenSSH_9.6\r\n", true);
        assert!(l.finished() && l.facts().is_none());
        let mut l = Look::new();
        l.feed(1, 100, b"220 mail\r\n", true);
        assert!(l.facts().is_none());
        let mut l = Look::new();
        l.feed(1, 0, b"220 mail ready\r\n", true);
        l.feed(1, 500, b"250 x\r\n", true);
        assert!(l.done[1]);
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            let mut l = Look::new();
            let mut off = [0u32; 2];
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let d = (x & 1) as usize;
                let n = (x >> 8) as usize % 300;
                let mut b: Vec<u8> = (0..n).map(|i| (x >> (i % 56)) as u8).collect();
                if x & 6 == 0 {
                    b.splice(0..0, client_hello("a.example", &["h2"]));
                } else if x & 6 == 2 {
                    b.splice(0..0, *b"220 ok\r\n");
                } else if x & 0x30 == 0x10 {
                    b.splice(0..0, *b"* OK [CAPABILITY STARTTLS]\r\nA1 OK\r\n");
                } else if x & 0x30 == 0x20 {
                    b.splice(0..0, *b"+OK\r\nSTLS\r\n.\r\n+OK\r\n");
                } else if x & 0x30 == 0x30 && d == 0 {
                    b.splice(0..0, *b"A1 STARTTLS\r\nSTLS\r\nCAPA\r\n");
                }
                l.feed(d, off[d], &b, x & 8 == 0);
                off[d] = off[d].wrapping_add(b.len() as u32);
            }
        }
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn the_look_box_stays_small() {
        let n = std::mem::size_of::<super::Look>();
        use std::mem::size_of;
        eprintln!(
            "Look: {n} bytes; Smtp {}, TlsFacts {}, TlsDir {}, Http {}",
            size_of::<super::smtp::Smtp>(),
            size_of::<super::TlsFacts>(),
            size_of::<super::tls::TlsDir>(),
            size_of::<super::http::Http>()
        );
        assert!(n <= 544, "Look {n} bytes");
    }
}

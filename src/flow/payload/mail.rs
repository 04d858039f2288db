//! IMAP and POP3, a line at a time from both directions, for one thing: whether the
//! connection went over to TLS (STARTTLS / STLS), so that the handshake after it is read
//! like one on 993/995. Told by the server's greeting (`* OK` for IMAP, `+OK` for POP3); the
//! facts are whether the server offered the upgrade (IMAP: `STARTTLS` in a `CAPABILITY`
//! list, the greeting's or a reply's; POP3: `STLS` in the reply to `CAPA`), whether the
//! client asked for it and whether the server accepted. A few lines of our own: only the
//! tag, the first words of a line and one capability word are looked at.

use super::smtp::Next;
use super::text::Text;

/// Which mail-access protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Imap,
    Pop3,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
        }
    }
}

/// What an IMAP or POP3 connection's clear-text start showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailFacts {
    pub proto: Proto,
    /// The server listed the upgrade: IMAP `STARTTLS` in a `CAPABILITY` list, POP3 `STLS`
    /// in its reply to `CAPA`.
    pub starttls_offered: bool,
    /// The client sent `STARTTLS` (IMAP) or `STLS` (POP3).
    pub starttls_sent: bool,
    /// ... and the server accepted it (`<tag> OK`, `+OK`): the rest is TLS.
    pub starttls: bool,
}

/// A POP3 command waiting for its status reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Pop {
    #[default]
    Other,
    Capa,
    Stls,
}

const PENDING: usize = 4;

/// The dialogue's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mail {
    pub facts: MailFacts,
    greeted: bool,
    /// IMAP: the tag of the client's STARTTLS, while its reply is awaited.
    tag: Text<16>,
    waiting: bool,
    /// The server's current line, streamed a word at a time (a capability list can be
    /// longer than the line buffer): the word being read, and what the line named so far.
    word: [u8; 10],
    word_n: u8,
    word_long: bool,
    line_words: u8,
    line_cap: bool,
    line_tls: bool,
    /// POP3: commands waiting for their status reply (pipelining), and a multi-line reply
    /// being read (CAPA's when `multi_capa`).
    pending: [Pop; PENDING],
    n_pending: u8,
    in_multi: bool,
    multi_capa: bool,
}

/// A server's first bytes look like an IMAP (`* OK`) or POP3 (`+OK`) greeting.
pub fn sniff_server(b: &[u8]) -> Option<Proto> {
    let ok = |w: &[u8]| matches!(w, [o, k, ..] if o.eq_ignore_ascii_case(&b'O') && k.eq_ignore_ascii_case(&b'K'));
    match b {
        [b'*', b' ', rest @ ..] if ok(rest) => Some(Proto::Imap),
        [b'+', rest @ ..] if ok(rest) && matches!(rest.get(2), Some(b' ' | b'\r' | b'\n')) => {
            Some(Proto::Pop3)
        }
        _ => None,
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

/// The line's first two space-separated words.
fn words(line: &[u8]) -> (&[u8], &[u8]) {
    let mut it = line.split(|&c| c == b' ');
    let a = it.next().unwrap_or_default();
    let b = it.next().unwrap_or_default();
    (a, b)
}

fn is(w: &[u8], kw: &[u8]) -> bool {
    w.eq_ignore_ascii_case(kw)
}

impl Mail {
    pub fn new(proto: Proto) -> Mail {
        Mail {
            facts: MailFacts {
                proto,
                ..MailFacts::default()
            },
            ..Mail::default()
        }
    }

    /// Raw bytes of the server's current line, before the line is complete: its words are
    /// matched as they stream past.
    pub fn scan(&mut self, part: &[u8]) {
        for &c in part {
            if matches!(c, b' ' | b'[' | b']' | b'(' | b')' | b'\r' | b'\n') {
                self.end_word();
            } else if let Some(slot) = self.word.get_mut(usize::from(self.word_n)) {
                *slot = c;
                self.word_n += 1;
            } else {
                self.word_long = true;
            }
        }
    }

    fn end_word(&mut self) {
        if self.word_n == 0 {
            return;
        }
        let w = self
            .word
            .get(..usize::from(self.word_n))
            .unwrap_or_default();
        if !self.word_long {
            if is(w, b"CAPABILITY") && self.line_words <= 2 {
                self.line_cap = true;
            } else if is(w, b"STARTTLS") && self.line_cap {
                self.line_tls = true;
            }
        }
        self.line_words = self.line_words.saturating_add(1);
        self.word_n = 0;
        self.word_long = false;
    }

    fn push(&mut self, p: Pop) {
        if let Some(slot) = self.pending.get_mut(usize::from(self.n_pending)) {
            *slot = p;
            self.n_pending += 1;
        }
    }

    fn pop(&mut self) -> Option<Pop> {
        if self.n_pending == 0 {
            return None;
        }
        let p = self.pending[0];
        self.pending.copy_within(1.., 0);
        self.n_pending -= 1;
        Some(p)
    }

    /// One line the client sent.
    pub fn client_line(&mut self, line: &[u8]) -> Next {
        let line = trim_eol(line);
        match self.facts.proto {
            Proto::Imap => {
                let (tag, cmd) = words(line);
                if is(cmd, b"STARTTLS") {
                    self.facts.starttls_sent = true;
                    self.tag.set(tag);
                    self.waiting = true;
                    return Next::Tls;
                }
                if is(cmd, b"LOGIN") || is(cmd, b"AUTHENTICATE") {
                    // Logged in in the clear: no STARTTLS can follow.
                    return Next::Stop;
                }
            }
            Proto::Pop3 => {
                let (cmd, _) = words(line);
                if is(cmd, b"STLS") {
                    self.facts.starttls_sent = true;
                    self.push(Pop::Stls);
                    return Next::Tls;
                }
                if is(cmd, b"USER") || is(cmd, b"PASS") || is(cmd, b"APOP") || is(cmd, b"AUTH") {
                    return Next::Stop;
                }
                self.push(if is(cmd, b"CAPA") {
                    Pop::Capa
                } else {
                    Pop::Other
                });
            }
        }
        Next::More
    }

    /// One line the server sent (its bytes went through [`Mail::scan`] first).
    pub fn server_line(&mut self, line: &[u8]) -> Next {
        let line = trim_eol(line);
        let (cap, tls) = (self.line_cap, self.line_tls);
        self.line_cap = false;
        self.line_tls = false;
        self.line_words = 0;
        self.word_n = 0;
        self.word_long = false;
        let first = !self.greeted;
        self.greeted = true;
        if first && sniff_server(line) != Some(self.facts.proto) {
            return Next::Stop;
        }
        let (a, b) = words(line);
        match self.facts.proto {
            Proto::Imap => {
                if cap && tls {
                    self.facts.starttls_offered = true;
                }
                if self.waiting && !self.tag.is_empty() && a == self.tag.bytes() {
                    self.waiting = false;
                    if is(b, b"OK") {
                        self.facts.starttls = true;
                        return Next::Tls;
                    }
                }
            }
            Proto::Pop3 => {
                if first {
                    return Next::More;
                }
                if self.in_multi {
                    if line == b"." {
                        self.in_multi = false;
                    } else if self.multi_capa && is(a, b"STLS") {
                        self.facts.starttls_offered = true;
                    }
                    return Next::More;
                }
                let ok = is(a, b"+OK");
                if !ok && !is(a, b"-ERR") {
                    // A SASL continuation or something else: no command's status.
                    return Next::More;
                }
                match self.pop() {
                    Some(Pop::Capa) if ok => {
                        self.in_multi = true;
                        self.multi_capa = true;
                    }
                    Some(Pop::Stls) if ok => {
                        self.facts.starttls = true;
                        return Next::Tls;
                    }
                    _ => {}
                }
            }
        }
        Next::More
    }
}

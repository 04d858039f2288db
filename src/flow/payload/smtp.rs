//! SMTP, a line at a time from both directions: the banner, the EHLO reply's capabilities,
//! STARTTLS offered, masked or used, commands overwritten with `X`s, and the replies to
//! MAIL, RCPT and DATA. A few lines of our own rather than a crate: SMTP's replies are
//! `ddd[ -]text` lines, and only a handful of facts are wanted from them.

use super::text::Text;

/// What a connection's SMTP dialogue showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmtpFacts {
    /// The greeting's code (220, or 421/554 for a server that refuses at once); 0 if none.
    pub banner_code: u16,
    /// The greeting's text (first line, bounded).
    pub banner: Text<64>,
    /// The greeting's text is mostly asterisks: an ESMTP inspection (Cisco ASA/PIX
    /// `inspect esmtp`) replaced it.
    pub banner_masked: bool,
    /// An EHLO was answered with 250.
    pub ehlo_ok: bool,
    /// The EHLO reply lists STARTTLS.
    pub starttls_offered: bool,
    /// The EHLO reply lists `XXXXXXXA` where STARTTLS was: masked by an inspection.
    pub starttls_masked: bool,
    /// The client sent STARTTLS.
    pub starttls_sent: bool,
    /// The client sent STARTTLS and the server answered 220: the rest is encrypted.
    pub starttls: bool,
    /// A command made of `X`s (`XXXX`), or a server's complaint about one: an inspection
    /// overwrote a command it does not allow.
    pub commands_masked: bool,
    /// Reply codes to MAIL, RCPT, DATA and the end of the message, in order (the first few).
    pub reply_codes: [u16; REPLY_CODES],
    pub n_codes: u8,
    /// The first 4xx/5xx reply to MAIL, RCPT, DATA or the message: the command, the code and
    /// the text (bounded).
    pub rejected: Option<(Command, u16)>,
    pub reject_text: Text<80>,
    /// The message was accepted (2xx after its final ".").
    pub message_accepted: bool,
}

/// Reply codes kept per connection.
pub const REPLY_CODES: usize = 6;

/// The client command a reply answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Command {
    #[default]
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Mail,
    Rcpt,
    Data,
    /// The message itself (the reply after the final ".").
    Message,
    Masked,
    /// A verb the server's own EHLO reply listed (ETRN, VRFY, EXPN, AUTH, ...).
    Listed,
    Other,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Greeting => "greeting",
            Command::Ehlo => "EHLO",
            Command::Helo => "HELO",
            Command::StartTls => "STARTTLS",
            Command::Mail => "MAIL",
            Command::Rcpt => "RCPT",
            Command::Data => "DATA",
            Command::Message => "message",
            Command::Masked => "masked command",
            Command::Listed => "listed command",
            Command::Other => "command",
        }
    }
}

const PENDING: usize = 8;

/// The dialogue's state: commands waiting for their reply (pipelining), and whether the
/// client is sending a message body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smtp {
    pub facts: SmtpFacts,
    pending: [Command; PENDING],
    n_pending: u8,
    greeted: bool,
    in_body: bool,
    /// SMTP for sure: the client said EHLO or HELO, or the greeting names (E)SMTP or was
    /// masked. An FTP server greets with `220 ` too; its client says USER or AUTH.
    pub confirmed: bool,
    client_lines: u8,
    /// The reply being read (its first line's command), for continuation lines.
    in_reply: bool,
    /// The EHLO reply's keywords among [`LISTED`], a bit each.
    listed: u8,
}

/// EHLO keywords that are also command verbs: a server that lists one and then answers it
/// with 500 or 502 ("command not recognized") did not get the verb the client sent. Seen from
/// the client's side of an ESMTP inspection, the overwritten command (`XXXX`) is not on the
/// wire, only this contradiction.
const LISTED: [&[u8]; 6] = [b"ETRN", b"VRFY", b"EXPN", b"AUTH", b"ATRN", b"HELP"];

fn listed_bit(verb: &[u8]) -> u8 {
    LISTED
        .iter()
        .position(|w| *w == verb)
        .map_or(0, |i| 1u8 << i)
}

/// What the parser wants next from a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    More,
    /// TLS from the next byte of this direction on: the server's 220 reply to STARTTLS, or
    /// (if its next bytes are a TLS record: the server may refuse) the client's STARTTLS.
    Tls,
    /// Nothing more to learn (not SMTP after all).
    Stop,
}

/// A server's first bytes look like an SMTP greeting (`220 `, `220-`, or a refusal).
pub fn sniff_server(b: &[u8]) -> bool {
    matches!(b, [a, b2, c, sep, ..] if a.is_ascii_digit() && b2.is_ascii_digit() && c.is_ascii_digit()
        && (*sep == b' ' || *sep == b'-') && matches!(*a, b'2' | b'4' | b'5'))
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

/// Mostly asterisks: at least 4, and at least half of the non-blank bytes.
fn masked(text: &[u8]) -> bool {
    let stars = text.iter().filter(|&&c| c == b'*').count();
    let nonblank = text.iter().filter(|c| !c.is_ascii_whitespace()).count();
    stars >= 4 && stars * 2 >= nonblank
}

/// Three or more `X`s and nothing else (`XXXX`), or ASA's `XXXXXXXA` family.
fn x_word(w: &[u8]) -> bool {
    w.len() >= 3
        && w.iter().take(w.len() - 1).all(|&c| c == b'X')
        && w.last().is_some_and(|c| c.is_ascii_uppercase())
}

impl Smtp {
    fn push(&mut self, c: Command) {
        if let Some(slot) = self.pending.get_mut(usize::from(self.n_pending)) {
            *slot = c;
            self.n_pending += 1;
        }
    }

    fn front(&self) -> Command {
        if !self.greeted {
            return Command::Greeting;
        }
        if self.n_pending == 0 {
            return Command::Other;
        }
        self.pending[0]
    }

    fn pop(&mut self) {
        if !self.greeted {
            self.greeted = true;
            return;
        }
        if self.n_pending > 0 {
            self.pending.copy_within(1.., 0);
            self.n_pending -= 1;
        }
    }

    /// One line the client sent (without its end of line).
    pub fn client_line(&mut self, line: &[u8]) -> Next {
        let line = trim_eol(line);
        if self.in_body {
            if line == b"." {
                self.in_body = false;
                self.push(Command::Message);
            }
            return Next::More;
        }
        let verb = line.split(|&c| c == b' ').next().unwrap_or_default();
        let mut up = [0u8; 10];
        let n = verb.len().min(up.len());
        for (d, s) in up.iter_mut().zip(verb.iter()) {
            *d = s.to_ascii_uppercase();
        }
        let verb = up.get(..n).unwrap_or_default();
        self.client_lines = self.client_lines.saturating_add(1);
        if matches!(verb, b"EHLO" | b"HELO") {
            self.confirmed = true;
        } else if self.client_lines == 1 && !self.confirmed {
            // Not an SMTP client's first word (FTP's USER, AUTH, ...).
            return Next::Stop;
        }
        let cmd = match verb {
            b"EHLO" => Command::Ehlo,
            b"HELO" => Command::Helo,
            b"STARTTLS" => {
                self.facts.starttls_sent = true;
                self.push(Command::StartTls);
                return Next::Tls;
            }
            b"MAIL" => Command::Mail,
            b"RCPT" => Command::Rcpt,
            b"DATA" => {
                self.in_body = true;
                Command::Data
            }
            w if x_word(w) && w.iter().all(|&c| c == b'X') => {
                self.facts.commands_masked = true;
                Command::Masked
            }
            w if self.listed & listed_bit(w) != 0 => Command::Listed,
            _ => Command::Other,
        };
        self.push(cmd);
        Next::More
    }

    /// One line the server sent (without its end of line).
    pub fn server_line(&mut self, line: &[u8]) -> Next {
        let line = trim_eol(line);
        let (code, last, text) = match line {
            [a, b, c, rest @ ..]
                if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() =>
            {
                let code =
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                match rest {
                    [] => (code, true, &[][..]),
                    [b' ', t @ ..] => (code, true, t),
                    [b'-', t @ ..] => (code, false, t),
                    _ => return Next::Stop,
                }
            }
            _ => return Next::Stop,
        };
        let cmd = self.front();
        let first = !self.in_reply;
        self.in_reply = !last;
        let f = &mut self.facts;
        match cmd {
            Command::Greeting if first => {
                f.banner_code = code;
                f.banner.set(text);
                f.banner_masked = masked(text);
                let up = |c: &u8| c.to_ascii_uppercase();
                self.confirmed |= f.banner_masked
                    || text
                        .windows(4)
                        .any(|w| w.iter().map(up).eq(b"SMTP".iter().copied()));
            }
            Command::Ehlo if code == 250 => {
                // The first line is the server's name; the others are capabilities.
                if !first {
                    let kw = text.split(|&c| c == b' ').next().unwrap_or_default();
                    if kw.eq_ignore_ascii_case(b"STARTTLS") {
                        f.starttls_offered = true;
                    } else if kw == b"XXXXXXXA" {
                        f.starttls_masked = true;
                    } else {
                        let mut up = [0u8; 4];
                        if kw.len() == up.len() {
                            for (d, s) in up.iter_mut().zip(kw) {
                                *d = s.to_ascii_uppercase();
                            }
                            self.listed |= listed_bit(&up);
                        }
                    }
                }
                if last {
                    f.ehlo_ok = true;
                }
            }
            _ => {}
        }
        if code >= 500 && text.windows(4).any(|w| w == b"XXXX") {
            f.commands_masked = true;
        }
        // A listed verb, or STARTTLS where the EHLO reply showed it masked, answered "not
        // recognized": the server got something else (an inspection's XXXX).
        if matches!(code, 500 | 502)
            && (cmd == Command::Listed || (cmd == Command::StartTls && f.starttls_masked))
        {
            f.commands_masked = true;
        }
        if !last {
            return Next::More;
        }
        self.pop();
        let f = &mut self.facts;
        match cmd {
            Command::StartTls if code == 220 => {
                f.starttls = true;
                return Next::Tls;
            }
            Command::Mail | Command::Rcpt | Command::Data | Command::Message => {
                if let Some(slot) = f.reply_codes.get_mut(usize::from(f.n_codes)) {
                    *slot = code;
                    f.n_codes += 1;
                }
                if code >= 400 && f.rejected.is_none() {
                    f.rejected = Some((cmd, code));
                    f.reject_text.set(text);
                }
                if cmd == Command::Message && (200..300).contains(&code) {
                    f.message_accepted = true;
                }
                if cmd == Command::Data && code != 354 {
                    self.in_body = false;
                }
            }
            _ => {}
        }
        Next::More
    }

    /// The reply codes to MAIL, RCPT, DATA and the message.
    pub fn codes(&self) -> &[u16] {
        self.facts
            .reply_codes
            .get(..usize::from(self.facts.n_codes))
            .unwrap_or_default()
    }
}

impl SmtpFacts {
    /// The reply codes to MAIL, RCPT, DATA and the message.
    pub fn codes(&self) -> &[u16] {
        self.reply_codes
            .get(..usize::from(self.n_codes))
            .unwrap_or_default()
    }
}

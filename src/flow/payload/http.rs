//! HTTP/1.x, a line at a time: the request line and Host header from the client, the status
//! line and a few response headers (`Server`, `Location`, the names of `X-` headers) from the
//! server. Lines rather than `httparse`: httparse wants the whole header block
//! in one buffer (gathered across segments: up to the budget per connection), while the
//! three facts wanted sit in the first line and one header, read through a bounded line
//! buffer.

use super::text::Text;

/// What a connection's first HTTP request and response showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpFacts {
    pub method: Text<12>,
    pub path: Text<96>,
    pub host: Text<64>,
    /// The first response's status code; 0 if none was seen.
    pub status: u16,
    /// The first response's `Server` header (IIS says `Microsoft-IIS/10.0`).
    pub server: Text<24>,
    /// The first response's `Location` header (a redirect's target, its start).
    pub location: Text<40>,
    /// The names of the first response's `X-` headers, comma-joined, save the common ones
    /// every web stack sends ([`COMMON_X`]): what the server's software adds of its own
    /// (Exchange's `X-FEServer`, `X-OWA-Version`, …; which names are Exchange's is the
    /// catalogue's data, not this parser's).
    pub x_headers: Text<48>,
}

/// `X-` headers of web stacks and browsers' security settings, which tell nothing of the
/// application behind them (compared without case).
pub const COMMON_X: [&[u8]; 8] = [
    b"x-powered-by",
    b"x-aspnet-version",
    b"x-aspnetmvc-version",
    b"x-content-type-options",
    b"x-frame-options",
    b"x-xss-protection",
    b"x-ua-compatible",
    b"x-request-id",
];

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"OPTIONS ",
    b"RPC_IN_DATA ",
    b"RPC_OUT_DATA ",
    b"DELETE ",
    b"PATCH ",
];

/// A client's first bytes look like an HTTP request line (a known method and a space).
pub fn sniff_client(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m))
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Http {
    pub facts: HttpFacts,
    request_lines: u8,
    client_done: bool,
    /// The server's status line was read: its header lines follow.
    status_seen: bool,
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

impl Http {
    /// One line of the client's (the end of line included or not); false when nothing more
    /// is wanted from the client.
    pub fn client_line(&mut self, line: &[u8], cut: bool) -> bool {
        if self.client_done {
            return false;
        }
        let line = trim_eol(line);
        self.request_lines = self.request_lines.saturating_add(1);
        if self.request_lines == 1 {
            let mut parts = line.splitn(3, |&c| c == b' ');
            self.facts.method.set(parts.next().unwrap_or_default());
            let path = parts.next().unwrap_or_default();
            self.facts.path.set(path);
            if cut && parts.next().is_none() {
                // The line was longer than the buffer: the path was cut.
                self.facts.path.set(path);
            }
            return true;
        }
        if line.is_empty() {
            self.client_done = true;
            return false;
        }
        if let Some(v) = line
            .get(..5)
            .filter(|h| h.eq_ignore_ascii_case(b"host:"))
            .and(line.get(5..))
        {
            let v = v.trim_ascii();
            self.facts.host.set(v);
            self.client_done = true;
            return false;
        }
        true
    }

    /// One line of the server's; false when nothing more is wanted from the server (the end
    /// of the first response's headers, or no status line).
    pub fn server_line(&mut self, line: &[u8]) -> bool {
        let line = trim_eol(line);
        if !self.status_seen {
            if let [b'H', b'T', b'T', b'P', b'/', _, b'.', _, b' ', a, b, c, ..] = line {
                if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() {
                    self.facts.status =
                        u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                    self.status_seen = true;
                    return true;
                }
            }
            return false;
        }
        if line.is_empty() {
            return false;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return true;
        };
        let (name, value) = (
            line.get(..colon).unwrap_or_default().trim_ascii(),
            line.get(colon + 1..).unwrap_or_default().trim_ascii(),
        );
        if name.eq_ignore_ascii_case(b"server") && self.facts.server.is_empty() {
            self.facts.server.set(value);
        } else if name.eq_ignore_ascii_case(b"location") && self.facts.location.is_empty() {
            self.facts.location.set(value);
        } else if name.len() > 2
            && name.get(..2).is_some_and(|x| x.eq_ignore_ascii_case(b"x-"))
            && !COMMON_X.iter().any(|c| name.eq_ignore_ascii_case(c))
        {
            let x = &mut self.facts.x_headers;
            // Whole names only: one that does not fit is left out (and marks the list cut).
            let need = name.len() + usize::from(!x.is_empty());
            if x.bytes().len() + need <= 48 {
                if !x.is_empty() {
                    x.push(b",");
                }
                x.push(name);
            } else {
                x.mark_cut();
            }
        }
        true
    }
}

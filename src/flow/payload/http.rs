//! HTTP/1.x, a line at a time: the request line and Host header from the client, the status
//! line from the server. Lines rather than `httparse`: httparse wants the whole header block
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
}

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

    /// One line of the server's; false when nothing more is wanted from the server.
    pub fn server_line(&mut self, line: &[u8]) -> bool {
        let line = trim_eol(line);
        if let [b'H', b'T', b'T', b'P', b'/', _, b'.', _, b' ', a, b, c, ..] = line {
            if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() {
                self.facts.status =
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            }
        }
        false
    }
}

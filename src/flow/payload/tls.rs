//! TLS, read as it streams past: the ClientHello's server name (SNI) and ALPN from the
//! client, the ServerHello and alerts from either side.
//!
//! Hand-written rather than `tls-parser`: that crate parses a whole record from one buffer,
//! so a ClientHello split over two segments (a post-quantum key share makes it ~1,800 bytes)
//! would have to be gathered first, ~2 KiB per connection; this walks the bytes with a few
//! counters instead and keeps only the name and the protocols, bounded.

use super::text::Text;

/// What a connection's TLS handshake showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsFacts {
    pub client_hello: bool,
    pub server_hello: bool,
    /// Bytes of the responder were read (so a missing ServerHello is known missing, not
    /// just cut away by the snap length).
    pub server_seen: bool,
    /// The first alert before the handshake ended: (sent by the responder, level, description).
    /// After the ServerHello only an alert in the clear (a 2-byte body: nothing encrypted yet)
    /// is one; the client's, right after its ClientHello, means it gave up on the server's
    /// hello (its certificate, say).
    pub alert: Option<(bool, u8, u8)>,
    pub sni: Text<64>,
    /// The ALPN protocols offered, comma-separated.
    pub alpn: Text<32>,
    /// The responder's stream offset where its TLS bytes start: 0, or after STARTTLS the
    /// byte after its 220 reply (so a responder that sent nothing more is known silent).
    pub resp_start: u16,
}

/// One direction's record layer and, for the client, the ClientHello walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsDir {
    /// Bytes of the current record header read, and the header.
    hdr: [u8; 5],
    hdr_n: u8,
    /// Bytes left of the current record's body.
    body_left: u16,
    /// The current record's type.
    rtype: u8,
    /// Bytes of the current record's body read.
    body_n: u16,
    alert: [u8; 2],
    hello: Hello,
    stop: bool,
}

/// Where the ClientHello walk is: at `pos` bytes into the handshake message (header
/// included), wanting `need` bytes for `step`.
#[derive(Clone, Copy, Debug, Default)]
struct Hello {
    step: Step,
    pos: u32,
    need: u32,
    acc: u32,
    /// The end of the hello (from its header), the extensions and the current extension.
    end: u32,
    exts_end: u32,
    ext_end: u32,
    ext_type: u16,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Step {
    #[default]
    Start,
    Header,
    VersionRandom,
    SidLen,
    Sid,
    CipherLen,
    Ciphers,
    CompLen,
    Comp,
    ExtsLen,
    ExtHeader,
    SkipExt,
    SniListLen,
    SniType,
    SniLen,
    SniName,
    AlpnListLen,
    AlpnLen,
    AlpnName,
    Done,
}

impl TlsFacts {
    /// The handshake failed: no ServerHello came, or one did and an alert in the clear ended
    /// the handshake anyway (a client that does not trust the server's certificate).
    pub fn aborted(&self) -> bool {
        !self.server_hello || self.alert.is_some()
    }
}

/// A client's first bytes look like a TLS handshake record (0x16 0x03 0x00-0x04).
pub fn sniff_client(b: &[u8]) -> bool {
    matches!(b, [0x16, 0x03, v, ..] if *v <= 4)
}

impl TlsDir {
    /// Bytes of one direction (`from_resp`: the responder's), in order.
    pub fn feed(&mut self, from_resp: bool, facts: &mut TlsFacts, mut b: &[u8]) -> bool {
        if from_resp && !b.is_empty() {
            facts.server_seen = true;
        }
        while !b.is_empty() && !self.stop {
            if self.body_left == 0 {
                let n = usize::from(5 - self.hdr_n).min(b.len());
                let (h, rest) = b.split_at(n);
                for (i, &c) in h.iter().enumerate() {
                    if let Some(d) = self.hdr.get_mut(usize::from(self.hdr_n) + i) {
                        *d = c;
                    }
                }
                self.hdr_n += n as u8;
                b = rest;
                if self.hdr_n == 5 {
                    self.hdr_n = 0;
                    self.rtype = self.hdr[0];
                    if !matches!(self.rtype, 20..=23) || self.hdr[1] != 3 {
                        self.stop = true;
                        break;
                    }
                    self.body_left = u16::from_be_bytes([self.hdr[3], self.hdr[4]]);
                    self.body_n = 0;
                    if self.rtype == 23 {
                        // Application data: the handshake is over (or encrypted from here).
                        self.stop = true;
                    }
                }
                continue;
            }
            let n = usize::from(self.body_left).min(b.len());
            let (body, rest) = b.split_at(n);
            b = rest;
            match self.rtype {
                22 => {
                    if from_resp {
                        if self.body_n == 0 && body.first() == Some(&2) {
                            facts.server_hello = true;
                        }
                    } else if self.hello.step == Step::Done {
                        // A handshake message after the ClientHello (ClientKeyExchange): the
                        // handshake goes on; nothing more to read.
                        self.stop = true;
                    } else {
                        self.hello(facts, body);
                    }
                }
                // After the ServerHello only a 2-byte body (the record's, not what is left
                // of it: the alert may come split) is an alert in the clear.
                21 if !facts.server_hello
                    || u32::from(self.body_n) + u32::from(self.body_left) == 2 =>
                {
                    for (i, &c) in body.iter().enumerate() {
                        if let Some(d) = self.alert.get_mut(usize::from(self.body_n) + i) {
                            *d = c;
                        }
                    }
                    if usize::from(self.body_n) + n >= 2 && facts.alert.is_none() {
                        facts.alert = Some((from_resp, self.alert[0], self.alert[1]));
                    }
                }
                _ => {}
            }
            self.body_n = self.body_n.saturating_add(n as u16);
            self.body_left -= n as u16;
        }
        !self.stop
    }

    /// Handshake bytes from the client: walks the ClientHello. Each step wants `need`
    /// bytes (a length read into `acc`, bytes skipped, or a name copied); a step of zero
    /// bytes completes at once. Once it is walked the direction reads on to the next record:
    /// an alert in the clear there is the client giving up on the server's hello.
    fn hello(&mut self, facts: &mut TlsFacts, mut b: &[u8]) {
        let h = &mut self.hello;
        loop {
            if h.step == Step::Done {
                return;
            }
            if h.step == Step::Start {
                h.step = Step::Header;
                h.need = 4;
            }
            if h.need > 0 {
                if b.is_empty() {
                    return;
                }
                let n = (h.need as usize).min(b.len());
                let (chunk, rest) = b.split_at(n);
                b = rest;
                h.pos += n as u32;
                h.need -= n as u32;
                match h.step {
                    Step::SniName => facts.sni.push(chunk),
                    Step::AlpnName => facts.alpn.push(chunk),
                    Step::VersionRandom
                    | Step::Sid
                    | Step::Ciphers
                    | Step::Comp
                    | Step::SkipExt => {}
                    _ => {
                        for &c in chunk {
                            h.acc = h.acc << 8 | u32::from(c);
                        }
                    }
                }
                if h.need > 0 {
                    return;
                }
            }
            let v = h.acc;
            h.acc = 0;
            let left = h.ext_end.saturating_sub(h.pos);
            let (step, need) = match h.step {
                Step::Header if v >> 24 == 1 => {
                    facts.client_hello = true;
                    h.end = 4 + (v & 0xff_ffff);
                    (Step::VersionRandom, 34)
                }
                Step::VersionRandom => (Step::SidLen, 1),
                Step::SidLen => (Step::Sid, v),
                Step::Sid => (Step::CipherLen, 2),
                Step::CipherLen => (Step::Ciphers, v),
                Step::Ciphers => (Step::CompLen, 1),
                Step::CompLen => (Step::Comp, v),
                Step::Comp => (Step::ExtsLen, 2),
                Step::ExtsLen => {
                    h.exts_end = h.pos.saturating_add(v).min(h.end);
                    ext_or_done(h)
                }
                Step::ExtHeader => {
                    h.ext_type = (v >> 16) as u16;
                    h.ext_end = h.pos.saturating_add(v & 0xffff);
                    match h.ext_type {
                        0 if facts.sni.is_empty() => (Step::SniListLen, 2),
                        16 if facts.alpn.is_empty() => (Step::AlpnListLen, 2),
                        _ => (Step::SkipExt, v & 0xffff),
                    }
                }
                Step::SkipExt => ext_or_done(h),
                Step::SniListLen => (Step::SniType, 1),
                Step::SniType => (Step::SniLen, 2),
                Step::SniLen => (Step::SniName, v.min(left)),
                Step::SniName => (Step::SkipExt, left),
                Step::AlpnListLen | Step::AlpnName if left > 0 => {
                    if h.step == Step::AlpnName {
                        facts.alpn.push(b",");
                    }
                    (Step::AlpnLen, 1)
                }
                Step::AlpnListLen | Step::AlpnName => ext_or_done(h),
                Step::AlpnLen => (Step::AlpnName, v.min(left)),
                _ => (Step::Done, 0),
            };
            // Nothing reaches past the hello.
            h.step = if h.end != 0 && h.pos.saturating_add(need) > h.end {
                Step::Done
            } else {
                step
            };
            h.need = need;
        }
    }
}

fn ext_or_done(h: &Hello) -> (Step, u32) {
    if h.pos + 4 <= h.exts_end {
        (Step::ExtHeader, 4)
    } else {
        (Step::Done, 0)
    }
}

//! Zeek's `history` string: one letter per event kind and direction, upper case for the
//! originator, lower case for the responder (`TCP_Endpoint::CheckHistory`,
//! `src/analyzer/protocol/tcp/TCP_Endpoint.cc`; letters documented in
//! `scripts/base/protocols/conn/main.zeek`).
//!
//! Kept inline (no heap): a connection's history is bounded because every letter is recorded
//! once per direction, except the logarithmic ones (at the 1st, 10th, 100th... event) and the
//! repeatable S/H/F/R (only when the sequence number differs). Past the buffer, letters are
//! dropped and [`History::overflowed`] is set.

/// Event kinds with a once-per-direction letter (bit positions in the seen-mask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Syn = 0,
    Fin = 1,
    Rst = 2,
    FinRst = 3,
    MultiFlag = 4,
    Data = 5,
    Ack = 6,
}

const CAP: usize = 40;

#[derive(Clone, Copy)]
pub struct History {
    buf: [u8; CAP],
    len: u8,
    /// Bits 0..16 for the originator, 16..32 for the responder.
    seen: u32,
    pub overflowed: bool,
}

impl Default for History {
    fn default() -> Self {
        History {
            buf: [0; CAP],
            len: 0,
            seen: 0,
            overflowed: false,
        }
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn letter(code: u8, is_orig: bool) -> u8 {
    if is_orig {
        code.to_ascii_uppercase()
    } else {
        code.to_ascii_lowercase()
    }
}

impl History {
    pub fn as_str(&self) -> &str {
        // Only ASCII letters and '^' are ever pushed.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    /// Appends a raw character (already cased).
    pub fn push(&mut self, c: u8) {
        if (self.len as usize) < CAP {
            self.buf[self.len as usize] = c;
            self.len += 1;
        } else {
            self.overflowed = true;
        }
    }

    /// Zeek's `CheckHistory`: records `code` the first time `mark` is seen in this direction.
    /// Returns true if it had been seen before (so the caller may decide to repeat it).
    pub fn check(&mut self, mark: Mark, code: u8, is_orig: bool) -> bool {
        let bit = 1u32 << (mark as u32 + if is_orig { 0 } else { 16 });
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.push(letter(code, is_orig));
            false
        } else {
            true
        }
    }

    /// Zeek's `AddHistory`: records `code` unconditionally.
    pub fn add(&mut self, code: u8, is_orig: bool) {
        self.push(letter(code, is_orig));
    }

    /// True if the history so far is exactly `s`.
    pub fn is(&self, s: &str) -> bool {
        // Bytes, not `as_str`: this runs on packets, and UTF-8 validation is not free.
        &self.buf[..self.len as usize] == s.as_bytes()
    }

    /// Replaces the whole history (used for Zeek's `H` → `^h` rewrite).
    pub fn set(&mut self, s: &str) {
        self.len = 0;
        for &b in s.as_bytes() {
            self.push(b);
        }
    }

    /// Swaps the per-direction seen bits (on a role flip).
    pub fn flip_seen(&mut self) {
        self.seen = self.seen.rotate_left(16);
    }

    pub fn contains(&self, c: u8) -> bool {
        self.buf[..self.len as usize].contains(&c)
    }
}

/// Zeek's `Session::ScaledHistoryEntry`: a counter whose letter is recorded at the 1st,
/// 10th, 100th... occurrence.
#[derive(Clone, Copy, Debug)]
pub struct Scaled {
    count: u32,
    thresh: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            thresh: 1,
        }
    }
}

impl Scaled {
    /// Counts one event; returns true when its letter is due.
    pub fn hit(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        if self.count == self.thresh {
            self.thresh = self.thresh.saturating_mul(10);
            true
        } else {
            false
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_recorded_once_per_direction_and_cased_by_side() {
        let mut h = History::default();
        assert!(!h.check(Mark::Syn, b'S', true));
        assert!(!h.check(Mark::Syn, b'H', false));
        assert!(!h.check(Mark::Ack, b'A', true));
        assert!(h.check(Mark::Ack, b'A', true));
        assert!(!h.check(Mark::Data, b'D', false));
        assert_eq!(h.as_str(), "ShAd");
    }

    #[test]
    fn scaled_letters_fire_at_powers_of_ten() {
        let mut s = Scaled::default();
        let fired: Vec<u32> = (1..=1000u32).filter(|_| s.hit()).collect();
        assert_eq!(fired, vec![1, 10, 100, 1000]);
    }

    #[test]
    fn overflow_drops_letters_without_panicking() {
        let mut h = History::default();
        for _ in 0..100 {
            h.add(b'T', true);
        }
        assert!(h.overflowed);
        assert_eq!(h.as_str().len(), CAP);
    }
}

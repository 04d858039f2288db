//! A bounded excerpt of wire bytes, kept raw (escaped only where printed).

/// Up to `N` bytes copied from the wire; `cut` when more were there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize> {
    len: u8,
    cut: bool,
    bytes: [u8; N],
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text {
            len: 0,
            cut: false,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> std::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl<const N: usize> Text<N> {
    /// The bytes kept.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// More bytes were on the wire than kept.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Appends what fits; the rest marks the text cut.
    pub fn push(&mut self, b: &[u8]) {
        let at = usize::from(self.len);
        let room = N.min(255).saturating_sub(at);
        let n = room.min(b.len());
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(at..at + n), b.get(..n)) {
            dst.copy_from_slice(src);
            self.len = u8::try_from(at + n).unwrap_or(u8::MAX);
        }
        if n < b.len() {
            self.cut = true;
        }
    }

    /// Marks the text cut (more was on the wire than kept).
    pub fn mark_cut(&mut self) {
        self.cut = true;
    }

    /// Replaces the text.
    pub fn set(&mut self, b: &[u8]) {
        *self = Text::default();
        self.push(b);
    }

    /// The bytes as text (invalid UTF-8 replaced); the printers escape it.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

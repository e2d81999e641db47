//! A cursor that turns the fuzzer's bytes into choices. Reading past the end yields zeros, so
//! every input, however short, is a complete (if boring) case, and the fuzzer's mutations of a
//! byte change one decision.

pub struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    /// A value below `n` (n ≥ 1).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An int64 that is often interesting: small, near a power of two, or near the limits.
    pub fn edgy_i64(&mut self) -> i64 {
        match self.below(8) {
            0..=2 => i64::from(self.u8() as i8),
            3 => {
                let shift = self.below(64);
                let base = 1i64.checked_shl(shift as u32).unwrap_or(0);
                base.wrapping_add(i64::from(self.u8() as i8))
            }
            4 => i64::MAX - i64::from(self.u8()),
            5 => i64::MIN + i64::from(self.u8()),
            6 => -(1i64 << self.below(63)),
            _ => self.i64(),
        }
    }

    /// The unread rest.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.at..).unwrap_or(&[]);
        self.at = self.bytes.len();
        rest
    }

    /// Up to `max` bytes.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        let start = self.at.min(self.bytes.len());
        let end = (start + n).min(self.bytes.len());
        self.at = start + n;
        &self.bytes[start..end]
    }
}

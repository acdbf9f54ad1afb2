//! A bounds-checked little-endian cursor over the file bytes.
//!
//! Every read checks the remaining length first; every count is checked
//! against the remaining bytes before anything is sized from it. The
//! `what` closures only run on the error path.

use super::error::GgufError;

/// Cursor over the whole input; `pos <= buf.len()` always holds.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current position as a file offset.
    pub(super) fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Current position as an index.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the current position.
    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes from `start` to the current position (empty if `start` is
    /// past it).
    pub(super) fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// The next `n` bytes.
    pub(super) fn take(
        &mut self,
        n: usize,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end).map(|s| (s, end)));
        match slice {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                what: what(),
                offset: self.offset(),
            }),
        }
    }

    /// The next `N` bytes as an array.
    pub(super) fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let head = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>());
        match head {
            Some(&a) => {
                // `first_chunk` succeeded, so `pos + N <= len`.
                self.pos = self.pos.saturating_add(N);
                Ok(a)
            }
            None => Err(GgufError::Truncated {
                what: what(),
                offset: self.offset(),
            }),
        }
    }

    pub(super) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit
    /// in the remaining input, and returns the count as `usize`. `offset`
    /// is where the count was read. Does not advance.
    pub(super) fn count(
        &self,
        count: u64,
        min_size: usize,
        offset: u64,
        what: impl FnOnce() -> String,
    ) -> Result<usize, GgufError> {
        let available = self.remaining();
        let max = available.checked_div(min_size).unwrap_or(available);
        match usize::try_from(count) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(GgufError::CountTooLarge {
                what: what(),
                count,
                offset,
                available: available as u64,
            }),
        }
    }

    /// A GGUF string: `u64` byte length, then UTF-8 bytes.
    pub(super) fn string(&mut self, what: impl Fn() -> String) -> Result<&'a str, GgufError> {
        let len_offset = self.offset();
        let len = self.u64(|| format!("length of {}", what()))?;
        let n = self.count(len, 1, len_offset, || format!("length of {}", what()))?;
        let bytes_offset = self.offset();
        let bytes = self.take(n, &what)?;
        std::str::from_utf8(bytes).map_err(|_| GgufError::BadUtf8 {
            what: what(),
            offset: bytes_offset,
        })
    }
}

/// Splits one already-validated GGUF string off the front of `raw`.
/// `None` at the end of the input (or if `raw` is not well-formed, which
/// parsing has ruled out).
pub(super) fn split_str(raw: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = raw.split_first_chunk::<8>()?;
    let n = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (s, tail) = rest.split_at_checked(n)?;
    Some((std::str::from_utf8(s).ok()?, tail))
}

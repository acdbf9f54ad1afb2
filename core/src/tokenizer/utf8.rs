//! Streaming UTF-8 decoding of token pieces.

use crate::error::{Error, Result};

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Turns a stream of token pieces (bytes) into text: an incomplete UTF-8
/// sequence at the end of one push is held back until the next push
/// completes it.
///
/// Invalid input never fails: each maximal invalid subpart (an unexpected
/// byte, or a sequence cut short by one) becomes one U+FFFD, exactly as
/// `String::from_utf8_lossy` does, and [`finish`](Utf8Decoder::finish)
/// turns a held-back incomplete sequence into U+FFFD too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Decoder {
    /// The bytes of the sequence in progress.
    held: [u8; 3],
    /// How many of `held` are in use.
    n: u8,
    /// Continuation bytes still expected.
    need: u8,
    /// Accepted range of the next continuation byte.
    lo: u8,
    hi: u8,
}

/// Where decoded bytes go: counted, and written if there is room.
struct Sink<'o> {
    out: &'o mut [u8],
    n: usize,
}

impl Sink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.n..self.n + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.n += bytes.len();
    }
}

impl Utf8Decoder {
    /// A decoder with nothing held back.
    pub const fn new() -> Utf8Decoder {
        Utf8Decoder {
            held: [0; 3],
            n: 0,
            need: 0,
            lo: 0,
            hi: 0,
        }
    }

    /// Whether an incomplete sequence is held back.
    pub fn is_pending(&self) -> bool {
        self.n > 0
    }

    fn step(&mut self, b: u8, sink: &mut Sink<'_>) {
        if self.need > 0 {
            if (self.lo..=self.hi).contains(&b) {
                if self.need == 1 {
                    // The last byte: `held` has the lead and the continuations before it.
                    let mut buf = [0u8; 4];
                    let k = self.n as usize;
                    buf[..k].copy_from_slice(&self.held[..k]);
                    buf[k] = b;
                    sink.put(&buf[..k + 1]);
                    (self.n, self.need) = (0, 0);
                } else {
                    self.held[self.n as usize] = b;
                    self.n += 1;
                    self.need -= 1;
                    (self.lo, self.hi) = (0x80, 0xBF);
                }
                return;
            }
            sink.put(REPLACEMENT);
            self.n = 0;
            self.need = 0;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => {
                sink.put(&[b]);
                return;
            }
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => {
                sink.put(REPLACEMENT);
                return;
            }
        };
        self.held[0] = b;
        (self.n, self.need, self.lo, self.hi) = (1, need, lo, hi);
    }

    /// Decodes `bytes` after whatever was held back, writes the complete
    /// characters to `out` and returns them. Fails with
    /// [`Error::BufferTooSmall`] (and consumes nothing) if `out` is too
    /// small; `3 * (bytes.len() + 3)` bytes are always enough.
    pub fn push<'o>(&mut self, bytes: &[u8], out: &'o mut [u8]) -> Result<&'o str> {
        let mut probe = *self;
        let mut count = Sink { out: &mut [], n: 0 };
        for &b in bytes {
            probe.step(b, &mut count);
        }
        if count.n > out.len() {
            return Err(Error::BufferTooSmall {
                need: count.n,
                got: out.len(),
            });
        }
        let mut sink = Sink { out, n: 0 };
        for &b in bytes {
            self.step(b, &mut sink);
        }
        let Sink { out, n } = sink;
        // Only whole characters and U+FFFD were written, so this cannot fail.
        Ok(core::str::from_utf8(&out[..n]).unwrap_or_default())
    }

    /// Ends the stream: a held-back incomplete sequence becomes U+FFFD
    /// (written to `out`, which needs 3 bytes then). Returns the text.
    pub fn finish<'o>(&mut self, out: &'o mut [u8]) -> Result<&'o str> {
        if self.n == 0 {
            return Ok("");
        }
        let dst = out
            .get_mut(..REPLACEMENT.len())
            .ok_or(Error::BufferTooSmall { need: 3, got: 0 })?;
        dst.copy_from_slice(REPLACEMENT);
        *self = Utf8Decoder::new();
        Ok("\u{FFFD}")
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::string::String;

    fn run(chunks: &[&[u8]]) -> String {
        let mut d = Utf8Decoder::new();
        let mut s = String::new();
        let mut buf = [0u8; 64];
        for c in chunks {
            s += d.push(c, &mut buf).unwrap();
        }
        s += d.finish(&mut buf).unwrap();
        s
    }

    #[test]
    fn holds_back_split_characters() {
        let e = "é🦙".as_bytes();
        assert_eq!(run(&[&e[..1], &e[1..3], &e[3..5], &e[5..]]), "é🦙");
    }

    #[test]
    fn matches_from_utf8_lossy() {
        let cases: &[&[u8]] = &[
            b"a\xffb",
            b"\xe4\xb8",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe2\x82x",
            b"\xf0\x9f\x98",
        ];
        for c in cases {
            let want = String::from_utf8_lossy(c);
            assert_eq!(run(&[c]), want, "{c:?}");
            let split: std::vec::Vec<&[u8]> = c.chunks(1).collect();
            assert_eq!(run(&split), want, "{c:?} byte by byte");
        }
    }

    #[test]
    fn too_small_consumes_nothing() {
        let mut d = Utf8Decoder::new();
        assert_eq!(
            d.push(b"abc", &mut [0u8; 2]),
            Err(Error::BufferTooSmall { need: 3, got: 2 })
        );
        assert_eq!(d.push(b"abc", &mut [0u8; 3]).unwrap(), "abc");
    }
}

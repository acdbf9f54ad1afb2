//! The byte-level BPE pre-tokenizers, as hand-written scanners (no regex
//! engine) over llama.cpp's code points and Unicode classes.
//!
//! - `gpt2` (pre `gpt-2`, `phi-2`): the GPT-2 pattern
//!   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
//!   as llama.cpp's `unicode_regex_split_custom_gpt2` scans it.
//! - `smollm` (pre `smollm`, `starcoder`): first `\p{N}` (every number
//!   code point is a word of its own, the runs between them words too),
//!   then the GPT-2 pattern inside each of those.
//!
//! Positions are byte offsets of code points as [`decode`] reads them.

use super::unicode::{class, decode, Class};
use crate::error::Result;

/// Which pre-tokenizer a byte-level BPE vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// The GPT-2 pattern.
    Gpt2,
    /// Numbers split one by one, then the GPT-2 pattern (SmolLM2).
    SmolLm,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre`, if this
    /// crate implements it.
    pub fn from_name(pre: &str) -> Option<PreTokenizer> {
        match pre {
            "gpt-2" | "phi-2" => Some(PreTokenizer::Gpt2),
            "smollm" | "starcoder" => Some(PreTokenizer::SmolLm),
            _ => None,
        }
    }

    /// Calls `word(start, end)` for each word of `text`, in order.
    pub(crate) fn split(
        self,
        text: &[u8],
        word: &mut impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<()> {
        match self {
            PreTokenizer::Gpt2 => gpt2(text, 0, text.len(), word),
            PreTokenizer::SmolLm => {
                let mut pos = 0;
                let mut run = 0;
                while pos < text.len() {
                    let (c, n) = decode(text, pos);
                    if class(c).number {
                        if run < pos {
                            gpt2(text, run, pos, word)?;
                        }
                        gpt2(text, pos, pos + n, word)?;
                        run = pos + n;
                    }
                    pos += n;
                }
                if run < text.len() {
                    gpt2(text, run, text.len(), word)?;
                }
                Ok(())
            }
        }
    }
}

/// The code points of `text[..end]`: `at(pos)` is `None` at or past `end`.
struct Cpts<'t> {
    text: &'t [u8],
    end: usize,
}

impl Cpts<'_> {
    fn at(&self, pos: usize) -> Option<(u32, usize)> {
        (pos < self.end).then(|| decode(self.text, pos))
    }

    fn class_at(&self, pos: usize) -> Option<Class> {
        self.at(pos).map(|(c, _)| class(c))
    }
}

fn is_other(c: Option<Class>) -> bool {
    c.is_some_and(|c| !(c.space || c.letter || c.number))
}

/// The GPT-2 pattern over `text[ini..end]`.
fn gpt2(
    text: &[u8],
    ini: usize,
    end: usize,
    word: &mut impl FnMut(usize, usize) -> Result<()>,
) -> Result<()> {
    let t = Cpts { text, end };
    let mut pos = ini;
    while let Some((cpt, n)) = t.at(pos) {
        let start = pos;
        let next = pos + n;
        // 's|'t|'re|'ve|'m|'ll|'d
        if cpt == u32::from(b'\'') {
            if let Some((c1, n1)) = t.at(next) {
                if [b's', b't', b'm', b'd'].iter().any(|&x| c1 == u32::from(x)) {
                    pos = next + n1;
                    word(start, pos)?;
                    continue;
                }
                if let Some((c2, n2)) = t.at(next + n1) {
                    let pair = |a: u8, b: u8| c1 == u32::from(a) && c2 == u32::from(b);
                    if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
                        pos = next + n1 + n2;
                        word(start, pos)?;
                        continue;
                    }
                }
            }
        }
        let space = cpt == u32::from(b' ');
        let c2 = if space {
            t.class_at(next)
        } else {
            Some(class(cpt))
        };
        let body = if space { next } else { pos };
        //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
        let run: Option<fn(Option<Class>) -> bool> = if c2.is_some_and(|c| c.letter) {
            Some(|c| c.is_some_and(|c| c.letter))
        } else if c2.is_some_and(|c| c.number) {
            Some(|c| c.is_some_and(|c| c.number))
        } else if is_other(c2) {
            Some(is_other)
        } else {
            None
        };
        if let Some(keep) = run {
            pos = body;
            while keep(t.class_at(pos)) {
                pos += t.at(pos).map_or(1, |(_, n)| n);
            }
            word(start, pos)?;
            continue;
        }
        // \s+(?!\S) | \s+
        let mut spaces = 0;
        let mut last = pos;
        let mut p = pos;
        while t.class_at(p).is_some_and(|c| c.space) {
            spaces += 1;
            last = p;
            p += t.at(p).map_or(1, |(_, n)| n);
        }
        if spaces > 1 && p < end {
            // Leave the last whitespace for the word that follows.
            pos = last;
            word(start, pos)?;
            continue;
        }
        pos = if spaces > 0 { p } else { next };
        word(start, pos)?;
    }
    Ok(())
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, s: &str) -> std::vec::Vec<&str> {
        let mut v = std::vec::Vec::new();
        pre.split(s.as_bytes(), &mut |a, b| {
            v.push(&s[a..b]);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn gpt2_pattern() {
        assert_eq!(
            words(PreTokenizer::Gpt2, "Hello world's  end!!\n\n x 123"),
            ["Hello", " world", "'s", " ", " end", "!!", "\n\n", " x", " 123"]
        );
        assert_eq!(words(PreTokenizer::Gpt2, "a   "), ["a", "   "]);
    }

    #[test]
    fn smollm_splits_numbers() {
        assert_eq!(
            words(PreTokenizer::SmolLm, "ab 123x"),
            ["ab", " ", "1", "2", "3", "x"]
        );
    }
}

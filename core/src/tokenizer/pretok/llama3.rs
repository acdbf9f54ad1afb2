//! The Llama 3 pattern and its Qwen variants, as llama.cpp's
//! `unicode_regex_split_custom_{llama3,qwen2,qwen35}` scan them:
//!
//! ```text
//! (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//!   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//! ```
//!
//! Qwen2 takes numbers one by one (`\p{N}`); Qwen3.5 also lets letter runs
//! hold marks (`[\p{L}\p{M}]+`, and `\p{M}` leaves the punctuation runs).

use super::{is_cr_lf, Cpts, Word};
use crate::error::Result;
use crate::tokenizer::unicode::{class, Class};

/// Which of the three.
#[derive(Clone, Copy)]
pub(super) struct Variant {
    /// Longest number run (3 for Llama 3, 1 for the Qwens).
    pub(super) digits: usize,
    /// Marks join letter runs (Qwen3.5).
    pub(super) marks: bool,
}

impl Variant {
    /// Llama 3 (`llama-bpe`).
    pub(super) const LLAMA3: Variant = Variant {
        digits: 3,
        marks: false,
    };
    /// Qwen2.
    pub(super) const QWEN2: Variant = Variant {
        digits: 1,
        marks: false,
    };
    /// Qwen3.5.
    pub(super) const QWEN35: Variant = Variant {
        digits: 1,
        marks: true,
    };
}

/// The pattern of `v` over `text[ini..end]`.
pub(super) fn split(text: &[u8], ini: usize, end: usize, v: Variant, word: Word<'_>) -> Result<()> {
    let t = Cpts { text, end };
    let letter = |c: Class| c.letter() || (v.marks && c.mark());
    let other = |c: Class| !(c.space() || c.letter() || c.number() || (v.marks && c.mark()));
    let mut pos = ini;
    while let Some((cpt, n)) = t.at(pos) {
        let start = pos;
        let f = class(cpt);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if let Some(e) = t.contraction(pos, true) {
            pos = e;
            word(start, pos)?;
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(is_cr_lf(cpt) || f.number()) && (letter(f) || t.class_at(pos + n).is_some_and(letter))
        {
            pos = t.run(pos + n, letter);
            word(start, pos)?;
            continue;
        }
        // \p{N}{1,3} (or \p{N})
        if f.number() {
            pos = t.numbers(pos, v.digits);
            word(start, pos)?;
            continue;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let space = cpt == u32::from(b' ');
        let f2 = if space { t.class_at(pos + n) } else { Some(f) };
        if f2.is_some_and(other) {
            pos = t.run(if space { pos + n } else { pos }, other);
            while t.at(pos).is_some_and(|(c, _)| is_cr_lf(c)) {
                pos += 1;
            }
            word(start, pos)?;
            continue;
        }
        // \s*[\r\n]+ | \s+(?!\S) | \s+
        pos = t.spaces_end(pos, true);
        word(start, pos)?;
    }
    Ok(())
}

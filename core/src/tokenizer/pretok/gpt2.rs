//! The GPT-2 pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
//! as llama.cpp's `unicode_regex_split_custom_gpt2` scans it.

use super::{Cpts, Word};
use crate::error::Result;
use crate::tokenizer::unicode::{class, Class};

/// The GPT-2 pattern over `text[ini..end]`.
pub(super) fn split(text: &[u8], ini: usize, end: usize, word: Word<'_>) -> Result<()> {
    let t = Cpts { text, end };
    let mut pos = ini;
    while let Some((cpt, n)) = t.at(pos) {
        let start = pos;
        // 's|'t|'re|'ve|'m|'ll|'d
        if let Some(e) = t.contraction(pos, false) {
            pos = e;
            word(start, pos)?;
            continue;
        }
        let space = cpt == u32::from(b' ');
        let c2 = if space {
            t.class_at(pos + n)
        } else {
            Some(class(cpt))
        };
        let body = if space { pos + n } else { pos };
        //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
        let run: Option<fn(Class) -> bool> = match c2 {
            Some(c) if c.letter() => Some(Class::letter),
            Some(c) if c.number() => Some(Class::number),
            Some(c) if c.other() => Some(Class::other),
            _ => None,
        };
        if let Some(keep) = run {
            pos = t.run(body, keep);
            word(start, pos)?;
            continue;
        }
        // \s+(?!\S) | \s+
        pos = t.spaces_end(pos, false);
        word(start, pos)?;
    }
    Ok(())
}

//! The `gpt-4o` pattern (Phi-4-mini, Llama 4), as llama.cpp runs it: its
//! adaptation
//!
//! ```text
//! [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?
//! |[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|...|'[dD])?
//! |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//! ```
//!
//! runs through `std::regex` over the "collapsed" text, where every code
//! point past ASCII is one byte naming its category. So "upper case" is
//! `A-Z` or any letter past ASCII and "lower case" is `a-z` or any letter
//! past ASCII: a letter past ASCII is both. The scanner follows the
//! regex's backtracking order (first alternative that matches, greedy
//! loops giving back one at a time).

use super::{is_cr_lf, Cpts, Word};
use crate::error::Result;
use crate::tokenizer::unicode::{class, Class};

/// `[^a-z]` and `[^A-Z]` among letters: which a letter matches.
fn upperish(c: u32) -> bool {
    class(c).letter() && !(u32::from(b'a')..=u32::from(b'z')).contains(&c)
}

fn lowerish(c: u32) -> bool {
    class(c).letter() && !(u32::from(b'A')..=u32::from(b'Z')).contains(&c)
}

/// `[^\r\n\p{L}\p{N}]`.
fn prefix(c: u32, f: Class) -> bool {
    c != u32::from(b'\r') && c != u32::from(b'\n') && !f.letter() && !f.number()
}

/// The `gpt-4o` pattern over `text[ini..end]`.
pub(super) fn split(text: &[u8], ini: usize, end: usize, word: Word<'_>) -> Result<()> {
    let t = Cpts { text, end };
    let mut pos = ini;
    while let Some((cpt, n)) = t.at(pos) {
        let start = pos;
        let f = class(cpt);
        // The first two alternatives: an optional prefix, then letters.
        let letters = if f.letter() {
            Some(pos)
        } else if prefix(cpt, f) && t.class_at(pos + n).is_some_and(Class::letter) {
            Some(pos + n)
        } else {
            None
        };
        if let Some(s) = letters {
            // ([^a-z])* greedily, remembering the last letter that is also
            // [^A-Z] (where the loop gives back to for the second part).
            let mut p = s;
            let mut last_both = None;
            while let Some((c, l)) = t.at(p).filter(|&(c, _)| upperish(c)) {
                if lowerish(c) {
                    last_both = Some(p);
                }
                p += l;
            }
            let lower_from = if t.at(p).is_some_and(|(c, _)| lowerish(c)) {
                Some(p)
            } else {
                last_both
            };
            pos = match lower_from {
                // First alternative: ([^A-Z])+ from there.
                Some(q) => t.run_cpts(q, lowerish),
                // Second: ([^a-z])+ (at least one, as `s` holds a letter
                // that is not [^A-Z]), then no [^A-Z].
                None => p,
            };
            if let Some(e) = t.contraction(pos, true) {
                pos = e;
            }
            word(start, pos)?;
            continue;
        }
        // \p{N}{1,3}
        if f.number() {
            pos = t.numbers(pos, 3);
            word(start, pos)?;
            continue;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        let space = cpt == u32::from(b' ');
        let body = if space && t.class_at(pos + n).is_some_and(Class::other) {
            Some(pos + n)
        } else if f.other() {
            Some(pos)
        } else {
            None
        };
        if let Some(b) = body {
            pos = t.run(b, Class::other);
            while t
                .at(pos)
                .is_some_and(|(c, _)| is_cr_lf(c) || c == u32::from(b'/'))
            {
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

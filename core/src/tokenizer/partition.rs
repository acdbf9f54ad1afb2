//! Special-token partitioning, as llama.cpp's `tokenizer_st_partition`:
//! for each special token, longest first, every raw-text fragment is split
//! at each occurrence of its text, left to right; LSTRIP / RSTRIP tokens
//! eat the whitespace (C `isspace`) next to them. Control and unknown
//! tokens take part only when special tokens are parsed; user-defined
//! ones always do.
//!
//! A rendered chat prompt starts out partitioned at its template's markers
//! ([`Tokenizer::tokenize_marked`]), and its text is then split at
//! user-defined tokens only.
//!
//! Fragments are `[start, len]` u32 pairs over the text, or `[id, TOKEN]`
//! for a matched token, in two ping-pong arrays from the work memory.

use core::ops::Range;

use super::attr;
use super::Tokenizer;
use crate::error::{Error, Result};

/// The `len` word of a token fragment.
pub(crate) const TOKEN: u32 = u32::MAX;

/// Fragments `text` may split into: tokens and text alternate and each
/// token covers at least one byte.
pub(crate) const fn max_fragments(text_len: usize) -> usize {
    text_len.saturating_mul(2).saturating_add(1)
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// The partitioner's working memory.
pub(crate) struct Frags<'w> {
    /// Two ping-pong fragment arrays of [`max_fragments`] pairs each.
    pub(crate) a: &'w mut [u32],
    /// See `a`.
    pub(crate) b: &'w mut [u32],
    /// The set of special tokens found in the text, a bit each.
    pub(crate) found: &'w mut [u32],
}

struct Writer<'w> {
    f: &'w mut [u32],
    n: usize,
}

impl Writer<'_> {
    fn push(&mut self, a: u32, b: u32) -> Result<()> {
        let got = 4 * self.f.len();
        let slot = self
            .f
            .get_mut(2 * self.n..2 * self.n + 2)
            .ok_or(Error::WorkTooSmall {
                need: 8 * (self.n + 1),
                got,
            })?;
        slot.copy_from_slice(&[a, b]);
        self.n += 1;
        Ok(())
    }

    /// Pushes the text from `off` up to `token` (less the whitespace an
    /// LSTRIP token eats), then token `id` with attributes `at`; returns
    /// where the text after it starts (past the whitespace an RSTRIP token
    /// eats, up to `limit`).
    fn token(
        &mut self,
        text: &[u8],
        off: usize,
        token: Range<usize>,
        limit: usize,
        id: u32,
        at: u16,
    ) -> Result<usize> {
        let mut left_end = token.start;
        if at & attr::LSTRIP != 0 {
            while left_end > off && is_c_space(text[left_end - 1]) {
                left_end -= 1;
            }
        }
        if left_end > off {
            self.push(off as u32, (left_end - off) as u32)?;
        }
        self.push(id, TOKEN)?;
        let mut next = token.end;
        if at & attr::RSTRIP != 0 {
            while next < limit && is_c_space(text[next]) {
                next += 1;
            }
        }
        Ok(next)
    }
}

/// The fragments `text` starts as: all of it, or, with `markers`, each
/// marker that is the text of a special token as that token (its LSTRIP /
/// RSTRIP eating the whitespace next to it) and the text between them.
/// Returns their count.
fn seed(
    tok: &Tokenizer<'_>,
    text: &[u8],
    markers: &[Range<usize>],
    a: &mut [u32],
) -> Result<usize> {
    let mut w = Writer { f: a, n: 0 };
    let mut off = 0;
    for (k, m) in markers.iter().enumerate() {
        if m.start < off || m.start >= m.end || m.end > text.len() {
            return Err(Error::BadOptions {
                what: "chat markers must be ordered, non-empty ranges inside the text",
            });
        }
        let Some(id) = tok
            .t
            .find(&text[m.clone()])
            .filter(|&id| tok.attr(id) & attr::PARTITIONED != 0)
        else {
            // Not a special token of this vocabulary: it stays text.
            continue;
        };
        let limit = markers
            .get(k + 1)
            .map_or(text.len(), |next| next.start.max(m.end));
        off = w.token(text, off, m.clone(), limit, id, tok.attr(id))?;
    }
    if off < text.len() {
        w.push(off as u32, (text.len() - off) as u32)?;
    }
    Ok(w.n)
}

/// Partitions `text` into fragments, starting from `markers` (see
/// [`seed`]); returns the array holding them and their count.
///
/// One pass of the special-token automaton finds the special tokens that
/// occur in the text; only those are searched for, each in linear time
/// (`memmem`). llama.cpp's order (longest first, every fragment split at
/// each before the next is tried) decides which of overlapping matches
/// wins, so a leftmost-longest single pass would give other tokens.
pub(crate) fn partition<'w>(
    tok: &Tokenizer<'_>,
    text: &[u8],
    markers: &[Range<usize>],
    parse_special: bool,
    frags: Frags<'w>,
) -> Result<(&'w mut [u32], usize)> {
    let Frags {
        mut a,
        mut b,
        found,
    } = frags;
    let mut n = seed(tok, text, markers, a)?;
    tok.t.automaton.scan(text, found);
    for (k, id) in tok.t.specials.iter().enumerate() {
        let at = tok.attr(id);
        if !parse_special && at & (attr::CONTROL | attr::UNKNOWN) != 0
            || !tok.t.automaton.found(k, found)
        {
            continue;
        }
        let needle = tok.t.tokens.get(id as usize);
        let mut w = Writer { f: b, n: 0 };
        for k in 0..n {
            let (start, len) = (a[2 * k], a[2 * k + 1]);
            if len == TOKEN {
                w.push(start, len)?;
                continue;
            }
            let (mut off, end) = (start as usize, (start + len) as usize);
            while let Some(m) = memchr::memmem::find(&text[off..end], needle) {
                let p = off + m;
                off = w.token(text, off, p..p + needle.len(), end, id, at)?;
                if off == end {
                    break;
                }
            }
            if off < end {
                w.push(off as u32, (end - off) as u32)?;
            }
        }
        n = w.n;
        core::mem::swap(&mut a, &mut b);
    }
    Ok((a, n))
}

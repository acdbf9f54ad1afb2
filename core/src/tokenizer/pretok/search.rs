//! The patterns llama.cpp runs through `std::regex` (no custom scanner),
//! and `regex_iterator`'s way of splitting a fragment by one: each match is
//! a word, and so is each stretch of text between matches.
//!
//! llama.cpp runs a pattern that names a Unicode category over the
//! "collapsed" text (every code point past ASCII is one byte for its
//! category, whitespace past ASCII is `\v`), and a pattern without one over
//! the code points with whitespace past ASCII turned into `\v`. Either way
//! `\s` is llama.cpp's whitespace and `\p{..}` its category, and a class
//! spelled with code points past ASCII never matches whitespace.

use super::{Cpts, Word};
use crate::error::Result;
use crate::tokenizer::unicode::class;

/// What a pattern does at a position.
pub(super) enum Try {
    /// A match from here to this (later) position.
    Match(usize),
    /// No match starts before this (later) position.
    Skip(usize),
}

/// Splits `text[ini..end]` by the leftmost matches of `pat`.
pub(super) fn split(
    text: &[u8],
    ini: usize,
    end: usize,
    pat: impl Fn(&Cpts<'_>, usize) -> Try,
    word: Word<'_>,
) -> Result<()> {
    let t = Cpts { text, end };
    let (mut gap, mut pos) = (ini, ini);
    while pos < end {
        match pat(&t, pos) {
            Try::Match(e) => {
                if gap < pos {
                    word(gap, pos)?;
                }
                word(pos, e)?;
                (gap, pos) = (e, e);
            }
            Try::Skip(p) => pos = p,
        }
    }
    if gap < end {
        word(gap, end)?;
    }
    Ok(())
}

/// A pattern for [`chain`].
pub(super) type Pattern<'p> = &'p dyn Fn(&Cpts<'_>, usize) -> Try;

/// Splits `text[ini..end]` by `pats[0]`, each of its words by `pats[1]`,
/// and so on, as llama.cpp applies a pre-tokenizer's list of patterns; the
/// last pattern's words go to `word`.
pub(super) fn chain(
    text: &[u8],
    ini: usize,
    end: usize,
    pats: &[Pattern<'_>],
    word: Word<'_>,
) -> Result<()> {
    match pats.split_first() {
        None => word(ini, end),
        Some((pat, rest)) => split(text, ini, end, pat, &mut |a, b| {
            chain(text, a, b, rest, word)
        }),
    }
}

/// `[X]+`.
pub(super) fn run(t: &Cpts<'_>, pos: usize, x: impl Fn(u32) -> bool) -> Try {
    if t.at(pos).is_some_and(|(c, _)| x(c)) {
        Try::Match(t.run_cpts(pos, x))
    } else {
        Try::Skip(t.next(pos))
    }
}

/// `[X]`.
pub(super) fn one(t: &Cpts<'_>, pos: usize, x: impl Fn(u32) -> bool) -> Try {
    let next = t.next(pos);
    match t.at(pos) {
        Some((c, _)) if x(c) => Try::Match(next),
        _ => Try::Skip(next),
    }
}

/// `\s?[X]+` (`X` holds no whitespace).
pub(super) fn space_run(t: &Cpts<'_>, pos: usize, x: impl Fn(u32) -> bool) -> Try {
    let next = t.next(pos);
    match t.at(pos) {
        Some((c, _)) if class(c).space() && t.at(next).is_some_and(|(c, _)| x(c)) => {
            Try::Match(t.run_cpts(next, x))
        }
        _ => run(t, pos, x),
    }
}

/// `\s+$`: whitespace that ends the fragment.
pub(super) fn trailing_space(t: &Cpts<'_>, pos: usize) -> Try {
    let (end, _, n) = t.spaces(pos);
    if n == 0 {
        Try::Skip(t.next(pos))
    } else if end == t.end {
        Try::Match(end)
    } else {
        // No match can start inside this run either.
        Try::Skip(end)
    }
}

/// `[0-9][0-9][0-9]`.
pub(super) fn three_digits(t: &Cpts<'_>, pos: usize) -> Try {
    let digit = |p: usize| t.text[..t.end].get(p).is_some_and(u8::is_ascii_digit);
    if digit(pos) && digit(pos + 1) && digit(pos + 2) {
        Try::Match(pos + 3)
    } else {
        Try::Skip(t.next(pos))
    }
}

/// Whether `c`, with whitespace past ASCII turned into `\v` as llama.cpp
/// does for a pattern spelled with code points, is in `ranges`.
pub(super) fn in_ranges(ranges: &[(u32, u32)], c: u32) -> bool {
    if c >= 0x80 && class(c).space() {
        return false;
    }
    let i = ranges.partition_point(|&(first, _)| first <= c);
    i.checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, last)| c <= last)
}

//! SentencePiece BPE as llama.cpp's `llm_tokenizer_spm_session` runs it:
//! spaces escaped as U+2581, characters merged pairwise by the score of
//! the token they form (highest first, leftmost on ties), and whatever is
//! not a token at the end written as byte tokens.

use super::merge::{Order, Symbols, ENTRIES_PER_SYM, ENTRY_WORDS, SYM_WORDS};
use super::{Out, Scratch, Tokenizer};
use crate::error::{Error, Result};

/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's escaped space.
pub(crate) const SPACE: &[u8] = "\u{2581}".as_bytes();

/// Symbols the escaped text of `len` raw bytes may split into. Usually one
/// per character, but a truncated UTF-8 lead byte swallows the first byte
/// of the U+2581 a following space becomes, leaving its other two bytes as
/// symbols of their own: at most two per raw byte, plus the leading space.
const fn max_symbols(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(1)
}

/// Scratch bytes and u32 words one fragment of `len` bytes needs.
pub(crate) const fn scratch(len: usize) -> (usize, usize) {
    let bytes = len.saturating_mul(3).saturating_add(3);
    let syms = max_symbols(len);
    (
        bytes,
        syms.saturating_mul(SYM_WORDS + ENTRIES_PER_SYM * ENTRY_WORDS),
    )
}

/// The token for byte `b`: `<0xNN>`, else the byte itself as a token.
fn byte_token(tok: &Tokenizer<'_>, b: u8) -> Result<u32> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let name = [
        b'<',
        b'0',
        b'x',
        HEX[(b >> 4) as usize],
        HEX[(b & 15) as usize],
        b'>',
    ];
    tok.t
        .find(&name)
        .or_else(|| tok.t.find(&[b]))
        .ok_or(Error::NoByteToken { byte: b })
}

/// Tokenizes one raw-text fragment, after a space if `prefix_space`.
pub(crate) fn tokenize(
    tok: &Tokenizer<'_>,
    raw: &[u8],
    prefix_space: bool,
    s: Scratch<'_>,
    out: &mut Out<'_>,
) -> Result<()> {
    let (need, words) = scratch(raw.len());
    if s.bytes.len() < need || s.words.len() < words {
        return Err(Error::WorkTooSmall {
            need: need + 4 * words,
            got: s.bytes.len() + 4 * s.words.len(),
        });
    }
    let buf = &mut s.bytes[..need];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    if prefix_space {
        put(SPACE);
    }
    for &b in raw {
        if b == b' ' {
            put(SPACE);
        } else {
            put(&[b]);
        }
    }
    let text = &buf[..n];
    let (syms, heap) = s.words.split_at_mut(SYM_WORDS * max_symbols(raw.len()));
    let mut syms = Symbols::new(text, syms)?;
    syms.merge(text, heap, Order::HighScore, |_, _, joined| {
        tok.t.find(joined).map(|id| tok.t.score(id).to_bits())
    })?;
    for (start, len) in syms.chain() {
        let piece = &text[start..start + len];
        match tok.t.find(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece {
                    out.push(byte_token(tok, b)?);
                }
            }
        }
    }
    Ok(())
}

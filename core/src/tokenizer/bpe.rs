//! Byte-level BPE as llama.cpp's `llm_tokenizer_bpe_session` runs it: the
//! pre-tokenizer cuts words, each word's code points are re-encoded as
//! UTF-8 and every byte mapped through GPT-2's byte-to-code-point table,
//! then adjacent symbols merge by rank (lowest first, leftmost on ties).
//! A final symbol that is not a token is written byte by byte, keeping
//! only the bytes that are tokens of their own (as llama.cpp does).

use super::merge::{Order, Symbols, ENTRIES_PER_SYM, ENTRY_WORDS, SYM_WORDS};
use super::unicode::{byte_to_cpt, decode, encode};
use super::{Out, Scratch, Tokenizer};
use crate::error::{Error, Result};

/// Scratch bytes and u32 words one fragment of `len` bytes needs: an
/// invalid byte re-encodes to U+FFFD (3 bytes), each of which maps to a
/// code point of up to 2 bytes and is one symbol.
pub(crate) const fn scratch(len: usize) -> (usize, usize) {
    let syms = len.saturating_mul(3);
    (
        syms.saturating_mul(2),
        syms.saturating_mul(SYM_WORDS + ENTRIES_PER_SYM * ENTRY_WORDS),
    )
}

/// Checks that every code point of `text` can be re-encoded: llama.cpp
/// aborts on the 4-byte forms past U+10FFFF, which its decoder accepts.
pub(crate) fn check_encodable(text: &[u8], base: usize) -> Result<()> {
    let mut pos = 0;
    while pos < text.len() {
        let (c, n) = decode(text, pos);
        if c > 0x10FFFF {
            return Err(Error::UnencodableText { offset: base + pos });
        }
        pos += n;
    }
    Ok(())
}

/// Tokenizes one raw-text fragment.
pub(crate) fn tokenize(
    tok: &Tokenizer<'_>,
    raw: &[u8],
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
    let Some(pre) = tok.pre else {
        return Err(Error::BadTokenizer {
            what: "byte-level BPE without a pre-tokenizer",
        });
    };
    let (bytes, words) = (s.bytes, s.words);
    pre.split(raw, &mut |a, b| word(tok, &raw[a..b], bytes, words, out))
}

/// One pre-tokenized word.
fn word(
    tok: &Tokenizer<'_>,
    raw: &[u8],
    bytes: &mut [u8],
    words: &mut [u32],
    out: &mut Out<'_>,
) -> Result<()> {
    let (mut n, mut chars) = (0, 0);
    let mut pos = 0;
    let (mut utf8, mut mapped) = ([0u8; 4], [0u8; 4]);
    let got = bytes.len();
    while pos < raw.len() {
        let (c, len) = decode(raw, pos);
        pos += len;
        let k = encode(c, &mut utf8);
        for &b in &utf8[..k] {
            let m = encode(byte_to_cpt(b), &mut mapped);
            let dst = bytes
                .get_mut(n..n + m)
                .ok_or(Error::WorkTooSmall { need: n + m, got })?;
            dst.copy_from_slice(&mapped[..m]);
            n += m;
            chars += 1;
        }
    }
    let text = &bytes[..n];
    let split = (SYM_WORDS * chars).min(words.len());
    let (syms, heap) = words.split_at_mut(split);
    let mut syms = Symbols::new(text, syms)?;
    syms.merge(text, heap, Order::LowRank, |l, r, _| tok.t.merge_rank(l, r))?;
    for (start, len) in syms.chain() {
        let piece = &text[start..start + len];
        match tok.t.find(piece) {
            Some(id) => out.push(id),
            None => piece
                .iter()
                .filter_map(|&b| tok.t.find(&[b]))
                .for_each(|id| out.push(id)),
        }
    }
    Ok(())
}

//! BPE as llama.cpp's `llm_tokenizer_bpe_session` runs it: the
//! pre-tokenizer cuts words, each word's code points are re-encoded as
//! UTF-8 and every byte mapped through GPT-2's byte-to-code-point table,
//! then adjacent symbols merge by rank (lowest first, leftmost on ties).
//! A final symbol that is not a token is written byte by byte, keeping
//! only the bytes that are tokens of their own (as llama.cpp does).
//!
//! Per pre-tokenizer: Llama 3 takes a word that is a token as a whole
//! before merging (`ignore_merges`); Gemma 4 writes spaces as U+2581,
//! skips the byte map, takes a run of newlines that is a token as a whole,
//! and falls back to `<0xXX>` byte tokens.

use super::merge::{Order, Symbols, ENTRIES_PER_SYM, ENTRY_WORDS, SYM_WORDS};
use super::unicode::{byte_to_cpt, decode, encode};
use super::{Out, PreTokenizer, Scratch, Tokenizer};
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
    pre.split(raw, &mut |a, b| {
        word(tok, pre, &raw[a..b], bytes, words, out)
    })
}

/// U+2581, Gemma 4's space.
const ESCAPED_SPACE: [u8; 3] = [0xE2, 0x96, 0x81];

/// One pre-tokenized word.
fn word(
    tok: &Tokenizer<'_>,
    pre: PreTokenizer,
    raw: &[u8],
    bytes: &mut [u8],
    words: &mut [u32],
    out: &mut Out<'_>,
) -> Result<()> {
    let (mut n, mut chars) = (0, 0);
    let mut pos = 0;
    let (mut utf8, mut mapped) = ([0u8; 4], [0u8; 4]);
    let got = bytes.len();
    let byte_encode = pre.byte_encode();
    while pos < raw.len() {
        let (c, len) = decode(raw, pos);
        pos += len;
        let mut put = |piece: &[u8]| -> Result<()> {
            let dst = bytes
                .get_mut(n..n + piece.len())
                .ok_or(Error::WorkTooSmall {
                    need: n + piece.len(),
                    got,
                })?;
            dst.copy_from_slice(piece);
            n += piece.len();
            chars += 1;
            Ok(())
        };
        if !byte_encode {
            if c == u32::from(b' ') {
                put(&ESCAPED_SPACE)?;
            } else {
                let k = encode(c, &mut utf8);
                put(&utf8[..k])?;
            }
            continue;
        }
        let k = encode(c, &mut utf8);
        for &b in &utf8[..k] {
            let m = encode(byte_to_cpt(b), &mut mapped);
            put(&mapped[..m])?;
        }
    }
    let text = &bytes[..n];
    // A word that is a token as a whole (Llama 3; Gemma 4 for runs of
    // newlines) skips the merges.
    let whole = pre.ignore_merges() || (!byte_encode && text.iter().all(|&b| b == b'\n'));
    if whole {
        if let Some(id) = tok.t.find(text) {
            out.push(id);
            return Ok(());
        }
    }
    let split = (SYM_WORDS * chars).min(words.len());
    let (syms, heap) = words.split_at_mut(split);
    let mut syms = Symbols::new(text, syms)?;
    syms.merge(text, heap, Order::LowRank, |l, r, _| tok.t.merge_rank(l, r))?;
    for (start, len) in syms.chain() {
        let piece = &text[start..start + len];
        match tok.t.find(piece) {
            Some(id) => out.push(id),
            None if byte_encode => piece
                .iter()
                .filter_map(|&b| tok.t.find(&[b]))
                .for_each(|id| out.push(id)),
            None => piece
                .iter()
                .filter_map(|&b| tok.t.find(&byte_token(b)))
                .for_each(|id| out.push(id)),
        }
    }
    Ok(())
}

/// `<0xXX>`, the text of byte `b`'s token in a vocabulary without the
/// byte map.
fn byte_token(b: u8) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'<',
        b'0',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
        b'>',
    ]
}

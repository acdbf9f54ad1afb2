//! Tokenizers: text to token ids and back, as llama.cpp does it, with no
//! allocation.
//!
//! - SentencePiece BPE (`tokenizer.ggml.model = "llama"`: Phi-3, Llama 2):
//!   score-ordered merges, byte fallback, the leading space
//!   (`add_space_prefix`).
//! - BPE (`"gpt2"`: SmolLM2, GPT-2, Llama 3, Qwen2, DeepSeek, ...; and
//!   `"gemma4"`) with every pre-tokenizer of llama.cpp's test vocabularies
//!   plus `gpt-4o` ([`PreTokenizer`]), hand-written scanners over
//!   llama.cpp's Unicode categories.
//! - Special tokens matched in the text first (llama.cpp's
//!   `tokenizer_st_partition`), with llama.cpp's per-token attributes,
//!   including the RSTRIP it gives the special tokens of models whose name
//!   contains `phi-3` or `phi3`.
//!
//! The tables are read in place from the image; the packer precomputes the
//! attributes and sorted indexes (`build`, host only), so every lookup is
//! a binary search. [`Tokenizer::tokenize`] writes ids into
//! the caller's buffer and works in the caller's memory
//! ([`Tokenizer::work_bytes`]).
//!
//! Known differences from llama.cpp: a byte-level BPE text holding a
//! 4-byte form past U+10FFFF is an error ([`Error::UnencodableText`];
//! llama.cpp aborts); empty token texts are never matched (llama.cpp
//! renames them `[EMPTY_<id>]`, which [`Tokenizer::piece`] does render);
//! special tokens of equal length are tried in id order (llama.cpp's sort
//! leaves that order unspecified).

pub mod attr;
mod automaton;
mod bpe;
#[cfg(feature = "std")]
pub mod build;
mod merge;
mod partition;
mod pretok;
mod spm;
mod tables;
mod unicode;
mod unicode_data;
mod utf8;

use core::ops::Range;

pub use pretok::PreTokenizer;
pub use utf8::Utf8Decoder;

use crate::error::{Error, Result};
use crate::image::manifest::{SpecialTokens, TokenizerKind, TokenizerTables, NO_TOKEN};
use crate::image::Model;
use automaton::Automaton;
use tables::Tables;

/// Longest text [`Tokenizer::tokenize`] accepts, in bytes (positions in
/// the work memory are u32).
pub const MAX_TEXT: usize = 1 << 28;

/// Checks tokenizer tables as [`Tokenizer::new`] does (opening an image
/// runs it).
pub(crate) fn check_tables(t: &TokenizerTables<'_>) -> Result<()> {
    Tables::new(t).map(|_| ())
}

/// Token ids written to the caller's buffer, counted past its end.
pub(crate) struct Out<'o> {
    buf: &'o mut [u32],
    n: usize,
}

impl Out<'_> {
    pub(crate) fn push(&mut self, id: u32) {
        if let Some(slot) = self.buf.get_mut(self.n) {
            *slot = id;
        }
        self.n += 1;
    }
}

/// Working memory of a tokenizer, in u32 words.
struct Layout {
    /// Each of the two fragment arrays.
    frags: usize,
    /// Scratch bytes, in words.
    bytes: usize,
    /// Scratch words.
    words: usize,
    /// The set of special tokens found in the text.
    found: usize,
}

impl Layout {
    /// The layout of a `kind` tokenizer with `n_vocab` tokens for
    /// `text_len` bytes.
    const fn new(kind: TokenizerKind, text_len: usize, n_vocab: usize) -> Layout {
        let (bytes, words) = match kind {
            TokenizerKind::ByteLevelBpe => bpe::scratch(text_len),
            _ => spm::scratch(text_len),
        };
        Layout {
            frags: partition::max_fragments(text_len).saturating_mul(2),
            bytes: bytes.div_ceil(4),
            words,
            // The special list is no longer than the vocabulary.
            found: Automaton::set_words(n_vocab),
        }
    }

    /// All of it, in words.
    const fn words(&self) -> usize {
        self.frags
            .saturating_mul(2)
            .saturating_add(self.bytes)
            .saturating_add(self.words)
            .saturating_add(self.found)
    }

    /// All of it in bytes, with slack to align a byte buffer to u32.
    const fn bytes(&self) -> usize {
        self.words().saturating_mul(4).saturating_add(4)
    }
}

/// Working memory for one raw-text fragment.
pub(crate) struct Scratch<'w> {
    bytes: &'w mut [u8],
    words: &'w mut [u32],
}

/// A tokenizer over the tables of an image.
#[derive(Clone, Copy)]
pub struct Tokenizer<'a> {
    t: Tables<'a>,
    kind: TokenizerKind,
    pre: Option<PreTokenizer>,
    special: SpecialTokens,
    /// The model name contains `phi-3` or `phi3` (case-insensitive).
    phi3: bool,
}

impl core::fmt::Debug for Tokenizer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("pre", &self.pre)
            .field("n_vocab", &self.n_vocab())
            .field("n_merges", &self.t.merges.len())
            .field("phi3", &self.phi3)
            .finish()
    }
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer over `tables`; `model_name` (`general.name`) selects
    /// llama.cpp's per-model token attributes. Fails if the model has no
    /// tokenizer, the tables are malformed, or the BPE pre-tokenizer is not
    /// one this crate implements.
    pub fn new(tables: &TokenizerTables<'a>, model_name: &str) -> Result<Tokenizer<'a>> {
        let t = Tables::new(tables)?;
        let pre = match tables.kind {
            TokenizerKind::ByteLevelBpe => {
                Some(PreTokenizer::from_name(tables.pre).ok_or(Error::UnsupportedPreTokenizer)?)
            }
            _ => None,
        };
        Ok(Tokenizer {
            t,
            kind: tables.kind,
            pre,
            special: tables.special,
            phi3: contains_ignore_case(model_name, "phi-3")
                || contains_ignore_case(model_name, "phi3"),
        })
    }

    /// The tokenizer of an opened image.
    pub fn from_model(model: &Model<'a>) -> Result<Tokenizer<'a>> {
        let m = model.manifest();
        Tokenizer::new(&m.tokenizer, m.name)
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> u32 {
        self.t.tokens.len() as u32
    }

    /// Special token ids and flags.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The algorithm.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// Whether `id` ends generation (llama.cpp's `llama_vocab_is_eog`:
    /// EOS, EOT and the tokens llama.cpp recognizes by their text, such as
    /// `<|end|>`, `<|im_end|>`, `<|endoftext|>`).
    pub fn is_eog(&self, id: u32) -> bool {
        id != NO_TOKEN && self.t.is_eog(id)
    }

    /// The text of token `id` as the vocabulary stores it.
    pub fn token_text(&self, id: u32) -> Result<&'a [u8]> {
        self.check(id)?;
        Ok(self.t.tokens.get(id as usize))
    }

    /// llama.cpp's attributes of token `id` ([`attr`]), with the
    /// model-name rules applied.
    pub fn attr(&self, id: u32) -> u16 {
        let a = self.t.attr(id);
        if !self.phi3 {
            return a;
        }
        // llama.cpp: RSTRIP on every special token and `</s>`, but not on
        // `<unk>`, `<s>` and `<|endoftext|>`.
        let text = self.t.tokens.get(id as usize);
        if matches!(text, b"<unk>" | b"<s>" | b"<|endoftext|>") {
            a & !attr::RSTRIP
        } else if a & attr::PARTITIONED != 0 || text == b"</s>" {
            a | attr::RSTRIP
        } else {
            a
        }
    }

    fn check(&self, id: u32) -> Result<()> {
        if id >= self.n_vocab() {
            return Err(Error::BadToken {
                id,
                n_vocab: self.n_vocab(),
            });
        }
        Ok(())
    }

    /// Bytes of working memory [`tokenize`](Self::tokenize) needs for a
    /// text of `text_len` bytes: about 115 per text byte for SentencePiece
    /// and 160 for byte-level BPE (sized for the worst case, invalid UTF-8).
    pub fn work_bytes(&self, text_len: usize) -> usize {
        Layout::new(self.kind, text_len, self.n_vocab() as usize).bytes()
    }

    /// [`work_bytes`](Self::work_bytes) for the hungriest tokenizer kind
    /// with `n_vocab` tokens: `const`, for arenas sized from the
    /// hyperparameters alone.
    pub const fn max_work_bytes(text_len: usize, n_vocab: usize) -> usize {
        let bpe = Layout::new(TokenizerKind::ByteLevelBpe, text_len, n_vocab).bytes();
        let spm = Layout::new(TokenizerKind::SentencePiece, text_len, n_vocab).bytes();
        if bpe > spm {
            bpe
        } else {
            spm
        }
    }

    /// Tokenizes `text` into `out` and returns the number of ids, as
    /// llama.cpp's `llama_tokenize(text, add_special, parse_special)`:
    /// `add_special` adds BOS / EOS where the vocabulary says to
    /// (`add_bos` / `add_eos`); `parse_special` matches control tokens
    /// written in the text (user-defined ones always are).
    ///
    /// `work` must hold [`work_bytes`](Self::work_bytes)`(text.len())`
    /// bytes. If `out` is too small the error says how many ids the text
    /// needs.
    pub fn tokenize(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
        out: &mut [u32],
        work: &mut [u8],
    ) -> Result<usize> {
        self.tokenize_parts(text, &[], add_special, parse_special, out, work)
    }

    /// Tokenizes a rendered chat prompt whose template markers are the
    /// byte ranges `markers` (ordered, inside `text`): each marker that is
    /// the text of a special token becomes that token, with its LSTRIP /
    /// RSTRIP, and the text between them is tokenized as
    /// [`tokenize`](Self::tokenize) does with `parse_special` off. So a
    /// message that spells `<|im_start|>` stays text, while a message
    /// without such text gives llama.cpp's ids for the whole prompt with
    /// special tokens parsed. A marker the vocabulary has no special token
    /// for stays text too.
    pub fn tokenize_marked(
        &self,
        text: &[u8],
        markers: &[Range<usize>],
        add_special: bool,
        out: &mut [u32],
        work: &mut [u8],
    ) -> Result<usize> {
        self.tokenize_parts(text, markers, add_special, false, out, work)
    }

    /// [`tokenize`](Self::tokenize) from the fragments of `markers`.
    fn tokenize_parts(
        &self,
        text: &[u8],
        markers: &[Range<usize>],
        add_special: bool,
        parse_special: bool,
        out: &mut [u32],
        work: &mut [u8],
    ) -> Result<usize> {
        if text.len() > MAX_TEXT {
            return Err(Error::TextTooLong {
                len: text.len(),
                max: MAX_TEXT,
            });
        }
        let need = self.work_bytes(text.len());
        if work.len() < need {
            return Err(Error::WorkTooSmall {
                need,
                got: work.len(),
            });
        }
        if self.kind == TokenizerKind::ByteLevelBpe {
            bpe::check_encodable(text, 0)?;
        }
        let l = Layout::new(self.kind, text.len(), self.n_vocab() as usize);
        let (_, words, _) = bytemuck::pod_align_to_mut::<u8, u32>(work);
        let short = Error::WorkTooSmall {
            need,
            got: 4 * words.len(),
        };
        let words = words.get_mut(..l.words()).ok_or(short)?;
        let (frag_a, rest) = words.split_at_mut(l.frags);
        let (frag_b, rest) = rest.split_at_mut(l.frags);
        let (found, rest) = rest.split_at_mut(l.found);
        let (scratch_bytes, scratch_words) = rest.split_at_mut(l.bytes);
        let scratch_bytes: &mut [u8] = bytemuck::cast_slice_mut(scratch_bytes);
        let frags = partition::Frags {
            a: frag_a,
            b: frag_b,
            found,
        };
        let (frags, n) = partition::partition(self, text, markers, parse_special, frags)?;

        let mut o = Out { buf: out, n: 0 };
        let bos = add_special && self.special.add_bos;
        if bos {
            o.push(self.required(
                self.special.bos,
                "add_bos is set but the vocabulary has no BOS token",
            )?);
        }
        let mut prev_special = true;
        for k in 0..n {
            let (start, len) = (frags[2 * k], frags[2 * k + 1]);
            if len == partition::TOKEN {
                o.push(start);
                prev_special = true;
                continue;
            }
            let raw = &text[start as usize..(start + len) as usize];
            let s = Scratch {
                bytes: &mut *scratch_bytes,
                words: &mut *scratch_words,
            };
            match self.kind {
                TokenizerKind::ByteLevelBpe => bpe::tokenize(self, raw, s, &mut o)?,
                _ => spm::tokenize(
                    self,
                    raw,
                    self.special.add_space_prefix && prev_special,
                    s,
                    &mut o,
                )?,
            }
            prev_special = false;
        }
        if add_special && self.special.add_eos {
            o.push(self.required(
                self.special.eos,
                "add_eos is set but the vocabulary has no EOS token",
            )?);
        }
        if o.n > o.buf.len() {
            return Err(Error::BufferTooSmall {
                need: o.n,
                got: o.buf.len(),
            });
        }
        Ok(o.n)
    }

    fn required(&self, id: u32, what: &'static str) -> Result<u32> {
        if id == NO_TOKEN {
            return Err(Error::BadTokenizer { what });
        }
        Ok(id)
    }

    /// Writes the text of token `id` to `out` and returns its length, as
    /// llama.cpp's `llama_token_to_piece(id, lstrip 0, special)`: byte
    /// tokens give their byte, SentencePiece pieces have U+2581 turned back
    /// into spaces, byte-level pieces are mapped back to bytes; control and
    /// unknown tokens give their text only if `special`, nothing otherwise.
    /// A piece need not be valid UTF-8 on its own (see [`Utf8Decoder`]).
    pub fn piece(&self, id: u32, special: bool, out: &mut [u8]) -> Result<usize> {
        self.check(id)?;
        let a = self.attr(id);
        let mut w = PieceWriter { out, n: 0 };
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return Ok(0);
        }
        let text = self.t.tokens.get(id as usize);
        let mut empty_name = [0u8; 20];
        let text = if text.is_empty() {
            empty_token_name(id, &mut empty_name)
        } else {
            text
        };
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            w.put(text);
        } else if a & attr::NORMAL != 0 {
            match self.kind {
                TokenizerKind::ByteLevelBpe if self.pre.is_none_or(PreTokenizer::byte_encode) => {
                    byte_level_decode(text, &mut w)
                }
                // SentencePiece, and BPE without the byte map (Gemma 4).
                _ => {
                    let mut rest = text;
                    while !rest.is_empty() {
                        if rest.starts_with(spm::SPACE) {
                            w.put(b" ");
                            rest = &rest[spm::SPACE.len()..];
                        } else {
                            w.put(&rest[..1]);
                            rest = &rest[1..];
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            w.put(&[hex_byte(text)]);
        }
        if w.n > w.out.len() {
            return Err(Error::BufferTooSmall {
                need: w.n,
                got: w.out.len(),
            });
        }
        Ok(w.n)
    }
}

/// Piece bytes, counted past the end of `out`.
struct PieceWriter<'o> {
    out: &'o mut [u8],
    n: usize,
}

impl PieceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.n..self.n + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.n += bytes.len();
    }
}

/// `[EMPTY_<id>]`, llama.cpp's name for a token with empty text.
fn empty_token_name(id: u32, buf: &mut [u8; 20]) -> &[u8] {
    let mut digits = [0u8; 10];
    let mut k = 0;
    let mut v = id;
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[..7].copy_from_slice(b"[EMPTY_");
    for i in 0..k {
        buf[7 + i] = digits[k - 1 - i];
    }
    buf[7 + k] = b']';
    &buf[..8 + k]
}

/// The byte of a `<0xNN>` token: up to two hex digits from position 3, as
/// llama.cpp's `strtol(text.substr(3, 2), 16)` reads them (0 if none).
fn hex_byte(text: &[u8]) -> u8 {
    let mut v = 0u8;
    for &c in text.iter().skip(3).take(2) {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        v = v.wrapping_mul(16).wrapping_add(d);
    }
    v
}

/// llama.cpp's `llama_decode_text`: each code point back to its byte; one
/// outside GPT-2's map becomes `[UNK_BYTE_0x<its UTF-8 in hex><text>]`.
fn byte_level_decode(text: &[u8], w: &mut PieceWriter<'_>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pos = 0;
    while pos < text.len() {
        let (c, n) = unicode::decode(text, pos);
        pos += n;
        match unicode::cpt_to_byte(c) {
            Some(b) => w.put(&[b]),
            None => {
                w.put(b"[UNK_BYTE_0x");
                let mut utf8 = [0u8; 4];
                let k = unicode::encode(c.min(0x10FFFF), &mut utf8);
                for &b in &utf8[..k] {
                    w.put(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
                }
                w.put(text);
                w.put(b"]");
            }
        }
    }
}

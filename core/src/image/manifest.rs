//! The manifest: hyperparameters, tokenizer tables and the tensor table,
//! serialized with postcard and read in place (zero copy).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result, Section};

/// Which tokenizer algorithm the vocabulary is for
/// (`tokenizer.ggml.model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenizerKind {
    /// No tokenizer: the caller supplies token ids.
    None,
    /// SentencePiece BPE (`llama`): Phi-3, Llama 2.
    SentencePiece,
    /// BPE (`gpt2`: SmolLM2, Llama 3, Qwen2, ...; also `gemma4`, stored
    /// with the pre-tokenizer name `gemma4`, which selects raw-UTF-8
    /// merges instead of the byte map).
    ByteLevelBpe,
}

/// Token ids with a special meaning; `u32::MAX` when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    /// Beginning of sequence.
    pub bos: u32,
    /// End of sequence.
    pub eos: u32,
    /// End of turn (`<|end|>`, `<|im_end|>`), if the vocabulary has one.
    pub eot: u32,
    /// Unknown token.
    pub unk: u32,
    /// Padding.
    pub pad: u32,
    /// Whether a BOS token starts every prompt.
    pub add_bos: bool,
    /// Whether an EOS token ends every prompt.
    pub add_eos: bool,
    /// Whether SentencePiece prepends a space to the text.
    pub add_space_prefix: bool,
}

/// Marks an absent special token.
pub const NO_TOKEN: u32 = u32::MAX;

/// The tokenizer's tables, packed as flat little-endian arrays so the board
/// reads them in place.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizerTables<'a> {
    /// The algorithm.
    pub kind: TokenizerKind,
    /// The pre-tokenizer name (`tokenizer.ggml.pre`; `gemma4` for a
    /// `gemma4` vocabulary, as llama.cpp sets it), empty if none.
    pub pre: &'a str,
    /// A string table: `n_vocab + 1` u32 byte positions within this blob
    /// (the first is `4 * (n_vocab + 1)`, token `i` spans positions `i` to
    /// `i + 1`), then the token texts concatenated as GGUF stores them.
    #[serde(borrow)]
    pub tokens: &'a [u8],
    /// One f32 score per token (empty if the vocabulary has none).
    pub scores: &'a [u8],
    /// One token type per token (llama.cpp's `llama_token_type`).
    pub types: &'a [u8],
    /// A string table like `tokens` holding the merges (`"a b"`), in rank
    /// order; empty for SentencePiece.
    pub merges: &'a [u8],
    /// llama.cpp's attributes of every token (`llama_token_attr`, one u16
    /// each): the token types plus what llama.cpp derives from the texts at
    /// load time (control end-of-generation tokens, unused control tokens).
    /// The model-name rules (Phi-3's RSTRIP) are applied by the tokenizer.
    pub attrs: &'a [u8],
    /// The end-of-generation token ids (u32 each), as llama.cpp derives them.
    pub eog: &'a [u8],
    /// Token ids (u32 each) sorted by token text, bytewise: text to id by
    /// binary search. Empty texts are left out; of equal texts only the
    /// last id is kept (llama.cpp's map keeps the last).
    pub token_index: &'a [u8],
    /// Merge ranks (u32 each) sorted by the merge's (left, right) pair,
    /// bytewise, then rank; only merges with a separating space.
    pub merge_index: &'a [u8],
    /// The ids (u32 each) of the tokens matched in raw text before
    /// tokenizing (control, user-defined and unknown ones), longest text
    /// first, ties by id.
    pub specials: &'a [u8],
    /// The Aho-Corasick automaton over the texts of `specials` (u32 words;
    /// the tokenizer's `automaton` module has the layout): one pass over a
    /// text finds which of them occur.
    pub special_automaton: &'a [u8],
    /// Special token ids and flags.
    pub special: SpecialTokens,
    /// The chat template as the GGUF carries it (empty if none).
    pub chat_template: &'a str,
}

impl TokenizerTables<'_> {
    /// Tables for a model with no tokenizer.
    pub const EMPTY: TokenizerTables<'static> = TokenizerTables {
        kind: TokenizerKind::None,
        pre: "",
        tokens: &[],
        scores: &[],
        types: &[],
        merges: &[],
        attrs: &[],
        eog: &[],
        token_index: &[],
        merge_index: &[],
        specials: &[],
        special_automaton: &[],
        special: SpecialTokens {
            bos: NO_TOKEN,
            eos: NO_TOKEN,
            eot: NO_TOKEN,
            unk: NO_TOKEN,
            pad: NO_TOKEN,
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
        },
        chat_template: "",
    };
}

/// Everything in an image between the header and the tensor data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest<'a> {
    /// Hyperparameters.
    pub config: Config,
    /// `general.name`, or empty.
    pub name: &'a str,
    /// Tokenizer tables.
    #[serde(borrow)]
    pub tokenizer: TokenizerTables<'a>,
    /// The tensor table: [`RECORD_LEN`](super::tensor::RECORD_LEN)-byte
    /// records in forward order.
    pub tensors: &'a [u8],
}

impl<'a> Manifest<'a> {
    /// Decodes a manifest in place. Checks the encoding only; the model
    /// checks the contents.
    pub fn decode(bytes: &'a [u8]) -> Result<Manifest<'a>> {
        match postcard::take_from_bytes::<Manifest<'a>>(bytes) {
            Ok((m, [])) => Ok(m),
            Ok(_) => Err(Error::Malformed {
                section: Section::Manifest,
                what: "trailing bytes",
            }),
            Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Error::Truncated {
                section: Section::Manifest,
            }),
            Err(_) => Err(Error::Malformed {
                section: Section::Manifest,
                what: "undecodable",
            }),
        }
    }

    /// Encodes the manifest (host tooling).
    #[cfg(feature = "std")]
    pub fn encode(&self) -> std::vec::Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }
}

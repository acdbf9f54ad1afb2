//! Resource limits: how large a well-formed model may make the tables the
//! core reads and the memory a host allocates for it.
//!
//! A valid image can still ask for more than a device has: a 100 GiB arena
//! for its trained context, a manifest of millions of tokens. Opening a
//! model ([`Model::open_mapped_with`](crate::Model::open_mapped_with) and
//! the other `*_with` openers) checks the model's tables against a
//! [`Limits`]; a host checks the arena ([`Limits::check_arena`]) and the
//! manifest it is about to read ([`Limits::check_manifest_bytes`]) before
//! allocating them. Over a limit is [`Error::OverLimit`], naming the limit,
//! never an allocation failure.

use crate::error::{Error, Result};
use crate::image::header::Header;
use crate::image::manifest::{Manifest, TokenizerTables};

/// What a [`Limits`] field bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Limit {
    /// Bytes of the manifest (tokenizer tables and tensor table).
    ManifestBytes,
    /// Bytes of the chat template.
    ChatTemplateBytes,
    /// Tokens in the vocabulary.
    Vocab,
    /// BPE merges.
    Merges,
    /// Special tokens matched in raw text.
    Specials,
    /// End-of-generation tokens.
    Eog,
    /// Bytes of the arena a model needs at the chosen options.
    ArenaBytes,
}

impl Limit {
    /// What the limit counts: "the manifest is" ... "bytes".
    pub(crate) fn what(self) -> (&'static str, &'static str) {
        match self {
            Limit::ManifestBytes => ("the manifest is", "bytes"),
            Limit::ChatTemplateBytes => ("the chat template is", "bytes"),
            Limit::Vocab => ("the vocabulary has", "tokens"),
            Limit::Merges => ("the merge table has", "merges"),
            Limit::Specials => ("the vocabulary has", "special tokens"),
            Limit::Eog => ("the vocabulary has", "end-of-generation tokens"),
            Limit::ArenaBytes => ("the arena needs", "bytes"),
        }
    }
}

/// Upper bounds on what a model may ask for. [`Limits::DEFAULT`] fits a
/// 4 GiB board and every model phi-edge targets with room to spare; a host
/// raises fields as it can afford.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Manifest bytes (SmolLM2's is 1.7 MB, a 128k-token vocabulary's
    /// about 10 MB).
    pub manifest_bytes: u64,
    /// Chat template bytes (real templates are under 20 KB).
    pub chat_template_bytes: u64,
    /// Vocabulary tokens.
    pub vocab: u64,
    /// BPE merges.
    pub merges: u64,
    /// Special tokens (control, user-defined and unknown ones).
    pub specials: u64,
    /// End-of-generation tokens.
    pub eog: u64,
    /// Arena bytes (phi-3-mini at a 4096-token context needs about
    /// 1.6 GiB).
    pub arena_bytes: u64,
}

impl Limits {
    /// The defaults.
    pub const DEFAULT: Limits = Limits {
        manifest_bytes: 64 << 20,
        chat_template_bytes: 256 << 10,
        vocab: 1 << 19,
        merges: 1 << 21,
        specials: 1 << 16,
        eog: 1 << 10,
        arena_bytes: 4 << 30,
    };

    /// The bound on `limit`.
    pub fn max(&self, limit: Limit) -> u64 {
        match limit {
            Limit::ManifestBytes => self.manifest_bytes,
            Limit::ChatTemplateBytes => self.chat_template_bytes,
            Limit::Vocab => self.vocab,
            Limit::Merges => self.merges,
            Limit::Specials => self.specials,
            Limit::Eog => self.eog,
            Limit::ArenaBytes => self.arena_bytes,
        }
    }

    /// [`Error::OverLimit`] if `value` is over the bound on `limit`.
    pub fn check(&self, limit: Limit, value: u64) -> Result<()> {
        let max = self.max(limit);
        if value > max {
            return Err(Error::OverLimit { limit, value, max });
        }
        Ok(())
    }

    /// Checks the manifest length a header gives, before reading it.
    pub fn check_manifest_bytes(&self, header: &Header) -> Result<()> {
        self.check(Limit::ManifestBytes, header.manifest_len)
    }

    /// Checks an arena of `bytes`, before allocating it.
    pub fn check_arena(&self, bytes: usize) -> Result<()> {
        self.check(Limit::ArenaBytes, bytes as u64)
    }

    /// Checks a decoded manifest: its vocabulary size and
    /// [`check_tokenizer`](Self::check_tokenizer).
    pub(crate) fn check_manifest(&self, m: &Manifest<'_>) -> Result<()> {
        self.check(Limit::Vocab, u64::from(m.config.n_vocab))?;
        self.check_tokenizer(&m.tokenizer)
    }

    /// Checks tokenizer tables (the counts are those of their flat arrays,
    /// before they are checked for consistency).
    pub fn check_tokenizer(&self, t: &TokenizerTables<'_>) -> Result<()> {
        let words = |b: &[u8]| b.len() as u64 / 4;
        // A string table starts with its entry count + 1 positions.
        let strings = |b: &[u8]| {
            b.get(..4)
                .map_or(0, |w| {
                    u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])) / 4
                })
                .saturating_sub(1)
        };
        self.check(Limit::ChatTemplateBytes, t.chat_template.len() as u64)?;
        self.check(Limit::Vocab, strings(t.tokens))?;
        self.check(Limit::Merges, strings(t.merges))?;
        self.check(Limit::Specials, words(t.specials))?;
        self.check(Limit::Eog, words(t.eog))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

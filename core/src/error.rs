//! The one error type of the core.

use core::fmt;

/// Which part of an image a check failed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Section {
    /// The fixed header.
    Header,
    /// The postcard manifest.
    Manifest,
    /// The tensor table inside the manifest.
    TensorTable,
    /// The tensor data.
    Data,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Header => "header",
            Section::Manifest => "manifest",
            Section::TensorTable => "tensor table",
            Section::Data => "tensor data",
        })
    }
}

/// Everything that can go wrong in the core. Bad input is always one of
/// these, never a panic.
///
/// It implements [`core::error::Error`] (no feature needed) and, with the
/// feature `defmt`, `defmt::Format`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The image does not start with the phi-edge magic.
    BadMagic,
    /// The image was written by an incompatible format version.
    UnsupportedVersion {
        /// Version found in the header.
        found: u32,
    },
    /// The input ends inside `section`.
    Truncated {
        /// Where the input ended.
        section: Section,
    },
    /// A CRC-32 did not match.
    ChecksumMismatch {
        /// What was checked.
        section: Section,
    },
    /// Tensor `index` failed its CRC-32 check.
    TensorChecksum {
        /// Position in the tensor table.
        index: u32,
    },
    /// A structural problem in `section`, described by `what`.
    Malformed {
        /// Where.
        section: Section,
        /// What is wrong.
        what: &'static str,
    },
    /// The hyperparameters are inconsistent or unsupported.
    BadConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// A tensor the architecture needs is missing from the image.
    MissingTensor {
        /// The tensor's GGUF name pattern, e.g. `blk.N.attn_qkv.weight`.
        name: &'static str,
        /// Its layer, if it has one.
        layer: Option<u16>,
    },
    /// A tensor's shape or type does not fit the hyperparameters.
    BadTensor {
        /// Position in the tensor table.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// The arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes the plan needs.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// The run options cannot work with this model.
    BadOptions {
        /// What is wrong.
        what: &'static str,
    },
    /// The KV cache type stores each head in blocks of `block` values, and
    /// the model's head width is not a multiple of it.
    UnsupportedKvType {
        /// The cache type's name, e.g. `q8_0`.
        kv_type: &'static str,
        /// The model's head width.
        head_dim: u32,
        /// Values per block of the cache type.
        block: u32,
    },
    /// The session has no room for more tokens.
    ContextFull {
        /// The session's context length.
        n_ctx: u32,
    },
    /// A token id is not in the vocabulary.
    BadToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        n_vocab: u32,
    },
    /// An output buffer is too small.
    BufferTooSmall {
        /// Values needed.
        need: usize,
        /// Values given.
        got: usize,
    },
    /// The weight source failed to read.
    Read {
        /// Offset of the failed read.
        offset: u64,
    },
    /// Reading a tensor's bytes from a streamed source failed (a device
    /// error or a short read). A session that returns it has not advanced:
    /// the next call may retry.
    WeightRead {
        /// The tensor's GGUF name pattern, e.g. `blk.N.ffn_down.weight`.
        name: &'static str,
        /// Its layer, if it has one.
        layer: Option<u16>,
        /// Absolute image offset of the failed read.
        offset: u64,
    },
    /// The model has no tokenizer (the caller must supply token ids).
    NoTokenizer,
    /// The tokenizer tables are inconsistent.
    BadTokenizer {
        /// What is wrong.
        what: &'static str,
    },
    /// The BPE vocabulary names a pre-tokenizer (`tokenizer.ggml.pre`)
    /// this crate does not implement.
    UnsupportedPreTokenizer,
    /// A caller-provided work buffer (tokenizer or sampler working memory)
    /// is smaller than needed.
    WorkTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A sampler setting is out of its range.
    BadSamplerConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// The chat template is not one phi-edge can render.
    UnknownChatTemplate {
        /// Why it was not recognised.
        what: &'static str,
    },
    /// The text needs a byte-fallback token the vocabulary lacks.
    NoByteToken {
        /// The byte.
        byte: u8,
    },
    /// The text is longer than the tokenizer accepts.
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text holds a 4-byte UTF-8 form of a code point past U+10FFFF,
    /// which byte-level BPE cannot re-encode (llama.cpp aborts on it).
    UnencodableText {
        /// Byte offset of the sequence.
        offset: usize,
    },
    /// A prompt (for a chat turn: the rendered turn) is longer than the
    /// generator was planned for.
    PromptTooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The generator's `max_prompt_bytes`.
        max: usize,
    },
    /// A prompt gave no tokens.
    EmptyPrompt,
    /// A prompt's tokens do not fit the context.
    PromptTooManyTokens {
        /// Tokens of the prompt.
        tokens: usize,
        /// Tokens the context still has room for.
        room: usize,
        /// The context length.
        n_ctx: u32,
    },
    /// A token was asked of a generator that has no prompt.
    NoPrompt,
    /// The model asks for more than a [`Limits`](crate::Limits) allows.
    OverLimit {
        /// Which limit.
        limit: crate::Limit,
        /// What the model asks for.
        value: u64,
        /// The limit.
        max: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => f.write_str("not a phi-edge image (bad magic)"),
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported image format version {found}")
            }
            Error::Truncated { section } => write!(f, "image truncated inside the {section}"),
            Error::ChecksumMismatch { section } => write!(f, "{section} checksum mismatch"),
            Error::TensorChecksum { index } => write!(f, "tensor {index} checksum mismatch"),
            Error::Malformed { section, what } => write!(f, "malformed {section}: {what}"),
            Error::BadConfig { what } => write!(f, "bad model hyperparameters: {what}"),
            Error::MissingTensor { name, layer: Some(l) } => {
                write!(f, "missing tensor {name} for layer {l}")
            }
            Error::MissingTensor { name, layer: None } => write!(f, "missing tensor {name}"),
            Error::BadTensor { index, what } => write!(f, "tensor {index}: {what}"),
            Error::ArenaTooSmall { need, got } => {
                write!(f, "arena too small: need {need} bytes, got {got}")
            }
            Error::BadOptions { what } => write!(f, "bad run options: {what}"),
            Error::UnsupportedKvType { kv_type, head_dim, block } => write!(
                f,
                "a {kv_type} KV cache needs a head width that is a multiple of {block}; this model's is {head_dim}"
            ),
            Error::ContextFull { n_ctx } => write!(f, "context full ({n_ctx} tokens)"),
            Error::BadToken { id, n_vocab } => {
                write!(f, "token id {id} out of range (vocabulary has {n_vocab})")
            }
            Error::BufferTooSmall { need, got } => {
                write!(f, "output buffer too small: need {need} values, got {got}")
            }
            Error::Read { offset } => write!(f, "weight source read failed at offset {offset}"),
            Error::WeightRead { name, layer: Some(l), offset } => {
                write!(f, "reading tensor {name} of layer {l} failed at image offset {offset}")
            }
            Error::WeightRead { name, layer: None, offset } => {
                write!(f, "reading tensor {name} failed at image offset {offset}")
            }
            Error::NoTokenizer => f.write_str("the model has no tokenizer"),
            Error::BadTokenizer { what } => write!(f, "malformed tokenizer tables: {what}"),
            Error::UnsupportedPreTokenizer => f.write_str(
                "unsupported BPE pre-tokenizer (tokenizer.ggml.pre); see the README's list of supported vocabularies",
            ),
            Error::WorkTooSmall { need, got } => {
                write!(f, "working memory too small: need {need} bytes, got {got}")
            }
            Error::BadSamplerConfig { what } => write!(f, "bad sampler setting: {what}"),
            Error::UnknownChatTemplate { what } => write!(f, "unknown chat template: {what}"),
            Error::NoByteToken { byte } => write!(f, "the vocabulary has no token for byte 0x{byte:02X}"),
            Error::TextTooLong { len, max } => {
                write!(f, "text of {len} bytes is longer than the tokenizer's limit of {max}")
            }
            Error::UnencodableText { offset } => {
                write!(f, "text has a UTF-8 form of a code point past U+10FFFF at byte {offset}")
            }
            Error::PromptTooLong { bytes, max } => write!(
                f,
                "the prompt is {bytes} bytes; the generator was planned for at most {max}"
            ),
            Error::EmptyPrompt => f.write_str("the prompt is empty"),
            Error::PromptTooManyTokens { tokens, room, n_ctx } => write!(
                f,
                "the prompt is {tokens} tokens; the context has room for {room} of {n_ctx}"
            ),
            Error::NoPrompt => f.write_str("no prompt to generate from"),
            Error::OverLimit { limit, value, max } => {
                let (what, unit) = limit.what();
                write!(f, "{what} {value} {unit}, over the limit of {max}")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Result with the core's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

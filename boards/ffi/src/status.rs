//! Status codes: what every call returns, and their messages.

use core::ffi::{c_char, CStr};

use phi_edge::Error;

/// What a call did. `PHI_EDGE_STATUS_OK` (0) is success; the positive
/// codes say why generation stopped (they are not errors: the text of the
/// call is valid); the negative codes are errors, each with a message from
/// `phi_edge_strerror`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhiEdgeStatus {
    /// Success; from `phi_edge_next`: a token was generated.
    Ok = 0,
    /// Generation ended: the model drew an end-of-generation token (its
    /// text is not shown).
    Done = 1,
    /// Generation stopped: the context has no room for the next token.
    ContextFull = 2,
    /// A pointer argument is NULL.
    NullPointer = -1,
    /// An argument is out of range: a length past `PTRDIFF_MAX`, a pointer
    /// not aligned for its type, an arena that overlaps the image.
    BadArgument = -2,
    /// An output buffer is too small: text buffers need
    /// `PHI_EDGE_TEXT_CAP` bytes, so that no piece of text is ever cut.
    BufferTooSmall = -3,
    /// The handle is not an opened model or a generator: not opened, its
    /// open failed, or an earlier call on it failed inside the library.
    BadHandle = -4,
    /// A text argument is not valid UTF-8.
    BadUtf8 = -5,
    /// Not a phi-edge image (bad magic).
    NotAnImage = -6,
    /// The image was written by another, incompatible format version.
    UnsupportedVersion = -7,
    /// The image is truncated or malformed.
    BadImage = -8,
    /// A checksum of the image does not match: it is corrupted.
    Checksum = -9,
    /// The model needs something this build does not implement (a
    /// byte-level BPE pre-tokenizer).
    UnsupportedModel = -10,
    /// The model has no tokenizer.
    NoTokenizer = -11,
    /// The options do not work with this model.
    BadOptions = -12,
    /// The arena is smaller than `phi_edge_arena_bytes` says it must be.
    ArenaTooSmall = -13,
    /// The prompt is longer than the options' `max_prompt_bytes`.
    PromptTooLong = -14,
    /// The prompt's tokens do not fit the context.
    PromptTooManyTokens = -15,
    /// The prompt gives no tokens.
    EmptyPrompt = -16,
    /// A token was asked for before any prompt.
    NoPrompt = -17,
    /// The text has a character the model's vocabulary cannot encode.
    UnencodableText = -18,
    /// A token id is outside the vocabulary.
    BadToken = -19,
    /// The image could not be read where its tables say.
    ReadFailed = -20,
    /// An error inside the library (a bug): the handle is unusable.
    Internal = -21,
    /// The model asks for more than the library's limits allow (an
    /// oversized vocabulary, manifest or chat template).
    OverLimit = -22,
}

impl PhiEdgeStatus {
    /// Every status (a function, not a constant, so that the header does
    /// not get it).
    pub const fn all() -> [PhiEdgeStatus; 25] {
        [
            Self::Ok,
            Self::Done,
            Self::ContextFull,
            Self::NullPointer,
            Self::BadArgument,
            Self::BufferTooSmall,
            Self::BadHandle,
            Self::BadUtf8,
            Self::NotAnImage,
            Self::UnsupportedVersion,
            Self::BadImage,
            Self::Checksum,
            Self::UnsupportedModel,
            Self::NoTokenizer,
            Self::BadOptions,
            Self::ArenaTooSmall,
            Self::PromptTooLong,
            Self::PromptTooManyTokens,
            Self::EmptyPrompt,
            Self::NoPrompt,
            Self::UnencodableText,
            Self::BadToken,
            Self::ReadFailed,
            Self::Internal,
            Self::OverLimit,
        ]
    }

    /// The status of a core error.
    pub fn of(e: &Error) -> PhiEdgeStatus {
        match e {
            Error::BadMagic => Self::NotAnImage,
            Error::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            Error::Truncated { .. }
            | Error::Malformed { .. }
            | Error::BadConfig { .. }
            | Error::MissingTensor { .. }
            | Error::BadTensor { .. }
            | Error::BadTokenizer { .. } => Self::BadImage,
            Error::ChecksumMismatch { .. } | Error::TensorChecksum { .. } => Self::Checksum,
            Error::UnsupportedPreTokenizer => Self::UnsupportedModel,
            Error::NoTokenizer => Self::NoTokenizer,
            Error::BadOptions { .. }
            | Error::BadSamplerConfig { .. }
            | Error::UnsupportedKvType { .. } => Self::BadOptions,
            Error::ArenaTooSmall { .. } => Self::ArenaTooSmall,
            Error::ContextFull { .. } => Self::ContextFull,
            Error::PromptTooLong { .. } | Error::TextTooLong { .. } => Self::PromptTooLong,
            Error::PromptTooManyTokens { .. } => Self::PromptTooManyTokens,
            Error::EmptyPrompt => Self::EmptyPrompt,
            Error::NoPrompt => Self::NoPrompt,
            Error::NoByteToken { .. } | Error::UnencodableText { .. } => Self::UnencodableText,
            Error::BadToken { .. } => Self::BadToken,
            Error::Read { .. } | Error::WeightRead { .. } => Self::ReadFailed,
            Error::OverLimit { .. } => Self::OverLimit,
            // Output and work buffers are the library's own, and the
            // generator falls back on an unknown chat template.
            _ => Self::Internal,
        }
    }

    /// The message of `phi_edge_strerror`.
    pub fn message(self) -> &'static CStr {
        match self {
            Self::Ok => c"ok",
            Self::Done => c"generation ended (end-of-generation token)",
            Self::ContextFull => c"the context is full",
            Self::NullPointer => c"a pointer argument is NULL",
            Self::BadArgument => {
                c"an argument is out of range (length, alignment or overlapping buffers)"
            }
            Self::BufferTooSmall => c"the output buffer is smaller than PHI_EDGE_TEXT_CAP bytes",
            Self::BadHandle => c"not an opened model or a generator",
            Self::BadUtf8 => c"the text is not valid UTF-8",
            Self::NotAnImage => c"not a phi-edge image (bad magic)",
            Self::UnsupportedVersion => c"unsupported image format version",
            Self::BadImage => c"the image is truncated or malformed",
            Self::Checksum => c"checksum mismatch: the image is corrupted",
            Self::UnsupportedModel => c"the model needs a feature this build does not have",
            Self::NoTokenizer => c"the model has no tokenizer",
            Self::BadOptions => c"the options do not work with this model",
            Self::ArenaTooSmall => c"the arena is too small",
            Self::PromptTooLong => c"the prompt is longer than max_prompt_bytes",
            Self::PromptTooManyTokens => c"the prompt does not fit the context",
            Self::EmptyPrompt => c"the prompt is empty",
            Self::NoPrompt => c"no prompt to generate from",
            Self::UnencodableText => c"the text has a character the vocabulary cannot encode",
            Self::BadToken => c"a token id is outside the vocabulary",
            Self::ReadFailed => c"the image could not be read",
            Self::Internal => c"internal error in phi-edge (please report it)",
            Self::OverLimit => c"the model is larger than the library's limits",
        }
    }
}

/// The message of a status code, a static NUL-terminated string (never
/// NULL; an unknown code gives "unknown status code").
#[no_mangle]
pub extern "C" fn phi_edge_strerror(code: i32) -> *const c_char {
    PhiEdgeStatus::all()
        .iter()
        .find(|s| **s as i32 == code)
        .map_or(c"unknown status code", |s| s.message())
        .as_ptr()
}

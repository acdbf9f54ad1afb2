//! llama.cpp's per-token attributes (`llama_token_attr`), as stored in
//! [`TokenizerTables::attrs`](crate::image::manifest::TokenizerTables::attrs).

/// No type (GGUF token type 0 or unknown): rendered as nothing.
pub const UNDEFINED: u16 = 0;
/// The unknown token.
pub const UNKNOWN: u16 = 1 << 0;
/// A token the model never uses.
pub const UNUSED: u16 = 1 << 1;
/// An ordinary piece of text.
pub const NORMAL: u16 = 1 << 2;
/// A control token (`<s>`, `<|im_end|>`): matched in text only when
/// special tokens are parsed, rendered only on request.
pub const CONTROL: u16 = 1 << 3;
/// A user-defined token: always matched in text, always rendered.
pub const USER_DEFINED: u16 = 1 << 4;
/// A byte-fallback token (`<0xNN>`).
pub const BYTE: u16 = 1 << 5;
/// Whitespace to the left of the token is removed when it is matched.
pub const LSTRIP: u16 = 1 << 7;
/// Whitespace to the right of the token is removed when it is matched.
pub const RSTRIP: u16 = 1 << 8;

/// Tokens matched in raw text before tokenizing (llama.cpp's
/// `cache_special_tokens`).
pub const PARTITIONED: u16 = CONTROL | USER_DEFINED | UNKNOWN;

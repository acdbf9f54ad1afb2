//! The request blob: the prompt and generation settings for one run.
//!
//! The blob is the [postcard] encoding of [`Request`]. Its first fields
//! pin the format, so a board can tell "no request here" from "a request of
//! another version" before it decodes the rest:
//!
//! | bytes | field | postcard encoding |
//! |---|---|---|
//! | 4 | magic `PHRQ` | raw bytes (a fixed-size array) |
//! | 1–3 | format version ([`Request::VERSION`]) | varint u16 |
//! | … | prompt | varint length, UTF-8 bytes |
//! | … | system message | 0 (none) or 1, then a string |
//! | 1 | chat | 0 or 1 |
//! | 1–5 | max_tokens | varint u32 |
//! | 4 | temperature | f32, little-endian |
//! | 1–10 | seed | varint u64 |
//! | 1–5 | n_ctx | varint u32 |
//! | 1 | icount | 0 or 1 (version 2 on) |
//! | 1 | KV cache type | 0 f16, 1 q8_0 (version 3 on) |
//!
//! Strings are borrowed from the blob, so decoding copies nothing and the
//! board needs no allocator for it. Bytes after the encoded request are
//! ignored: a board may hand [`Request::decode`] its whole reserved region.
//!
//! [postcard]: https://docs.rs/postcard

use core::fmt;

use serde::{Deserialize, Serialize};

/// One generation request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request<'a> {
    /// [`Request::MAGIC`].
    magic: [u8; 4],
    /// [`Request::VERSION`].
    version: u16,
    /// The user's prompt.
    pub prompt: &'a str,
    /// A system message for the chat template (`None`: the template's
    /// default, e.g. SmolLM2's own).
    pub system: Option<&'a str>,
    /// Render `prompt` with the model's chat template (and parse
    /// special-token text), as `phi-edge run --chat` does.
    pub chat: bool,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; `<= 0` is greedy.
    pub temperature: f32,
    /// Seed of the sampler's random number generator.
    pub seed: u64,
    /// Session context in tokens (prompt and generated): sizes the KV
    /// cache, and so the arena.
    pub n_ctx: u32,
    /// The board runs under QEMU's `-icount shift=0` (its clock advances
    /// one nanosecond per guest instruction): the `stats:` line then also
    /// gives the instructions per prefill and per decode token. Only the
    /// host that starts QEMU knows this, so it says it here.
    pub icount: bool,
    /// The KV cache's element type (`phi-edge run --cache-type`).
    pub cache_type: CacheType,
}

/// The KV cache type a request asks for: [`phi_edge::KvType`] in the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheType {
    /// f16, the default.
    F16,
    /// ggml's Q8_0 blocks.
    Q8_0,
}

impl CacheType {
    /// Its name, as `--cache-type` takes it ([`phi_edge::KvType::name`]).
    pub const fn name(self) -> &'static str {
        match self {
            CacheType::F16 => phi_edge::KvType::F16.name(),
            CacheType::Q8_0 => phi_edge::KvType::Q8_0.name(),
        }
    }

    /// The type named `name` ([`phi_edge::KvType::from_name`]).
    pub fn from_name(name: &str) -> Option<CacheType> {
        phi_edge::KvType::from_name(name).map(CacheType::from)
    }
}

impl From<CacheType> for phi_edge::KvType {
    fn from(c: CacheType) -> Self {
        match c {
            CacheType::F16 => phi_edge::KvType::F16,
            CacheType::Q8_0 => phi_edge::KvType::Q8_0,
        }
    }
}

impl From<phi_edge::KvType> for CacheType {
    fn from(k: phi_edge::KvType) -> Self {
        match k {
            phi_edge::KvType::F16 => CacheType::F16,
            phi_edge::KvType::Q8_0 => CacheType::Q8_0,
        }
    }
}

/// Why a request blob was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The blob does not start with [`Request::MAGIC`] (all zeros: nothing
    /// was loaded).
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The blob is of another format version.
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The blob does not decode, or an output buffer is too small to
    /// encode it.
    Postcard(postcard::Error),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BadMagic { found } => {
                write!(
                    f,
                    "not a request blob (magic {found:02x?}, expected \"PHRQ\")"
                )
            }
            RequestError::UnsupportedVersion { found } => write!(
                f,
                "request format version {found}, this image reads version {}",
                Request::VERSION
            ),
            RequestError::Postcard(e) => write!(f, "malformed request: {e}"),
        }
    }
}

impl From<postcard::Error> for RequestError {
    fn from(e: postcard::Error) -> Self {
        RequestError::Postcard(e)
    }
}

impl<'a> Request<'a> {
    /// The first four bytes of every request blob.
    pub const MAGIC: [u8; 4] = *b"PHRQ";
    /// The format version this crate writes and reads (2: `icount`, 3:
    /// `cache_type`).
    pub const VERSION: u16 = 3;
    /// Default context: room for a short chat prompt and its answer.
    pub const DEFAULT_N_CTX: u32 = 512;
    /// Default generation limit, as `phi-edge run`'s.
    pub const DEFAULT_MAX_TOKENS: u32 = 256;
    /// Default temperature, llama.cpp's (as `phi-edge run`'s).
    pub const DEFAULT_TEMPERATURE: f32 = 0.8;
    /// Default seed, llama.cpp's `LLAMA_DEFAULT_SEED` (as `phi-edge run`'s).
    pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

    /// A plain-text (no chat template) request for `prompt` with the
    /// defaults above; set the public fields to change them.
    pub fn new(prompt: &'a str) -> Request<'a> {
        Request {
            magic: Self::MAGIC,
            version: Self::VERSION,
            prompt,
            system: None,
            chat: false,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            temperature: Self::DEFAULT_TEMPERATURE,
            seed: Self::DEFAULT_SEED,
            n_ctx: Self::DEFAULT_N_CTX,
            icount: false,
            cache_type: CacheType::F16,
        }
    }

    /// Decodes the request at the start of `blob` (trailing bytes are
    /// ignored); the strings borrow from `blob`.
    pub fn decode(blob: &'a [u8]) -> Result<Request<'a>, RequestError> {
        let mut found = [0u8; 4];
        let n = blob.len().min(4);
        found[..n].copy_from_slice(&blob[..n]);
        if found != Self::MAGIC {
            return Err(RequestError::BadMagic { found });
        }
        // Check the version before the fields whose layout it decides.
        let (_, rest) = postcard::take_from_bytes::<[u8; 4]>(blob)?;
        let (version, _) = postcard::take_from_bytes::<u16>(rest)?;
        if version != Self::VERSION {
            return Err(RequestError::UnsupportedVersion { found: version });
        }
        let (req, _) = postcard::take_from_bytes::<Request<'a>>(blob)?;
        Ok(req)
    }

    /// Encodes the request into `buf` and returns the encoded bytes.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], RequestError> {
        Ok(postcard::to_slice(self, buf)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request<'static> {
        Request {
            system: Some("Be brief."),
            chat: true,
            max_tokens: 16,
            temperature: 0.0,
            seed: 42,
            icount: true,
            cache_type: CacheType::Q8_0,
            ..Request::new("What is the capital of France?")
        }
    }

    #[test]
    fn round_trips_and_ignores_trailing_bytes() {
        let mut buf = [0xAAu8; 256];
        let n = sample().encode(&mut buf).unwrap().len();
        assert_eq!(&buf[..4], b"PHRQ");
        assert_eq!(buf[4], 3, "version 3 is one varint byte");
        assert_eq!(buf[n - 1], 1, "q8_0 is variant 1, the last byte");
        assert_eq!(Request::decode(&buf[..n]).unwrap(), sample());
        assert_eq!(Request::decode(&buf).unwrap(), sample());
    }

    #[test]
    fn rejects_empty_memory_and_other_versions() {
        assert_eq!(
            Request::decode(&[0; 64]),
            Err(RequestError::BadMagic { found: [0; 4] })
        );
        assert_eq!(
            Request::decode(b"PH"),
            Err(RequestError::BadMagic { found: *b"PH\0\0" })
        );
        let mut buf = [0u8; 256];
        let n = sample().encode(&mut buf).unwrap().len();
        buf[4] = 2;
        assert_eq!(
            Request::decode(&buf[..n]),
            Err(RequestError::UnsupportedVersion { found: 2 })
        );
    }

    #[test]
    fn truncated_blob_is_an_error_not_a_panic() {
        let mut buf = [0u8; 256];
        let n = sample().encode(&mut buf).unwrap().len();
        for cut in 4..n {
            assert!(
                matches!(Request::decode(&buf[..cut]), Err(RequestError::Postcard(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn encode_reports_a_short_buffer() {
        let mut buf = [0u8; 8];
        assert!(matches!(
            sample().encode(&mut buf),
            Err(RequestError::Postcard(_))
        ));
    }
}

//! Why a run failed: one line on the UART, exit status 1.

use core::fmt;

use phi_edge_board::RequestError;

use crate::memory::{RamError, MODEL_ADDR, REQUEST_ADDR};

/// A failed run.
#[derive(Debug)]
pub enum BoardError {
    /// The RAM size could not be read from the device tree.
    Ram(RamError),
    /// The request blob is missing or malformed.
    Request(RequestError),
    /// The model image is missing, malformed or corrupted (header,
    /// manifest or a tensor CRC).
    Model(phi_edge::Error),
    /// The core refused something while `what`.
    Core {
        /// What the board was doing.
        what: &'static str,
        /// The core's error.
        err: phi_edge::Error,
    },
    /// The prompt has no tokens.
    EmptyPrompt,
    /// The rendered chat prompt does not fit its buffer.
    PromptTooLong {
        /// Capacity of the buffer in bytes.
        max: usize,
    },
    /// The prompt's tokens do not fit the context.
    PromptTooManyTokens {
        /// Prompt tokens.
        tokens: usize,
        /// The request's context.
        n_ctx: u32,
    },
    /// The RAM after the model is smaller than the arena.
    ArenaTooSmall {
        /// Bytes the session and sampler need.
        need: usize,
        /// Bytes of RAM left after the model.
        got: usize,
    },
    /// The context filled up before generation ended (the output so far
    /// was printed).
    ContextFull {
        /// The context.
        n_ctx: u32,
    },
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardError::Ram(RamError::BadDeviceTree(e)) => write!(f, "cannot read the device tree: {e:?}"),
            BoardError::Ram(RamError::NoMemory) => f.write_str("the device tree has no RAM at 0x40000000"),
            BoardError::Request(e) => write!(f, "request blob at {REQUEST_ADDR:#x}: {e}"),
            BoardError::Model(e) => write!(f, "model image at {MODEL_ADDR:#x}: {e}"),
            BoardError::Core { what, err } => write!(f, "{what}: {err}"),
            BoardError::EmptyPrompt => f.write_str("the prompt is empty"),
            BoardError::PromptTooLong { max } => {
                write!(f, "the rendered chat prompt is longer than {max} bytes")
            }
            BoardError::PromptTooManyTokens { tokens, n_ctx } => {
                write!(f, "the prompt is {tokens} tokens; the context has room for {n_ctx} (raise n_ctx)")
            }
            BoardError::ArenaTooSmall { need, got } => write!(
                f,
                "the arena needs {need} bytes, the RAM after the model has {got} (raise -m or lower n_ctx)"
            ),
            BoardError::ContextFull { n_ctx } => write!(f, "the context is full ({n_ctx} tokens)"),
        }
    }
}

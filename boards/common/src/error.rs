//! Why a run of [`generate::run`](crate::generate::run) failed.

use core::fmt;

/// A failed run: the board prints it as one `error:` line and exits
/// non-zero.
#[derive(Debug)]
pub enum RunError {
    /// The model image is malformed or corrupted (header, manifest or a
    /// tensor CRC).
    Model {
        /// Where the image is (its address in the board's memory).
        addr: usize,
        /// The core's error.
        err: phi_edge::Error,
    },
    /// The core refused something while `what`.
    Core {
        /// What the loop was doing.
        what: &'static str,
        /// The core's error.
        err: phi_edge::Error,
    },
    /// The prompt has no tokens.
    EmptyPrompt,
    /// The heap cannot hold one of the request's buffers.
    HeapFull {
        /// What the buffer is for.
        what: &'static str,
        /// Its size in bytes (for the chat prompt: the part rendered when
        /// the heap ran out).
        bytes: usize,
    },
    /// The RAM left for the heap is smaller than the heap.
    NoHeap {
        /// Bytes of heap.
        need: usize,
        /// Bytes of RAM after the model.
        got: usize,
    },
    /// The prompt's tokens do not fit the context.
    PromptTooManyTokens {
        /// Prompt tokens.
        tokens: usize,
        /// The request's context.
        n_ctx: u32,
    },
    /// The arena is smaller than the run needs.
    ArenaTooSmall {
        /// Bytes the session and the sampler need.
        need: usize,
        /// Bytes of arena.
        got: usize,
    },
    /// The context filled up before generation ended (the output so far,
    /// and the `ids:` and `stats:` lines, were printed).
    ContextFull {
        /// The context.
        n_ctx: u32,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Model { addr, err } => write!(f, "model image at {addr:#x}: {err}"),
            RunError::Core { what, err } => write!(f, "{what}: {err}"),
            RunError::EmptyPrompt => f.write_str("the prompt is empty"),
            RunError::HeapFull { what, bytes } => write!(
                f,
                "the board's heap cannot hold {what} ({bytes} bytes); shorten the prompt or lower max_tokens"
            ),
            RunError::NoHeap { need, got } => write!(
                f,
                "the RAM after the model has {got} bytes, fewer than the board's {need}-byte heap (raise the RAM)"
            ),
            RunError::PromptTooManyTokens { tokens, n_ctx } => {
                write!(f, "the prompt is {tokens} tokens; the context has room for {n_ctx} (raise n_ctx)")
            }
            RunError::ArenaTooSmall { need, got } => write!(
                f,
                "the arena needs {need} bytes, the RAM after the model and the heap has {got} (raise the RAM or lower n_ctx)"
            ),
            RunError::ContextFull { n_ctx } => write!(f, "the context is full ({n_ctx} tokens)"),
        }
    }
}

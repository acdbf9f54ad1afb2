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
        what: HeapBuffer,
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

/// The request's buffers on the board's heap (see
/// [`generate`](crate::generate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapBuffer {
    /// The chat prompt, rendered.
    ChatPrompt,
    /// The prompt's token ids.
    PromptIds,
    /// The generated token ids.
    GeneratedIds,
    /// The tokenizer's working memory.
    TokenizerWork,
}

impl HeapBuffer {
    /// What makes the buffer smaller.
    fn remedy(self) -> &'static str {
        match self {
            HeapBuffer::GeneratedIds => "lower max_tokens",
            _ => "shorten the prompt",
        }
    }
}

impl fmt::Display for HeapBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeapBuffer::ChatPrompt => "the chat prompt",
            HeapBuffer::PromptIds => "the prompt's token ids",
            HeapBuffer::GeneratedIds => "the generated token ids",
            HeapBuffer::TokenizerWork => "the tokenizer's working memory",
        })
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Model { addr, err } => write!(f, "model image at {addr:#x}: {err}"),
            RunError::Core { what, err } => write!(f, "{what}: {err}"),
            RunError::EmptyPrompt => f.write_str("the prompt is empty"),
            RunError::HeapFull { what, bytes } => write!(
                f,
                "the board's heap cannot hold {what} ({bytes} bytes); {}",
                what.remedy()
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

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    use super::{HeapBuffer, RunError};

    #[test]
    fn a_full_heap_says_which_buffer_and_what_to_change() {
        let e = RunError::HeapFull { what: HeapBuffer::GeneratedIds, bytes: 4096 };
        assert_eq!(
            e.to_string(),
            "the board's heap cannot hold the generated token ids (4096 bytes); lower max_tokens"
        );
        let e = RunError::HeapFull { what: HeapBuffer::TokenizerWork, bytes: 9 };
        assert!(e.to_string().ends_with("working memory (9 bytes); shorten the prompt"));
    }
}

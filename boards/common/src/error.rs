//! Why a run of [`generate::run`](crate::generate::run) failed.

use core::fmt;

use crate::generate::ImageAt;

/// A failed run: the board prints it as one `error:` line and exits
/// non-zero.
#[derive(Debug)]
pub enum RunError {
    /// The model image is malformed, corrupted (header, manifest or a
    /// tensor CRC) or could not be read.
    Model {
        /// Where the image is.
        at: ImageAt,
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
    /// The prompt's tokens do not fit the context.
    PromptTooManyTokens {
        /// Prompt tokens.
        tokens: usize,
        /// The request's context.
        n_ctx: u32,
    },
    /// The arena is smaller than the run needs.
    ArenaTooSmall {
        /// Bytes the generator needs.
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
            RunError::Model { at, err } => write!(f, "model image {at}: {err}"),
            RunError::Core { what, err } => write!(f, "{what}: {err}"),
            RunError::EmptyPrompt => f.write_str("the prompt is empty"),
            RunError::PromptTooManyTokens { tokens, n_ctx } => {
                write!(f, "the prompt is {tokens} tokens; the context has room for {n_ctx} (raise n_ctx)")
            }
            RunError::ArenaTooSmall { need, got } => write!(
                f,
                "the arena needs {need} bytes, the RAM after the model has {got} (raise the RAM, lower n_ctx or shorten the prompt)"
            ),
            RunError::ContextFull { n_ctx } => write!(f, "the context is full ({n_ctx} tokens)"),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    use super::RunError;

    #[test]
    fn a_small_arena_says_what_to_change() {
        let e = RunError::ArenaTooSmall { need: 4096, got: 9 };
        assert_eq!(
            e.to_string(),
            "the arena needs 4096 bytes, the RAM after the model has 9 (raise the RAM, lower n_ctx or shorten the prompt)"
        );
    }
}

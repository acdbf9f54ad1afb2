//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run Phi-3 class language models from phi-edge images or GGUF files.
#[derive(Debug, Parser)]
#[command(name = "phi-edge", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show an image's header, hyperparameters, tensors and arena plan.
    Inspect {
        /// A `.phi` image or a `.gguf` file (packed in memory).
        model: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Pack a GGUF model into a phi-edge image.
    Pack {
        /// The GGUF file.
        input: PathBuf,
        /// The image to write.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Write the logits after each token to a float32 .npy file of shape
    /// [n_tokens, n_vocab].
    Logits {
        /// A `.phi` image or a `.gguf` file (packed in memory).
        #[arg(long)]
        model: PathBuf,
        /// Token ids, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
        tokens: Vec<u32>,
        /// The .npy file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Print the token ids of a text, space-separated on one line.
    Tokenize(TokenizeArgs),
}

/// How `tokenize` reads its input.
#[derive(Debug, Args, Clone)]
pub struct TokenizeArgs {
    /// A `.phi` image, a model `.gguf`, or a vocabulary-only GGUF such as
    /// llama.cpp's `ggml-vocab-*.gguf`.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(long)]
    pub text: String,
    /// Add the tokens the vocabulary asks for (BOS if its add_bos is set,
    /// EOS if add_eos), as llama_tokenize's add_special does.
    #[arg(long)]
    pub bos: bool,
    /// Parse special-token text such as `<|im_start|>` into its token.
    #[arg(long)]
    pub special: bool,
}

/// How a session is set up.
#[derive(Debug, Args, Clone, Copy)]
pub struct SessionArgs {
    /// Session context in tokens (default: the model's trained context,
    /// capped at 4096). Decides LongRoPE short/long factors as llama.cpp's
    /// n_ctx does.
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Tokens per prefill chunk.
    #[arg(long, default_value_t = phi_edge::RunOptions::DEFAULT_PREFILL_CHUNK)]
    pub chunk: u32,
    /// Stream weights from the file through staging buffers of this many
    /// KiB each, instead of mapping the image (a `.phi` file only).
    #[arg(long, value_name = "KIB")]
    pub stream: Option<u32>,
}

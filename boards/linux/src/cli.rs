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
    /// Show an image's header, hyperparameters, tensors and arena plan
    /// (with `--stream`, the staging buffers too; the KV cache's bytes for
    /// `--cache-type` f16 and q8_0).
    Inspect {
        /// A `.phi` image or a `.gguf` file (packed in memory).
        model: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Pack a GGUF model into a phi-edge image, optionally quantizing it.
    ///
    /// With --type, F32, F16 and BF16 weight tensors are converted as
    /// llama.cpp's `llama-quantize` converts them for that file type (no
    /// importance matrix), with the same per-tensor types and the same
    /// bytes: e.g. q4_k_m keeps attn_v/attn_qkv and ffn_down of the
    /// use_more_bits layers and the output projection in q6_K; 1-D tensors
    /// (norms, rope factors) stay f32. Tensors that are already quantized
    /// are refused unless the policy gives them their own type.
    Pack {
        /// The GGUF file.
        input: PathBuf,
        /// The image to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Quantize to this file type: q4_0, q4_1, q8_0, q4_k_m, q6_k, f16
        /// or bf16.
        #[arg(long = "type", value_name = "TYPE", value_parser = file_type_arg)]
        ftype: Option<phi_edge::quant::FileType>,
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
    /// Generate text from a prompt; the text goes to stdout as it is
    /// generated, a summary line to stderr.
    Run {
        #[command(flatten)]
        gen: GenArgs,
        /// The prompt.
        #[arg(long)]
        prompt: String,
        /// Wrap the prompt in the model's chat template (one user turn and
        /// the assistant's generation prompt).
        #[arg(long)]
        chat: bool,
        /// A system message for --chat (default: the template's own, if it
        /// has one).
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
        /// Also write the prompt's and the generated token ids to this JSON
        /// file (with `--stream`, the bytes read by the prefill and the
        /// decode too).
        #[arg(long, value_name = "FILE")]
        ids_out: Option<PathBuf>,
        /// Also print a `timings:` line on stderr: the prefill's and the
        /// single-token evaluations' nanoseconds, evaluation calls alone.
        #[arg(long)]
        timings: bool,
    },
    /// Chat interactively: one user turn per line on stdin; the KV cache is
    /// kept across turns.
    Chat {
        #[command(flatten)]
        gen: GenArgs,
        /// A system message (default: the template's own, if it has one).
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
    },
    /// Measure this machine's kernels: a dim x dim matmul of every weight
    /// type (GB/s of weights) and the other kernels (ns per call).
    Bench {
        /// Matrix width (rounded up to a multiple of 256).
        #[arg(long, default_value_t = 2048)]
        dim: usize,
        /// Least time per kernel, in milliseconds.
        #[arg(long, default_value_t = 300)]
        ms: u64,
        /// Threads to split the matmuls' rows over, as a session does (the
        /// other kernels are single calls on one thread).
        #[arg(long, default_value_t = 1, value_parser = threads_arg)]
        threads: u32,
    },
    /// Print the token ids of a text, space-separated on one line.
    Tokenize(TokenizeArgs),
    /// Measure a model's perplexity on a text file as llama.cpp's
    /// `llama-perplexity` does: chunks of --ctx tokens, each from an empty
    /// context, the second half of each scored; with --base, also the KL
    /// divergence from a second model as `llama-perplexity --kl-divergence`
    /// reports it.
    #[command(mut_arg("ctx", |a| a.help(
        "Tokens per chunk: even, from 8 to the model's trained context [default: 512]"
    )))]
    Perplexity(PerplexityArgs),
}

/// What `perplexity` measures.
#[derive(Debug, Args, Clone)]
pub struct PerplexityArgs {
    /// The model: a `.phi` image or a `.gguf` file (packed in memory).
    #[arg(long)]
    pub model: PathBuf,
    /// The text, tokenized whole (one final newline dropped, as
    /// `llama-perplexity -f` reads it); at least 2 x --ctx tokens.
    #[arg(long, value_name = "TEXT")]
    pub file: PathBuf,
    /// Most chunks to score (default: as many as the text holds).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub chunks: Option<u32>,
    /// A base model with the same vocabulary (such as the unquantized
    /// model): also compare --model's token probabilities with its, on the
    /// same chunks (KL divergence, top token, probability differences).
    #[arg(long, value_name = "MODEL")]
    pub base: Option<PathBuf>,
    /// Also write every figure, unrounded, to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// What text generation runs on and how long.
#[derive(Debug, Args, Clone)]
pub struct GenArgs {
    /// A `.phi` image or a `.gguf` file (packed in memory).
    #[arg(long)]
    pub model: PathBuf,
    /// Most tokens to generate per answer.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Sampling settings; each defaults to llama.cpp's default.
#[derive(Debug, Args, Clone, Copy)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy (default 0.8).
    #[arg(long)]
    pub temp: Option<f32>,
    /// Keep the K most likely tokens; 0 keeps all (default 40).
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Keep the most likely tokens whose probabilities sum to P (default 0.95).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than P times the most likely (default 0.05).
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalty for tokens among the last 64; 1 is off (default 1).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Seed of the sampler's random generator.
    #[arg(long)]
    pub seed: Option<u64>,
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
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Resource limits: a model over one is refused with a message naming the
/// flag that raises it. The defaults are `phi_edge::Limits::DEFAULT`, what
/// a 4 GiB board affords. Sizes take a K, M or G suffix (powers of 1024).
#[derive(Debug, Args, Clone, Copy)]
pub struct LimitArgs {
    /// Largest arena (KV cache, activations, buffers) to allocate.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = size_arg)]
    pub max_arena: u64,
    /// Largest manifest (tokenizer and tensor tables) to read.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = size_arg)]
    pub max_manifest: u64,
    /// Longest chat template.
    #[arg(long, value_name = "SIZE", default_value = "256K", value_parser = size_arg)]
    pub max_template: u64,
    /// Most vocabulary tokens.
    #[arg(long, value_name = "N", default_value_t = phi_edge::Limits::DEFAULT.vocab)]
    pub max_vocab: u64,
    /// Most BPE merges.
    #[arg(long, value_name = "N", default_value_t = phi_edge::Limits::DEFAULT.merges)]
    pub max_merges: u64,
    /// Most special tokens.
    #[arg(long, value_name = "N", default_value_t = phi_edge::Limits::DEFAULT.specials)]
    pub max_specials: u64,
    /// Most end-of-generation tokens.
    #[arg(long, value_name = "N", default_value_t = phi_edge::Limits::DEFAULT.eog)]
    pub max_eog: u64,
    /// Longest text (a prompt, a chat line, `tokenize --text`).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = size_arg)]
    pub max_text: u64,
}

impl LimitArgs {
    /// The core's limits.
    pub fn limits(&self) -> phi_edge::Limits {
        phi_edge::Limits {
            manifest_bytes: self.max_manifest,
            chat_template_bytes: self.max_template,
            vocab: self.max_vocab,
            merges: self.max_merges,
            specials: self.max_specials,
            eog: self.max_eog,
            arena_bytes: self.max_arena,
        }
    }

    /// The flag that raises `limit`.
    pub fn flag(limit: phi_edge::Limit) -> &'static str {
        use phi_edge::Limit;
        match limit {
            Limit::ArenaBytes => "--max-arena",
            Limit::ManifestBytes => "--max-manifest",
            Limit::ChatTemplateBytes => "--max-template",
            Limit::Vocab => "--max-vocab",
            Limit::Merges => "--max-merges",
            Limit::Specials => "--max-specials",
            Limit::Eog => "--max-eog",
        }
    }

    /// Fails unless a text of `len` bytes is within `--max-text`.
    pub fn check_text(&self, len: usize, what: &str) -> anyhow::Result<()> {
        if len as u64 > self.max_text {
            anyhow::bail!(
                "the {what} is {len} bytes, over the limit of {} (raise it with --max-text)",
                self.max_text
            );
        }
        Ok(())
    }
}

/// Parses `pack --type`.
fn file_type_arg(s: &str) -> Result<phi_edge::quant::FileType, String> {
    phi_edge::quant::FileType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = phi_edge::quant::FileType::ALL
            .iter()
            .map(|t| t.name())
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Parses a size: bytes, or a number with a K, M or G suffix.
fn size_arg(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a size such as 4096, 512K, 64M or 4G, not {s:?}"))
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
    /// Stream the weights from the file instead of mapping it: each weight
    /// tensor is read in chunks of whole rows into two staging buffers of
    /// this many KiB each (one filled by a reader thread while the kernels
    /// use the other); only the header, the manifest and the arena stay in
    /// memory. A `.phi` image only; a buffer must hold one weight row.
    #[arg(long, value_name = "KIB")]
    pub stream: Option<u32>,
    /// Threads to spread matmul rows and attention heads over (1 to 256;
    /// default: the CPUs online). Logits do not depend on it.
    #[arg(long, value_parser = threads_arg)]
    pub threads: Option<u32>,
    /// KV cache element type: f16, or q8_0 (ggml's Q8_0 blocks, 34/64 of
    /// the f16 bytes; attention then follows llama.cpp's flash-attention
    /// path, as llama.cpp's `-ctk q8_0 -ctv q8_0 -fa on`). q8_0 needs a
    /// head width that is a multiple of 32.
    #[arg(long, value_name = "TYPE", default_value = "f16", value_parser = cache_type_arg)]
    pub cache_type: phi_edge::KvType,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Parses `--cache-type`: `f16` or `q8_0`.
fn cache_type_arg(s: &str) -> Result<phi_edge::KvType, String> {
    phi_edge::KvType::from_name(s).ok_or_else(|| format!("expected f16 or q8_0, not {s:?}"))
}

impl SessionArgs {
    /// `--threads`, or the CPUs online (at most [`MAX_THREADS`]).
    pub fn threads(&self) -> u32 {
        self.threads.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            cpus.min(MAX_THREADS as usize) as u32
        })
    }
}

/// Most threads a session is planned for (`RunOptions::threads`).
pub const MAX_THREADS: u32 = 256;

/// Parses `--threads`: 1 to [`MAX_THREADS`].
fn threads_arg(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n @ 1..=MAX_THREADS) => Ok(n),
        _ => Err(format!("expected a thread count from 1 to {MAX_THREADS}")),
    }
}

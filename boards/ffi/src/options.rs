//! The options a generator is planned for.

use phi_edge::{Config, Error, GenOptions, KvType, RunOptions, SamplerConfig};

/// The options' `cache_type`: the KV cache holds f16 values, as
/// llama.cpp's default cache (the default).
pub const PHI_EDGE_CACHE_F16: u32 = 0;
/// The options' `cache_type`: the KV cache holds ggml's Q8_0 blocks,
/// 34 bytes per 32 values (53% of f16), as llama.cpp's `--cache-type-k
/// q8_0 --cache-type-v q8_0` with flash attention. The head width must be
/// a multiple of 32.
pub const PHI_EDGE_CACHE_Q8_0: u32 = 1;

/// What a generator is planned for: its context, its longest prompt and
/// its sampling. Start from `phi_edge_options_default()` and change what
/// you need. The C API runs a generator on the calling thread alone (the
/// output does not depend on the number of threads) and reads the weights
/// in place from the image in memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhiEdgeOptions {
    /// Context length in tokens: prompt and generated tokens of every turn
    /// since the last reset. 0: the model's trained context, at most 4096
    /// (as the `phi-edge` command does). It also decides Phi-3's LongRoPE
    /// factors, as llama.cpp's `n_ctx` does.
    pub n_ctx: u32,
    /// Longest prompt one `phi_edge_prompt` or `phi_edge_chat` call may
    /// take, in bytes; for a chat turn, the rendered turn (the template's
    /// markers, a system message on the first turn, the user's text).
    pub max_prompt_bytes: u32,
    /// Prompt tokens evaluated together (each weight read serves this
    /// many); 0: the default, 16.
    pub prefill_chunk: u32,
    /// Softmax temperature; 0 (or less) picks the most likely token.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 keeps all.
    pub top_k: u32,
    /// Nucleus sampling mass, in (0, 1]; 1 keeps all.
    pub top_p: f32,
    /// Minimum probability relative to the most likely token, in [0, 1];
    /// 0 keeps all.
    pub min_p: f32,
    /// Repetition penalty, > 0; 1 is off.
    pub repeat_penalty: f32,
    /// How many of the last tokens the penalty looks at; 0 is off.
    pub repeat_last_n: u32,
    /// Seed of the random number generator (same seed, same text, on
    /// every machine).
    pub seed: u64,
    /// The KV cache's element type: `PHI_EDGE_CACHE_F16` (0, the default)
    /// or `PHI_EDGE_CACHE_Q8_0`.
    pub cache_type: u32,
}

impl PhiEdgeOptions {
    /// Greedy decoding, the model's context (at most 4096 tokens), prompts
    /// of up to 4096 bytes, an f16 KV cache.
    pub const GREEDY: PhiEdgeOptions = {
        let s = SamplerConfig::GREEDY;
        PhiEdgeOptions {
            n_ctx: 0,
            max_prompt_bytes: 4096,
            prefill_chunk: 0,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            repeat_last_n: s.repeat_last_n,
            seed: s.seed,
            cache_type: PHI_EDGE_CACHE_F16,
        }
    };

    /// The core's options for a model of `config`; an unknown
    /// `cache_type` is an error.
    pub fn gen_options(&self, config: &Config) -> Result<GenOptions, Error> {
        let n_ctx = if self.n_ctx == 0 {
            RunOptions::default_ctx(config)
        } else {
            self.n_ctx
        };
        let mut run = RunOptions::mapped(n_ctx);
        if self.prefill_chunk != 0 {
            run.prefill_chunk = self.prefill_chunk;
        }
        run.kv_type = match self.cache_type {
            PHI_EDGE_CACHE_F16 => KvType::F16,
            PHI_EDGE_CACHE_Q8_0 => KvType::Q8_0,
            _ => {
                return Err(Error::BadOptions {
                    what: "cache_type is neither PHI_EDGE_CACHE_F16 nor PHI_EDGE_CACHE_Q8_0",
                })
            }
        };
        Ok(GenOptions {
            run,
            sampling: SamplerConfig {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: self.repeat_last_n,
                seed: self.seed,
            },
            max_prompt_bytes: self.max_prompt_bytes,
        })
    }
}

/// The default options: greedy decoding (temperature 0; the other sampling
/// settings are llama.cpp's defaults), the model's trained context capped
/// at 4096 tokens, prompts of up to 4096 bytes, prefill chunks of 16, an
/// f16 KV cache.
#[no_mangle]
pub extern "C" fn phi_edge_options_default() -> PhiEdgeOptions {
    PhiEdgeOptions::GREEDY
}

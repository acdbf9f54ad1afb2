//! Model architecture and hyperparameters.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The model family; decides tensor layout and RoPE style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// Phi-3 / Phi-3.5 / Phi-4-mini: fused `attn_qkv`, gate+up fused in
    /// `ffn_up` (gate first), NEOX RoPE, optional LongRoPE factors.
    Phi3,
    /// Llama / SmolLM2 / TinyLlama: separate q/k/v and gate/up, RoPE on
    /// adjacent pairs, output optionally tied to `token_embd`.
    Llama,
}

impl Arch {
    /// The GGUF `general.architecture` string.
    pub const fn gguf_name(self) -> &'static str {
        match self {
            Arch::Phi3 => "phi3",
            Arch::Llama => "llama",
        }
    }

    /// Whether RoPE rotates `(x[i], x[i + n_rot/2])` (NEOX) rather than
    /// `(x[2i], x[2i+1])`.
    pub const fn rope_neox(self) -> bool {
        matches!(self, Arch::Phi3)
    }
}

/// Hyperparameters of a decoder model.
///
/// Plain data so firmware can write one as a `const` and size its arena at
/// compile time with [`Plan::arena_bytes`](crate::plan::Plan::arena_bytes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Model family.
    pub arch: Arch,
    /// Vocabulary size (rows of `token_embd`).
    pub n_vocab: u32,
    /// Hidden width.
    pub n_embd: u32,
    /// Number of decoder blocks.
    pub n_layer: u32,
    /// Query heads.
    pub n_head: u32,
    /// Key/value heads (`n_head` without GQA).
    pub n_head_kv: u32,
    /// Width of one head.
    pub head_dim: u32,
    /// Width of the feed-forward hidden layer (per gate/up half).
    pub n_ff: u32,
    /// Rotary dimensions per head (`rope.dimension_count`, <= `head_dim`).
    pub n_rot: u32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// Linear RoPE frequency scale (1 / `rope.scaling.factor`; 1 if absent).
    pub rope_freq_scale: f32,
    /// `rope.scaling.attn_factor` (1 if absent): multiplies cos and sin.
    pub rope_attn_factor: f32,
    /// Trained context length.
    pub n_ctx_train: u32,
    /// `rope.scaling.original_context_length` (the trained context if
    /// absent): LongRoPE uses the long factors when the session context
    /// exceeds it.
    pub n_ctx_orig: u32,
    /// The image carries `rope_factors_short` and `rope_factors_long`.
    pub has_rope_factors: bool,
    /// Positions in the image's RoPE table (`rope_cache`, cos/sin pairs
    /// times the attention factor, computed by the packer with the host's
    /// C library as llama.cpp computes them); 0 if the image has none.
    /// Positions past it, and sessions on LongRoPE's long factors, compute
    /// their angles with this build's `sinf`/`cosf`.
    pub rope_cache_rows: u32,
    /// No `output` tensor: logits come from `token_embd`.
    pub tied_output: bool,
}

impl Config {
    /// Width of all query heads together.
    pub const fn q_dim(&self) -> usize {
        self.n_head as usize * self.head_dim as usize
    }

    /// Width of all key (or value) heads together.
    pub const fn kv_dim(&self) -> usize {
        self.n_head_kv as usize * self.head_dim as usize
    }

    /// Checks that the hyperparameters describe a model the core can run.
    pub fn validate(&self) -> Result<()> {
        let bad = |what| Err(Error::BadConfig { what });
        // Bounds keep every derived size far from overflow on 32-bit boards
        // too; they are well above any Phi-3 class model.
        if self.n_vocab == 0 || self.n_vocab > 1 << 20 {
            return bad("vocabulary size must be 1..=1048576");
        }
        if self.n_embd == 0 || self.n_embd > 1 << 16 {
            return bad("embedding width must be 1..=65536");
        }
        if self.n_layer == 0 || self.n_layer > 1024 {
            return bad("layer count must be 1..=1024");
        }
        if self.n_head == 0 || self.n_head_kv == 0 {
            return bad("head counts must be non-zero");
        }
        if self.n_head > 1024 || self.n_head % self.n_head_kv != 0 {
            return bad("query heads must be a multiple of key/value heads");
        }
        if self.head_dim == 0 || self.head_dim > 1024 || self.head_dim % 2 != 0 {
            return bad("head width must be even and 2..=1024");
        }
        if self.n_rot == 0 || self.n_rot > self.head_dim || self.n_rot % 2 != 0 {
            return bad("rotary dimensions must be even and 2..=head width");
        }
        if self.n_ff == 0 || self.n_ff > 1 << 18 {
            return bad("feed-forward width must be 1..=262144");
        }
        if self.n_ctx_train == 0 || self.n_ctx_orig == 0 {
            return bad("context lengths must be non-zero");
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return bad("rms epsilon must be positive");
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad("rope theta must be positive");
        }
        if !(self.rope_freq_scale.is_finite() && self.rope_freq_scale > 0.0) {
            return bad("rope frequency scale must be positive");
        }
        if !self.rope_attn_factor.is_finite() {
            return bad("rope attention factor must be finite");
        }
        if self.has_rope_factors && self.arch != Arch::Phi3 {
            return bad("rope factors are only supported for phi3");
        }
        if self.rope_cache_rows > self.n_ctx_train.min(self.n_ctx_orig) {
            return bad("the rope table has more positions than the trained context");
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny valid phi3 configuration for unit tests.
    pub(crate) fn tiny_phi3() -> Config {
        Config {
            arch: Arch::Phi3,
            n_vocab: 64,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 4,
            head_dim: 16,
            n_ff: 96,
            n_rot: 16,
            rms_eps: 1e-5,
            rope_theta: 10000.0,
            rope_freq_scale: 1.0,
            rope_attn_factor: 1.0,
            n_ctx_train: 4096,
            n_ctx_orig: 4096,
            has_rope_factors: false,
            rope_cache_rows: 0,
            tied_output: false,
        }
    }

    #[test]
    fn rejects_heads_that_do_not_divide() {
        let mut c = tiny_phi3();
        assert!(c.validate().is_ok());
        c.n_head_kv = 3;
        assert!(matches!(c.validate(), Err(Error::BadConfig { .. })));
        c.n_head_kv = 0;
        assert!(matches!(c.validate(), Err(Error::BadConfig { .. })));
    }
}

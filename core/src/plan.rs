//! The arena plan: every working byte of a session, laid out up front.
//!
//! A session owns exactly one caller-provided byte slice. [`Plan`] says how
//! many bytes it needs for a model and [`RunOptions`], and where each buffer
//! lives; [`Plan::arena_bytes`] is a `const fn`, so firmware can size a
//! `static` arena at compile time:
//!
//! ```
//! use phi_edge::{Arch, Config, plan::{Plan, RunOptions}};
//! const CFG: Config = Config {
//!     arch: Arch::Llama, n_vocab: 49152, n_embd: 576, n_layer: 30, n_head: 9,
//!     n_head_kv: 3, head_dim: 64, n_ff: 1536, n_rot: 64, rms_eps: 1e-5,
//!     rope_theta: 100000.0, rope_freq_scale: 1.0, rope_attn_factor: 1.0,
//!     n_ctx_train: 8192, n_ctx_orig: 8192, has_rope_factors: false, rope_cache_rows: 4096,
//!     tied_output: true,
//! };
//! const ARENA: usize = Plan::arena_bytes(&CFG, &RunOptions::mapped(512));
//! #[repr(align(64))]
//! struct Arena([u8; ARENA]);
//! assert_eq!(ARENA, Plan::new(&CFG, &RunOptions::mapped(512)).unwrap().bytes());
//! ```

use crate::config::Config;
use crate::error::{Error, Result};

/// Alignment of every buffer in the arena, and of the arena itself for the
/// plan's byte count to be exact.
pub const ARENA_ALIGN: usize = 64;

/// Element type of the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KvType {
    /// IEEE half precision, as llama.cpp's default cache.
    #[default]
    F16,
    /// ggml's Q8_0 blocks (32 values: an f16 scale and 32 `i8`, 34 bytes)
    /// along each head's values, as llama.cpp's `type_k = type_v = q8_0`
    /// cache: 34/64 of the f16 cache's bytes. Attention over it follows
    /// llama.cpp's flash-attention path (see
    /// [`Kernels::attention_q8_0`](crate::Kernels::attention_q8_0)); the
    /// head dimension must be a multiple of 32.
    Q8_0,
}

impl KvType {
    /// Values per block (1 for f16).
    pub const fn block(self) -> usize {
        match self {
            KvType::F16 => 1,
            KvType::Q8_0 => 32,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            KvType::F16 => 2,
            KvType::Q8_0 => 34,
        }
    }

    /// Bytes of `n` cached values; `n` must be a whole number of blocks
    /// (checked by [`Plan::new`]).
    pub const fn row_bytes(self, n: usize) -> usize {
        n / self.block() * self.block_bytes()
    }

    /// The name llama.cpp gives the type (`f16`, `q8_0`).
    pub const fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }

    /// The type named `name` (`f16` or `q8_0`), if there is one.
    pub fn from_name(name: &str) -> Option<KvType> {
        match name {
            "f16" => Some(KvType::F16),
            "q8_0" => Some(KvType::Q8_0),
            _ => None,
        }
    }
}

/// What a session is planned for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Session context: the most tokens the KV cache holds. Also decides
    /// LongRoPE short/long factors, as llama.cpp's `n_ctx` does.
    pub n_ctx: u32,
    /// Tokens processed together in prefill: each weight byte read serves
    /// this many tokens.
    pub prefill_chunk: u32,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Bytes of each of the two staging buffers for a streamed weight
    /// source; 0 for a mapped source. Must hold at least one weight row
    /// (see [`Plan::min_stage_bytes`]).
    pub stage_bytes: u32,
    /// Cores that may work on one session at once (see
    /// [`Parallel`](crate::parallel::Parallel)): each gets its own
    /// attention scratch. 1 for a single core.
    pub threads: u32,
}

impl RunOptions {
    /// Default prefill chunk.
    pub const DEFAULT_PREFILL_CHUNK: u32 = 16;

    /// Most tokens [`RunOptions::default_ctx`] gives a session.
    pub const DEFAULT_MAX_CTX: u32 = 4096;

    /// The context a session gets when the user names none: the model's
    /// trained context, at most [`RunOptions::DEFAULT_MAX_CTX`] tokens (a
    /// 128k model's full KV cache would not fit most machines).
    pub const fn default_ctx(config: &Config) -> u32 {
        if config.n_ctx_train < Self::DEFAULT_MAX_CTX {
            config.n_ctx_train
        } else {
            Self::DEFAULT_MAX_CTX
        }
    }

    /// Options for a mapped weight source with context `n_ctx`.
    pub const fn mapped(n_ctx: u32) -> Self {
        RunOptions {
            n_ctx,
            prefill_chunk: Self::DEFAULT_PREFILL_CHUNK,
            kv_type: KvType::F16,
            stage_bytes: 0,
            threads: 1,
        }
    }

    /// Options for a streamed weight source with context `n_ctx` and two
    /// staging buffers of `stage_bytes` each.
    pub const fn streamed(n_ctx: u32, stage_bytes: u32) -> Self {
        RunOptions {
            stage_bytes,
            ..Self::mapped(n_ctx)
        }
    }
}

/// A buffer inside the arena: byte offset and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Region {
    /// Byte offset from the (aligned) arena start.
    pub offset: usize,
    /// Byte length.
    pub len: usize,
}

/// The layout of a session's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Keys, `[layer][position][kv_dim]` in the options' [`KvType`] (for
    /// Q8_0, `kv_dim / 32` blocks per position).
    pub kv_k: Region,
    /// Values, laid out as the keys.
    pub kv_v: Region,
    /// Residual stream, `[chunk][n_embd]` f32.
    pub x: Region,
    /// Normed input / block output, `[chunk][n_embd]` f32.
    pub xb: Region,
    /// Query, key and value projections, `[chunk][q_dim + 2 kv_dim]` f32.
    pub qkv: Region,
    /// Attention output, `[chunk][q_dim]` f32.
    pub att: Region,
    /// Gate and up projections, `[chunk][2 n_ff]` f32.
    pub ffn: Region,
    /// SwiGLU output, `[chunk][n_ff]` f32.
    pub hid: Region,
    /// Quantized activations, `[chunk][row bytes]`.
    pub act: Region,
    /// Attention scores, `[threads][n_ctx]` f32: one head per core.
    pub scores: Region,
    /// Logits of the last token, `[n_vocab]` f32.
    pub logits: Region,
    /// RoPE cos/sin pairs, `[chunk][n_rot]` f32.
    pub rope: Region,
    /// RoPE frequency factors, `[n_rot / 2]` f32.
    pub freq: Region,
    /// A norm weight vector, `[n_embd]` f32.
    pub norm: Region,
    /// Two staging buffers for a streamed source.
    pub stage: [Region; 2],
    /// Total bytes.
    pub total: usize,
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

const fn f32s(n: usize) -> usize {
    n * 4
}

impl Plan {
    /// Bytes of the whole KV cache (keys and values) for `n_ctx` positions
    /// in `kv_type`. `const`; [`Plan::new`] checks that it fits.
    pub const fn kv_bytes(config: &Config, n_ctx: u32, kv_type: KvType) -> usize {
        2 * config.n_layer as usize * n_ctx as usize * kv_type.row_bytes(config.kv_dim())
    }

    /// Smallest staging buffer that holds one row of any tensor, whatever
    /// its type (f32 rows are the widest).
    pub const fn min_stage_bytes(config: &Config) -> usize {
        let c = config;
        f32s(max(max(c.n_embd as usize, c.n_ff as usize), c.q_dim()))
    }

    /// The layout, without checks. `const` so firmware can size a static
    /// arena; use [`Plan::new`] at run time.
    pub const fn layout(config: &Config, opts: &RunOptions) -> Plan {
        let c = config;
        let b = opts.prefill_chunk as usize;
        let ctx = opts.n_ctx as usize;
        let kv = c.n_layer as usize * ctx * opts.kv_type.row_bytes(c.kv_dim());
        let widest = max(max(c.n_embd as usize, c.n_ff as usize), c.q_dim());
        let sizes = [
            kv,
            kv,
            f32s(b * c.n_embd as usize),
            f32s(b * c.n_embd as usize),
            f32s(b * (c.q_dim() + 2 * c.kv_dim())),
            f32s(b * c.q_dim()),
            f32s(b * 2 * c.n_ff as usize),
            f32s(b * c.n_ff as usize),
            f32s(b * widest),
            f32s(opts.threads as usize * ctx),
            f32s(c.n_vocab as usize),
            f32s(b * c.n_rot as usize),
            f32s(c.n_rot as usize / 2),
            f32s(c.n_embd as usize),
            opts.stage_bytes as usize,
            opts.stage_bytes as usize,
        ];
        let mut r = [Region { offset: 0, len: 0 }; 16];
        let mut at = 0;
        let mut i = 0;
        while i < sizes.len() {
            r[i] = Region {
                offset: at,
                len: sizes[i],
            };
            at += sizes[i].div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
            i += 1;
        }
        Plan {
            kv_k: r[0],
            kv_v: r[1],
            x: r[2],
            xb: r[3],
            qkv: r[4],
            att: r[5],
            ffn: r[6],
            hid: r[7],
            act: r[8],
            scores: r[9],
            logits: r[10],
            rope: r[11],
            freq: r[12],
            norm: r[13],
            stage: [r[14], r[15]],
            total: at,
        }
    }

    /// Exact arena bytes for a 64-byte-aligned arena. `const`; the caller
    /// is responsible for options that [`Plan::new`] would accept.
    pub const fn arena_bytes(config: &Config, opts: &RunOptions) -> usize {
        Self::layout(config, opts).total
    }

    /// Checks the options against the model and returns the layout.
    pub fn new(config: &Config, opts: &RunOptions) -> Result<Plan> {
        config.validate()?;
        let bad = |what| Err(Error::BadOptions { what });
        if opts.n_ctx == 0 || opts.n_ctx > 1 << 20 {
            return bad("context must be 1..=1048576 tokens");
        }
        if opts.prefill_chunk == 0 || opts.prefill_chunk > 4096 {
            return bad("prefill chunk must be 1..=4096 tokens");
        }
        if opts.threads == 0 || opts.threads > 256 {
            return bad("threads must be 1..=256");
        }
        if opts.stage_bytes != 0 && (opts.stage_bytes as usize) < Self::min_stage_bytes(config) {
            return bad("staging buffers are smaller than one weight row");
        }
        if config.head_dim as usize % opts.kv_type.block() != 0 {
            return Err(Error::UnsupportedKvType {
                kv_type: opts.kv_type.name(),
                head_dim: config.head_dim,
                block: opts.kv_type.block() as u32,
            });
        }
        // Every size is a product of validated, bounded factors; check the
        // largest products in wide arithmetic so 32-bit boards cannot wrap.
        let kv = u128::from(config.n_layer)
            * u128::from(opts.n_ctx)
            * (config.kv_dim() / opts.kv_type.block()) as u128
            * opts.kv_type.block_bytes() as u128
            * 2;
        if kv > (isize::MAX as u128) / 2 {
            return bad("KV cache does not fit the address space");
        }
        Ok(Self::layout(config, opts))
    }

    /// Bytes the arena needs (when 64-byte aligned).
    pub const fn bytes(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::tiny_phi3;

    #[test]
    fn regions_are_aligned_and_disjoint() {
        let p = Plan::new(&tiny_phi3(), &RunOptions::streamed(100, 1024)).unwrap();
        let rs = [
            p.kv_k, p.kv_v, p.x, p.xb, p.qkv, p.att, p.ffn, p.hid, p.act, p.scores, p.logits,
            p.rope, p.freq, p.norm, p.stage[0], p.stage[1],
        ];
        for w in rs.windows(2) {
            assert_eq!(w[0].offset % ARENA_ALIGN, 0);
            assert!(w[0].offset + w[0].len <= w[1].offset);
        }
        assert!(p.stage[1].offset + p.stage[1].len <= p.total);
        // KV: 2 layers * 100 positions * 64 wide * 2 bytes.
        assert_eq!(p.kv_k.len, 2 * 100 * 64 * 2);
    }

    #[test]
    fn rejects_bad_options() {
        let c = tiny_phi3();
        assert!(Plan::new(&c, &RunOptions::mapped(0)).is_err());
        assert!(Plan::new(&c, &RunOptions::streamed(16, 8)).is_err());
        let mut o = RunOptions::mapped(16);
        o.prefill_chunk = 0;
        assert!(Plan::new(&c, &o).is_err());
    }

    #[test]
    fn q8_0_cache_is_34_of_64_bytes_and_needs_whole_blocks_per_head() {
        let mut c = tiny_phi3();
        (c.n_head, c.n_head_kv, c.head_dim) = (2, 2, 32);
        let f16 = RunOptions::mapped(100);
        let q8 = RunOptions {
            kv_type: KvType::Q8_0,
            ..f16
        };
        let (pf, pq) = (Plan::new(&c, &f16).unwrap(), Plan::new(&c, &q8).unwrap());
        // 2 layers * 100 positions * 2 blocks of 34 bytes.
        assert_eq!(pq.kv_k.len, 2 * 100 * 2 * 34);
        assert_eq!(pq.kv_v.len, pq.kv_k.len);
        assert_eq!(pq.kv_k.len * 64, pf.kv_k.len * 34);
        assert_eq!(Plan::kv_bytes(&c, 100, KvType::Q8_0), 2 * pq.kv_k.len);
        assert_eq!(Plan::kv_bytes(&c, 100, KvType::F16), 2 * pf.kv_k.len);
        // Everything after the cache keeps its size.
        assert_eq!(pf.total - pf.x.offset, pq.total - pq.x.offset);
        assert_eq!(Plan::arena_bytes(&c, &q8), pq.total);
        c.head_dim = 48;
        c.n_rot = 48;
        assert_eq!(
            Plan::new(&c, &q8),
            Err(Error::UnsupportedKvType {
                kv_type: "q8_0",
                head_dim: 48,
                block: 32
            })
        );
        assert!(Plan::new(&c, &f16).is_ok());
    }
}

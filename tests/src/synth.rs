//! Small synthetic GGUF models with random weights, for tests that need a
//! model but no oracle (streaming, arena, bad input).

use phi_edge::gguf::GgufWriter;
use phi_edge::{Arch, DType};

/// A deterministic xorshift PRNG.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The shape and types of a synthetic model.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Architecture.
    pub arch: Arch,
    /// Vocabulary.
    pub n_vocab: u32,
    /// Width.
    pub n_embd: u32,
    /// Layers.
    pub n_layer: u32,
    /// Query heads.
    pub n_head: u32,
    /// Key/value heads.
    pub n_head_kv: u32,
    /// Feed-forward width.
    pub n_ff: u32,
    /// Rotary dimensions (<= head width).
    pub n_rot: u32,
    /// Type of the matrix weights.
    pub dtype: DType,
    /// Omit `output.weight`.
    pub tied: bool,
    /// Add LongRoPE factors.
    pub rope_factors: bool,
    /// PRNG seed.
    pub seed: u64,
}

impl Spec {
    /// A tiny phi3 model of `dtype` weights (widths multiples of 256 so
    /// every type fits).
    pub fn phi3(dtype: DType) -> Spec {
        Spec {
            arch: Arch::Phi3,
            n_vocab: 300,
            n_embd: 256,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 4,
            n_ff: 256,
            n_rot: 64,
            dtype,
            tied: false,
            rope_factors: true,
            seed: 1,
        }
    }

    /// A tiny llama model with GQA and a tied output.
    pub fn llama(dtype: DType) -> Spec {
        Spec {
            arch: Arch::Llama,
            n_head: 8,
            n_head_kv: 2,
            n_rot: 32,
            tied: true,
            rope_factors: false,
            ..Self::phi3(dtype)
        }
    }

    fn head_dim(&self) -> u32 {
        self.n_embd / self.n_head
    }
}

/// Random bytes for `rows` rows of `cols` values of `dtype`, with scales
/// in a sane range so activations stay finite.
pub fn random_tensor(rng: &mut Rng, dtype: DType, cols: usize, rows: usize, scale: f32) -> Vec<u8> {
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    let n = cols * rows;
    match dtype {
        DType::F32 => (0..n)
            .flat_map(|_| (rng.unit() * scale).to_le_bytes())
            .collect(),
        DType::F16 => (0..n).flat_map(|_| f16(rng.unit() * scale)).collect(),
        DType::BF16 => (0..n)
            .flat_map(|_| half::bf16::from_f32(rng.unit() * scale).to_le_bytes())
            .collect(),
        _ => {
            let nb = n / dtype.block_len();
            let mut out = vec![0u8; nb * dtype.block_bytes()];
            for b in out.chunks_exact_mut(dtype.block_bytes()) {
                b.iter_mut().for_each(|x| *x = rng.next_u64() as u8);
                let d = f16(scale * (0.5 + 0.5 * rng.unit().abs()) / 8.0);
                match dtype {
                    DType::Q8_0 => {
                        b[..2].copy_from_slice(&f16(scale / 127.0));
                    }
                    DType::Q4_0 => b[..2].copy_from_slice(&d),
                    DType::Q4_1 => {
                        b[..2].copy_from_slice(&d);
                        b[2..4].copy_from_slice(&f16(-scale * 0.9));
                    }
                    DType::Q4K => {
                        b[..2].copy_from_slice(&f16(scale / 500.0));
                        b[2..4].copy_from_slice(&f16(scale / 1000.0));
                    }
                    DType::Q6K => {
                        for s in &mut b[192..208] {
                            *s = (*s as i8 / 4) as u8;
                        }
                        b[208..210].copy_from_slice(&f16(scale / 1000.0));
                    }
                    _ => unreachable!("float types handled above"),
                }
            }
            out
        }
    }
}

/// Builds the GGUF file for `spec`.
pub fn build(spec: &Spec) -> Vec<u8> {
    writer_without(spec, &[]).finish()
}

/// A GGUF writer that leaves out the keys and tensors named in `skip`.
struct Skipping<'s> {
    w: GgufWriter,
    skip: &'s [&'s str],
    rng: Rng,
}

impl Skipping<'_> {
    fn keep(&self, name: &str) -> bool {
        !self.skip.contains(&name)
    }

    fn u32(&mut self, key: &str, v: u32) {
        if self.keep(key) {
            self.w.add_u32(key, v);
        }
    }

    fn f32(&mut self, key: &str, v: f32) {
        if self.keep(key) {
            self.w.add_f32(key, v);
        }
    }

    fn tensor(&mut self, name: &str, dims: &[u64], dtype: DType, data: &[u8]) {
        if self.keep(name) {
            self.w.add_tensor(name, dims, dtype.ggml_id(), data);
        }
    }

    /// A matrix (or vector, with one row) of random `dtype` weights.
    fn random(&mut self, name: &str, cols: u64, rows: u64, dtype: DType, scale: f32) {
        let data = random_tensor(&mut self.rng, dtype, cols as usize, rows as usize, scale);
        let dims: Vec<u64> = if rows == 1 {
            vec![cols]
        } else {
            vec![cols, rows]
        };
        self.tensor(name, &dims, dtype, &data);
    }

    /// A vector of f32 values uniform in [lo, hi).
    fn vector(&mut self, name: &str, n: u64, lo: f32, hi: f32) {
        let data: Vec<u8> = (0..n)
            .flat_map(|_| (lo + (hi - lo) * (self.rng.unit() * 0.5 + 0.5)).to_le_bytes())
            .collect();
        self.tensor(name, &[n], DType::F32, &data);
    }
}

/// A writer holding the model for `spec`, less the keys and tensors named
/// in `skip` (so a test can add broken ones instead).
pub fn writer_without(spec: &Spec, skip: &[&str]) -> GgufWriter {
    let a = match spec.arch {
        Arch::Phi3 => "phi3",
        Arch::Llama => "llama",
    };
    let k = |s: &str| format!("{a}.{s}");
    let mut w = Skipping {
        w: GgufWriter::new(),
        skip,
        rng: Rng::new(spec.seed),
    };
    if w.keep("general.architecture") {
        w.w.add_str("general.architecture", a);
    }
    w.w.add_str("general.name", "synthetic");
    w.u32(&k("context_length"), 4096);
    w.u32(&k("embedding_length"), spec.n_embd);
    w.u32(&k("feed_forward_length"), spec.n_ff);
    w.u32(&k("block_count"), spec.n_layer);
    w.u32(&k("attention.head_count"), spec.n_head);
    w.u32(&k("attention.head_count_kv"), spec.n_head_kv);
    w.f32(&k("attention.layer_norm_rms_epsilon"), 1e-5);
    w.u32(&k("rope.dimension_count"), spec.n_rot);
    w.f32(&k("rope.freq_base"), 10000.0);
    if spec.rope_factors {
        w.f32(&k("rope.scaling.attn_factor"), 1.19);
        w.u32(&k("rope.scaling.original_context_length"), 1024);
    }
    let (e, v, ff) = (spec.n_embd as u64, spec.n_vocab as u64, spec.n_ff as u64);
    let hd = spec.head_dim() as u64;
    let (q, kv) = (spec.n_head as u64 * hd, spec.n_head_kv as u64 * hd);
    let ws = 1.7 / (e as f32).sqrt();
    let dt = spec.dtype;
    if spec.rope_factors {
        let r = spec.n_rot as u64 / 2;
        w.vector("rope_factors_short.weight", r, 1.0, 2.0);
        w.vector("rope_factors_long.weight", r, 1.0, 8.0);
    }
    w.random("token_embd.weight", e, v, dt, 1.0);
    for l in 0..spec.n_layer {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        w.vector(&n("attn_norm"), e, 0.8, 1.2);
        match spec.arch {
            Arch::Phi3 => w.random(&n("attn_qkv"), e, q + 2 * kv, dt, ws),
            Arch::Llama => {
                w.random(&n("attn_q"), e, q, dt, ws);
                w.random(&n("attn_k"), e, kv, dt, ws);
                w.random(&n("attn_v"), e, kv, dt, ws);
            }
        }
        w.random(&n("attn_output"), q, e, dt, ws);
        w.vector(&n("ffn_norm"), e, 0.8, 1.2);
        match spec.arch {
            Arch::Phi3 => w.random(&n("ffn_up"), e, 2 * ff, dt, ws),
            Arch::Llama => {
                w.random(&n("ffn_gate"), e, ff, dt, ws);
                w.random(&n("ffn_up"), e, ff, dt, ws);
            }
        }
        w.random(&n("ffn_down"), ff, e, dt, ws);
    }
    w.vector("output_norm.weight", e, 1.0, 1.0);
    if !spec.tied {
        w.random("output.weight", e, v, dt, ws * 4.0);
    }
    w.w
}

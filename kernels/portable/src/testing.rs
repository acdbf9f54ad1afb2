//! Test helpers shared with other kernel sets (feature `testing`): a small
//! deterministic PRNG, ggml's reference weight quantizers for the 32-value
//! types, and random K-quant blocks.
//!
//! Everything writes into caller-provided slices; nothing allocates.

use phi_edge::DType;

use crate::float::{quantize_row_bf16, quantize_row_f16, quantize_row_f32};
use crate::quant::act::quantize_row_q8_0_ref;
use crate::quant::f16_bytes;
use crate::quant::q4_k::Q4_K_BYTES;
use crate::quant::q6_k::Q6_K_BYTES;

/// A splitmix64 generator: deterministic, seedable, good enough for tests.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range_i32(&mut self, lo: i32, hi: i32) -> i32 {
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        (i64::from(lo) + (self.next_u64() % span) as i64) as i32
    }

    /// A uniform f32 in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A uniform f32 in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Fills `x` with uniform values in `[lo, hi)`.
    pub fn fill_uniform(&mut self, x: &mut [f32], lo: f32, hi: f32) {
        for v in x {
            *v = self.uniform(lo, hi);
        }
    }

    /// Fills `b` with random bytes.
    pub fn fill_bytes(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }
}

/// ggml's reference quantizer for the 32-value weight types (`Q4_0`,
/// `Q4_1`): the packer's, [`phi_edge::quant::quantize_row`], for finite
/// rows of whole blocks.
pub fn quantize_row_ref(dtype: DType, x: &[f32], out: &mut [u8]) {
    phi_edge::quant::quantize_row(dtype, x, out).expect("a finite row of whole blocks");
}

/// Random Q4_K blocks: random scales, mins and nibbles; `d` and `dmin` in
/// `[1e-3, 1e-2)` so values land in a model-like range.
pub fn random_q4_k_row(rng: &mut Rng, out: &mut [u8]) {
    assert!(out.len() % Q4_K_BYTES == 0);
    for b in out.chunks_exact_mut(Q4_K_BYTES) {
        rng.fill_bytes(b);
        let d = rng.uniform(1e-3, 1e-2);
        let dmin = rng.uniform(1e-3, 1e-2);
        b[..2].copy_from_slice(&f16_bytes(d));
        b[2..4].copy_from_slice(&f16_bytes(dmin));
    }
}

/// Random Q6_K blocks: random quants and signed scales; `d` in
/// `[1e-4, 1e-3)`.
pub fn random_q6_k_row(rng: &mut Rng, out: &mut [u8]) {
    assert!(out.len() % Q6_K_BYTES == 0);
    for b in out.chunks_exact_mut(Q6_K_BYTES) {
        rng.fill_bytes(b);
        let d = rng.uniform(1e-4, 1e-3);
        b[208..].copy_from_slice(&f16_bytes(d));
    }
}

/// A random weight row of `tmp.len()` values of `dtype` in `out`
/// (`dtype.row_bytes(tmp.len())` bytes). Float and 32-value types quantize
/// uniform values in `[-1, 1)` (left in `tmp`) with ggml's reference
/// quantizers; K types are random blocks.
pub fn random_weight_row(dtype: DType, rng: &mut Rng, tmp: &mut [f32], out: &mut [u8]) {
    rng.fill_uniform(tmp, -1.0, 1.0);
    match dtype {
        DType::F32 => quantize_row_f32(tmp, out),
        DType::F16 => quantize_row_f16(tmp, out),
        DType::BF16 => quantize_row_bf16(tmp, out),
        DType::Q8_0 => quantize_row_q8_0_ref(tmp, out),
        DType::Q4_0 | DType::Q4_1 => quantize_row_ref(dtype, tmp, out),
        DType::Q4K => random_q4_k_row(rng, out),
        DType::Q6K => random_q6_k_row(rng, out),
    }
}

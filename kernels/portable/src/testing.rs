//! Test helpers shared with other kernel sets (feature `testing`): a small
//! deterministic PRNG, ggml's reference weight quantizers for the 32-value
//! types, and random K-quant blocks.
//!
//! Everything writes into caller-provided slices; nothing allocates.

use phi_edge::DType;

use crate::float::{quantize_row_bf16, quantize_row_f16, quantize_row_f32};
use crate::quant::act::quantize_row_q8_0_ref;
use crate::quant::q4_0::Q4_0_BYTES;
use crate::quant::q4_1::Q4_1_BYTES;
use crate::quant::q4_k::Q4_K_BYTES;
use crate::quant::q6_k::Q6_K_BYTES;
use crate::quant::{f16_bytes, QK32};

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

/// ggml's `quantize_row_q4_0_ref`: per block of 32, `max` is the value of
/// largest magnitude (first on ties) with its sign, `d = max / -8`,
/// `q = min(15, trunc(x / d + 8.5))`.
pub fn quantize_row_q4_0_ref(x: &[f32], out: &mut [u8]) {
    assert!(x.len() % QK32 == 0 && out.len() == x.len() / QK32 * Q4_0_BYTES);
    for (xb, ob) in x.chunks_exact(QK32).zip(out.chunks_exact_mut(Q4_0_BYTES)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob[..2].copy_from_slice(&f16_bytes(d));
        for j in 0..16 {
            let q0 = ((xb[j] * id + 8.5) as i8).min(15) as u8;
            let q1 = ((xb[j + 16] * id + 8.5) as i8).min(15) as u8;
            ob[2 + j] = q0 | (q1 << 4);
        }
    }
}

/// ggml's `quantize_row_q4_1_ref`: per block of 32, `d = (max - min) / 15`,
/// `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
pub fn quantize_row_q4_1_ref(x: &[f32], out: &mut [u8]) {
    assert!(x.len() % QK32 == 0 && out.len() == x.len() / QK32 * Q4_1_BYTES);
    for (xb, ob) in x.chunks_exact(QK32).zip(out.chunks_exact_mut(Q4_1_BYTES)) {
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in xb {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob[..2].copy_from_slice(&f16_bytes(d));
        ob[2..4].copy_from_slice(&f16_bytes(min));
        for j in 0..16 {
            let q0 = (((xb[j] - min) * id + 0.5) as i8).min(15) as u8;
            let q1 = (((xb[j + 16] - min) * id + 0.5) as i8).min(15) as u8;
            ob[4 + j] = q0 | (q1 << 4);
        }
    }
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
        DType::Q4_0 => quantize_row_q4_0_ref(tmp, out),
        DType::Q4_1 => quantize_row_q4_1_ref(tmp, out),
        DType::Q4K => random_q4_k_row(rng, out),
        DType::Q6K => random_q6_k_row(rng, out),
    }
}

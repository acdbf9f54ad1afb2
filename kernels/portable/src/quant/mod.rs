//! Quantized block formats: one module per ggml block type.
//!
//! Every function here works on raw little-endian block bytes (no alignment
//! needed). Quantizers and dequantizers mirror ggml's reference code
//! (`quantize_row_*_ref`, `dequantize_row_*` in `ggml-quants.c`), except
//! the Q8_0 / Q8_1 activation quantizers, which follow the x86 AVX build
//! (see [`act`]).
//!
//! The dot products reproduce llama.cpp's x86 AVX2 CPU backend at batch
//! size 1: integer sums are exact, and the float operations after them
//! (eight f32 lanes, fused multiply-adds, the `hsum_float_8` reduction)
//! run in the order of `ggml-cpu/arch/x86/quants.c` (`ggml_vec_dot_*`) and,
//! for the Q4_0 and Q4_K weights llama.cpp repacks, of
//! `ggml-cpu/arch/x86/repack.cpp` (`ggml_gemv_*_8x8_*`). Results are bit
//! for bit those of llama.cpp built with AVX2 and FMA (no AVX-512, no
//! AVX-VNNI) and `-ffp-contract=off`.
//!
//! Where the SIMD code's integer steps could in principle differ from an
//! exact integer sum (`_mm256_maddubs_epi16` saturation, the `sign_epi8`
//! trick, 16-bit sums of `bsums`), they cannot for activation rows made by
//! this crate's quantizers, whose quants lie in `-127..=127`; the emulation
//! relies on that and computes exact sums.

pub mod act;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q6_k;
pub mod q8_0;
pub(crate) mod tile;

use half::f16;
use phi_edge::DType;

pub(crate) use phi_edge::quant::nearest_int;

/// Values per block of the 32-value formats (Q8_0, Q8_1, Q4_0, Q4_1).
pub const QK32: usize = DType::Q8_0.block_len();
/// Values per super-block of the K formats (Q4_K, Q6_K, Q8_K).
pub const QK_K: usize = DType::Q4K.block_len();

/// The f32 value of the little-endian f16 at `b`.
#[inline(always)]
pub(crate) fn f16_le(b: [u8; 2]) -> f32 {
    crate::float::f16_to_f32(u16::from_le_bytes(b))
}

/// The little-endian bytes of `x` rounded to f16 (nearest even).
#[inline(always)]
pub(crate) fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// Number of blocks of `qk` values in a row of `k` values.
///
/// Panics if `k` is not a whole number of blocks: that is a caller bug.
#[inline]
pub(crate) fn blocks(k: usize, qk: usize) -> usize {
    assert!(
        k % qk == 0,
        "row of {k} values is not a whole number of {qk}-value blocks"
    );
    k / qk
}

/// Checks that `bytes` holds exactly `nb` blocks of `block_bytes`.
#[inline]
pub(crate) fn check_len(what: &str, bytes: &[u8], nb: usize, block_bytes: usize) {
    assert!(
        bytes.len() == nb * block_bytes,
        "{what}: expected {} bytes ({nb} blocks of {block_bytes}), got {}",
        nb * block_bytes,
        bytes.len()
    );
}

/// Eight i32 lanes of an AVX2 `__m256i` accumulator.
pub(crate) type Lanes = [i32; 8];

/// Eight f32 lanes of an AVX `__m256` accumulator.
pub(crate) type F32x8 = [f32; 8];

/// `a * b + c` rounded once, as x86 `vfmadd` (`_mm256_fmadd_ps`).
#[inline(always)]
pub(crate) fn fmadd(a: f32, b: f32, c: f32) -> f32 {
    crate::fma::fmaf(a, b, c)
}

/// ggml's x86 `hsum_float_8`: the high half plus the low half, then lanes
/// `0 + 2` and `1 + 3`, then those two:
/// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))`.
#[inline(always)]
pub(crate) fn hsum_float_8(x: F32x8) -> f32 {
    let s = [x[4] + x[0], x[5] + x[1], x[6] + x[2], x[7] + x[3]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// The i32 lanes of `_mm256_madd_epi16(ones, _mm256_maddubs_epi16(x, y))`
/// for the 32 products `p[i] = x[i] * y[i]`: lane `l` sums
/// `p[4l..4l + 4]`.
#[inline(always)]
pub(crate) fn quad_lanes(p: [i32; 32]) -> Lanes {
    let mut lanes = [0i32; 8];
    for (l, q) in lanes.iter_mut().zip(p.chunks_exact(4)) {
        *l = q[0] + q[1] + q[2] + q[3];
    }
    lanes
}

/// The 32 products `x[i] * y[i]` of unsigned weights and signed quants.
#[inline(always)]
pub(crate) fn products_u8_i8(x: &[u8; 32], y: &[u8]) -> [i32; 32] {
    let y: &[u8; 32] = y[..32].try_into().unwrap();
    let mut p = [0i32; 32];
    for ((p, &x), &y) in p.iter_mut().zip(x).zip(y) {
        *p = i32::from(x) * i32::from(y as i8);
    }
    p
}

/// The 32 nibbles of 16 packed bytes, low nibbles first (the Q4_0 / Q4_1
/// value order).
#[inline(always)]
pub(crate) fn nibbles(qs: &[u8]) -> [u8; 32] {
    let mut v = [0u8; 32];
    let (lo, hi) = v.split_at_mut(16);
    for ((l, h), &b) in lo.iter_mut().zip(hi).zip(qs) {
        *l = b & 0x0f;
        *h = b >> 4;
    }
    v
}

//! Quantized block formats: one module per ggml block type.
//!
//! Every function here works on raw little-endian block bytes (no alignment
//! needed) and mirrors ggml's reference code: the `quantize_row_*_ref`
//! quantizers in `ggml-quants.c` and the scalar `ggml_vec_dot_*_generic` dot
//! products in `ggml-cpu/quants.c`. Integer sums are exact; the order of the
//! float operations that follow them is ggml's, so results are bit-identical
//! to the generic C code compiled without FMA contraction.

pub mod act;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q6_k;
pub mod q8_0;

use half::f16;

/// Values per block of the 32-value formats (Q8_0, Q8_1, Q4_0, Q4_1).
pub const QK32: usize = 32;
/// Values per super-block of the K formats (Q4_K, Q6_K, Q8_K).
pub const QK_K: usize = 256;

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

/// Rounds to the nearest integer, ties to even, as ggml's `nearest_int`
/// (which adds 1.5 * 2^23 and reads the mantissa). Valid for
/// `|x| <= 4194303`, which every caller guarantees.
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Eight i32 lanes: lane `l` collects the products at positions `p` with
/// `p % 8 == l`, as ggml's generic K-quant dot products do.
pub(crate) type Lanes = [i32; 8];

//! AVX2 building blocks: loads and stores through fixed-size arrays (so no
//! access can leave its slice), f16 conversions, ggml's horizontal sums,
//! and one scalar fused multiply-add.
//!
//! Every function is `#[target_feature(enable = "avx2,fma,f16c")]`, called
//! only from kernels with the same features (see [`super::Avx2`]).

use core::arch::x86_64::*;

/// `s[o..o + N]` as an array reference; with constant offsets into a
/// fixed-size array the bounds check folds away.
#[inline(always)]
pub(crate) fn arr<T, const N: usize>(s: &[T], o: usize) -> &[T; N] {
    s[o..o + N].try_into().unwrap()
}

/// `s[o..o + N]` as a mutable array reference.
#[inline(always)]
pub(crate) fn arr_mut<T, const N: usize>(s: &mut [T], o: usize) -> &mut [T; N] {
    (&mut s[o..o + N]).try_into().unwrap()
}

/// Eight f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn ld8(x: &[f32; 8]) -> __m256 {
    // SAFETY: reads exactly the 8 values of `x`; no alignment needed.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// Stores eight f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn st8(x: &mut [f32; 8], v: __m256) {
    // SAFETY: writes exactly the 8 values of `x`; no alignment needed.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), v) }
}

/// 32 bytes as eight little-endian f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn ld8_bytes(b: &[u8; 32]) -> __m256 {
    // SAFETY: reads exactly the 32 bytes of `b`; no alignment needed.
    unsafe { _mm256_loadu_ps(b.as_ptr().cast()) }
}

/// 16 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn ld16_bytes(b: &[u8; 16]) -> __m128i {
    // SAFETY: reads exactly the 16 bytes of `b`; no alignment needed.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Stores 16 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn st16_bytes(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: writes exactly the 16 bytes of `b`; no alignment needed.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

/// Stores 32 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn st32_bytes(b: &mut [u8; 32], v: __m256i) {
    // SAFETY: writes exactly the 32 bytes of `b`; no alignment needed.
    unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), v) }
}

/// Eight u16.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn ld_u16x8(x: &[u16; 8]) -> __m128i {
    // SAFETY: reads exactly the 8 values of `x`; no alignment needed.
    unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
}

/// Stores eight u16.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn st_u16x8(x: &mut [u16; 8], v: __m128i) {
    // SAFETY: writes exactly the 8 values of `x`; no alignment needed.
    unsafe { _mm_storeu_si128(x.as_mut_ptr().cast(), v) }
}

/// Eight f16 (as u16 lanes) to f32, exactly (`vcvtph2ps`; a NaN stays a
/// NaN).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn f16x8_to_f32(h: __m128i) -> __m256 {
    _mm256_cvtph_ps(h)
}

/// Eight f32 to f16, round to nearest even whatever MXCSR says
/// (`vcvtps2ph` with an immediate rounding mode); a NaN keeps its sign
/// and top payload bits and becomes quiet, as `half`'s conversion does.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn f32x8_to_f16(v: __m256) -> __m128i {
    _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v)
}

/// f32 values rounded to f16 and back (the portable `round_f16`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn round_f16x8(v: __m256) -> __m256 {
    f16x8_to_f32(f32x8_to_f16(v))
}

/// The tail of a row of `src.len() < 8` values (or any row of at most 8)
/// through one padded group: `f` converts eight values, the first
/// `src.len()` from `src` and the rest zeros, to `N` outputs (N / 8 per
/// value), of which the first `dst.len()` go to `dst`. So a tail runs the
/// same instructions as the row's whole groups of 8.
#[inline(always)]
pub(crate) fn padded<T: Copy + Default, const N: usize>(
    src: &[f32],
    dst: &mut [T],
    f: impl FnOnce(&[f32; 8], &mut [T; N]),
) {
    let mut x = [0.0f32; 8];
    x[..src.len()].copy_from_slice(src);
    let mut y = [T::default(); N];
    f(&x, &mut y);
    let n = dst.len();
    dst.copy_from_slice(&y[..n]);
}

/// The portable `hsum8` (ggml's `hsum_float_8`): `g = v[0..4] + v[4..8]`,
/// then `(g0 + g2) + (g1 + g3)`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn hsum8(v: __m256) -> f32 {
    let g = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let h = _mm_add_ps(g, _mm_movehl_ps(g, g)); // [g0 + g2, g1 + g3, ..]
    _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
}

/// `(acc0 + acc2) + (acc1 + acc3)` per lane: the portable `pair_lanes` of
/// the 32 lanes held as four vectors (`acc[i]` holds lanes `8i..8i + 8`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn pair_lanes(acc: &[__m256; 4]) -> __m256 {
    _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]))
}

/// The portable `reduce_hadd` (ggml's `GGML_F32x8_REDUCE`) of 32 lanes
/// held as four vectors: [`pair_lanes`], `t = v[0..4] + v[4..8]`, then two
/// `hadd`s, `(t0 + t1) + (t2 + t3)`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn reduce_hadd(acc: &[__m256; 4]) -> f32 {
    let v = pair_lanes(acc);
    let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let h = _mm_hadd_ps(t, t);
    _mm_cvtss_f32(_mm_hadd_ps(h, h))
}

/// The largest of eight i32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn hmax_epi32(v: __m256i) -> i32 {
    let m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let m = _mm_max_epi32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
    let m = _mm_max_epi32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
    _mm_cvtsi128_si32(m)
}

/// The sum of eight i32 lanes (wrapping; callers' sums are small).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `a * b + c` rounded once (`vfmadd` on one lane).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

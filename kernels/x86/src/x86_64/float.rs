//! Float rows: the F32, F16 and BF16 dot products, and f32 rows to f16 /
//! bf16 bytes, bit-identical to the portable set.
//!
//! ggml's AVX2 loops keep 32 f32 lanes (element `i` in lane `i % 32`) as
//! four 8-lane accumulators; so do these, with the same per-lane
//! operations and reductions ([`reduce_hadd`], or [`pair_lanes`] then
//! [`hsum8`]); the tails past `k & !31` are the portable set's scalar
//! code.

use core::arch::x86_64::*;

use phi_edge_portable::float::{add_tail_16, bf16_to_f32, f16_to_f32, LANES};

use super::simd::{
    arr, arr_mut, f16x8_to_f32, f32x8_to_f16, hsum8, ld16_bytes, ld8, ld8_bytes, ld_u16x8, padded,
    pair_lanes, reduce_hadd, st16_bytes,
};

/// `ggml_vec_dot_f32` as the portable `vec_dot_f32`: 32 lanes with one
/// FMA per element, [`reduce_hadd`], then the tail in f32 (product
/// rounded, then added).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f32(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..4 * k], &a[..4 * k]);
    let np = k & !(LANES - 1);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wc, ac) in w[..4 * np]
        .chunks_exact(4 * LANES)
        .zip(a[..4 * np].chunks_exact(4 * LANES))
    {
        for (j, s) in acc.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(ld8_bytes(arr(wc, 32 * j)), ld8_bytes(arr(ac, 32 * j)), *s);
        }
    }
    let mut sum = reduce_hadd(&acc);
    for (x, y) in w[4 * np..].chunks_exact(4).zip(a[4 * np..].chunks_exact(4)) {
        sum += f32::from_le_bytes(*arr(x, 0)) * f32::from_le_bytes(*arr(y, 0));
    }
    sum
}

/// `ggml_vec_dot_f16` as the portable `vec_dot_f16`: 32 lanes (F16C
/// conversions; a product of two f16 values is exact in f32, so the FMA
/// rounds as the oracle's multiply and add), [`reduce_hadd`] widened to
/// f64, the tail added in f64, rounded to f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..2 * k], &a[..2 * k]);
    let np = k & !(LANES - 1);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        for (j, s) in acc.iter_mut().enumerate() {
            let x = f16x8_to_f32(ld16_bytes(arr(wc, 16 * j)));
            let y = f16x8_to_f32(ld16_bytes(arr(ac, 16 * j)));
            *s = _mm256_fmadd_ps(x, y, *s);
        }
    }
    let sum = f64::from(reduce_hadd(&acc));
    add_tail_16(sum, &w[2 * np..], &a[2 * np..], f16_to_f32) as f32
}

/// The portable `dot_f16_row` of four rows `x[r]` against the same `y`
/// (attention's scores against the f16 query): `ggml_vec_dot_f16` of f16
/// values and f16-valued f32, as [`dot_f16`], with the four reductions
/// done together: `t_r` is each row's [`pair_lanes`] folded to four lanes,
/// and `hadd(hadd(t0, t1), hadd(t2, t3))` holds each row's `(t0 + t1) +
/// (t2 + t3)`, as [`reduce_hadd`] computes it for one row.
///
/// Every row must have `y.len()` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f16_rows4(x: [&[u16]; 4], y: &[f32]) -> [f32; 4] {
    let n = y.len();
    let np = n & !(LANES - 1);
    let mut t = [_mm_setzero_ps(); 4];
    for (tr, xr) in t.iter_mut().zip(x) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (xc, yc) in xr[..np]
            .chunks_exact(LANES)
            .zip(y[..np].chunks_exact(LANES))
        {
            for (j, s) in acc.iter_mut().enumerate() {
                let h = f16x8_to_f32(ld_u16x8(arr(xc, 8 * j)));
                *s = _mm256_fmadd_ps(h, ld8(arr(yc, 8 * j)), *s);
            }
        }
        let v = pair_lanes(&acc);
        *tr = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    }
    let h = _mm_hadd_ps(_mm_hadd_ps(t[0], t[1]), _mm_hadd_ps(t[2], t[3]));
    let mut sums = [0.0f32; 4];
    // SAFETY: writes exactly the 4 values of `sums`.
    unsafe { _mm_storeu_ps(sums.as_mut_ptr(), h) };
    for (s, xr) in sums.iter_mut().zip(x) {
        let mut sum = f64::from(*s);
        for (&a, &b) in xr[np..n].iter().zip(&y[np..]) {
            sum += f64::from(f16_to_f32(a) * b);
        }
        *s = sum as f32;
    }
    sums
}

/// Eight little-endian bf16 to f32 (zero-extended, shifted into the high
/// half: exact).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bf16x8_to_f32(b: &[u8; 16]) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld16_bytes(
        b,
    ))))
}

/// `ggml_vec_dot_bf16` as the portable `vec_dot_bf16`: 32 lanes, `acc +=
/// x * y` with the product rounded (no FMA), [`pair_lanes`] and
/// [`hsum8`] widened to f64, the tail in f64, rounded to f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_bf16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..2 * k], &a[..2 * k]);
    let np = k & !(LANES - 1);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        for (j, s) in acc.iter_mut().enumerate() {
            let p = _mm256_mul_ps(
                bf16x8_to_f32(arr(wc, 16 * j)),
                bf16x8_to_f32(arr(ac, 16 * j)),
            );
            *s = _mm256_add_ps(*s, p);
        }
    }
    let sum = f64::from(hsum8(pair_lanes(&acc)));
    add_tail_16(sum, &w[2 * np..], &a[2 * np..], bf16_to_f32) as f32
}

/// Eight f32 to little-endian bf16 bytes as the portable `f32_to_bf16`
/// (`ggml_compute_fp32_to_bf16`): `(u + 0x7fff + ((u >> 16) & 1)) >> 16`,
/// round to nearest even; a NaN keeps its top bits with the quiet bit
/// forced on.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bf16x8(x: &[f32; 8], out: &mut [u8; 16]) {
    let u = _mm256_castps_si256(ld8(x));
    let hi = _mm256_srli_epi32::<16>(u);
    let mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fff_ffff));
    let nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f80_0000));
    let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(64));
    let odd = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    let bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd);
    let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(u, bias));
    let r = _mm256_blendv_epi8(rounded, quiet, nan);
    // Lanes are below 0x10000, so the saturating pack keeps them; it packs
    // within 128-bit halves, leaving 64-bit groups in the order 0 2 1 3.
    let packed = _mm256_packus_epi32(r, r);
    let ordered = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
    st16_bytes(out, _mm256_castsi256_si128(ordered));
}

/// f32 values to little-endian bf16 bytes (the portable
/// `quantize_row_bf16`), eight at a time and the tail through a padded
/// group.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f32_to_bf16_bytes(src: &[f32], dst: &mut [u8]) {
    let n8 = src.len() & !7;
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..2 * n8].chunks_exact_mut(16))
    {
        bf16x8(arr(s, 0), arr_mut(d, 0));
    }
    padded(&src[n8..], &mut dst[2 * n8..], |s, d| bf16x8(s, d));
}

/// f32 values to little-endian f16 bytes (the portable
/// `quantize_row_f16`): F16C round to nearest even, eight at a time and
/// the tail through a padded group.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f32_to_f16_bytes(src: &[f32], dst: &mut [u8]) {
    let n8 = src.len() & !7;
    let conv = |s: &[f32; 8], d: &mut [u8; 16]| st16_bytes(d, f32x8_to_f16(ld8(s)));
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..2 * n8].chunks_exact_mut(16))
    {
        conv(arr(s, 0), arr_mut(d, 0));
    }
    padded(&src[n8..], &mut dst[2 * n8..], conv);
}

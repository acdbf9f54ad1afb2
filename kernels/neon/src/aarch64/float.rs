//! Float dot products (F32, F16, BF16 rows) and f32 to f16 / bf16 rows,
//! bit-identical to the portable set.
//!
//! ggml's AVX2 loops keep 32 f32 lanes (element `i` in lane `i % 32`):
//! here eight f32x4 accumulators, `acc[j]` holding lanes `4j..4j + 4`, and
//! the same per-lane operations, reduced as the oracle does
//! ([`pair_lanes`], then [`hsum_hadd`] or [`hsum_float_8`]); the tails
//! past `k & !31` are the oracle's scalar code.

use core::arch::aarch64::*;

use phi_edge_portable::float::{add_tail_16, bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};

use super::simd::{
    arr, f16x8_to_f32, f32_to_f16x8, hsum_float_8, hsum_hadd, ld_f32, ld_f32_bytes, ld_u16,
    ld_u16_bytes, pair_lanes, st_u8,
};

/// Elements per pass of the 32-lane loops.
const LANES: usize = 32;

/// ggml_vec_dot_f32: 32 lanes with FMA, reduced as `GGML_F32x8_REDUCE`,
/// then the tail in f32.
#[target_feature(enable = "neon")]
pub(crate) fn dot_f32(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let np = k & !(LANES - 1);
    let mut acc = [vdupq_n_f32(0.0); 8];
    for (wc, ac) in w[..4 * np]
        .chunks_exact(4 * LANES)
        .zip(a[..4 * np].chunks_exact(4 * LANES))
    {
        let wc: &[u8; 4 * LANES] = wc.try_into().unwrap();
        let ac: &[u8; 4 * LANES] = ac.try_into().unwrap();
        for (j, s) in acc.iter_mut().enumerate() {
            *s = vfmaq_f32(
                *s,
                ld_f32_bytes(arr(wc, 16 * j)),
                ld_f32_bytes(arr(ac, 16 * j)),
            );
        }
    }
    let (lo, hi) = pair_lanes(&acc);
    let mut sum = hsum_hadd(lo, hi);
    for (x, y) in w[4 * np..4 * k]
        .chunks_exact(4)
        .zip(a[4 * np..4 * k].chunks_exact(4))
    {
        sum += f32::from_le_bytes(*arr(x, 0)) * f32::from_le_bytes(*arr(y, 0));
    }
    sum
}

/// The 32 lanes of `ggml_vec_dot_f16` over one 64-byte pass of each
/// operand: products of f16 values are exact in f32, so FMA matches the
/// oracle's multiply-add.
#[target_feature(enable = "neon")]
#[inline]
fn f16_pass(acc: &mut [float32x4_t; 8], w: &[u8; 2 * LANES], a: &[u8; 2 * LANES]) {
    for j in 0..4 {
        let (w0, w1) = f16x8_to_f32(ld_u16_bytes(arr(w, 16 * j)));
        let (a0, a1) = f16x8_to_f32(ld_u16_bytes(arr(a, 16 * j)));
        acc[2 * j] = vfmaq_f32(acc[2 * j], w0, a0);
        acc[2 * j + 1] = vfmaq_f32(acc[2 * j + 1], w1, a1);
    }
}

/// ggml_vec_dot_f16: 32 lanes, `GGML_F32x8_REDUCE` widened to f64, the
/// tail added in f64, rounded to f32.
#[target_feature(enable = "neon")]
pub(crate) fn dot_f16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let np = k & !(LANES - 1);
    let mut acc = [vdupq_n_f32(0.0); 8];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        f16_pass(&mut acc, wc.try_into().unwrap(), ac.try_into().unwrap());
    }
    let (lo, hi) = pair_lanes(&acc);
    let sum = f64::from(hsum_hadd(lo, hi));
    add_tail_16(sum, &w[2 * np..2 * k], &a[2 * np..2 * k], f16_to_f32) as f32
}

/// `ggml_vec_dot_f16` of f16 values `x` and f16-valued f32 `y` (the
/// attention scores against the f16-rounded query).
#[target_feature(enable = "neon")]
pub(crate) fn dot_f16_row(x: &[u16], y: &[f32]) -> f32 {
    let np = x.len() & !(LANES - 1);
    let mut acc = [vdupq_n_f32(0.0); 8];
    for (xc, yc) in x[..np].chunks_exact(LANES).zip(y[..np].chunks_exact(LANES)) {
        for j in 0..4 {
            let (x0, x1) = f16x8_to_f32(ld_u16(xc[8 * j..8 * j + 8].try_into().unwrap()));
            let y0 = ld_f32(yc[8 * j..8 * j + 4].try_into().unwrap());
            let y1 = ld_f32(yc[8 * j + 4..8 * j + 8].try_into().unwrap());
            acc[2 * j] = vfmaq_f32(acc[2 * j], x0, y0);
            acc[2 * j + 1] = vfmaq_f32(acc[2 * j + 1], x1, y1);
        }
    }
    let (lo, hi) = pair_lanes(&acc);
    let mut sum = f64::from(hsum_hadd(lo, hi));
    for (&a, &b) in x[np..].iter().zip(&y[np..]) {
        sum += f64::from(f16_to_f32(a) * b);
    }
    sum as f32
}

/// Eight bf16 to two f32x4 (a shift into the high half).
#[target_feature(enable = "neon")]
#[inline]
fn bf16x8_to_f32(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let z = vdupq_n_u16(0);
    (
        vreinterpretq_f32_u16(vzip1q_u16(z, h)),
        vreinterpretq_f32_u16(vzip2q_u16(z, h)),
    )
}

/// ggml_vec_dot_bf16: 32 lanes, `acc += x * y` with the product rounded
/// (no FMA), `(c1 + c3) + (c2 + c4)` and `hsum8` widened to f64, the tail
/// in f64.
#[target_feature(enable = "neon")]
pub(crate) fn dot_bf16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let np = k & !(LANES - 1);
    let mut acc = [vdupq_n_f32(0.0); 8];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        let wc: &[u8; 2 * LANES] = wc.try_into().unwrap();
        let ac: &[u8; 2 * LANES] = ac.try_into().unwrap();
        for j in 0..4 {
            let (w0, w1) = bf16x8_to_f32(ld_u16_bytes(arr(wc, 16 * j)));
            let (a0, a1) = bf16x8_to_f32(ld_u16_bytes(arr(ac, 16 * j)));
            acc[2 * j] = vaddq_f32(acc[2 * j], vmulq_f32(w0, a0));
            acc[2 * j + 1] = vaddq_f32(acc[2 * j + 1], vmulq_f32(w1, a1));
        }
    }
    let (lo, hi) = pair_lanes(&acc);
    let sum = f64::from(hsum_float_8(lo, hi));
    add_tail_16(sum, &w[2 * np..2 * k], &a[2 * np..2 * k], bf16_to_f32) as f32
}

/// f32 values to little-endian f16 bytes, round to nearest even
/// (`fcvtn`), as the portable `f32_to_f16` (NaN payloads included).
#[target_feature(enable = "neon")]
pub(crate) fn f32_to_f16_bytes(src: &[f32], dst: &mut [u8]) {
    let n8 = src.len() & !7;
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..2 * n8].chunks_exact_mut(16))
    {
        let lo = ld_f32(s[..4].try_into().unwrap());
        let hi = ld_f32(s[4..].try_into().unwrap());
        st_u8(
            d.try_into().unwrap(),
            vreinterpretq_u8_u16(f32_to_f16x8(lo, hi)),
        );
    }
    for (d, &s) in dst[2 * n8..].chunks_exact_mut(2).zip(&src[n8..]) {
        d.copy_from_slice(&f32_to_f16(s).to_le_bytes());
    }
}

/// Four f32 to bf16 as `ggml_compute_fp32_to_bf16`: round to nearest
/// even, NaN quieted with its top bits kept.
#[target_feature(enable = "neon")]
#[inline]
fn bf16x4(x: float32x4_t) -> uint16x4_t {
    let u = vreinterpretq_u32_f32(x);
    let nan = vcgtq_u32(
        vandq_u32(u, vdupq_n_u32(0x7fff_ffff)),
        vdupq_n_u32(0x7f80_0000),
    );
    let q = vorrq_u32(vshrq_n_u32::<16>(u), vdupq_n_u32(64));
    let odd = vandq_u32(vshrq_n_u32::<16>(u), vdupq_n_u32(1));
    let r = vshrq_n_u32::<16>(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), odd)));
    vmovn_u32(vbslq_u32(nan, q, r))
}

/// f32 values to little-endian bf16 bytes.
#[target_feature(enable = "neon")]
pub(crate) fn f32_to_bf16_bytes(src: &[f32], dst: &mut [u8]) {
    let n8 = src.len() & !7;
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..2 * n8].chunks_exact_mut(16))
    {
        let lo = bf16x4(ld_f32(s[..4].try_into().unwrap()));
        let hi = bf16x4(ld_f32(s[4..].try_into().unwrap()));
        st_u8(
            d.try_into().unwrap(),
            vreinterpretq_u8_u16(vcombine_u16(lo, hi)),
        );
    }
    for (d, &s) in dst[2 * n8..].chunks_exact_mut(2).zip(&src[n8..]) {
        d.copy_from_slice(&f32_to_bf16(s).to_le_bytes());
    }
}

//! Quantized dot products, bit-identical to the portable set.
//!
//! The integer part of every block uses [`dot4`]: lane `l` of a 16-byte
//! half sums the four products `4l..4l + 4`, exactly the lanes of the AVX2
//! code the oracle emulates, so the eight i32 lanes per 32 values are the
//! same integers. The float steps are then the same operations in the
//! same order: `vfmaq_f32` is the AVX2 `fmadd` per lane, and the final
//! reductions are [`hsum_float_8`]. For the repacked Q4_0 / Q4_K
//! projections the per-row order is one scalar FMA per block.
//!
//! Each function takes one weight row and one activation row of exactly
//! `k` values (the caller slices them).

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES, Q8_K_BYTES};
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::simd::{arr, dot4, f16_le, fmaf, hsum_float_8, ld_i8, ld_u8};

/// Q8_0 x Q8_0 (`ggml_vec_dot_q8_0_q8_0`).
#[target_feature(enable = "neon")]
pub(crate) fn q8_0<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    for (wb, ab) in w.chunks_exact(Q8_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let wb: &[u8; Q8_0_BYTES] = wb.try_into().unwrap();
        let ab: &[u8; Q8_0_BYTES] = ab.try_into().unwrap();
        let d = vdupq_n_f32(f16_le(arr(wb, 0)) * f16_le(arr(ab, 0)));
        let i0 = dot4::<SDOT>(zero, ld_i8(arr(wb, 2)), ld_i8(arr(ab, 2)));
        let i1 = dot4::<SDOT>(zero, ld_i8(arr(wb, 18)), ld_i8(arr(ab, 18)));
        acc0 = vfmaq_f32(acc0, d, vcvtq_f32_s32(i0));
        acc1 = vfmaq_f32(acc1, d, vcvtq_f32_s32(i1));
    }
    hsum_float_8(acc0, acc1)
}

/// The lane sums of a Q4_0 block times a Q8_0 block: values 0..16 and
/// 16..32.
#[target_feature(enable = "neon")]
#[inline]
fn q4_0_block<const SDOT: bool>(
    wb: &[u8; Q4_0_BYTES],
    ab: &[u8; Q8_0_BYTES],
) -> (int32x4_t, int32x4_t) {
    let zero = vdupq_n_s32(0);
    let q = ld_u8(arr(wb, 2));
    let eight = vdupq_n_s8(8);
    let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
    let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), eight);
    (
        dot4::<SDOT>(zero, lo, ld_i8(arr(ab, 2))),
        dot4::<SDOT>(zero, hi, ld_i8(arr(ab, 18))),
    )
}

/// Q4_0 x Q8_0 in plain rows (`ggml_vec_dot_q4_0_q8_0`: a tied
/// embedding).
#[target_feature(enable = "neon")]
pub(crate) fn q4_0<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    for (wb, ab) in w.chunks_exact(Q4_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let wb: &[u8; Q4_0_BYTES] = wb.try_into().unwrap();
        let ab: &[u8; Q8_0_BYTES] = ab.try_into().unwrap();
        let d = vdupq_n_f32(f16_le(arr(wb, 0)) * f16_le(arr(ab, 0)));
        let (i0, i1) = q4_0_block::<SDOT>(wb, ab);
        acc0 = vfmaq_f32(acc0, d, vcvtq_f32_s32(i0));
        acc1 = vfmaq_f32(acc1, d, vcvtq_f32_s32(i1));
    }
    hsum_float_8(acc0, acc1)
}

/// Q4_0 x Q8_0 in the repacked projection order
/// (`ggml_gemv_q4_0_8x8_q8_0`): `acc = fma(sumi, dw * da, acc)` per block.
#[target_feature(enable = "neon")]
pub(crate) fn q4_0_repacked<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let mut acc = 0.0f32;
    for (wb, ab) in w.chunks_exact(Q4_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let wb: &[u8; Q4_0_BYTES] = wb.try_into().unwrap();
        let ab: &[u8; Q8_0_BYTES] = ab.try_into().unwrap();
        let (i0, i1) = q4_0_block::<SDOT>(wb, ab);
        let sumi = vaddvq_s32(vaddq_s32(i0, i1));
        acc = fmaf(sumi as f32, f16_le(arr(wb, 0)) * f16_le(arr(ab, 0)), acc);
    }
    acc
}

/// Q4_1 x Q8_1 (`ggml_vec_dot_q4_1_q8_1`): the lanes as Q8_0, plus
/// `summs += m * s` in f32, added after the horizontal sum.
#[target_feature(enable = "neon")]
pub(crate) fn q4_1<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut summs = 0.0f32;
    for (wb, ab) in w.chunks_exact(Q4_1_BYTES).zip(a.chunks_exact(Q8_1_BYTES)) {
        let wb: &[u8; Q4_1_BYTES] = wb.try_into().unwrap();
        let ab: &[u8; Q8_1_BYTES] = ab.try_into().unwrap();
        summs += f16_le(arr(wb, 2)) * f16_le(arr(ab, 2));
        let d = vdupq_n_f32(f16_le(arr(wb, 0)) * f16_le(arr(ab, 0)));
        let q = ld_u8(arr(wb, 4));
        let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f)));
        let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
        let i0 = dot4::<SDOT>(zero, lo, ld_i8(arr(ab, 4)));
        let i1 = dot4::<SDOT>(zero, hi, ld_i8(arr(ab, 20)));
        acc0 = vfmaq_f32(acc0, d, vcvtq_f32_s32(i0));
        acc1 = vfmaq_f32(acc1, d, vcvtq_f32_s32(i1));
    }
    hsum_float_8(acc0, acc1) + summs
}

/// A Q8_K block split: `d`, quants, and the 16 block sums.
#[inline(always)]
fn q8_k(ab: &[u8]) -> (f32, &[u8; 256], [i32; 16]) {
    let ab: &[u8; Q8_K_BYTES] = ab.try_into().unwrap();
    let d = f32::from_le_bytes(*arr(ab, 0));
    let bs: [i32; 16] =
        core::array::from_fn(|i| i32::from(i16::from_le_bytes(*arr(ab, 260 + 2 * i))));
    (d, arr(ab, 4), bs)
}

/// One Q4_K block times one Q8_K block: the eight i32 lanes
/// `sum_s sc[s] * (products of sub-block s in lane l)`, the scales and the
/// mins.
#[target_feature(enable = "neon")]
#[inline]
fn q4_k_block<const SDOT: bool>(
    wb: &[u8; Q4_K_BYTES],
    q8: &[u8; 256],
) -> (int32x4_t, int32x4_t, [u8; 8], [u8; 8]) {
    let zero = vdupq_n_s32(0);
    let packed: &[u8; 12] = arr(wb, 4);
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = scale_min_k4(j, packed);
    }
    let mask = vdupq_n_u8(0x0f);
    let (mut s0, mut s1) = (zero, zero);
    for c in 0..4 {
        let qa = ld_u8(arr(wb, 16 + 32 * c));
        let qb = ld_u8(arr(wb, 32 + 32 * c));
        let y = |o: usize| ld_i8(arr(q8, 64 * c + o));
        let lo_a = dot4::<SDOT>(zero, vreinterpretq_s8_u8(vandq_u8(qa, mask)), y(0));
        let lo_b = dot4::<SDOT>(zero, vreinterpretq_s8_u8(vandq_u8(qb, mask)), y(16));
        let hi_a = dot4::<SDOT>(zero, vreinterpretq_s8_u8(vshrq_n_u8::<4>(qa)), y(32));
        let hi_b = dot4::<SDOT>(zero, vreinterpretq_s8_u8(vshrq_n_u8::<4>(qb)), y(48));
        let (sl, sh) = (i32::from(sc[2 * c]), i32::from(sc[2 * c + 1]));
        s0 = vmlaq_n_s32(vmlaq_n_s32(s0, lo_a, sl), hi_a, sh);
        s1 = vmlaq_n_s32(vmlaq_n_s32(s1, lo_b, sl), hi_b, sh);
    }
    (s0, s1, sc, m)
}

/// The sub-block sums of a Q8_K block's quants (pairs of `bsums`).
#[inline(always)]
fn sub_block_sums(bs: &[i32; 16]) -> [i32; 8] {
    core::array::from_fn(|j| bs[2 * j] + bs[2 * j + 1])
}

/// Q4_K x Q8_K in plain rows (`ggml_vec_dot_q4_K_q8_K`: a tied
/// embedding).
#[target_feature(enable = "neon")]
pub(crate) fn q4_k<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut acc_m = vdupq_n_f32(0.0);
    for (wb, ab) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q4_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, bsums) = q8_k(ab);
        let d = vdupq_n_f32(da * f16_le(arr(wb, 0)));
        let dmin = vdupq_n_f32(-da * f16_le(arr(wb, 2)));
        let (s0, s1, _, m) = q4_k_block::<SDOT>(wb, q8);
        let bs = sub_block_sums(&bsums);
        let t: [i32; 4] = core::array::from_fn(|i| {
            i32::from(m[2 * i]) * bs[2 * i] + i32::from(m[2 * i + 1]) * bs[2 * i + 1]
        });
        // SAFETY: reads exactly the four values of `t`.
        let t = unsafe { vld1q_s32(t.as_ptr()) };
        acc_m = vfmaq_f32(acc_m, dmin, vcvtq_f32_s32(t));
        acc0 = vfmaq_f32(acc0, d, vcvtq_f32_s32(s0));
        acc1 = vfmaq_f32(acc1, d, vcvtq_f32_s32(s1));
    }
    let m = vadd_f32(vget_low_f32(acc_m), vget_high_f32(acc_m)); // [m0 + m2, m1 + m3]
    hsum_float_8(acc0, acc1) + (vget_lane_f32::<0>(m) + vget_lane_f32::<1>(m))
}

/// Q4_K x Q8_K in the repacked projection order
/// (`ggml_gemv_q4_K_8x8_q8_K`): exact `isum` and `imin` per block, two
/// scalar FMA chains, `acc - acc_m`.
#[target_feature(enable = "neon")]
pub(crate) fn q4_k_repacked<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let (mut acc, mut acc_m) = (0.0f32, 0.0f32);
    for (wb, ab) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q4_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, bsums) = q8_k(ab);
        let (s0, s1, _, m) = q4_k_block::<SDOT>(wb, q8);
        let isum = vaddvq_s32(vaddq_s32(s0, s1));
        let bs = sub_block_sums(&bsums);
        let imin: i32 = m.iter().zip(&bs).map(|(&m, &s)| i32::from(m) * s).sum();
        acc = fmaf(isum as f32, f16_le(arr(wb, 0)) * da, acc);
        acc_m = fmaf(imin as f32, f16_le(arr(wb, 2)) * da, acc_m);
    }
    acc - acc_m
}

/// Q6_K x Q8_K (`ggml_vec_dot_q6_K_q8_K`): the unsigned 6-bit quants
/// against the activations in lanes, each 16-value half of a 32-value
/// chunk with its scale, minus the `32 * bsums * scales` offset of lane
/// `l` (sub-blocks `2l`, `2l + 1`).
#[target_feature(enable = "neon")]
pub(crate) fn q6_k<const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let m4 = vdupq_n_u8(0x0f);
    let m30 = vdupq_n_u8(0x30);
    for (wb, ab) in w.chunks_exact(Q6_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q6_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, _) = q8_k(ab);
        let ab: &[u8; Q8_K_BYTES] = ab.try_into().unwrap();
        let d = vdupq_n_f32(da * f16_le(arr(wb, 208)));
        let sc: &[u8; 16] = arr(wb, 192);
        let s = |j: usize| i32::from(sc[j] as i8);
        let (mut s0, mut s1) = (zero, zero);
        for h in 0..2 {
            let ql = |o: usize| ld_u8(arr(wb, 64 * h + o));
            let (l0, l1, l2, l3) = (ql(0), ql(16), ql(32), ql(48));
            let (h0, h1) = (ld_u8(arr(wb, 128 + 32 * h)), ld_u8(arr(wb, 144 + 32 * h)));
            // The four 32-value chunks of this half, as (first 16, last 16).
            let q = [
                (
                    vorrq_u8(
                        vandq_u8(l0, m4),
                        vshlq_n_u8::<4>(vandq_u8(h0, vdupq_n_u8(3))),
                    ),
                    vorrq_u8(
                        vandq_u8(l1, m4),
                        vshlq_n_u8::<4>(vandq_u8(h1, vdupq_n_u8(3))),
                    ),
                ),
                (
                    vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8::<2>(h0), m30)),
                    vorrq_u8(vandq_u8(l3, m4), vandq_u8(vshlq_n_u8::<2>(h1), m30)),
                ),
                (
                    vorrq_u8(vshrq_n_u8::<4>(l0), vandq_u8(h0, m30)),
                    vorrq_u8(vshrq_n_u8::<4>(l1), vandq_u8(h1, m30)),
                ),
                (
                    vorrq_u8(vshrq_n_u8::<4>(l2), vandq_u8(vshrq_n_u8::<2>(h0), m30)),
                    vorrq_u8(vshrq_n_u8::<4>(l3), vandq_u8(vshrq_n_u8::<2>(h1), m30)),
                ),
            ];
            for (i, &(qa, qb)) in q.iter().enumerate() {
                let c = 4 * h + i;
                let y0 = ld_i8(arr(q8, 32 * c));
                let y1 = ld_i8(arr(q8, 32 * c + 16));
                let pa = dot4::<SDOT>(zero, vreinterpretq_s8_u8(qa), y0);
                let pb = dot4::<SDOT>(zero, vreinterpretq_s8_u8(qb), y1);
                s0 = vmlaq_n_s32(s0, pa, s(2 * c));
                s1 = vmlaq_n_s32(s1, pb, s(2 * c + 1));
            }
        }
        // Offsets: lane l -= 32 * (bsums[2l] sc[2l] + bsums[2l+1] sc[2l+1]).
        // SAFETY: reads exactly the 32 bytes of bsums (two 16-byte loads).
        let (b0, b1) = unsafe {
            (
                vld1q_s16(arr::<16>(ab, 260).as_ptr().cast()),
                vld1q_s16(arr::<16>(ab, 276).as_ptr().cast()),
            )
        };
        let scv = ld_i8(sc);
        let (c0, c1) = (vmovl_s8(vget_low_s8(scv)), vmovl_high_s8(scv));
        let o0 = vpaddq_s32(
            vmull_s16(vget_low_s16(b0), vget_low_s16(c0)),
            vmull_high_s16(b0, c0),
        );
        let o1 = vpaddq_s32(
            vmull_s16(vget_low_s16(b1), vget_low_s16(c1)),
            vmull_high_s16(b1, c1),
        );
        s0 = vsubq_s32(s0, vshlq_n_s32::<5>(o0));
        s1 = vsubq_s32(s1, vshlq_n_s32::<5>(o1));
        acc0 = vfmaq_f32(acc0, d, vcvtq_f32_s32(s0));
        acc1 = vfmaq_f32(acc1, d, vcvtq_f32_s32(s1));
    }
    hsum_float_8(acc0, acc1)
}

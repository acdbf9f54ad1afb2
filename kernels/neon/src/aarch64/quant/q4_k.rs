//! Q4_K weights times Q8_K activations, in the two orders of the portable
//! set: `vec_dot_q4_k_q8_k` (a tied embedding, llama.cpp's AVX2
//! `ggml_vec_dot_q4_K_q8_K`) and `vec_dot_q4_k_q8_k_repacked` (a
//! projection, one row of `ggml_gemv_q4_K_8x8_q8_K`).
//!
//! Both orders start from the same exact integers per block ([`ints`]):
//! eight lanes of scaled nibble-times-quant sums, and the products of the
//! eight sub-block mins with the activation's sub-block sums. The plain
//! order multiplies them into f32 lanes; the repacked order sums each to
//! one integer first.

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};

use super::super::simd::{arr, dot4_small, hsum_float_8, ld_i8, ld_u8};
use super::{blocks, f16s, first, fma_lane, totals, Format};

/// An activation block: its quants and its eight sub-block sums
/// `bs[s] = bsums[2s] + bsums[2s + 1]` (sub-blocks 0..4, 4..8), exact in
/// i32.
#[target_feature(enable = "neon")]
#[inline]
fn act_block(ab: &[u8; Q8_K_BYTES]) -> (&[u8; 256], (int32x4_t, int32x4_t)) {
    let b0 = vreinterpretq_s16_u8(ld_u8(arr(ab, 260)));
    let b1 = vreinterpretq_s16_u8(ld_u8(arr(ab, 276)));
    (arr(ab, 4), (vpaddlq_s16(b0), vpaddlq_s16(b1)))
}

/// The scale of an activation block.
#[inline(always)]
fn act_scale(ab: &[u8; Q8_K_BYTES]) -> f32 {
    f32::from_le_bytes(*arr(ab, 0))
}

/// One weight block times `T` activation blocks (quants `q8[t]`, sub-block
/// sums `bs[t]`): per token, with `LANES`, lane `l` of the first pair is
/// `sum_s sc[s] * (products of sub-block s in lane l)` (values `32c +
/// 4l..` in the first vector, `32c + 16 + 4l..` in the second, over the
/// four 64-value chunks `c`); without `LANES` only the sum of the pair's
/// eight lanes is that of the block (`sum_s sc[s] * (products of
/// sub-block s)`), whatever the lanes hold. The second pair holds
/// `m[s] * bs[s]` for `s` in 0..4, 4..8.
///
/// Without `LANES` or `SDOT` the products of a sub-block go to eight i16
/// lanes, four per lane (exact: `|q4 * q8| <= 15 * 128`, so a lane stays
/// within 7680), times the scale into i32 by a widening multiply-add:
/// 6 instructions per 32 values instead of 12.
///
/// # Safety
/// The CPU has NEON, and the dot product extension if `SDOT`.
#[inline(always)]
unsafe fn ints<const SDOT: bool, const LANES: bool, const T: usize>(
    wb: &[u8; Q4_K_BYTES],
    q8: [&[u8; 256]; T],
    bs: [(int32x4_t, int32x4_t); T],
) -> [((int32x4_t, int32x4_t), (int32x4_t, int32x4_t)); T] {
    // SAFETY: NEON as the caller guarantees (and `sdot` for `SDOT`, see
    // `dot4`); register-only intrinsics and loads from arrays.
    unsafe {
        let zero = vdupq_n_s32(0);
        let packed: &[u8; 12] = arr(wb, 4);
        let mut sc = [0u8; 8];
        let mut m = [0u8; 8];
        for j in 0..8 {
            (sc[j], m[j]) = scale_min_k4(j, packed);
        }
        let mask = vdupq_n_u8(0x0f);
        let mut s = [(zero, zero); T];
        for c in 0..4 {
            let qa = ld_u8(arr(wb, 16 + 32 * c));
            let qb = ld_u8(arr(wb, 32 + 32 * c));
            let lo_a = vreinterpretq_s8_u8(vandq_u8(qa, mask));
            let lo_b = vreinterpretq_s8_u8(vandq_u8(qb, mask));
            let hi_a = vreinterpretq_s8_u8(vshrq_n_u8::<4>(qa));
            let hi_b = vreinterpretq_s8_u8(vshrq_n_u8::<4>(qb));
            let (sl, sh) = (i32::from(sc[2 * c]), i32::from(sc[2 * c + 1]));
            for (t, (s0, s1)) in s.iter_mut().enumerate() {
                let y = |o: usize| ld_i8(arr(q8[t], 64 * c + o));
                if LANES || SDOT {
                    let pa = dot4_small::<SDOT>(zero, lo_a, y(0));
                    let pb = dot4_small::<SDOT>(zero, lo_b, y(16));
                    let qa = dot4_small::<SDOT>(zero, hi_a, y(32));
                    let qb = dot4_small::<SDOT>(zero, hi_b, y(48));
                    *s0 = vmlaq_n_s32(vmlaq_n_s32(*s0, pa, sl), qa, sh);
                    *s1 = vmlaq_n_s32(vmlaq_n_s32(*s1, pb, sl), qb, sh);
                } else {
                    // Sub-block 2c: values 0..32 of the chunk; 2c + 1:
                    // values 32..64.
                    let (y0, y1, y2, y3) = (y(0), y(16), y(32), y(48));
                    let p = vmull_s8(vget_low_s8(lo_a), vget_low_s8(y0));
                    let p = vmlal_high_s8(p, lo_a, y0);
                    let p = vmlal_s8(p, vget_low_s8(lo_b), vget_low_s8(y1));
                    let p = vmlal_high_s8(p, lo_b, y1);
                    let q = vmull_s8(vget_low_s8(hi_a), vget_low_s8(y2));
                    let q = vmlal_high_s8(q, hi_a, y2);
                    let q = vmlal_s8(q, vget_low_s8(hi_b), vget_low_s8(y3));
                    let q = vmlal_high_s8(q, hi_b, y3);
                    let (sl, sh) = (sl as i16, sh as i16);
                    *s0 = vmlal_high_n_s16(vmlal_n_s16(*s0, vget_low_s16(p), sl), p, sl);
                    *s1 = vmlal_high_n_s16(vmlal_n_s16(*s1, vget_low_s16(q), sh), q, sh);
                }
            }
        }
        // The mins as i32 lanes: sub-blocks 0..4, 4..8.
        let m = vmovl_u8(vcreate_u8(u64::from_le_bytes(m)));
        let m0 = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(m)));
        let m1 = vreinterpretq_s32_u32(vmovl_high_u16(m));
        core::array::from_fn(|t| (s[t], (vmulq_s32(m0, bs[t].0), vmulq_s32(m1, bs[t].1))))
    }
}

/// Q4_K x Q8_K in plain rows: per block, with `d = da * dw` and
/// `dmin = -da * dmin_w`, `acc = fma(d, lanes, acc)` on eight f32 lanes
/// and `acc_m = fma(dmin, mins, acc_m)` on four (lane `i` the exact
/// `m[2i] bs[2i] + m[2i + 1] bs[2i + 1]`); the result is
/// `hsum_float_8(acc) + ((acc_m0 + acc_m2) + (acc_m1 + acc_m3))`.
pub(crate) struct Q4K;

impl Format for Q4K {
    const QK: usize = 256;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        let w = w.map(|w| blocks::<Q4_K_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_K_BYTES>(a, nb));
        let fz = vdupq_n_f32(0.0);
        let mut acc = [[(fz, fz, fz); R]; T];
        for b in 0..nb {
            let (q8, bs): ([_; T], [_; T]) = {
                let ab = a.map(|a| act_block(&a[b]));
                (ab.map(|x| x.0), ab.map(|x| x.1))
            };
            // Lane r: dw, dmin_w of row r.
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let dmin_w = f16s(w.map(|w| arr(&w[b], 2)));
            // Lane r: da * dw and -da * dmin_w, per token.
            let da = a.map(|a| act_scale(&a[b]));
            let d = da.map(|da| vmulq_f32(vdupq_n_f32(da), dw));
            let dmin = da.map(|da| vmulq_f32(vdupq_n_f32(-da), dmin_w));
            unroll!(r < R => {
                // SAFETY: NEON by this function's target feature, `sdot`
                // as the caller guarantees.
                let ints = unsafe { ints::<SDOT, true, T>(&w[r][b], q8, bs) };
                for (t, ((s0, s1), (m0, m1))) in ints.into_iter().enumerate() {
                    let (acc0, acc1, acc_m) = &mut acc[t][r];
                    *acc_m = fma_lane(*acc_m, vcvtq_f32_s32(vpaddq_s32(m0, m1)), dmin[t], r);
                    *acc0 = fma_lane(*acc0, vcvtq_f32_s32(s0), d[t], r);
                    *acc1 = fma_lane(*acc1, vcvtq_f32_s32(s1), d[t], r);
                }
            });
        }
        acc.map(|acc| {
            acc.map(|(acc0, acc1, acc_m)| {
                let m = vadd_f32(vget_low_f32(acc_m), vget_high_f32(acc_m)); // [m0 + m2, m1 + m3]
                hsum_float_8(acc0, acc1) + (vget_lane_f32::<0>(m) + vget_lane_f32::<1>(m))
            })
        })
    }
}

/// Q4_K x Q8_K in the repacked projection order: two f32 accumulators
/// per (row, token), per block `acc = fma(isum, dw * da, acc)` and
/// `acc_m = fma(imin, dmin_w * da, acc_m)` with the exact block sums
/// `isum` and `imin`; the result is `acc - acc_m`. A tile holds its
/// rows' accumulators in the lanes of two vectors per token (lane `r` for
/// row `r`, `R <= 4`).
pub(crate) struct Q4KRepacked;

impl Format for Q4KRepacked {
    const QK: usize = 256;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        let w = w.map(|w| blocks::<Q4_K_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_K_BYTES>(a, nb));
        let fz = vdupq_n_f32(0.0);
        let mut acc = [(fz, fz); T];
        for b in 0..nb {
            let (q8, bs): ([_; T], [_; T]) = {
                let ab = a.map(|a| act_block(&a[b]));
                (ab.map(|x| x.0), ab.map(|x| x.1))
            };
            let zero = vdupq_n_s32(0);
            let mut isum = [[zero; R]; T];
            let mut imin = [[zero; R]; T];
            unroll!(r < R => {
                // SAFETY: NEON by this function's target feature, `sdot`
                // as the caller guarantees.
                let ints = unsafe { ints::<SDOT, false, T>(&w[r][b], q8, bs) };
                for (t, ((s0, s1), (m0, m1))) in ints.into_iter().enumerate() {
                    isum[t][r] = vaddq_s32(s0, s1);
                    imin[t][r] = vaddq_s32(m0, m1);
                }
            });
            // Lane r: dw, dmin_w of row r.
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let dmin_w = f16s(w.map(|w| arr(&w[b], 2)));
            for (t, (acc, acc_m)) in acc.iter_mut().enumerate() {
                // Lane r: fma(isum as f32, dw * da, acc) and
                // fma(imin as f32, dmin_w * da, acc_m), the scalar `fmaf`s
                // of the row dot.
                let da = act_scale(&a[t][b]);
                *acc = vfmaq_f32(*acc, vcvtq_f32_s32(totals(isum[t])), vmulq_n_f32(dw, da));
                *acc_m = vfmaq_f32(
                    *acc_m,
                    vcvtq_f32_s32(totals(imin[t])),
                    vmulq_n_f32(dmin_w, da),
                );
            }
        }
        acc.map(|(acc, acc_m)| first(vsubq_f32(acc, acc_m)))
    }
}

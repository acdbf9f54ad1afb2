//! Q4_0 weights times Q8_0 activations, in the two orders of the portable
//! set: `vec_dot_q4_0_q8_0` (a tied embedding, llama.cpp's AVX2
//! `ggml_vec_dot_q4_0_q8_0`) and `vec_dot_q4_0_q8_0_repacked` (a
//! projection, one row of `ggml_gemv_q4_0_8x8_q8_0`).
//!
//! Both start from the same exact integers per block: the lane sums of
//! the nibbles minus 8 times the quants, values 0..16 and 16..32.

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::Q8_0_BYTES;
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;

use super::super::simd::{arr, dot4, dot4_small, hsum_float_8, ld_i8, ld_u8};
use super::{blocks, f16s, first, fma_lane, mul_lane, totals, Format};

/// A Q4_0 block's 32 weights minus 8 as i8: values 0..16 (low nibbles),
/// 16..32 (high nibbles).
#[target_feature(enable = "neon")]
#[inline]
fn unpack(wb: &[u8; Q4_0_BYTES]) -> (int8x16_t, int8x16_t) {
    let q = ld_u8(arr(wb, 2));
    let eight = vdupq_n_s8(8);
    let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
    let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), eight);
    (lo, hi)
}

/// Four i32 lanes that sum to the block's `sum(q4 * q8)`, exactly: two
/// `sdot` with `SDOT`; otherwise the 32 products in eight i16 lanes, four
/// per lane (`|(q4 - 8) * q8| <= 8 * 128`, so a lane stays within 4096),
/// widened pairwise (5 instructions instead of 10).
#[target_feature(enable = "neon")]
#[inline]
fn block_sum<const SDOT: bool>(
    lo: int8x16_t,
    hi: int8x16_t,
    y0: int8x16_t,
    y1: int8x16_t,
) -> int32x4_t {
    if SDOT {
        let zero = vdupq_n_s32(0);
        vaddq_s32(dot4::<SDOT>(zero, lo, y0), dot4::<SDOT>(zero, hi, y1))
    } else {
        let p = vmull_s8(vget_low_s8(lo), vget_low_s8(y0));
        let p = vmlal_high_s8(p, lo, y0);
        let p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(y1));
        vpaddlq_s16(vmlal_high_s8(p, hi, y1))
    }
}

/// Q4_0 x Q8_0 in plain rows: per block `acc = fma(dw * da, lanes, acc)`
/// on eight f32 lanes; the result is `hsum_float_8(acc)`.
pub(crate) struct Q4_0;

impl Format for Q4_0 {
    const QK: usize = 32;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4 && T <= 4) };
        let w = w.map(|w| blocks::<Q4_0_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_0_BYTES>(a, nb));
        let zero = vdupq_n_s32(0);
        let fz = vdupq_n_f32(0.0);
        let mut acc = [[(fz, fz); R]; T];
        for b in 0..nb {
            // Lane r: dw of row r; lane t: da of token t.
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let da = f16s(a.map(|a| arr(&a[b], 0)));
            let qw = w.map(|w| unpack(&w[b]));
            for (t, acc) in acc.iter_mut().enumerate() {
                let ab = &a[t][b];
                let (y0, y1) = (ld_i8(arr(ab, 2)), ld_i8(arr(ab, 18)));
                // Lane r: dw * da.
                let d = mul_lane(dw, da, t);
                for (r, (acc0, acc1)) in acc.iter_mut().enumerate() {
                    let i0 = dot4_small::<SDOT>(zero, qw[r].0, y0);
                    let i1 = dot4_small::<SDOT>(zero, qw[r].1, y1);
                    *acc0 = fma_lane(*acc0, vcvtq_f32_s32(i0), d, r);
                    *acc1 = fma_lane(*acc1, vcvtq_f32_s32(i1), d, r);
                }
            }
        }
        acc.map(|acc| acc.map(|(x, y)| hsum_float_8(x, y)))
    }
}

/// Q4_0 x Q8_0 in the repacked projection order: one f32 accumulator per
/// (row, token), per block `acc = fma(sumi, dw * da, acc)` with the
/// exact block sum `sumi`. A tile holds its rows' accumulators in the
/// lanes of one vector per token (lane `r` for row `r`, `R <= 4`).
pub(crate) struct Q4_0Repacked;

impl Format for Q4_0Repacked {
    const QK: usize = 32;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4 && T <= 4) };
        let w = w.map(|w| blocks::<Q4_0_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_0_BYTES>(a, nb));
        let mut acc = [vdupq_n_f32(0.0); T];
        for b in 0..nb {
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let da = f16s(a.map(|a| arr(&a[b], 0)));
            let qw = w.map(|w| unpack(&w[b]));
            for (t, acc) in acc.iter_mut().enumerate() {
                let ab = &a[t][b];
                let (y0, y1) = (ld_i8(arr(ab, 2)), ld_i8(arr(ab, 18)));
                let sumi = totals(qw.map(|(lo, hi)| block_sum::<SDOT>(lo, hi, y0, y1)));
                // Lane r: fma(sumi as f32, dw * da, acc), the scalar
                // `fmaf` of the row dot.
                *acc = vfmaq_f32(*acc, vcvtq_f32_s32(sumi), mul_lane(dw, da, t));
            }
        }
        acc.map(|v| first(v))
    }
}

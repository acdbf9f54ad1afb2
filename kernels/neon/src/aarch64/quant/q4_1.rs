//! Q4_1 weights times Q8_1 activations, in the order of the portable
//! `vec_dot_q4_1_q8_1` (llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1`).

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::Q8_1_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::super::simd::{arr, dot4_small, hsum_float_8, ld_i8, ld_u8};
use super::{blocks, f16s, first, fma_lane, mul_lane, rows4, Format};

/// Q4_1 x Q8_1: per block `acc = fma(dw * da, lanes, acc)` on eight f32
/// lanes (the nibbles times the quants) and, in scalar, `summs += mw *
/// sa`; the result is `hsum_float_8(acc) + summs`. A tile keeps its rows'
/// `summs` in the lanes of one vector per token (lane `r` for row `r`,
/// `R <= 4`): a lane of the by-element multiply `mw * sa` then of
/// `vaddq_f32` is the scalar multiply and add.
pub(crate) struct Q4_1;

impl Format for Q4_1 {
    const QK: usize = 32;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4 && T <= 4) };
        if R == 4 && T == 1 {
            let w4 = core::array::from_fn(|r| w[r]);
            let p = if SDOT {
                // SAFETY: `sdot` as the caller guarantees for `SDOT`.
                unsafe { rows4::q4_1_sdot(w4, a[0], nb) }
            } else {
                rows4::q4_1_widening(w4, a[0], nb)
            };
            return core::array::from_fn(|_| core::array::from_fn(|r| p[r]));
        }
        let w = w.map(|w| blocks::<Q4_1_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_1_BYTES>(a, nb));
        let zero = vdupq_n_s32(0);
        let fz = vdupq_n_f32(0.0);
        let mut acc = [[(fz, fz); R]; T];
        let mut summs = [fz; T];
        let mask = vdupq_n_u8(0x0f);
        for b in 0..nb {
            // Lane r: dw, mw of row r; lane t: da, sa of token t.
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let mw = f16s(w.map(|w| arr(&w[b], 2)));
            let da = f16s(a.map(|a| arr(&a[b], 0)));
            let sa = f16s(a.map(|a| arr(&a[b], 2)));
            let qw = w.map(|w| {
                let q = ld_u8(arr(&w[b], 4));
                (
                    vreinterpretq_s8_u8(vandq_u8(q, mask)),
                    vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)),
                )
            });
            for (t, acc) in acc.iter_mut().enumerate() {
                let ab = &a[t][b];
                summs[t] = vaddq_f32(summs[t], mul_lane(mw, sa, t));
                let (y0, y1) = (ld_i8(arr(ab, 4)), ld_i8(arr(ab, 20)));
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
        core::array::from_fn(|t| {
            let s = first::<R>(summs[t]);
            core::array::from_fn(|r| hsum_float_8(acc[t][r].0, acc[t][r].1) + s[r])
        })
    }
}

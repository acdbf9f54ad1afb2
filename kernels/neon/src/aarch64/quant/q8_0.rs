//! Q8_0 weights times Q8_0 activations, in the order of the portable
//! `vec_dot_q8_0_q8_0` (llama.cpp's AVX2 `ggml_vec_dot_q8_0_q8_0`).

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::Q8_0_BYTES;

use super::super::simd::{arr, dot4, hsum_float_8, ld_i8};
use super::{blocks, f16s, fma_lane, mul_lane, rows4, Format};

/// Q8_0 x Q8_0: per block `acc = fma(dw * da, lanes, acc)` on eight f32
/// lanes (two f32x4), lane `l` the exact sum of products `4l..4l + 4`;
/// the result is `hsum_float_8(acc)`.
pub(crate) struct Q8_0;

impl Format for Q8_0 {
    const QK: usize = 32;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4 && T <= 4) };
        if SDOT && R == 4 && T == 1 {
            // SAFETY: `sdot` as the caller guarantees for `SDOT`.
            let p = unsafe { rows4::q8_0(core::array::from_fn(|r| w[r]), a[0], nb) };
            return core::array::from_fn(|_| core::array::from_fn(|r| p[r]));
        }
        let w = w.map(|w| blocks::<Q8_0_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_0_BYTES>(a, nb));
        let zero = vdupq_n_s32(0);
        let fz = vdupq_n_f32(0.0);
        let mut acc = [[(fz, fz); R]; T];
        for b in 0..nb {
            // Lane r: dw of row r; lane t: da of token t.
            let dw = f16s(w.map(|w| arr(&w[b], 0)));
            let da = f16s(a.map(|a| arr(&a[b], 0)));
            let qw = w.map(|w| (ld_i8(arr(&w[b], 2)), ld_i8(arr(&w[b], 18))));
            for (t, acc) in acc.iter_mut().enumerate() {
                let ab = &a[t][b];
                let (y0, y1) = (ld_i8(arr(ab, 2)), ld_i8(arr(ab, 18)));
                // Lane r: dw * da.
                let d = mul_lane(dw, da, t);
                for (r, (acc0, acc1)) in acc.iter_mut().enumerate() {
                    let i0 = dot4::<SDOT>(zero, qw[r].0, y0);
                    let i1 = dot4::<SDOT>(zero, qw[r].1, y1);
                    *acc0 = fma_lane(*acc0, vcvtq_f32_s32(i0), d, r);
                    *acc1 = fma_lane(*acc1, vcvtq_f32_s32(i1), d, r);
                }
            }
        }
        acc.map(|acc| acc.map(|(x, y)| hsum_float_8(x, y)))
    }
}

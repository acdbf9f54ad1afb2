//! Q4_1 weights times Q8_1 activations, in the order of the portable
//! `vec_dot_q4_1_q8_1` (llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1`).

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_1_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::simd::{prefetch, f16_pair_splat, hsum_float_8, load32, nibbles16, Quads};
use super::Format;

/// Q4_1 x Q8_1: per block `acc = fma(dw * da, lanes, acc)` on eight f32
/// lanes (lane `l` the exact sum of products `4l..4l + 4` of nibbles and
/// quants) and, in scalar, `summs += mw * sa`; the result is
/// `hsum_float_8(acc) + summs`.
///
/// Both products come from one multiply: the weight block's `[dw, mw]`
/// times the activation block's `[da, sa]`, repeated over the lanes. Lane
/// `2r + 1` of a tile's `summs` vector carries row `r`'s scalar sum.
pub(crate) struct Q4_1;

impl Format for Q4_1 {
    const QK: usize = 32;

    #[inline(always)]
    unsafe fn tile<I: Quads, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [*const u8; T],
        nb: usize,
        ahead: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        // SAFETY: the caller guarantees the features and `nb` blocks
        // behind every pointer; each read lies inside block `b`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); R]; T];
            let mut summs = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                let (ow, oa) = (b * Q4_1_BYTES, b * Q8_1_BYTES);
                prefetch(w, ow + ahead);
                let mut ds_a = [_mm256_setzero_ps(); T];
                let mut qa = [_mm256_setzero_si256(); T];
                for t in 0..T {
                    ds_a[t] = f16_pair_splat(a[t].add(oa));
                    qa[t] = load32(a[t].add(oa + 4));
                }
                let mut ds_w = [_mm256_setzero_ps(); R];
                for r in 0..R {
                    ds_w[r] = f16_pair_splat(w[r].add(ow));
                }
                for r in 0..R {
                    let qw = nibbles16(w[r].add(ow + 4));
                    for t in 0..T {
                        let d = _mm256_moveldup_ps(_mm256_mul_ps(ds_w[r], ds_a[t]));
                        let q = I::quads(qw, qa[t]);
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q), acc[t][r]);
                    }
                }
                for t in 0..T {
                    // Lanes 2r, 2r + 1 from row r: [dw * da, mw * sa].
                    let mut p = _mm256_mul_ps(ds_w[0], ds_a[t]);
                    for (r, ds_w) in ds_w.iter().enumerate().skip(1) {
                        let pr = _mm256_mul_ps(*ds_w, ds_a[t]);
                        p = match r {
                            1 => _mm256_blend_ps(p, pr, 0b0000_1100),
                            2 => _mm256_blend_ps(p, pr, 0b0011_0000),
                            _ => _mm256_blend_ps(p, pr, 0b1100_0000),
                        };
                    }
                    summs[t] = _mm256_add_ps(summs[t], p);
                }
            }
            let mut out = [[0.0f32; R]; T];
            for t in 0..T {
                let mut s = [0.0f32; 8];
                _mm256_storeu_ps(s.as_mut_ptr(), summs[t]);
                for r in 0..R {
                    out[t][r] = hsum_float_8(acc[t][r]) + s[2 * r + 1];
                }
            }
            out
        }
    }
}

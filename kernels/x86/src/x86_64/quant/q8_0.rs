//! Q8_0 weights times Q8_0 activations, in the order of the portable
//! `vec_dot_q8_0_q8_0` (llama.cpp's AVX2 `ggml_vec_dot_q8_0_q8_0`).

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_0_BYTES;

use super::simd::{f16_splat, hsums, load32, prefetch_block, Quads};
use super::Format;

/// Q8_0 x Q8_0: per block `acc = fma(dw * da, lanes, acc)` on eight f32
/// lanes, lane `l` the exact sum of products `4l..4l + 4`; the result is
/// `hsum_float_8(acc)`.
pub(crate) struct Q8_0;

impl Format for Q8_0 {
    const QK: usize = 32;

    #[inline(always)]
    unsafe fn tile<I: Quads, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [*const u8; T],
        nb: usize,
        pf: [*const u8; R],
    ) -> [[f32; R]; T] {
        // SAFETY: the caller guarantees the features and `nb` blocks
        // behind every pointer; each read lies inside block `b`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); R]; T];
            for b in 0..nb {
                let o = b * Q8_0_BYTES;
                prefetch_block::<R, Q8_0_BYTES>(pf, b);
                let mut da = [_mm256_setzero_ps(); T];
                let mut qa = [_mm256_setzero_si256(); T];
                for t in 0..T {
                    da[t] = f16_splat(a[t].add(o));
                    qa[t] = load32(a[t].add(o + 2));
                }
                for r in 0..R {
                    let dw = f16_splat(w[r].add(o));
                    let qw = load32(w[r].add(o + 2));
                    // |w| (a weight of -128 gives 128 as u8) times a with
                    // w's sign: the product w * a, exact for |a| <= 127.
                    let uw = _mm256_abs_epi8(qw);
                    for t in 0..T {
                        let q = I::quads(uw, _mm256_sign_epi8(qa[t], qw));
                        let d = _mm256_mul_ps(dw, da[t]);
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q), acc[t][r]);
                    }
                }
            }
            hsums(acc)
        }
    }
}

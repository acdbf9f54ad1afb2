//! Q4_0 weights times Q8_0 activations, in the two orders of the portable
//! set: `vec_dot_q4_0_q8_0` (a tied embedding, llama.cpp's AVX2
//! `ggml_vec_dot_q4_0_q8_0`) and `vec_dot_q4_0_q8_0_repacked` (a
//! projection, one row of `ggml_gemv_q4_0_8x8_q8_0`).
//!
//! Both need the exact integer sums of `(q - 8) * qa`, computed as the
//! quad sums of the unsigned nibbles minus `8 *` the quad sums of the
//! activation quants (the latter once per activation block).

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_0_BYTES;
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;

use super::simd::{
    f16_splat, f16x4, hsums, lanes, load32, nibbles16, prefetch_block, read_u16, totals4, Quads,
};
use super::Format;

/// One activation block's terms: `da` in every lane, the quants, and the
/// quad sums of `8 * qa`.
///
/// # Safety
/// The CPU has AVX2, F16C and the features of `I`; a Q8_0 block is
/// readable at `p`.
#[inline(always)]
unsafe fn act_block<I: Quads>(p: *const u8) -> (__m256, __m256i, __m256i) {
    // SAFETY: as the caller guarantees.
    unsafe {
        let qa = load32(p.add(2));
        (f16_splat(p), qa, I::quads(_mm256_set1_epi8(8), qa))
    }
}

/// Q4_0 x Q8_0 in plain rows: per block `acc = fma(dw * da, lanes, acc)`
/// on eight f32 lanes; the result is `hsum_float_8(acc)`.
pub(crate) struct Q4_0;

impl Format for Q4_0 {
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
                let (ow, oa) = (b * Q4_0_BYTES, b * Q8_0_BYTES);
                prefetch_block::<R, Q4_0_BYTES>(pf, b);
                let mut ab = [(
                    _mm256_setzero_ps(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                ); T];
                for t in 0..T {
                    ab[t] = act_block::<I>(a[t].add(oa));
                }
                for r in 0..R {
                    let dw = f16_splat(w[r].add(ow));
                    let qw = nibbles16(w[r].add(ow + 2));
                    for (t, &(da, qa, qa8)) in ab.iter().enumerate() {
                        let q = _mm256_sub_epi32(I::quads(qw, qa), qa8);
                        let d = _mm256_mul_ps(dw, da);
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q), acc[t][r]);
                    }
                }
            }
            hsums(acc)
        }
    }
}

/// Q4_0 x Q8_0 in the repacked projection order: one f32 accumulator per
/// row, per block `acc = fma(sumi, dw * da, acc)` with `sumi` the exact
/// block sum. The accumulators of a tile's rows share one vector (lane
/// `r` for row `r`), and so do their block sums.
pub(crate) struct Q4_0Repacked;

impl Format for Q4_0Repacked {
    const QK: usize = 32;

    #[inline(always)]
    unsafe fn tile<I: Quads, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [*const u8; T],
        nb: usize,
        pf: [*const u8; R],
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        // SAFETY: the caller guarantees the features and `nb` blocks
        // behind every pointer; each read lies inside block `b`.
        unsafe {
            let mut acc = [_mm_setzero_ps(); T];
            for b in 0..nb {
                let (ow, oa) = (b * Q4_0_BYTES, b * Q8_0_BYTES);
                prefetch_block::<R, Q4_0_BYTES>(pf, b);
                let mut ab = [(
                    _mm256_setzero_ps(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                ); T];
                for t in 0..T {
                    ab[t] = act_block::<I>(a[t].add(oa));
                }
                let mut dw = [0u16; R];
                let mut qw = [_mm256_setzero_si256(); R];
                for r in 0..R {
                    dw[r] = read_u16(w[r].add(ow));
                    qw[r] = nibbles16(w[r].add(ow + 2));
                }
                let dw = f16x4(dw);
                for (t, &(da, qa, qa8)) in ab.iter().enumerate() {
                    let mut q = [_mm256_setzero_si256(); R];
                    for r in 0..R {
                        q[r] = _mm256_sub_epi32(I::quads(qw[r], qa), qa8);
                    }
                    let sumi = _mm_cvtepi32_ps(totals4(q));
                    let d = _mm_mul_ps(dw, _mm256_castps256_ps128(da));
                    acc[t] = _mm_fmadd_ps(sumi, d, acc[t]);
                }
            }
            lanes(acc)
        }
    }
}

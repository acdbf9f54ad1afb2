//! Q4_1 weights times Q8_1 activations, in the order of the portable
//! `vec_dot_q4_1_q8_1` (llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1`).

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_1_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::simd::{
    f16_pair_splat, hsum_float_8, load16, prefetch_block, read_u32, row_pair, Quads,
};
use super::Format;

/// Q4_1 x Q8_1: per block `acc = fma(dw * da, lanes, acc)` on eight f32
/// lanes (lane `l` the exact sum of products `4l..4l + 4` of nibbles and
/// quants) and, in scalar, `summs += mw * sa`; the result is
/// `hsum_float_8(acc) + summs`.
///
/// Rows go in pairs: one vector holds lanes 0..4 of both rows (the low
/// nibbles, values 0..16), another lanes 4..8 (the high nibbles), so one
/// 16-byte load per row and one unpack per pair feed both. The scales of
/// up to four rows convert and multiply together: `[dw, mw]` of each row
/// times the activation's `[da, sa]` gives `dw * da` in lane `2s` and
/// `mw * sa` in lane `2s + 1`, which is the row's `summs` term (so the
/// tile's `summs` are the odd lanes of one vector). Row `r` sits in slot
/// `s = SLOT[r]`: rows 0 and 2 in the low 128 bits, 1 and 3 in the high,
/// so one in-lane shuffle spreads a pair's `dw * da` over its lanes.
pub(crate) struct Q4_1;

/// The slot of row `r` among the four rows' scales (its own inverse).
const SLOT: [usize; 4] = [0, 2, 1, 3];

impl Format for Q4_1 {
    const QK: usize = 32;

    #[inline(always)]
    unsafe fn tile<I: Quads, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [*const u8; T],
        nb: usize,
        pf: [*const u8; R],
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        let pairs = R.div_ceil(2);
        // SAFETY: the caller guarantees the features and `nb` blocks
        // behind every pointer; each read lies inside block `b`.
        unsafe {
            let zero = _mm256_setzero_ps();
            // acc[p][t]: lanes 0..4 of pair p's rows, then lanes 4..8.
            let mut acc = [[(zero, zero); T]; 2];
            let mut summs = [zero; T];
            let m4 = _mm256_set1_epi8(0x0f);
            for b in 0..nb {
                let (ow, oa) = (b * Q4_1_BYTES, b * Q8_1_BYTES);
                prefetch_block::<R, Q4_1_BYTES>(pf, b);
                // [dw, mw] of rows 0..4 in their slots (the last row
                // repeated past R).
                let ds: [u32; 4] =
                    core::array::from_fn(|s| read_u32(w[SLOT[s].min(R - 1)].add(ow)));
                let ds_w = _mm256_cvtph_ps(_mm_loadu_si128(ds.as_ptr().cast()));
                let mut ds_a = [zero; T];
                let mut qa = [(_mm256_setzero_si256(), _mm256_setzero_si256()); T];
                for t in 0..T {
                    let pa = a[t].add(oa);
                    ds_a[t] = f16_pair_splat(pa);
                    qa[t] = (
                        _mm256_broadcastsi128_si256(load16(pa.add(4))),
                        _mm256_broadcastsi128_si256(load16(pa.add(20))),
                    );
                    summs[t] = _mm256_add_ps(summs[t], _mm256_mul_ps(ds_w, ds_a[t]));
                }
                for (p, acc) in acc.iter_mut().enumerate().take(pairs) {
                    let (r0, r1) = row_pair::<R>(p);
                    let q = _mm256_inserti128_si256(
                        _mm256_castsi128_si256(load16(w[r0].add(ow + 4))),
                        load16(w[r1].add(ow + 4)),
                        1,
                    );
                    let lo = _mm256_and_si256(q, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    for t in 0..T {
                        // `dw * da` of row r0 in lanes 0..4, of row r1 in
                        // 4..8: element 0 or 2 of each 128-bit half.
                        let p4 = _mm256_mul_ps(ds_w, ds_a[t]);
                        let d = if p == 0 {
                            _mm256_permute_ps(p4, 0x00)
                        } else {
                            _mm256_permute_ps(p4, 0xaa)
                        };
                        let (x, y) = acc[t];
                        let x = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(I::quads(lo, qa[t].0)), x);
                        let y = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(I::quads(hi, qa[t].1)), y);
                        acc[t] = (x, y);
                    }
                }
            }
            let mut out = [[0.0f32; R]; T];
            for t in 0..T {
                let mut s = [0.0f32; 8];
                _mm256_storeu_ps(s.as_mut_ptr(), summs[t]);
                for (p, acc) in acc.iter().enumerate().take(pairs) {
                    let (r0, r1) = row_pair::<R>(p);
                    let (x, y) = acc[t];
                    out[t][r0] =
                        hsum_float_8(_mm256_permute2f128_ps(x, y, 0x20)) + s[2 * SLOT[r0] + 1];
                    out[t][r1] =
                        hsum_float_8(_mm256_permute2f128_ps(x, y, 0x31)) + s[2 * SLOT[r1] + 1];
                }
            }
            out
        }
    }
}

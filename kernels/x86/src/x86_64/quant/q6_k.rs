//! Q6_K weights times Q8_K activations, in the order of the portable
//! `vec_dot_q6_k_q8_k` (llama.cpp's AVX2 `ggml_vec_dot_q6_K_q8_K`).

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::simd::{f16_splat, hsums, load16, load32, prefetch_block, read_u32, Quads};
use super::Format;

/// The unsigned 6-bit quants of one 128-value half of a Q6_K block, as
/// four 32-value chunks in value order, from its 64 `ql` bytes at `ql`
/// and 32 `qh` bytes at `qh` (see the portable module's layout table).
///
/// # Safety
/// The CPU has AVX2; the 64 and 32 bytes are readable.
#[inline(always)]
unsafe fn half(ql: *const u8, qh: *const u8) -> [__m256i; 4] {
    // SAFETY: as the caller guarantees.
    unsafe {
        let (l0, l1, h) = (load32(ql), load32(ql.add(32)), load32(qh));
        let m4 = _mm256_set1_epi8(0x0f);
        let m2 = _mm256_set1_epi8(0x30);
        // The 2-bit fields of `qh` moved to bits 4..6 of each byte (16-bit
        // shifts, then the mask drops what crossed a byte).
        let (h0, h1) = (_mm256_slli_epi16(h, 4), _mm256_slli_epi16(h, 2));
        let h3 = _mm256_srli_epi16(h, 2);
        [
            _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(h0, m2)),
            _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(h1, m2)),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_and_si256(h, m2),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_and_si256(h3, m2),
            ),
        ]
    }
}

/// The i16 scales of chunk `4h + j` of a half whose eight scales are
/// `sc` (`sc[0..8]` as i16, in both 128-bit halves): lanes 0..8 (values
/// 0..16 of the chunk) get scale `2j`, lanes 8..16 scale `2j + 1`.
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
unsafe fn chunk_scales(sc: __m256i, j: usize) -> __m256i {
    // Byte pairs (2s, 2s + 1) hold i16 scale s.
    let (x, y) = (4 * j as i8, 4 * j as i8 + 2);
    // SAFETY: the caller guarantees the feature.
    unsafe {
        let pick = _mm256_setr_epi8(
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1,
            x,
            x + 1, //
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
            y,
            y + 1,
        );
        _mm256_shuffle_epi8(sc, pick)
    }
}

/// Q6_K x Q8_K: per block, with `d = da * dw`, eight i32 lanes (lane `l`
/// the scaled sums of the quants at positions `p % 32` in `4l..4l + 4`,
/// minus `32 * (bsums[2l] * sc[2l] + bsums[2l + 1] * sc[2l + 1])`), then
/// `acc = fma(d, lanes, acc)`; the result is `hsum_float_8(acc)`.
pub(crate) struct Q6K;

impl Format for Q6K {
    const QK: usize = 256;

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
                let (ow, oa) = (b * Q6_K_BYTES, b * Q8_K_BYTES);
                prefetch_block::<R, Q6_K_BYTES>(pf, b);
                let mut ap = a;
                let mut da = [_mm256_setzero_ps(); T];
                let mut bsums = [_mm256_setzero_si256(); T];
                for t in 0..T {
                    ap[t] = a[t].add(oa);
                    da[t] = _mm256_set1_ps(f32::from_bits(read_u32(ap[t])));
                    bsums[t] = load32(ap[t].add(4 + 256));
                }
                for r in 0..R {
                    let wb = w[r].add(ow);
                    let sc = _mm256_cvtepi8_epi16(load16(wb.add(192)));
                    // Scales 0..8 and 8..16 as i16, each in both halves.
                    let sc_lo = _mm256_permute4x64_epi64(sc, 0b01_00_01_00);
                    let sc_hi = _mm256_permute4x64_epi64(sc, 0b11_10_11_10);
                    // Chunk c: i16 lanes 0..8 (values 0..16) get scale 2c,
                    // lanes 8..16 scale 2c + 1.
                    let mut sumi = [_mm256_setzero_si256(); T];
                    for h in 0..2 {
                        let q6 = half(wb.add(64 * h), wb.add(128 + 32 * h));
                        for (j, &q6) in q6.iter().enumerate() {
                            let c = 4 * h + j;
                            let s = chunk_scales(if h == 0 { sc_lo } else { sc_hi }, j);
                            for t in 0..T {
                                let p = _mm256_maddubs_epi16(q6, load32(ap[t].add(4 + 32 * c)));
                                sumi[t] = I::madd_add(sumi[t], p, s);
                            }
                        }
                    }
                    let dw = f16_splat(wb.add(208));
                    for t in 0..T {
                        let off = _mm256_slli_epi32(_mm256_madd_epi16(bsums[t], sc), 5);
                        let lanes = _mm256_sub_epi32(sumi[t], off);
                        let d = _mm256_mul_ps(da[t], dw);
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc[t][r]);
                    }
                }
            }
            hsums(acc)
        }
    }
}

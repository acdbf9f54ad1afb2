//! Q4_K weights times Q8_K activations, in the two orders of the portable
//! set: `vec_dot_q4_k_q8_k` (a tied embedding, llama.cpp's AVX2
//! `ggml_vec_dot_q4_K_q8_K`) and `vec_dot_q4_k_q8_k_repacked` (a
//! projection, one row of `ggml_gemv_q4_K_8x8_q8_K`).
//!
//! Both orders start from the same exact integers per block ([`ints`]):
//! eight lanes of scaled nibble-times-quant sums and four min terms. The
//! plain order multiplies them into f32 lanes; the repacked order sums
//! each to one integer first.

use core::arch::x86_64::*;

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q4_k::Q4_K_BYTES;

use super::simd::{
    f16_pair_splat, f16x4, hsums, lanes, load32, nibbles32, prefetch_block, read_u16, read_u32,
    totals4, Quads,
};
use super::Format;

/// A Q4_K block's eight 6-bit sub-block scales and mins from its 12
/// packed bytes at `p` (the portable `scale_min_k4` for `j = 0..8`), one
/// per byte of each u64.
///
/// # Safety
/// `p..p + 12` is readable.
#[inline(always)]
unsafe fn scales_mins(p: *const u8) -> (u64, u64) {
    // SAFETY: the caller guarantees the 12 bytes.
    let (u0, u1, u2) = unsafe { (read_u32(p), read_u32(p.add(4)), read_u32(p.add(8))) };
    let (six, four, two) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    // Sub-blocks 0..4: the low 6 bits of bytes 0..4 (scales), 4..8 (mins).
    let (sc_lo, m_lo) = (u0 & six, u1 & six);
    // Sub-blocks 4..8: the nibbles of bytes 8..12, topped with the high 2
    // bits of bytes 0..4 (scales) and 4..8 (mins).
    let sc_hi = (u2 & four) | (((u0 >> 6) & two) << 4);
    let m_hi = ((u2 >> 4) & four) | (((u1 >> 6) & two) << 4);
    (
        u64::from(sc_lo) | u64::from(sc_hi) << 32,
        u64::from(m_lo) | u64::from(m_hi) << 32,
    )
}

/// An activation block's scale and its eight sub-block sums
/// `bs[s] = bsums[2s] + bsums[2s + 1]` as i16 (no overflow for quants in
/// `-127..=127`).
///
/// # Safety
/// The CPU has AVX2; a Q8_K block is readable at `p`.
#[inline(always)]
unsafe fn act_block(p: *const u8) -> (__m256, __m128i) {
    // SAFETY: as the caller guarantees; `bsums` are the block's last 32
    // bytes.
    unsafe {
        let bsums = load32(p.add(4 + 256));
        let bs = _mm_hadd_epi16(
            _mm256_castsi256_si128(bsums),
            _mm256_extracti128_si256(bsums, 1),
        );
        (_mm256_set1_ps(f32::from_bits(read_u32(p))), bs)
    }
}

/// The exact integers of one weight block at `w` times `T` activation
/// blocks at `a[t]` with sub-block sums `bs[t]`: per token, lane `l` of
/// the first vector is `sum_s sc[s] * (q4 . q8 over values 4l..4l + 4 of
/// sub-block s)`, and lane `i` of the second is the min term
/// `m[2i] * bs[2i] + m[2i + 1] * bs[2i + 1]`.
///
/// # Safety
/// The CPU has AVX2 and the features of `I`; a Q4_K block is readable at
/// `w` and a Q8_K block at each `a[t]`.
#[inline(always)]
unsafe fn ints<I: Quads, const T: usize>(
    w: *const u8,
    a: [*const u8; T],
    bs: [__m128i; T],
) -> ([__m256i; T], [__m128i; T]) {
    // SAFETY: as the caller guarantees; every read lies in its block.
    unsafe {
        let (sc, m) = scales_mins(w.add(4));
        let sc = _mm256_set1_epi64x(sc as i64);
        // Sub-block s's scale in every i16 lane.
        let mut sumi = [_mm256_setzero_si256(); T];
        for c in 0..4 {
            let (lo, hi) = nibbles32(w.add(16 + 32 * c));
            // Sub-blocks 2c and 2c + 1's scales in every i16 lane (byte
            // index 0x80 makes the high byte 0).
            let s_lo = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((2 * c) as i16 | i16::MIN));
            let s_hi = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((2 * c + 1) as i16 | i16::MIN));
            for t in 0..T {
                let q8 = a[t].add(4 + 64 * c);
                sumi[t] = I::madd_add(sumi[t], _mm256_maddubs_epi16(lo, load32(q8)), s_lo);
                sumi[t] = I::madd_add(sumi[t], _mm256_maddubs_epi16(hi, load32(q8.add(32))), s_hi);
            }
        }
        let m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(m as i64));
        let mut mins = [_mm_setzero_si128(); T];
        for t in 0..T {
            mins[t] = _mm_madd_epi16(bs[t], m);
        }
        (sumi, mins)
    }
}

/// Q4_K x Q8_K in plain rows: per block, with `d = da * dw` and
/// `dmin = -da * dmin_w`, `acc = fma(d, lanes, acc)` on eight f32 lanes
/// and `acc_m = fma(dmin, mins, acc_m)` on four; the result is
/// `hsum_float_8(acc) + ((acc_m0 + acc_m2) + (acc_m1 + acc_m3))`.
pub(crate) struct Q4K;

impl Format for Q4K {
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
            let mut acc_m = [[_mm_setzero_ps(); R]; T];
            for b in 0..nb {
                let (ow, oa) = (b * Q4_K_BYTES, b * Q8_K_BYTES);
                prefetch_block::<R, Q4_K_BYTES>(pf, b);
                let mut ap = a;
                let mut da = [_mm256_setzero_ps(); T];
                let mut bs = [_mm_setzero_si128(); T];
                for t in 0..T {
                    ap[t] = a[t].add(oa);
                    (da[t], bs[t]) = act_block(ap[t]);
                }
                for r in 0..R {
                    let (sumi, mins) = ints::<I, T>(w[r].add(ow), ap, bs);
                    let dw = f16_pair_splat(w[r].add(ow));
                    for t in 0..T {
                        let d = _mm256_mul_ps(da[t], _mm256_moveldup_ps(dw));
                        let neg_da = _mm256_xor_ps(da[t], _mm256_set1_ps(-0.0));
                        let dmin = _mm256_mul_ps(neg_da, _mm256_movehdup_ps(dw));
                        acc[t][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi[t]), acc[t][r]);
                        let dmin = _mm256_castps256_ps128(dmin);
                        acc_m[t][r] = _mm_fmadd_ps(dmin, _mm_cvtepi32_ps(mins[t]), acc_m[t][r]);
                    }
                }
            }
            let mut out = hsums(acc);
            for t in 0..T {
                for r in 0..R {
                    let m = acc_m[t][r];
                    let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
                    out[t][r] += _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)));
                }
            }
            out
        }
    }
}

/// Q4_K x Q8_K in the repacked projection order: two f32 accumulators
/// per row, per block `acc = fma(isum, dw * da, acc)` and
/// `acc_m = fma(imin, dmin_w * da, acc_m)` with the exact block sums
/// `isum` and `imin`; the result is `acc - acc_m`. A tile's rows share
/// each accumulator vector (lane `r` for row `r`).
pub(crate) struct Q4KRepacked;

impl Format for Q4KRepacked {
    const QK: usize = 256;

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
            let mut acc_m = [_mm_setzero_ps(); T];
            for b in 0..nb {
                let (ow, oa) = (b * Q4_K_BYTES, b * Q8_K_BYTES);
                prefetch_block::<R, Q4_K_BYTES>(pf, b);
                let mut ap = a;
                let mut da = [_mm256_setzero_ps(); T];
                let mut bs = [_mm_setzero_si128(); T];
                for t in 0..T {
                    ap[t] = a[t].add(oa);
                    (da[t], bs[t]) = act_block(ap[t]);
                }
                let mut sumi = [[_mm256_setzero_si256(); R]; T];
                let mut mins = [[_mm256_setzero_si256(); R]; T];
                for r in 0..R {
                    let (s, m) = ints::<I, T>(w[r].add(ow), ap, bs);
                    for t in 0..T {
                        sumi[t][r] = s[t];
                        mins[t][r] = _mm256_zextsi128_si256(m[t]);
                    }
                }
                let (mut dw, mut dmin_w) = ([0u16; R], [0u16; R]);
                for r in 0..R {
                    (dw[r], dmin_w[r]) = (read_u16(w[r].add(ow)), read_u16(w[r].add(ow + 2)));
                }
                let (dw, dmin_w) = (f16x4(dw), f16x4(dmin_w));
                for t in 0..T {
                    let da = _mm256_castps256_ps128(da[t]);
                    let isum = _mm_cvtepi32_ps(totals4(sumi[t]));
                    let imin = _mm_cvtepi32_ps(totals4(mins[t]));
                    acc[t] = _mm_fmadd_ps(isum, _mm_mul_ps(dw, da), acc[t]);
                    acc_m[t] = _mm_fmadd_ps(imin, _mm_mul_ps(dmin_w, da), acc_m[t]);
                }
            }
            let mut res = [_mm_setzero_ps(); T];
            for t in 0..T {
                res[t] = _mm_sub_ps(acc[t], acc_m[t]);
            }
            lanes(res)
        }
    }
}

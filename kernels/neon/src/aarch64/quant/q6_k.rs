//! Q6_K weights times Q8_K activations, in the order of the portable
//! `vec_dot_q6_k_q8_k` (llama.cpp's AVX2 `ggml_vec_dot_q6_K_q8_K`).

use core::arch::aarch64::*;

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::super::simd::{arr, dot4_small, hsum_float_8, ld_i8, ld_u8};
use super::{blocks, f16s, fma_lane, Format};

/// The unsigned 6-bit quants of half `h` of a Q6_K block: its four
/// 32-value chunks, each as (first 16 values, last 16).
#[target_feature(enable = "neon")]
#[inline]
fn half(wb: &[u8; Q6_K_BYTES], h: usize) -> [(int8x16_t, int8x16_t); 4] {
    let m4 = vdupq_n_u8(0x0f);
    let m30 = vdupq_n_u8(0x30);
    let ql = |o: usize| ld_u8(arr(wb, 64 * h + o));
    let (l0, l1, l2, l3) = (ql(0), ql(16), ql(32), ql(48));
    let (h0, h1) = (ld_u8(arr(wb, 128 + 32 * h)), ld_u8(arr(wb, 144 + 32 * h)));
    let q = [
        (
            vorrq_u8(
                vandq_u8(l0, m4),
                vshlq_n_u8::<4>(vandq_u8(h0, vdupq_n_u8(3))),
            ),
            vorrq_u8(
                vandq_u8(l1, m4),
                vshlq_n_u8::<4>(vandq_u8(h1, vdupq_n_u8(3))),
            ),
        ),
        (
            vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8::<2>(h0), m30)),
            vorrq_u8(vandq_u8(l3, m4), vandq_u8(vshlq_n_u8::<2>(h1), m30)),
        ),
        (
            vorrq_u8(vshrq_n_u8::<4>(l0), vandq_u8(h0, m30)),
            vorrq_u8(vshrq_n_u8::<4>(l1), vandq_u8(h1, m30)),
        ),
        (
            vorrq_u8(vshrq_n_u8::<4>(l2), vandq_u8(vshrq_n_u8::<2>(h0), m30)),
            vorrq_u8(vshrq_n_u8::<4>(l3), vandq_u8(vshrq_n_u8::<2>(h1), m30)),
        ),
    ];
    q.map(|(a, b)| (vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b)))
}

/// Q6_K x Q8_K: per block, with `d = da * dw`, `acc = fma(d, lanes, acc)`
/// on eight f32 lanes; lane `l` of the first (second) vector is the sum
/// over the eight 32-value chunks `c` of `sc[2c] * (products 4l..4l + 4
/// of the chunk's first 16 values)` (`sc[2c + 1]`, last 16), minus the
/// `32 * (bsums[2l] sc[2l] + bsums[2l + 1] sc[2l + 1])` offset of lane `l`
/// (`l + 4` for the second vector). The result is `hsum_float_8(acc)`.
pub(crate) struct Q6K;

impl Format for Q6K {
    const QK: usize = 256;

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T] {
        const { assert!(R <= 4) };
        let w = w.map(|w| blocks::<Q6_K_BYTES>(w, nb));
        let a = a.map(|a| blocks::<Q8_K_BYTES>(a, nb));
        let zero = vdupq_n_s32(0);
        let fz = vdupq_n_f32(0.0);
        let mut acc = [[(fz, fz); R]; T];
        for b in 0..nb {
            let ab: [&[u8; Q8_K_BYTES]; T] = a.map(|a| &a[b]);
            // Lane r: da * dw of row r, per token.
            let dw = f16s(w.map(|w| arr(&w[b], 208)));
            let d = ab.map(|ab| vmulq_f32(vdupq_n_f32(f32::from_le_bytes(*arr(ab, 0))), dw));
            unroll!(r < R => {
                let wb = &w[r][b];
                let sc: &[u8; 16] = arr(wb, 192);
                let s = |j: usize| i32::from(sc[j] as i8);
                let mut s01 = [(zero, zero); T];
                for h in 0..2 {
                    let q = half(wb, h);
                    for (i, &(qa, qb)) in q.iter().enumerate() {
                        let c = 4 * h + i;
                        for (t, (s0, s1)) in s01.iter_mut().enumerate() {
                            let y0 = ld_i8(arr(ab[t], 4 + 32 * c));
                            let y1 = ld_i8(arr(ab[t], 4 + 32 * c + 16));
                            *s0 = vmlaq_n_s32(*s0, dot4_small::<SDOT>(zero, qa, y0), s(2 * c));
                            *s1 = vmlaq_n_s32(*s1, dot4_small::<SDOT>(zero, qb, y1), s(2 * c + 1));
                        }
                    }
                }
                // The scales as i16: sub-blocks 0..8, 8..16.
                let scv = ld_i8(sc);
                let (c0, c1) = (vmovl_s8(vget_low_s8(scv)), vmovl_high_s8(scv));
                for (t, (s0, s1)) in s01.into_iter().enumerate() {
                    // Offsets: lane l -= 32 * (bsums[2l] sc[2l] +
                    // bsums[2l + 1] sc[2l + 1]).
                    let b0 = vreinterpretq_s16_u8(ld_u8(arr(ab[t], 260)));
                    let b1 = vreinterpretq_s16_u8(ld_u8(arr(ab[t], 276)));
                    let o0 = vpaddq_s32(
                        vmull_s16(vget_low_s16(b0), vget_low_s16(c0)),
                        vmull_high_s16(b0, c0),
                    );
                    let o1 = vpaddq_s32(
                        vmull_s16(vget_low_s16(b1), vget_low_s16(c1)),
                        vmull_high_s16(b1, c1),
                    );
                    let s0 = vsubq_s32(s0, vshlq_n_s32::<5>(o0));
                    let s1 = vsubq_s32(s1, vshlq_n_s32::<5>(o1));
                    let (acc0, acc1) = &mut acc[t][r];
                    *acc0 = fma_lane(*acc0, vcvtq_f32_s32(s0), d[t], r);
                    *acc1 = fma_lane(*acc1, vcvtq_f32_s32(s1), d[t], r);
                }
            });
        }
        acc.map(|acc| acc.map(|(x, y)| hsum_float_8(x, y)))
    }
}

//! `attention`: one head over the f16 KV cache, bit-identical to the
//! portable set (llama.cpp's x86 AVX2 order over the KV length padded to
//! 256).

use core::arch::x86_64::*;

use phi_edge::kernels::{AttnArgs, F16Bits};
use phi_edge_portable::attention::{add_pad_groups, checked_scores, padded_kv_len, value_pass};
use phi_edge_portable::float::{round_f16, LANES};

use super::elementwise::v_expf;
use super::float::dot_f16_rows4;
use super::simd::{arr, arr_mut, f16x8_to_f32, hsum8, ld8, ld_u16x8, round_f16x8, st8};

/// `s_j = round_f16(s_j * m)` in place, eight at a time (with `m = 1`
/// exactly the portable `round_f16`).
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_round_f16(s: &mut [f32], m: f32) {
    let n8 = s.len() & !7;
    let vm = _mm256_set1_ps(m);
    for c in s[..n8].chunks_exact_mut(8) {
        let c: &mut [f32; 8] = arr_mut(c, 0);
        st8(c, round_f16x8(_mm256_mul_ps(ld8(c), vm)));
    }
    for v in &mut s[n8..] {
        *v = round_f16(*v * m);
    }
}

/// The portable `scale_and_max`, vectorized: `s_j *= scale` eight at a
/// time, and `max` over the scaled scores with `maxps`. Without a NaN the
/// maximum is the oracle's in value (only the sign of a zero maximum may
/// differ, which changes no `v_expf(s_j - max)`: both give exactly 1 for
/// `s_j = ±0`). With a NaN score, where the order of ggml's `MAX` loop
/// would decide, its `e_j` is NaN, and so are the sum and every output,
/// whatever the maximum.
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_max(s: &mut [f32], scale: f32) -> f32 {
    let n8 = s.len() & !7;
    let vs = _mm256_set1_ps(scale);
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in s[..n8].chunks_exact_mut(8) {
        let c: &mut [f32; 8] = arr_mut(c, 0);
        let v = _mm256_mul_ps(ld8(c), vs);
        st8(c, v);
        m = _mm256_max_ps(m, v);
    }
    let mut lanes = [0.0f32; 8];
    st8(&mut lanes, m);
    let mut max = f32::NEG_INFINITY;
    for v in lanes {
        max = max.max(v);
    }
    for v in &mut s[n8..] {
        *v *= scale;
        max = max.max(*v);
    }
    max
}

/// The portable `soft_max` over `s` plus its `-inf` padding cells, then
/// the f16 rounding of the probabilities: `e_j = v_expf(s_j - max)` eight
/// at a time, each group of 8 (the last one completed with the padding
/// cells' `e`) summed as `hsum8` into an f64, then the padding groups;
/// `p_j = round_f16(e_j * f32(1 / sum))`. Returns the (unrounded)
/// probability of a padding cell.
#[target_feature(enable = "avx2,fma,f16c")]
fn soft_max_f16(s: &mut [f32], scale: f32) -> f32 {
    let n_kv = s.len();
    let max = scale_max(s, scale);
    let mut pad = [0.0f32; 8];
    st8(&mut pad, v_expf(_mm256_set1_ps(f32::NEG_INFINITY - max)));
    let pad_e = pad[0];
    let vmax = _mm256_set1_ps(max);
    let mut sum = 0.0f64;
    let n8 = n_kv & !7;
    for c in s[..n8].chunks_exact_mut(8) {
        let c: &mut [f32; 8] = arr_mut(c, 0);
        let e = v_expf(_mm256_sub_ps(ld8(c), vmax));
        st8(c, e);
        sum += f64::from(hsum8(e));
    }
    if n8 < n_kv {
        let tail = &mut s[n8..];
        let mut lanes = [pad_e; 8];
        lanes[..tail.len()].copy_from_slice(tail);
        let e = v_expf(_mm256_sub_ps(ld8(&lanes), vmax));
        // Lanes past the scores hold the padding cells' `e`.
        let real = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(tail.len() as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let e = _mm256_blendv_ps(_mm256_set1_ps(pad_e), e, _mm256_castsi256_ps(real));
        st8(&mut lanes, e);
        tail.copy_from_slice(&lanes[..tail.len()]);
        sum += f64::from(hsum8(e));
    }
    let sum = add_pad_groups(sum, n_kv, pad_e);
    let inv = (1.0 / sum) as f32;
    scale_round_f16(s, inv);
    pad_e * inv
}

/// Attention for one head as the portable `attention`: the f16 query
/// (parked in `out`), scores with the 32-lane f16 dot four rows at a
/// time, the padded softmax with probabilities rounded to f16, then the
/// value pass 64, 32 or 8 output dimensions at a time (the last
/// `head_dim % 8` by the portable `value_pass`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn attention(a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
    let Some(p) = checked_scores(a, scratch, out) else {
        return;
    };
    let AttnArgs {
        q,
        k,
        v,
        stride,
        scale,
        ..
    } = *a;
    let hd = q.len();
    out.copy_from_slice(q);
    scale_round_f16(out, 1.0);
    // Four rows at a time; a last partial group repeats its last row.
    for (j0, s) in (0..p.len()).step_by(4).zip(p.chunks_mut(4)) {
        let row = |r: usize| {
            let j = j0 + r.min(s.len() - 1);
            &k[j * stride..j * stride + hd]
        };
        let d = dot_f16_rows4([row(0), row(1), row(2), row(3)], out);
        s.copy_from_slice(&d[..s.len()]);
    }
    let pad_p = soft_max_f16(p, scale);
    // The lanes the padding cells `n_kv..min(n_pad, n_kv + 32)` touch (each
    // at most once), as bit `j % 32`.
    let n_pad = padded_kv_len(p.len());
    let pad_lanes = (p.len()..n_pad.min(p.len() + LANES)).fold(0u32, |m, j| m | 1 << (j % LANES));
    // Output dimensions 64, then 32, then 8 at a time; the last `hd % 8`
    // as the portable set.
    let mut d0 = 0;
    while d0 + 8 <= hd {
        let o = &mut out[d0..];
        d0 += if hd - d0 >= 64 {
            value_dims::<8>(p, v, stride, pad_p, pad_lanes, d0, o);
            64
        } else if hd - d0 >= 32 {
            value_dims::<4>(p, v, stride, pad_p, pad_lanes, d0, o);
            32
        } else {
            value_dims::<1>(p, v, stride, pad_p, pad_lanes, d0, o);
            8
        };
    }
    value_pass(p, v, stride, pad_p, d0..hd, out);
}

/// The portable `value_pass` for the `8 * G` output dimensions starting
/// at `d0`, written to `out[..8 * G]`: cell `j`, probability `p[j]`,
/// accumulates into lane `j % 32` of each dimension's 32-lane sum, in cell
/// order, by an FMA (the product of two f16 values is exact, so it rounds as the
/// oracle's multiply and add); then the lanes in `pad_lanes` (a bit per
/// lane) add the padding cells' `0 * round_f16(pad_p)`; each dimension's
/// lanes are reduced as `reduce_hadd`.
///
/// Vector lanes hold dimensions: for each of the 32 sum lanes, its cells'
/// rows are read once, `8 * G` dimensions in `G` registers, and the 32
/// results are then reduced across vectors.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn value_dims<const G: usize>(
    p: &[f32],
    v: &[F16Bits],
    stride: usize,
    pad_p: f32,
    pad_lanes: u32,
    d0: usize,
    out: &mut [f32],
) {
    let pad_term = _mm256_set1_ps(0.0 * round_f16(pad_p));
    // GGML_F32x8_REDUCE per dimension: `v_l = (lane l + lane l + 16) +
    // (lane l + 8 + lane l + 24)`, `t_i = v_i + v_{4 + i}`, then the two
    // `hadd`s: `(t0 + t1) + (t2 + t3)`.
    let mut vl = [[_mm256_setzero_ps(); G]; 8];
    for (l, vl) in vl.iter_mut().enumerate() {
        let a = value_lane::<G>(p, v, stride, d0, l, pad_lanes, pad_term);
        let b = value_lane::<G>(p, v, stride, d0, 16 + l, pad_lanes, pad_term);
        let ab = add_g(a, b);
        let c = value_lane::<G>(p, v, stride, d0, 8 + l, pad_lanes, pad_term);
        let d = value_lane::<G>(p, v, stride, d0, 24 + l, pad_lanes, pad_term);
        *vl = add_g(ab, add_g(c, d));
    }
    let t01 = add_g(add_g(vl[0], vl[4]), add_g(vl[1], vl[5]));
    let t23 = add_g(add_g(vl[2], vl[6]), add_g(vl[3], vl[7]));
    for (o, &rk) in out[..8 * G].chunks_exact_mut(8).zip(&add_g(t01, t23)) {
        st8(arr_mut(o, 0), rk);
    }
}

/// `a + b` per vector.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn add_g<const G: usize>(mut a: [__m256; G], b: [__m256; G]) -> [__m256; G] {
    for (x, &y) in a.iter_mut().zip(&b) {
        *x = _mm256_add_ps(*x, y);
    }
    a
}

/// Lane `l` of the 32-lane sums of [`value_dims`]' `8 * G` dimensions from
/// `d0`: the cells `j = l, l + 32, ..` in order, then `pad_term` if a
/// padding cell falls in this lane (bit `l` of `pad_lanes`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn value_lane<const G: usize>(
    p: &[f32],
    v: &[F16Bits],
    stride: usize,
    d0: usize,
    l: usize,
    pad_lanes: u32,
    pad_term: __m256,
) -> [__m256; G] {
    let mut acc = [_mm256_setzero_ps(); G];
    for j in (l..p.len()).step_by(LANES) {
        let row = &v[j * stride + d0..][..8 * G];
        let pj = _mm256_set1_ps(p[j]);
        for (g, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(pj, f16x8_to_f32(ld_u16x8(arr(row, 8 * g))), *a);
        }
    }
    if pad_lanes >> l & 1 != 0 {
        for a in &mut acc {
            *a = _mm256_add_ps(*a, pad_term);
        }
    }
    acc
}

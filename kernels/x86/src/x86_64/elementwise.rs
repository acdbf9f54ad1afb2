//! Element-wise kernels: RMSNorm, RoPE, SwiGLU (with ggml's vectorized
//! `expf`) and the f16 conversion, bit-identical to the portable set.

use core::arch::x86_64::*;

use phi_edge::kernels::F16Bits;
use phi_edge_portable::activation::check_swiglu;
use phi_edge_portable::float::check_f32_to_f16;
use phi_edge_portable::norm::check_rms_norm;
use phi_edge_portable::rope::check_rope;

use super::simd::{arr, arr_mut, f32x8_to_f16, fmaf, ld8, padded, st8, st_u16x8};

/// RMSNorm as the portable `rms_norm`: squares in f32 eight at a time,
/// widened and summed in f64 one by one in element order (the oracle's
/// order; the f64 adds form one dependency chain whatever the code), then
/// `(x * scale) * w` eight at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    check_rms_norm(x, w, out);
    let n8 = x.len() & !7;
    let mut sum = 0.0f64;
    for c in x[..n8].chunks_exact(8) {
        let v = ld8(arr(c, 0));
        let mut sq = [0.0f32; 8];
        st8(&mut sq, _mm256_mul_ps(v, v));
        for s in sq {
            sum += f64::from(s);
        }
    }
    for &v in &x[n8..] {
        sum += f64::from(v * v);
    }
    let mean = (sum / x.len() as f64) as f32;
    // `sqrtss` is correctly rounded, as the oracle's `libm::sqrtf`.
    let scale = 1.0 / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps)));
    let s = _mm256_set1_ps(scale);
    for ((o, xc), wc) in out[..n8]
        .chunks_exact_mut(8)
        .zip(x[..n8].chunks_exact(8))
        .zip(w[..n8].chunks_exact(8))
    {
        let v = _mm256_mul_ps(_mm256_mul_ps(ld8(arr(xc, 0)), s), ld8(arr(wc, 0)));
        st8(arr_mut(o, 0), v);
    }
    for ((o, &v), &g) in out[n8..].iter_mut().zip(&x[n8..]).zip(&w[n8..]) {
        *o = v * scale * g;
    }
}

/// Rotates one head in place as the portable `rope`.
///
/// NEOX pairs `(x[i], x[i + n_rot / 2])` eight at a time, the `(cos,
/// sin)` pairs de-interleaved, unfused. Adjacent pairs (`neox = false`)
/// four at a time in place, with the oracle build's `vfmaddsub`:
/// `fmaddsub([a, a], [cos, sin], [b, b] * [sin, cos])` is
/// `(fma(a, cos, -(b * sin)), fma(a, sin, b * cos))`; the pairs left over
/// are fused as well except a last odd one.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rope(x: &mut [f32], cs: &[f32], neox: bool) {
    let n_rot = check_rope(x, cs);
    let half = n_rot / 2;
    if neox {
        let n8 = half & !7;
        let (first, second) = x[..n_rot].split_at_mut(half);
        for ((a, b), c) in first[..n8]
            .chunks_exact_mut(8)
            .zip(second[..n8].chunks_exact_mut(8))
            .zip(cs[..2 * n8].chunks_exact(16))
        {
            let (a, b): (&mut [f32; 8], &mut [f32; 8]) = (arr_mut(a, 0), arr_mut(b, 0));
            // c0 = [c0 s0 c1 s1 | c2 s2 c3 s3], c1 = [c4 s4 c5 s5 | c6 s6 c7 s7]
            let (c0, c1) = (ld8(arr(c, 0)), ld8(arr(c, 8)));
            // [c0 c1 c4 c5 | c2 c3 c6 c7] in lane order 0 2 1 3.
            let cos = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                _mm256_shuffle_ps::<0b10_00_10_00>(c0, c1),
            )));
            let sin = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                _mm256_shuffle_ps::<0b11_01_11_01>(c0, c1),
            )));
            let (va, vb) = (ld8(a), ld8(b));
            st8(
                a,
                _mm256_sub_ps(_mm256_mul_ps(va, cos), _mm256_mul_ps(vb, sin)),
            );
            st8(
                b,
                _mm256_add_ps(_mm256_mul_ps(va, sin), _mm256_mul_ps(vb, cos)),
            );
        }
        for i in n8..half {
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let (a, b) = (first[i], second[i]);
            (first[i], second[i]) = (a * c - b * s, a * s + b * c);
        }
    } else {
        let n4 = half & !3;
        let fused = half & !1;
        for (p, c) in x[..2 * n4]
            .chunks_exact_mut(8)
            .zip(cs[..2 * n4].chunks_exact(8))
        {
            let p: &mut [f32; 8] = arr_mut(p, 0);
            let (v, cs) = (ld8(p), ld8(arr(c, 0)));
            let a = _mm256_moveldup_ps(v); // [a0 a0 a1 a1 ..]
            let b = _mm256_movehdup_ps(v); // [b0 b0 b1 b1 ..]
            let sc = _mm256_permute_ps::<0b10_11_00_01>(cs); // [s0 c0 s1 c1 ..]
            st8(p, _mm256_fmaddsub_ps(a, cs, _mm256_mul_ps(b, sc)));
        }
        for i in n4..half {
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            (x[2 * i], x[2 * i + 1]) = if i < fused {
                (fmaf(a, c, -(b * s)), fmaf(a, s, b * c))
            } else {
                (a * c - b * s, a * s + b * c)
            };
        }
    }
}

/// ggml's AVX2+FMA `ggml_v_expf` on eight lanes, operation for operation
/// as the portable `v_expf` emulates it: fused exactly where ggml's code
/// calls `_mm256_fmadd_ps` / `_mm256_fnmadd_ps`, and the scaled branch
/// only when some lane needs it.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn v_expf(x: __m256) -> __m256 {
    let c = |b: u32| _mm256_set1_ps(f32::from_bits(b));
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
    let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        e,
        _mm256_castps_si256(_mm256_set1_ps(1.0)),
    ));
    let an = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let split = _mm256_cmp_ps::<_CMP_GT_OQ>(an, _mm256_set1_ps(126.0));
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm256_mul_ps(c(0x3f7f_fff6), b),
    );
    let plain = _mm256_fmadd_ps(j, k, k);
    if _mm256_movemask_ps(split) == 0 {
        return plain;
    }
    let le0 = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps()));
    let g = _mm256_and_si256(le0, _mm256_set1_epi32(0x8200_0000u32 as i32));
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let far = _mm256_cmp_ps::<_CMP_GT_OQ>(an, _mm256_set1_ps(192.0));
    let mid = _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1);
    let big = _mm256_mul_ps(s1, s1);
    _mm256_blendv_ps(_mm256_blendv_ps(plain, mid, split), big, far)
}

/// `out = silu(gate) * up` as the portable `swiglu`: ggml's AVX2
/// `ggml_v_silu`, `x / (1 + v_expf(0 - x))`, on whole groups of 8, the
/// portable scalar `silu` (libm's `expf`) on the last `len % 8`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_swiglu(gate, up, out);
    let nv = gate.len() & !7;
    let one = _mm256_set1_ps(1.0);
    for ((o, g), u) in out[..nv]
        .chunks_exact_mut(8)
        .zip(gate[..nv].chunks_exact(8))
        .zip(up[..nv].chunks_exact(8))
    {
        let g = ld8(arr(g, 0));
        let e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), g));
        let silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        st8(arr_mut(o, 0), _mm256_mul_ps(silu, ld8(arr(u, 0))));
    }
    for ((o, &g), &u) in out[nv..].iter_mut().zip(&gate[nv..]).zip(&up[nv..]) {
        *o = phi_edge_portable::silu(g) * u;
    }
}

/// f32 to f16 bits, round to nearest even, as the portable `f32_to_f16`
/// (`half`'s conversion; F16C gives the same bits for every input, NaN
/// payloads included), eight at a time and the tail through a padded
/// group.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f32_to_f16(src: &[f32], dst: &mut [F16Bits]) {
    check_f32_to_f16(src, dst);
    let n8 = src.len() & !7;
    let conv = |s: &[f32; 8], d: &mut [u16; 8]| st_u16x8(d, f32x8_to_f16(ld8(s)));
    for (s, d) in src[..n8].chunks_exact(8).zip(dst[..n8].chunks_exact_mut(8)) {
        conv(arr(s, 0), arr_mut(d, 0));
    }
    padded(&src[n8..], &mut dst[n8..], conv);
}

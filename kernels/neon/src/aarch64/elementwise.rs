//! `rms_norm`, `rope` and `swiglu` (with ggml's vectorized `expf`),
//! bit-identical to the portable set.

use core::arch::aarch64::*;

use phi_edge_portable::activation::check_swiglu;
use phi_edge_portable::norm::check_rms_norm;
use phi_edge_portable::rope::check_rope;

use super::simd::{ld_f32, st_f32};

/// RMSNorm: squares in f32 four at a time, summed in f64 in element order
/// (the oracle's order; the f64 adds are not the bottleneck), then
/// `(x * scale) * w` four at a time.
#[target_feature(enable = "neon")]
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    check_rms_norm(x, w, out);
    let n4 = x.len() & !3;
    let mut sum = 0.0f64;
    for c in x[..n4].chunks_exact(4) {
        let v = ld_f32(c.try_into().unwrap());
        let sq = vmulq_f32(v, v);
        sum += f64::from(vgetq_lane_f32::<0>(sq));
        sum += f64::from(vgetq_lane_f32::<1>(sq));
        sum += f64::from(vgetq_lane_f32::<2>(sq));
        sum += f64::from(vgetq_lane_f32::<3>(sq));
    }
    for &v in &x[n4..] {
        sum += f64::from(v * v);
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / libm::sqrtf(mean + eps);
    let s = vdupq_n_f32(scale);
    for ((o, xc), wc) in out[..n4]
        .chunks_exact_mut(4)
        .zip(x[..n4].chunks_exact(4))
        .zip(w[..n4].chunks_exact(4))
    {
        let v = vmulq_f32(
            vmulq_f32(ld_f32(xc.try_into().unwrap()), s),
            ld_f32(wc.try_into().unwrap()),
        );
        st_f32(o.try_into().unwrap(), v);
    }
    for ((o, &v), &g) in out[n4..].iter_mut().zip(&x[n4..]).zip(&w[n4..]) {
        *o = v * scale * g;
    }
}

/// Rotates one head in place (see `Kernels::rope`): four pairs at a time,
/// de-interleaving `(cos, sin)` with `ld2`. Adjacent pairs (`neox =
/// false`) fuse the first product of each output as the oracle build's
/// `vfmaddsub` does, except a last odd pair; NEOX pairs are not fused.
#[target_feature(enable = "neon")]
pub(crate) fn rope(x: &mut [f32], cs: &[f32], neox: bool) {
    let n_rot = check_rope(x, cs);
    let half = n_rot / 2;
    let n4 = half & !3;
    let ld2 = |c: &[f32]| {
        let c: &[f32; 8] = c.try_into().unwrap();
        // SAFETY: reads exactly the 8 values of `c`.
        unsafe { vld2q_f32(c.as_ptr()) }
    };
    if neox {
        let (first, second) = x[..n_rot].split_at_mut(half);
        for ((a, b), c) in first[..n4]
            .chunks_exact_mut(4)
            .zip(second[..n4].chunks_exact_mut(4))
            .zip(cs[..2 * n4].chunks_exact(8))
        {
            let (a, b): (&mut [f32; 4], &mut [f32; 4]) =
                (a.try_into().unwrap(), b.try_into().unwrap());
            let t = ld2(c);
            let (cos, sin) = (t.0, t.1);
            let (va, vb) = (ld_f32(a), ld_f32(b));
            st_f32(a, vsubq_f32(vmulq_f32(va, cos), vmulq_f32(vb, sin)));
            st_f32(b, vaddq_f32(vmulq_f32(va, sin), vmulq_f32(vb, cos)));
        }
        for i in n4..half {
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let (a, b) = (first[i], second[i]);
            (first[i], second[i]) = (a * c - b * s, a * s + b * c);
        }
    } else {
        let fused = half & !1;
        for (p, c) in x[..2 * n4]
            .chunks_exact_mut(8)
            .zip(cs[..2 * n4].chunks_exact(8))
        {
            let p: &mut [f32; 8] = p.try_into().unwrap();
            // SAFETY: reads exactly the 8 values of `p`.
            let v = unsafe { vld2q_f32(p.as_ptr()) };
            let t = ld2(c);
            let (a, b, cos, sin) = (v.0, v.1, t.0, t.1);
            let r = float32x4x2_t(
                vfmaq_f32(vnegq_f32(vmulq_f32(b, sin)), a, cos),
                vfmaq_f32(vmulq_f32(b, cos), a, sin),
            );
            // SAFETY: writes exactly the 8 values of `p`.
            unsafe { vst2q_f32(p.as_mut_ptr(), r) };
        }
        for i in n4..half {
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            (x[2 * i], x[2 * i + 1]) = if i < fused {
                (libm::fmaf(a, c, -(b * s)), libm::fmaf(a, s, b * c))
            } else {
                (a * c - b * s, a * s + b * c)
            };
        }
    }
}

/// ggml's AVX2+FMA `ggml_v_expf` on four lanes, operation for operation
/// as the portable `v_expf` emulates it.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn v_expf(x: float32x4_t) -> float32x4_t {
    let c = |b: u32| vdupq_n_f32(f32::from_bits(b));
    let r = c(0x4b40_0000);
    let z = vfmaq_f32(r, x, c(0x3fb8_aa3b));
    let n = vsubq_f32(z, r);
    let b = vfmsq_f32(vfmsq_f32(x, n, c(0x3f31_7200)), n, c(0x35bf_be8e));
    let e = vshlq_n_u32::<23>(vreinterpretq_u32_f32(z));
    let k = vreinterpretq_f32_u32(vaddq_u32(e, vdupq_n_u32(1.0f32.to_bits())));
    let u = vmulq_f32(b, b);
    let j = vfmaq_f32(
        vmulq_f32(c(0x3f7f_fff6), b),
        vfmaq_f32(
            vfmaq_f32(c(0x3eff_fedb), c(0x3e2a_af33), b),
            vfmaq_f32(c(0x3d2b_9f17), c(0x3c07_2010), b),
            u,
        ),
        u,
    );
    let plain = vfmaq_f32(k, j, k);
    let an = vabsq_f32(n);
    let split = vcgtq_f32(an, vdupq_n_f32(126.0));
    if vmaxvq_u32(split) == 0 {
        return plain;
    }
    let g = vandq_u32(vcleq_f32(n, vdupq_n_f32(0.0)), vdupq_n_u32(0x8200_0000));
    let s1 = vreinterpretq_f32_u32(vaddq_u32(g, vdupq_n_u32(0x7f00_0000)));
    let s2 = vreinterpretq_f32_u32(vsubq_u32(e, g));
    let big = vmulq_f32(s1, s1);
    let mid = vmulq_f32(vfmaq_f32(s2, s2, j), s1);
    let far = vcgtq_f32(an, vdupq_n_f32(192.0));
    vbslq_f32(split, vbslq_f32(far, big, mid), plain)
}

/// `out = silu(gate) * up` as the oracle: [`v_expf`] on whole groups of 8
/// (here 4 + 4, lanes are independent), the portable scalar `silu` on the
/// last `len % 8`.
#[target_feature(enable = "neon")]
pub(crate) fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_swiglu(gate, up, out);
    let nv = gate.len() & !7;
    let one = vdupq_n_f32(1.0);
    let zero = vdupq_n_f32(0.0);
    for ((o, g), u) in out[..nv]
        .chunks_exact_mut(4)
        .zip(gate[..nv].chunks_exact(4))
        .zip(up[..nv].chunks_exact(4))
    {
        let g = ld_f32(g.try_into().unwrap());
        let silu = vdivq_f32(g, vaddq_f32(one, v_expf(vsubq_f32(zero, g))));
        st_f32(
            o.try_into().unwrap(),
            vmulq_f32(silu, ld_f32(u.try_into().unwrap())),
        );
    }
    for ((o, &g), &u) in out[nv..].iter_mut().zip(&gate[nv..]).zip(&up[nv..]) {
        *o = phi_edge_portable::silu(g) * u;
    }
}

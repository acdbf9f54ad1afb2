//! Elementwise activations, and ggml's vectorized `expf` (`ggml_v_expf`)
//! that llama.cpp's x86 build uses for them.

/// One lane of ggml's AVX2+FMA `ggml_v_expf` (`ggml-cpu/vec.h`), emulated
/// operation for operation: `n = round(x / ln 2)` by the `0x1.8p23` shift,
/// a two-step reduction `b = x - n * ln2_hi - n * ln2_lo` (fused), a
/// degree-5 polynomial `j`, the scale `k = 2^n` built in the exponent bits,
/// and the result `k + k * j`; for `|n| > 126` the scale is split in two
/// factors to reach subnormals and infinity, and for `|n| > 192` the result
/// saturates to `0` or `inf`. Each lane is independent of the others.
pub fn v_expf(x: f32) -> f32 {
    let c = |b: u32| f32::from_bits(b);
    let fma = crate::fma::fmaf;
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = fma(x, c(0x3fb8_aa3b), r);
    let n = z - r;
    let b = fma(-n, c(0x35bf_be8e), fma(-n, c(0x3f31_7200), x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let u = b * b;
    let j = fma(
        fma(
            fma(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            fma(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        c(0x3f7f_fff6) * b,
    );
    let an = f32::from_bits(n.to_bits() & 0x7fff_ffff);
    // Ordered comparisons: false for NaN, as `_CMP_GT_OQ` / `_CMP_LE_OQ`.
    let split = an > 126.0;
    if !split {
        return fma(j, k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    if an > 192.0 {
        return s1 * s1;
    }
    let s2 = f32::from_bits(e.wrapping_sub(g));
    fma(s2, j, s2) * s1
}

/// `silu(x) = x / (1 + expf(-x))`, as ggml's scalar `ggml_silu_f32`, with
/// `libm`'s `expf` (llama.cpp gets glibc's, which rounds the other way on a
/// few percent of inputs).
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// One lane of ggml's AVX2 `ggml_v_silu`: `x / (1 + v_expf(0 - x))`.
#[inline(always)]
pub fn v_silu(x: f32) -> f32 {
    x / (1.0 + v_expf(0.0 - x))
}

/// The argument check of [`swiglu`], shared by every kernel set.
///
/// Panics unless the three slices have the same length.
#[inline(always)]
pub fn check_swiglu(gate: &[f32], up: &[f32], out: &[f32]) {
    assert!(
        gate.len() == up.len() && gate.len() == out.len(),
        "swiglu: gate, up, out lengths {} {} {} differ",
        gate.len(),
        up.len(),
        out.len()
    );
}

/// `out[i] = silu(gate[i]) * up[i]`, as `ggml_vec_swiglu_f32` in llama.cpp's
/// x86 AVX2+FMA build: whole groups of 8 use [`v_silu`], the last
/// `len % 8` values the scalar [`silu`]. Feed-forward widths are multiples
/// of 8 in every real model, so the tail, where the C library's `expf`
/// could differ from `libm`'s in the last bit, does not arise there.
///
/// Panics unless the three slices have the same length.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_swiglu(gate, up, out);
    let nv = gate.len() & !7;
    for ((o, &g), &u) in out[..nv].iter_mut().zip(&gate[..nv]).zip(&up[..nv]) {
        *o = v_silu(g) * u;
    }
    for ((o, &g), &u) in out[nv..].iter_mut().zip(&gate[nv..]).zip(&up[nv..]) {
        *o = silu(g) * u;
    }
}

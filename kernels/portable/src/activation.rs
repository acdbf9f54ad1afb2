//! Elementwise activations, and the two `expf`s llama.cpp's x86 build uses:
//! glibc's `expf` in scalar code and ggml's vectorized `ggml_v_expf`.

/// Table of `2^(i/32)` as f64 bits, minus `i << 47` (glibc / Arm
/// optimized-routines `__exp2f_data.tab`).
const EXP2F_TAB: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];

/// `expf` as glibc computes it on x86-64 CPUs with FMA (the `__expf_fma`
/// variant llama.cpp's scalar code reaches on an AVX2 machine): the Arm
/// optimized-routines algorithm in f64, `x * 32 / ln 2 = k + r`, a
/// 32-entry table for `2^(k/32)` and a cubic in `r`, with every multiply
/// feeding an add fused (as GCC compiles it with `-mfma`).
///
/// Identical to glibc 2.36's `expf` on all 2^32 inputs with `|x| < 88`
/// (checked exhaustively once) and on the special cases below; `libm`'s
/// `expf` (FreeBSD's) rounds differently on a few percent of inputs.
pub fn expf(x: f32) -> f32 {
    let abstop = (x.to_bits() >> 20) & 0x7ff;
    if abstop >= 88.0f32.to_bits() >> 20 {
        // |x| >= 88 or NaN.
        if x == f32::NEG_INFINITY {
            return 0.0;
        }
        if abstop >= f32::INFINITY.to_bits() >> 20 {
            return x + x;
        }
        if x > f32::from_bits(0x42b1_7217) {
            return f32::INFINITY; // x > ln(2^128)
        }
        if x < f32::from_bits(0xc2cf_f1b4) {
            return 0.0; // x < ln(2^-150)
        }
    }
    const INV_LN2_N: f64 = f64::from_bits(0x4047_1547_652b_82fe); // 32 / ln 2
    const SHIFT: f64 = 6755399441055744.0; // 0x1.8p52
    const C0: f64 = f64::from_bits(0x3ebc6af84b912394);
    const C1: f64 = f64::from_bits(0x3f2ebfce50fac4f3);
    const C2: f64 = f64::from_bits(0x3f962e42ff0c52d6);
    let xd = f64::from(x);
    let kd = libm::fma(INV_LN2_N, xd, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = libm::fma(INV_LN2_N, xd, -kd);
    let t = EXP2F_TAB[(ki % 32) as usize].wrapping_add(ki << 47);
    let s = f64::from_bits(t);
    let z = libm::fma(C0, r, C1);
    let r2 = r * r;
    let y = libm::fma(z, r2, libm::fma(C2, r, 1.0));
    (y * s) as f32
}

/// One lane of ggml's AVX2+FMA `ggml_v_expf` (`ggml-cpu/vec.h`), emulated
/// operation for operation: `n = round(x / ln 2)` by the `0x1.8p23` shift,
/// a two-step reduction `b = x - n * ln2_hi - n * ln2_lo` (fused), a
/// degree-5 polynomial `j`, the scale `k = 2^n` built in the exponent bits,
/// and the result `k + k * j`; for `|n| > 126` the scale is split in two
/// factors to reach subnormals and infinity, and for `|n| > 192` the result
/// saturates to `0` or `inf`. Each lane is independent of the others.
pub fn v_expf(x: f32) -> f32 {
    let c = |b: u32| f32::from_bits(b);
    let fma = libm::fmaf;
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

/// `silu(x) = x / (1 + expf(-x))`, as ggml's scalar `ggml_silu_f32` with
/// glibc's [`expf`].
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + expf(-x))
}

/// One lane of ggml's AVX2 `ggml_v_silu`: `x / (1 + v_expf(0 - x))`.
#[inline(always)]
pub fn v_silu(x: f32) -> f32 {
    x / (1.0 + v_expf(0.0 - x))
}

/// `out[i] = silu(gate[i]) * up[i]`, as `ggml_vec_swiglu_f32` in llama.cpp's
/// x86 AVX2+FMA build: whole groups of 8 use [`v_silu`], the last
/// `len % 8` values the scalar [`silu`].
///
/// Panics unless the three slices have the same length.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(
        gate.len() == up.len() && gate.len() == out.len(),
        "swiglu: gate, up, out lengths {} {} {} differ",
        gate.len(),
        up.len(),
        out.len()
    );
    let nv = gate.len() & !7;
    for ((o, &g), &u) in out[..nv].iter_mut().zip(&gate[..nv]).zip(&up[..nv]) {
        *o = v_silu(g) * u;
    }
    for ((o, &g), &u) in out[nv..].iter_mut().zip(&gate[nv..]).zip(&up[nv..]) {
        *o = silu(g) * u;
    }
}

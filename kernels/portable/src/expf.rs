//! `expf` as the C library of llama.cpp's x86-64 build computes it: glibc's
//! `__expf_fma` (ARM's optimized-routines algorithm, built with FMA
//! contraction), which glibc picks on every CPU with AVX2 and FMA.
//!
//! ggml's flash attention calls the C library's scalar `expf` for its
//! online softmax (not its vectorized `ggml_v_expf`), so the Q8_0 cache's
//! attention needs this exact function on every target, boards included.
//! The algorithm: `x * 32 / ln 2 = k + r` in f64 with `|r| <= 1/2`,
//! `2^(k/32)` from a 32-entry table, `2^(r/32)` from a cubic, every
//! `a * b + c` fused (as GCC contracts the FMA variant), one rounding to
//! f32 at the end. The host tests compare it with the C library's `expf`.

use crate::fma::fma64;

/// `2^(i/32)` for `i < 32`, as f64 bits with `i << 47` subtracted, so that
/// adding `k << 47` gives `2^(k/32)` (the exponent's bits included).
const TAB: [u64; 32] = [
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

/// Table entries (`2^5`).
const N: f64 = 32.0;

/// `e^x` rounded as glibc's x86-64 `expf` on a CPU with FMA rounds it.
/// Overflow gives `+inf`, underflow `+0`, `-inf` gives 0, NaN stays NaN.
pub fn expf(x: f32) -> f32 {
    // 32 / ln 2, the cubic's coefficients for 2^(r/32), and 1.5 * 2^52,
    // whose addition rounds to an integer in the low mantissa bits.
    let inv_ln2_n = f64::from_bits(0x3ff71547652b82fe) * N;
    let c0 = f64::from_bits(0x3fac6af84b912394) / N / N / N;
    let c1 = f64::from_bits(0x3fcebfce50fac4f3) / N / N;
    let c2 = f64::from_bits(0x3fe62e42ff0c52d6) / N;
    let shift = f64::from_bits(0x4338000000000000);

    let top12 = |v: f32| (v.to_bits() >> 20) & 0x7ff;
    let abstop = top12(x);
    if abstop >= top12(88.0) {
        // |x| >= 88 or NaN.
        if x == f32::NEG_INFINITY {
            return 0.0;
        }
        if abstop >= top12(f32::INFINITY) {
            return x + x;
        }
        if x > f32::from_bits(0x42b1_7217) {
            // x > log(2^128)
            return f32::INFINITY;
        }
        if x < f32::from_bits(0xc2cf_f1b4) {
            // x < log(2^-150)
            return 0.0;
        }
    }
    let xd = f64::from(x);
    let kd = fma64(inv_ln2_n, xd, shift);
    let ki = kd.to_bits();
    let kd = kd - shift;
    let r = fma64(inv_ln2_n, xd, -kd);
    let s = f64::from_bits(TAB[(ki % 32) as usize].wrapping_add(ki << 47));
    let z = fma64(c0, r, c1);
    let r2 = r * r;
    let y = fma64(c2, r, 1.0);
    let y = fma64(z, r2, y);
    (y * s) as f32
}

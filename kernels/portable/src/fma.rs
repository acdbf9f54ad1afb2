//! The fused multiply-add every kernel uses: `a * b + c` rounded once.
//!
//! Both paths give the same, correctly rounded result; they differ only in
//! cost. With feature `std`, on a target whose baseline has FMA (aarch64,
//! riscv64gc, x86-64 built with `+fma`), `f32::mul_add` is one
//! instruction. Elsewhere `libm::fmaf` is used: on x86-64 it picks the
//! hardware instruction at run time (one indirect call), which beats the
//! software `fmaf` that `mul_add` would call there.

/// `a * b + c` with a single rounding (IEEE 754 fusedMultiplyAdd).
#[inline(always)]
pub fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(all(
        feature = "std",
        any(not(target_arch = "x86_64"), target_feature = "fma")
    ))]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(all(
        feature = "std",
        any(not(target_arch = "x86_64"), target_feature = "fma")
    )))]
    {
        libm::fmaf(a, b, c)
    }
}

/// `a * b + c` in f64 with a single rounding, as [`fmaf`] in f32.
#[inline(always)]
pub fn fma64(a: f64, b: f64, c: f64) -> f64 {
    #[cfg(all(
        feature = "std",
        any(not(target_arch = "x86_64"), target_feature = "fma")
    ))]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(all(
        feature = "std",
        any(not(target_arch = "x86_64"), target_feature = "fma")
    )))]
    {
        libm::fma(a, b, c)
    }
}

//! The fused multiply-add every kernel uses: `a * b + c` rounded once.
//!
//! Both paths give the same, correctly rounded result; they differ only in
//! cost. `libm::fmaf` picks an implementation at run time on x86 and is
//! reached through an indirect call, with the accumulators spilled around
//! it; with feature `std`, `f32::mul_add` is one instruction where the
//! target has FMA (aarch64, riscv64gc, x86-64 built with `+fma`) and a
//! direct call to the C library's `fmaf` elsewhere.

/// `a * b + c` with a single rounding (IEEE 754 fusedMultiplyAdd).
#[inline(always)]
pub fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::fmaf(a, b, c)
    }
}

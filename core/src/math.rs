//! The scalar math functions the decoder calls outside the kernels.
//!
//! llama.cpp computes its RoPE table with the C library's `powf`, `sinf` and
//! `cosf`. With the `std` feature these are the platform's (Rust's `f32`
//! methods call the system libm, glibc on Linux), so a host build rounds
//! exactly as llama.cpp built on the same host does; without `std` they come
//! from the `libm` crate (a port of musl), which differs from glibc by one
//! ulp on about 1% of RoPE angles. So the packer, a `std` build, writes the
//! first positions' table into the image (`rope_cache`, see [`crate::rope`])
//! and a `no_std` session reads it: a board's logits are then the host's to
//! the bit within those positions.
//!
//! [`crate::perplexity`] calls `expf`, `exp`, `log` and `sqrt` as
//! llama.cpp's `llama-perplexity` does, from the same places.

/// `x` raised to `y`.
#[inline]
pub(crate) fn powf(x: f32, y: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.powf(y)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::powf(x, y)
    }
}

/// Sine and cosine of `x` (radians).
#[inline]
pub(crate) fn sin_cos(x: f32) -> (f32, f32) {
    #[cfg(feature = "std")]
    {
        (x.sin(), x.cos())
    }
    #[cfg(not(feature = "std"))]
    {
        (libm::sinf(x), libm::cosf(x))
    }
}

/// `e` raised to `x`, in single precision (C's `expf`).
#[inline]
pub(crate) fn expf(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.exp()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::expf(x)
    }
}

/// `e` raised to `x` (C's `exp`).
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.exp()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::exp(x)
    }
}

/// The natural logarithm of `x` (C's `log`).
#[inline]
pub(crate) fn ln(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.ln()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::log(x)
    }
}

/// The square root of `x` (correctly rounded either way).
#[inline]
pub(crate) fn sqrt(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrt(x)
    }
}

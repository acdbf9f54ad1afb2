//! The AVX2 + FMA + F16C kernel set.
//!
//! Every kernel is a `#[target_feature(enable = "avx2,fma,f16c")]`
//! function, called only through [`Avx2`], whose constructors guarantee
//! the CPU has those features.

mod act;
mod attention;
mod avx512;
mod elementwise;
mod flash;
mod float;
mod matmul;
mod quant;
mod simd;

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};

pub use avx512::Avx512;

/// The x86-64 kernel set for CPUs with AVX2, FMA and F16C, named `avx2`.
///
/// Constructing one asserts that the CPU has those features: with
/// [`Avx2::detect`] (feature `std`) at run time, or with
/// [`Avx2::new_unchecked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2 {
    _cpu_has_avx2_fma_f16c: (),
}

impl Avx2 {
    /// The set without checking the CPU.
    ///
    /// # Safety
    ///
    /// The CPU that runs the kernels must implement AVX2, FMA and F16C
    /// (`std::arch::is_x86_feature_detected!` tests each), otherwise its
    /// kernels execute undefined instructions.
    pub const unsafe fn new_unchecked() -> Self {
        Avx2 {
            _cpu_has_avx2_fma_f16c: (),
        }
    }

    /// The set if the running CPU has AVX2, FMA and F16C.
    #[cfg(feature = "std")]
    pub fn detect() -> Option<Self> {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU reports all three features.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }
}

impl Kernels for Avx2 {
    fn name(&self) -> &'static str {
        "avx2"
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        // SAFETY: an `Avx2` exists only on a CPU with AVX2, FMA and F16C.
        unsafe { act::quantize_act(fmt, x, out) }
    }

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        // SAFETY: as above.
        unsafe { matmul::matmul(m, out) }
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        // One row per token (the embedding lookup): not worth a kernel.
        phi_edge_portable::dequantize_row(dtype, src, out);
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { elementwise::rms_norm(x, w, eps, out) }
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        // SAFETY: as above.
        unsafe { elementwise::rope(x, cs, neox) }
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { elementwise::swiglu(gate, up, out) }
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        // SAFETY: as above.
        unsafe { elementwise::f32_to_f16(src, dst) }
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { attention::attention(a, scratch, out) }
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { flash::attention_q8_0(a, out) }
    }
}

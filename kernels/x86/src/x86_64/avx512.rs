//! The AVX-512 VNNI kernel set: [`Avx2`]'s kernels, with quantized
//! matmuls whose integer quad sums take one `vpdpbusd` and whose tiles
//! have AVX-512VL's 32 vector registers.

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};

use super::{matmul, Avx2};

/// The x86-64 kernel set for CPUs with AVX-512 F, BW, VL and VNNI besides
/// AVX2, FMA and F16C (Intel Ice Lake, Sapphire Rapids; AMD Zen 4 and
/// later), named `avx512vnni`. Bit-identical to [`Avx2`] and portable.
///
/// Constructing one asserts that the CPU has those features: with
/// [`Avx512::detect`] (feature `std`) at run time, or with
/// [`Avx512::new_unchecked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512 {
    avx2: Avx2,
}

impl Avx512 {
    /// The set without checking the CPU.
    ///
    /// # Safety
    ///
    /// The CPU that runs the kernels must implement AVX2, FMA, F16C,
    /// AVX512F, AVX512BW, AVX512VL and AVX512_VNNI
    /// (`std::arch::is_x86_feature_detected!` tests each), otherwise its
    /// kernels execute undefined instructions.
    pub const unsafe fn new_unchecked() -> Self {
        Avx512 {
            // SAFETY: the caller guarantees AVX2, FMA and F16C, among others.
            avx2: unsafe { Avx2::new_unchecked() },
        }
    }

    /// The set if the running CPU has every feature it needs.
    #[cfg(feature = "std")]
    pub fn detect() -> Option<Self> {
        use std::arch::is_x86_feature_detected as has;
        let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni");
        if avx512 && Avx2::detect().is_some() {
            // SAFETY: the CPU reports every feature.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }
}

impl Kernels for Avx512 {
    fn name(&self) -> &'static str {
        "avx512vnni"
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        self.avx2.quantize_act(fmt, x, out)
    }

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        // SAFETY: an `Avx512` exists only on a CPU with the features
        // `matmul_vnni` enables.
        unsafe { matmul::matmul_vnni(m, out) }
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        self.avx2.dequantize_row(dtype, src, out)
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        self.avx2.rms_norm(x, w, eps, out)
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        self.avx2.rope(x, cs, neox)
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        self.avx2.swiglu(gate, up, out)
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        self.avx2.f32_to_f16(src, dst)
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        self.avx2.attention(a, scratch, out)
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        self.avx2.attention_q8_0(a, out)
    }
}

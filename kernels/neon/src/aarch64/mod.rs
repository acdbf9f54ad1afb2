//! The NEON kernels (compiled only for aarch64 with NEON).

mod act;
mod attention;
mod elementwise;
mod float;
mod matmul;
mod quant;
mod simd;

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};

// `f32_to_f16` writes the KV cache's `F16Bits` as little-endian bytes.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "the kernels assume a little-endian target"
);

/// The baseline NEON kernel set (ARMv8-A Advanced SIMD, e.g. Cortex-A53,
/// Cortex-A72), named `neon`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neon;

/// The NEON kernel set with `sdot` integer dot products (the ARMv8.2-A
/// dot product extension, `FEAT_DotProd`, e.g. Cortex-A55, Cortex-A76),
/// named `neon+dotprod`.
///
/// Constructing one asserts that the CPU has the extension: safely with
/// `NeonDot::new` when the build targets it (`-C
/// target-feature=+dotprod`), with `NeonDot::detect` (feature `std`) at
/// run time, or with `NeonDot::new_unchecked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeonDot {
    _cpu_has_dotprod: (),
}

impl NeonDot {
    /// The dotprod set without checking the CPU.
    ///
    /// # Safety
    ///
    /// The CPU that runs the kernels must implement the dot product
    /// extension (`FEAT_DotProd`; Linux reports it as `asimddp`, and
    /// `std::arch::is_aarch64_feature_detected!("dotprod")` tests it),
    /// otherwise its kernels execute undefined instructions.
    pub const unsafe fn new_unchecked() -> Self {
        NeonDot {
            _cpu_has_dotprod: (),
        }
    }

    /// The dotprod set, for builds whose target guarantees the extension.
    #[cfg(target_feature = "dotprod")]
    pub const fn new() -> Self {
        NeonDot {
            _cpu_has_dotprod: (),
        }
    }

    /// The dotprod set if the running CPU has the extension.
    #[cfg(feature = "std")]
    pub fn detect() -> Option<Self> {
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            // SAFETY: the CPU reports the dot product extension.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }
}

/// Implements [`Kernels`] for a set; `$sdot` selects the integer dot.
macro_rules! neon_kernels {
    ($set:ty, $name:literal, $sdot:literal) => {
        impl Kernels for $set {
            fn name(&self) -> &'static str {
                $name
            }

            fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
                // SAFETY: this module is only compiled for targets with
                // NEON (crate root), so the CPU has it.
                unsafe { act::quantize_act(fmt, x, out) }
            }

            fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
                // SAFETY: NEON as above; `sdot` is used only by `NeonDot`,
                // whose constructors guarantee the extension.
                unsafe { matmul::matmul::<$sdot>(m, out) }
            }

            fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
                phi_edge_portable::dequantize_row(dtype, src, out);
            }

            fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
                // SAFETY: NEON, as above.
                unsafe { elementwise::rms_norm(x, w, eps, out) }
            }

            fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
                // SAFETY: NEON, as above.
                unsafe { elementwise::rope(x, cs, neox) }
            }

            fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
                // SAFETY: NEON, as above.
                unsafe { elementwise::swiglu(gate, up, out) }
            }

            fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
                phi_edge_portable::float::check_f32_to_f16(src, dst);
                // Little-endian f16 bytes are the `F16Bits` here (see the
                // endianness assertion at the top of this file).
                // SAFETY: NEON, as above.
                unsafe { float::f32_to_f16_bytes(src, bytemuck::cast_slice_mut(dst)) }
            }

            fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
                // SAFETY: NEON, as above.
                unsafe { attention::attention(a, scratch, out) }
            }

            fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
                // The portable kernel (the reference): per KV row one
                // head-wide Q8_0 dot, one expf and one multiply-add.
                phi_edge_portable::attention_q8_0(a, out);
            }
        }
    };
}

neon_kernels!(Neon, "neon", false);
neon_kernels!(NeonDot, "neon+dotprod", true);

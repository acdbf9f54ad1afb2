//! The RVV kernels (compiled only for riscv64).

#[macro_use]
mod rvv;

mod act;
mod attention;
mod elementwise;
mod float;
mod matmul;
mod quant;

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};

use rvv::V;

// `f32_to_f16` writes the KV cache's `F16Bits` as little-endian bytes.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "the kernels assume a little-endian target"
);

/// The RVV 1.0 kernel set, named `rvv (VLEN n)`.
///
/// Constructing one asserts that the CPU implements the V extension and
/// that vector instructions are enabled (`mstatus.VS` not Off): with
/// [`Rvv::detect`] (feature `std`, Linux) or [`Rvv::new_unchecked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rvv {
    v: V,
}

impl Rvv {
    /// The RVV set without checking the CPU.
    ///
    /// # Safety
    ///
    /// The CPU that runs the kernels must implement the RVV 1.0 V
    /// extension (so VLEN >= 128) and vector instructions must be enabled
    /// (`mstatus.VS` not Off; Linux enables them for a process on a CPU
    /// with V), otherwise the kernels execute illegal instructions.
    pub unsafe fn new_unchecked() -> Self {
        Rvv {
            // SAFETY: the caller guarantees V (this function's contract).
            v: unsafe { V::new() },
        }
    }

    /// The RVV set if the running CPU has V: Linux reports it in
    /// `AT_HWCAP` bit `'V' - 'A'`, and only when it enables vector
    /// instructions for user processes.
    #[cfg(all(feature = "std", target_os = "linux"))]
    pub fn detect() -> Option<Self> {
        // SAFETY: getauxval has no preconditions.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
        if hwcap & (1 << (b'V' - b'A')) != 0 {
            // SAFETY: the kernel reports V, and enables it for us.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }

    /// The CPU's vector register length in bits (`vlenb * 8`).
    pub fn vlen(&self) -> usize {
        rvv::vlenb(self.v) * 8
    }
}

impl Kernels for Rvv {
    fn name(&self) -> &'static str {
        match self.vlen() {
            128 => "rvv (VLEN 128)",
            256 => "rvv (VLEN 256)",
            512 => "rvv (VLEN 512)",
            1024 => "rvv (VLEN 1024)",
            2048 => "rvv (VLEN 2048)",
            _ => "rvv",
        }
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        act::quantize_act(self.v, fmt, x, out);
    }

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        matmul::matmul(self.v, m, out);
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        phi_edge_portable::dequantize_row(dtype, src, out);
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        elementwise::rms_norm(self.v, x, w, eps, out);
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        elementwise::rope(self.v, x, cs, neox);
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        elementwise::swiglu(self.v, gate, up, out);
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        phi_edge_portable::float::check_f32_to_f16(src, dst);
        // Little-endian f16 bytes are the `F16Bits` here (see the
        // endianness assertion at the top of this file).
        float::f32_to_f16_bytes(self.v, src, bytemuck::cast_slice_mut(dst));
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        attention::attention(self.v, a, scratch, out);
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        // The portable kernel (the reference): per KV row one head-wide
        // Q8_0 dot, one expf and one multiply-add.
        phi_edge_portable::attention_q8_0(a, out);
    }
}

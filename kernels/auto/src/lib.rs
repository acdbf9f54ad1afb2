//! phi-edge's kernel set picked at run time: [`AutoKernels`] is one of
//! the sets this target has (an enum over them, each call forwarded to the
//! one chosen), for programs that run on whatever CPU they find: the
//! `phi-edge` command and the C API (`phi-edge-ffi`).
//!
//! [`AutoKernels::detect`] (feature `std`, on by default) picks from what
//! the CPU reports: on x86-64 `avx512vnni` when the CPU has AVX-512
//! F/BW/VL and VNNI, else `avx2` when it has AVX2, FMA and F16C; RVV when
//! a riscv64 CPU has V; `neon+dotprod` when an aarch64 CPU has dotprod,
//! else baseline NEON; portable everywhere else. `PHI_EDGE_KERNELS=portable`
//! forces the portable set, and `PHI_EDGE_KERNELS=avx2` the AVX2 set on a
//! CPU that also has AVX-512 (valgrind, for one, decodes no AVX-512).
//!
//! Without `std` the crate is `#![no_std]` and the caller names the set
//! (firmware knows its CPU); every set gives the same bits.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};
use phi_edge_portable::Portable;

/// One of the kernel sets this build has, chosen by [`AutoKernels::detect`].
#[derive(Clone, Copy, Debug)]
pub enum AutoKernels {
    /// The portable oracle.
    Portable(Portable),
    /// Baseline NEON.
    #[cfg(target_arch = "aarch64")]
    Neon(phi_edge_neon::Neon),
    /// NEON with `sdot`.
    #[cfg(target_arch = "aarch64")]
    NeonDot(phi_edge_neon::NeonDot),
    /// RISC-V vectors.
    #[cfg(target_arch = "riscv64")]
    Rvv(phi_edge_rvv::Rvv),
    /// x86-64 AVX2 + FMA + F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2(phi_edge_x86::Avx2),
    /// x86-64 AVX-512 with VNNI.
    #[cfg(target_arch = "x86_64")]
    Avx512(phi_edge_x86::Avx512),
}

impl AutoKernels {
    /// The fastest set this CPU supports; `PHI_EDGE_KERNELS=portable` forces
    /// the portable one (and on x86-64 `avx2` the AVX2 one).
    #[cfg(feature = "std")]
    pub fn detect() -> AutoKernels {
        let asked = std::env::var("PHI_EDGE_KERNELS").unwrap_or_default();
        if asked == "portable" {
            return AutoKernels::Portable(Portable);
        }
        #[cfg(target_arch = "aarch64")]
        {
            match phi_edge_neon::NeonDot::detect() {
                Some(k) => AutoKernels::NeonDot(k),
                None => AutoKernels::Neon(phi_edge_neon::Neon),
            }
        }
        #[cfg(target_arch = "riscv64")]
        {
            match phi_edge_rvv::Rvv::detect() {
                Some(k) => AutoKernels::Rvv(k),
                None => AutoKernels::Portable(Portable),
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            match (phi_edge_x86::Avx512::detect(), phi_edge_x86::Avx2::detect()) {
                (Some(k), _) if asked != "avx2" => AutoKernels::Avx512(k),
                (_, Some(k)) => AutoKernels::Avx2(k),
                _ => AutoKernels::Portable(Portable),
            }
        }
        #[cfg(not(any(
            target_arch = "aarch64",
            target_arch = "riscv64",
            target_arch = "x86_64"
        )))]
        {
            AutoKernels::Portable(Portable)
        }
    }
}

/// Forwards a call to the selected set.
macro_rules! dispatch {
    ($self:ident, $k:ident => $call:expr) => {
        match $self {
            AutoKernels::Portable($k) => $call,
            #[cfg(target_arch = "aarch64")]
            AutoKernels::Neon($k) => $call,
            #[cfg(target_arch = "aarch64")]
            AutoKernels::NeonDot($k) => $call,
            #[cfg(target_arch = "riscv64")]
            AutoKernels::Rvv($k) => $call,
            #[cfg(target_arch = "x86_64")]
            AutoKernels::Avx2($k) => $call,
            #[cfg(target_arch = "x86_64")]
            AutoKernels::Avx512($k) => $call,
        }
    };
}

impl Kernels for AutoKernels {
    fn name(&self) -> &'static str {
        dispatch!(self, k => k.name())
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        dispatch!(self, k => k.quantize_act(fmt, x, out))
    }

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        dispatch!(self, k => k.matmul(m, out))
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        dispatch!(self, k => k.dequantize_row(dtype, src, out))
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        dispatch!(self, k => k.rms_norm(x, w, eps, out))
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        dispatch!(self, k => k.rope(x, cs, neox))
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        dispatch!(self, k => k.swiglu(gate, up, out))
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        dispatch!(self, k => k.f32_to_f16(src, dst))
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        dispatch!(self, k => k.attention(a, scratch, out))
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        dispatch!(self, k => k.attention_q8_0(a, out))
    }
}

//! The kernel set, picked at run time from what the CPU reports: RVV when a
//! riscv64 CPU has V, `neon+dotprod` when an aarch64 CPU has dotprod, else
//! baseline NEON; portable everywhere else.

use phi_edge::kernels::F16Bits;
use phi_edge::{ActFormat, DType, Kernels, WeightUse};
use phi_edge_portable::Portable;

/// One of the kernel sets this build has, chosen by [`HostKernels::detect`].
#[derive(Clone, Copy, Debug)]
pub enum HostKernels {
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
}

impl HostKernels {
    /// The fastest set this CPU supports; `PHI_EDGE_KERNELS=portable` forces
    /// the portable one.
    pub fn detect() -> HostKernels {
        if std::env::var_os("PHI_EDGE_KERNELS").is_some_and(|v| v == "portable") {
            return HostKernels::Portable(Portable);
        }
        #[cfg(target_arch = "aarch64")]
        {
            match phi_edge_neon::NeonDot::detect() {
                Some(k) => HostKernels::NeonDot(k),
                None => HostKernels::Neon(phi_edge_neon::Neon),
            }
        }
        #[cfg(target_arch = "riscv64")]
        {
            match phi_edge_rvv::Rvv::detect() {
                Some(k) => HostKernels::Rvv(k),
                None => HostKernels::Portable(Portable),
            }
        }
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        {
            HostKernels::Portable(Portable)
        }
    }
}

/// Forwards a call to the selected set.
macro_rules! dispatch {
    ($self:ident, $k:ident => $call:expr) => {
        match $self {
            HostKernels::Portable($k) => $call,
            #[cfg(target_arch = "aarch64")]
            HostKernels::Neon($k) => $call,
            #[cfg(target_arch = "aarch64")]
            HostKernels::NeonDot($k) => $call,
            #[cfg(target_arch = "riscv64")]
            HostKernels::Rvv($k) => $call,
        }
    };
}

impl Kernels for HostKernels {
    fn name(&self) -> &'static str {
        dispatch!(self, k => k.name())
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        dispatch!(self, k => k.quantize_act(fmt, x, out))
    }

    fn matmul(
        &self,
        dtype: DType,
        usage: WeightUse,
        w: &[u8],
        k: usize,
        rows: usize,
        act: &[u8],
        n_tok: usize,
        out: &mut [f32],
        ld_out: usize,
    ) {
        dispatch!(self, s => s.matmul(dtype, usage, w, k, rows, act, n_tok, out, ld_out))
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

    fn attention(
        &self,
        q: &[f32],
        k: &[F16Bits],
        v: &[F16Bits],
        stride: usize,
        n_kv: usize,
        scale: f32,
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        dispatch!(self, s => s.attention(q, k, v, stride, n_kv, scale, scratch, out))
    }
}

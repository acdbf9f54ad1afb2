//! Element-wise kernels: RMSNorm, RoPE, SwiGLU and the f16 conversion.

use phi_edge::kernels::F16Bits;

/// RMSNorm (see `Kernels::rms_norm`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    phi_edge_portable::rms_norm(x, w, eps, out);
}

/// RoPE on one head (see `Kernels::rope`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rope(x: &mut [f32], cs: &[f32], neox: bool) {
    phi_edge_portable::rope(x, cs, neox);
}

/// SwiGLU (see `Kernels::swiglu`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    phi_edge_portable::swiglu(gate, up, out);
}

/// f32 to f16 bits (see `Kernels::f32_to_f16`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f32_to_f16(src: &[f32], dst: &mut [F16Bits]) {
    phi_edge_portable::float::check_f32_to_f16(src, dst);
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = phi_edge_portable::float::f32_to_f16(s);
    }
}

//! `quantize_act`: f32 activations to Q8_0, Q8_1, Q8_K and the float
//! formats.

use phi_edge::ActFormat;

/// Converts `x` to `fmt` (see `Kernels::quantize_act`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn quantize_act(fmt: ActFormat, x: &[f32], out: &mut [u8]) {
    phi_edge_portable::quantize_act(fmt, x, out);
}

//! `attention`: one head over the f16 KV cache.

use phi_edge::kernels::AttnArgs;

/// One attention head (see `Kernels::attention`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn attention(a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
    phi_edge_portable::attention(a, scratch, out);
}

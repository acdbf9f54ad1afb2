//! Float rows: the F32, F16 and BF16 dot products.

/// `ggml_vec_dot_f32` of `k` values (see the portable `vec_dot_f32`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f32(k: usize, w: &[u8], a: &[u8]) -> f32 {
    phi_edge_portable::vec_dot_f32(k, w, a)
}

/// `ggml_vec_dot_f16` of `k` values (see the portable `vec_dot_f16`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    phi_edge_portable::vec_dot_f16(k, w, a)
}

/// `ggml_vec_dot_bf16` of `k` values (see the portable `vec_dot_bf16`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_bf16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    phi_edge_portable::vec_dot_bf16(k, w, a)
}

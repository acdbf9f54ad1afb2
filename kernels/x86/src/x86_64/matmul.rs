//! `matmul`: every weight type times a batch of activation rows.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::DType;
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn matmul(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let k = m.k;
    match m.dtype {
        DType::F32 => run_rows(m, out, |w, a| dot_f32(k, w, a)),
        DType::F16 => run_rows(m, out, |w, a| dot_f16(k, w, a)),
        DType::BF16 => run_rows(m, out, |w, a| dot_bf16(k, w, a)),
        _ => phi_edge_portable::matmul(m, out),
    }
}

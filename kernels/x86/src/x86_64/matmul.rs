//! `matmul`: every weight type times a batch of activation rows.

use phi_edge::kernels::{MatOut, MatmulArgs};

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn matmul(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    phi_edge_portable::matmul(m, out);
}

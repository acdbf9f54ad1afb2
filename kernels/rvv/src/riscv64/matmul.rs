//! `matmul`: the per-type dot product over every (row, token) pair, each
//! weight row read once for all tokens.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant;
use super::rvv::V;

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`), with the
/// portable set's checks and its choice of summation order per
/// `(dtype, usage)`.
pub(crate) fn matmul(v: V, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let proj = m.usage == WeightUse::Projection;
    let k = m.k;
    match m.dtype {
        DType::F32 => run_rows(m, out, |w, a| dot_f32(v, k, w, a)),
        DType::F16 => run_rows(m, out, |w, a| dot_f16(v, k, w, a)),
        DType::BF16 => run_rows(m, out, |w, a| dot_bf16(v, k, w, a)),
        DType::Q8_0 => run_rows(m, out, |w, a| quant::q8_0(v, w, a)),
        DType::Q4_0 if proj => run_rows(m, out, |w, a| quant::q4_0_repacked(v, w, a)),
        DType::Q4_0 => run_rows(m, out, |w, a| quant::q4_0(v, w, a)),
        DType::Q4_1 => run_rows(m, out, |w, a| quant::q4_1(v, w, a)),
        DType::Q4K if proj => run_rows(m, out, |w, a| quant::q4_k_repacked(v, w, a)),
        DType::Q4K => run_rows(m, out, |w, a| quant::q4_k(v, w, a)),
        DType::Q6K => run_rows(m, out, |w, a| quant::q6_k(v, w, a)),
    }
}

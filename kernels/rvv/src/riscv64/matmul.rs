//! `matmul`: the per-type dot product over every (row, token) pair, each
//! weight row read once for all tokens.

use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::{run_rows, MatmulArgs};

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant;
use super::rvv::V;

/// `out[t * ld_out + r] = dot(w[r], act[t])` (see `Kernels::matmul`, whose
/// last seven arguments are `args`), with the portable set's checks and its
/// choice of summation order per `(dtype, usage)`.
pub(crate) fn matmul(v: V, dtype: DType, usage: WeightUse, args: MatmulArgs<'_>) {
    let proj = usage == WeightUse::Projection;
    let k = args.1;
    match dtype {
        DType::F32 => run_rows(dtype, |w, a| dot_f32(v, k, w, a), args),
        DType::F16 => run_rows(dtype, |w, a| dot_f16(v, k, w, a), args),
        DType::BF16 => run_rows(dtype, |w, a| dot_bf16(v, k, w, a), args),
        DType::Q8_0 => run_rows(dtype, |w, a| quant::q8_0(v, w, a), args),
        DType::Q4_0 if proj => run_rows(dtype, |w, a| quant::q4_0_repacked(v, w, a), args),
        DType::Q4_0 => run_rows(dtype, |w, a| quant::q4_0(v, w, a), args),
        DType::Q4_1 => run_rows(dtype, |w, a| quant::q4_1(v, w, a), args),
        DType::Q4K if proj => run_rows(dtype, |w, a| quant::q4_k_repacked(v, w, a), args),
        DType::Q4K => run_rows(dtype, |w, a| quant::q4_k(v, w, a), args),
        DType::Q6K => run_rows(dtype, |w, a| quant::q6_k(v, w, a), args),
    }
}

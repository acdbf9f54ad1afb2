//! `matmul`: the float types one (row, token) dot product at a time, the
//! quantized types in tiles of rows x tokens ([`quant::run`]).

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant::{self, Tiles32, TilesK};
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
        DType::Q8_0 => {
            let mut s = Tiles32::new(v);
            quant::run(m, out, |w, a, o| s.q8_0(w, a, o));
        }
        DType::Q4_0 if proj => {
            let mut s = Tiles32::new(v);
            quant::run(m, out, |w, a, o| s.q4_0_repacked(w, a, o));
        }
        DType::Q4_0 => {
            let mut s = Tiles32::new(v);
            quant::run(m, out, |w, a, o| s.q4_0(w, a, o));
        }
        DType::Q4_1 => {
            let mut s = Tiles32::new(v);
            quant::run(m, out, |w, a, o| s.q4_1(w, a, o));
        }
        DType::Q4K if proj => {
            let mut s = TilesK::new(v);
            quant::run(m, out, |w, a, o| s.q4_k_repacked(w, a, o));
        }
        DType::Q4K => {
            let mut s = TilesK::new(v);
            quant::run(m, out, |w, a, o| s.q4_k(w, a, o));
        }
        DType::Q6K => {
            let mut s = TilesK::new(v);
            quant::run(m, out, |w, a, o| s.q6_k(w, a, o));
        }
    }
}

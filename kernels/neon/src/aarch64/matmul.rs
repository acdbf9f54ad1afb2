//! `matmul`: the quantized types in tiles of weight rows times tokens
//! ([`quant::run`]), the float types one (row, token) dot at a time, each
//! weight row read once for all tokens.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant::{run, Q4KRepacked, Q4_0Repacked, Q4K, Q4_0, Q4_1, Q6K, Q8_0};

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`), with the
/// portable set's checks and its choice of summation order per
/// `(dtype, usage)`.
///
/// Tile sizes (rows x tokens) keep each tile's accumulators, its unpacked
/// weight blocks and one activation block within the 32 vector
/// registers: 4 x 4 where a row's accumulator is one lane (the repacked
/// projections), 4 x 2 or 2 x 4 with a pair of f32x4 per (row, token)
/// (Q8_0, Q4_1; Q4_0 tied), 2 x 2 where the block is large (Q4_K tied,
/// Q6_K). Among these shapes each is the one that executed the fewest
/// instructions per product at 1 and 16 tokens (`tests/bench.rs`).
#[target_feature(enable = "neon")]
pub(crate) fn matmul<const SDOT: bool>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let proj = m.usage == WeightUse::Projection;
    let k = m.k;
    match m.dtype {
        DType::F32 => run_rows(m, out, |w, a| dot_f32(k, w, a)),
        DType::F16 => run_rows(m, out, |w, a| dot_f16(k, w, a)),
        DType::BF16 => run_rows(m, out, |w, a| dot_bf16(k, w, a)),
        DType::Q8_0 => run::<Q8_0, SDOT, 4, 2>(m, out),
        DType::Q4_0 if proj => run::<Q4_0Repacked, SDOT, 4, 4>(m, out),
        DType::Q4_0 => run::<Q4_0, SDOT, 2, 4>(m, out),
        DType::Q4_1 => run::<Q4_1, SDOT, 4, 2>(m, out),
        DType::Q4K if proj => run::<Q4KRepacked, SDOT, 4, 4>(m, out),
        DType::Q4K => run::<Q4K, SDOT, 2, 2>(m, out),
        DType::Q6K => run::<Q6K, SDOT, 2, 2>(m, out),
    }
}

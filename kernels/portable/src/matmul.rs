//! Matrix times activation rows: the one per-type dot product table.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};

use crate::float::{vec_dot_bf16, vec_dot_f16, vec_dot_f32};
use crate::quant::q4_0::{Q4_0Repacked, Q4_0};
use crate::quant::q4_1::Q4_1;
use crate::quant::q4_k::{Q4KRepacked, Q4K};
use crate::quant::q6_k::Q6K;
use crate::quant::q8_0::Q8_0;
use crate::quant::tile;

/// `out.token(t)[r] = dot(w[r], act[t])` for `r < rows`, `t < n_tok` (see
/// [`phi_edge::Kernels::matmul`]).
///
/// Each weight row is read once for all tokens. A quantized row goes
/// through the tokens eight at a time, each weight block unpacked once for
/// the eight, and every (row, token) product keeps the float order of its
/// one-row dot product, so the prefill chunk size never changes a bit.
/// The dot product depends on the type and, for Q4_0 and Q4_K,
/// on `usage`: llama.cpp's x86 CPU backend repacks those projection
/// weights into 8-row interleaved blocks and multiplies them with
/// `ggml_gemv_*_8x8_*`, whose per-row summation order differs from
/// `ggml_vec_dot_*`, the order of every other weight and of a tied token
/// embedding (which stays in plain rows). llama.cpp repacks only when the
/// tensor's row count is a multiple of 8, which holds for the projections
/// of every real model; since a matmul may be called on any chunk of rows
/// (streaming, threads), the choice follows `usage`, not `rows`.
///
/// Panics on inconsistent arguments ([`MatmulArgs::check`]).
pub fn matmul(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let k = m.k;
    let proj = m.usage == WeightUse::Projection;
    match m.dtype {
        DType::F32 => run_rows(m, out, |w, a| vec_dot_f32(k, w, a)),
        DType::F16 => run_rows(m, out, |w, a| vec_dot_f16(k, w, a)),
        DType::BF16 => run_rows(m, out, |w, a| vec_dot_bf16(k, w, a)),
        DType::Q8_0 => tile::matmul::<Q8_0>(m, out),
        DType::Q4_0 if proj => tile::matmul::<Q4_0Repacked>(m, out),
        DType::Q4_0 => tile::matmul::<Q4_0>(m, out),
        DType::Q4_1 => tile::matmul::<Q4_1>(m, out),
        DType::Q4K if proj => tile::matmul::<Q4KRepacked>(m, out),
        DType::Q4K => tile::matmul::<Q4K>(m, out),
        DType::Q6K => tile::matmul::<Q6K>(m, out),
    }
}

/// The matmul loop around one row dot product, for kernel sets that
/// compute one (row, token) product at a time: checks the arguments
/// ([`MatmulArgs::check`]), then sets `out.token(t)[r] = dot(w[r], act[t])`,
/// each weight row read once for all tokens. `dot` gets exactly one weight
/// row (`dtype.row_bytes(k)` bytes) and one activation row (in
/// `dtype.act_format()`); with `k == 0` it is not called and the outputs
/// are 0.
///
/// Always inlined, so each kernel set's `dot` closure is monomorphized
/// into its own loop (and into a caller's `#[target_feature]` context).
#[inline(always)]
pub fn run_rows<F: Fn(&[u8], &[u8]) -> f32>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>, dot: F) {
    let (w_row, a_row) = m.check(out);
    if m.k == 0 {
        for t in 0..m.n_tok {
            out.token(t).fill(0.0);
        }
        return;
    }
    for (r, wr) in m.w[..m.rows * w_row].chunks_exact(w_row).enumerate() {
        for (t, ar) in m.act[..m.n_tok * a_row].chunks_exact(a_row).enumerate() {
            out.token(t)[r] = dot(wr, ar);
        }
    }
}

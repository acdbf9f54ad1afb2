//! Matrix times activation rows, and the per-type dot product dispatch.

use phi_edge::{DType, WeightUse};

use crate::float::{vec_dot_bf16, vec_dot_f16, vec_dot_f32};
use crate::quant::q4_0::{vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_repacked};
use crate::quant::q4_1::vec_dot_q4_1_q8_1;
use crate::quant::q4_k::{vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_repacked};
use crate::quant::q6_k::vec_dot_q6_k_q8_k;
use crate::quant::q8_0::vec_dot_q8_0_q8_0;

/// A row dot product: `(k, weight row bytes, activation row bytes)`.
pub type VecDot = fn(usize, &[u8], &[u8]) -> f32;

/// The dot product [`matmul`] uses for a `dtype` weight row held as
/// `usage`, with a row in `dtype.act_format()`.
///
/// Only Q4_0 and Q4_K depend on `usage`: llama.cpp's x86 CPU backend
/// repacks those projection weights into 8-row interleaved blocks and
/// multiplies them with `ggml_gemv_*_8x8_*`, whose per-row summation order
/// differs from `ggml_vec_dot_*`, the order of every other weight and of a
/// tied token embedding (which stays in plain rows). llama.cpp repacks
/// only when the tensor's row count is a multiple of 8, which holds for
/// the projections of every real model; since [`matmul`] may be called on
/// any chunk of rows (streaming), the choice follows `usage`, not `rows`.
pub fn vec_dot_fn(dtype: DType, usage: WeightUse) -> VecDot {
    match (dtype, usage) {
        (DType::F32, _) => vec_dot_f32,
        (DType::F16, _) => vec_dot_f16,
        (DType::BF16, _) => vec_dot_bf16,
        (DType::Q8_0, _) => vec_dot_q8_0_q8_0,
        (DType::Q4_0, WeightUse::Projection) => vec_dot_q4_0_q8_0_repacked,
        (DType::Q4_0, WeightUse::TiedEmbedding) => vec_dot_q4_0_q8_0,
        (DType::Q4_1, _) => vec_dot_q4_1_q8_1,
        (DType::Q4K, WeightUse::Projection) => vec_dot_q4_k_q8_k_repacked,
        (DType::Q4K, WeightUse::TiedEmbedding) => vec_dot_q4_k_q8_k,
        (DType::Q6K, _) => vec_dot_q6_k_q8_k,
    }
}

/// `out[t * ld_out + r] = dot(w[r], act[t])` for `r < rows`, `t < n_tok`
/// (see [`phi_edge::Kernels::matmul`]).
///
/// Each weight row is read once and multiplied with every token before the
/// next row, with the dot product [`vec_dot_fn`] picks for
/// `(dtype, usage)`. `w` and `act` may be longer than needed; only the
/// first `rows` / `n_tok` rows are read. With `k == 0` every dot product
/// is 0.
///
/// Panics if `k` is not a whole number of blocks, a slice is too short, or
/// `ld_out < rows` with more than one token.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    dtype: DType,
    usage: WeightUse,
    w: &[u8],
    k: usize,
    rows: usize,
    act: &[u8],
    n_tok: usize,
    out: &mut [f32],
    ld_out: usize,
) {
    let proj = usage == WeightUse::Projection;
    let args = (w, k, rows, act, n_tok, out, ld_out);
    match dtype {
        DType::F32 => run_rows(dtype, |w, a| vec_dot_f32(k, w, a), args),
        DType::F16 => run_rows(dtype, |w, a| vec_dot_f16(k, w, a), args),
        DType::BF16 => run_rows(dtype, |w, a| vec_dot_bf16(k, w, a), args),
        DType::Q8_0 => run_rows(dtype, |w, a| vec_dot_q8_0_q8_0(k, w, a), args),
        DType::Q4_0 if proj => run_rows(dtype, |w, a| vec_dot_q4_0_q8_0_repacked(k, w, a), args),
        DType::Q4_0 => run_rows(dtype, |w, a| vec_dot_q4_0_q8_0(k, w, a), args),
        DType::Q4_1 => run_rows(dtype, |w, a| vec_dot_q4_1_q8_1(k, w, a), args),
        DType::Q4K if proj => run_rows(dtype, |w, a| vec_dot_q4_k_q8_k_repacked(k, w, a), args),
        DType::Q4K => run_rows(dtype, |w, a| vec_dot_q4_k_q8_k(k, w, a), args),
        DType::Q6K => run_rows(dtype, |w, a| vec_dot_q6_k_q8_k(k, w, a), args),
    }
}

/// The arguments of [`matmul`] after `dtype` and `usage`, in order:
/// `(w, k, rows, act, n_tok, out, ld_out)`.
pub type MatmulArgs<'a> = (
    &'a [u8],
    usize,
    usize,
    &'a [u8],
    usize,
    &'a mut [f32],
    usize,
);

/// The matmul loop around one row dot product, shared by every kernel set:
/// checks the arguments as [`matmul`] documents (panicking with its
/// messages), then sets `out[t * ld_out + r] = dot(w[r], act[t])`, each
/// weight row read once for all tokens. `dot` gets exactly one weight row
/// (`dtype.row_bytes(k)` bytes) and one activation row (in
/// `dtype.act_format()`); with `k == 0` it is not called and the outputs
/// are 0.
///
/// Always inlined, so each kernel set's `dot` closure is monomorphized
/// into its own loop (and into a caller's `#[target_feature]` context).
#[inline(always)]
pub fn run_rows<F: Fn(&[u8], &[u8]) -> f32>(dtype: DType, dot: F, args: MatmulArgs<'_>) {
    let (w, k, rows, act, n_tok, out, ld_out) = args;
    let name = dtype.name();
    let w_row = dtype
        .row_bytes(k)
        .unwrap_or_else(|| panic!("matmul {name}: k = {k} is not a whole number of blocks"));
    let a_row = dtype.act_format().row_bytes(k).unwrap();
    if rows == 0 || n_tok == 0 {
        return;
    }
    assert!(
        n_tok == 1 || ld_out >= rows,
        "matmul {name}: ld_out {ld_out} < rows {rows}"
    );
    let out_len = (n_tok - 1) * ld_out + rows;
    assert!(
        out.len() >= out_len,
        "matmul {name}: out holds {} of {out_len} values",
        out.len()
    );
    assert!(
        w.len() >= rows * w_row,
        "matmul {name}: w holds {} of {} bytes",
        w.len(),
        rows * w_row
    );
    assert!(
        act.len() >= n_tok * a_row,
        "matmul {name}: act holds {} of {} bytes",
        act.len(),
        n_tok * a_row
    );
    if k == 0 {
        for t in 0..n_tok {
            out[t * ld_out..t * ld_out + rows].fill(0.0);
        }
        return;
    }
    for (r, wr) in w[..rows * w_row].chunks_exact(w_row).enumerate() {
        for (t, ar) in act[..n_tok * a_row].chunks_exact(a_row).enumerate() {
            out[t * ld_out + r] = dot(wr, ar);
        }
    }
}

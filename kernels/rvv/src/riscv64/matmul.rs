//! `matmul`: the per-type dot product over every (row, token) pair, each
//! weight row read once for all tokens.

use phi_edge::{DType, WeightUse};

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant;
use super::rvv::V;

/// `out[t * ld_out + r] = dot(w[r], act[t])` (see `Kernels::matmul`), with
/// the portable set's checks and its choice of summation order per
/// `(dtype, usage)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    v: V,
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
        DType::F32 => run(dtype, |w, a| dot_f32(v, k, w, a), args),
        DType::F16 => run(dtype, |w, a| dot_f16(v, k, w, a), args),
        DType::BF16 => run(dtype, |w, a| dot_bf16(v, k, w, a), args),
        DType::Q8_0 => run(dtype, |w, a| quant::q8_0(v, w, a), args),
        DType::Q4_0 if proj => run(dtype, |w, a| quant::q4_0_repacked(v, w, a), args),
        DType::Q4_0 => run(dtype, |w, a| quant::q4_0(v, w, a), args),
        DType::Q4_1 => run(dtype, |w, a| quant::q4_1(v, w, a), args),
        DType::Q4K if proj => run(dtype, |w, a| quant::q4_k_repacked(v, w, a), args),
        DType::Q4K => run(dtype, |w, a| quant::q4_k(v, w, a), args),
        DType::Q6K => run(dtype, |w, a| quant::q6_k(v, w, a), args),
    }
}

type Args<'a> = (
    &'a [u8],
    usize,
    usize,
    &'a [u8],
    usize,
    &'a mut [f32],
    usize,
);

/// The loop for one dot product, monomorphized per type. Each call of
/// `dot` gets exactly one weight row and one activation row.
#[inline(always)]
fn run<F: Fn(&[u8], &[u8]) -> f32>(dtype: DType, dot: F, args: Args<'_>) {
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

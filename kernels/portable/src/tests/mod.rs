//! Host tests of the portable kernels.
//!
//! - `layouts`: hand-built blocks with known dequantized values;
//! - `act`: activation quantizers, against hand values and round trips;
//! - `matmul`: every weight type against an f64 reference, integer-exact
//!   cases, and edge cases;
//! - `ops`: rms_norm, rope, swiglu, f32_to_f16, attention;
//! - `ggml`: bit-exact against outputs of llama.cpp's own C code.

mod act;
mod float;
mod ggml;
mod layouts;
mod matmul;
mod ops;

use std::vec;
use std::vec::Vec;

use phi_edge::kernels::{AttnArgs, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels, WeightUse};

use crate::Portable;

use crate::convert::{dequantize_act, dequantize_row};

/// f16 bits of `x` as bytes.
pub(crate) fn h(x: f32) -> [u8; 2] {
    crate::float::f32_to_f16(x).to_le_bytes()
}

/// Dequantizes a whole weight row of `k` values.
pub(crate) fn deq_w(dtype: DType, w: &[u8], k: usize) -> Vec<f32> {
    let mut out = vec![0.0; k];
    dequantize_row(dtype, w, &mut out);
    out
}

/// Dequantizes a whole activation row of `k` values.
pub(crate) fn deq_a(fmt: ActFormat, a: &[u8], k: usize) -> Vec<f32> {
    let mut out = vec![0.0; k];
    dequantize_act(fmt, a, &mut out);
    out
}

/// The f64 value a weight row times an activation row should have, and
/// the sum of the magnitudes of its terms (the scale for tolerances).
///
/// This is `sum_i w_i * a_i` over the dequantized rows, except that a
/// Q4_1 x Q8_1 dot uses each activation block's stored `s` (an f16 copy of
/// `d * sum(q)`) for the min term, as ggml does: the reference follows the
/// format, not the unrounded sum.
pub(crate) fn reference_dot(dtype: DType, w: &[u8], a: &[u8], k: usize) -> (f64, f64) {
    let wf = deq_w(dtype, w, k);
    let af = deq_a(dtype.act_format(), a, k);
    let mut sum = 0.0f64;
    let mut mag = 0.0f64;
    for (&x, &y) in wf.iter().zip(&af) {
        let t = f64::from(x) * f64::from(y);
        sum += t;
        mag += t.abs();
    }
    if dtype == DType::Q4_1 {
        for (wb, (ab, ablk)) in w
            .chunks_exact(20)
            .zip(a.chunks_exact(36).zip(af.chunks_exact(32)))
        {
            let m = f64::from(crate::quant::f16_le([wb[2], wb[3]]));
            let s = f64::from(crate::quant::f16_le([ab[2], ab[3]]));
            let exact: f64 = ablk.iter().map(|&v| f64::from(v)).sum();
            sum += m * (s - exact);
        }
    }
    (sum, mag)
}

/// `Portable.matmul` with the arguments spelled out:
/// `out[t * ld + r] = dot(w[r], a[t])`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mm(
    dtype: DType,
    usage: WeightUse,
    w: &[u8],
    k: usize,
    rows: usize,
    act: &[u8],
    n_tok: usize,
    out: &mut [f32],
    ld: usize,
) {
    let m = MatmulArgs {
        dtype,
        usage,
        w,
        k,
        rows,
        act,
        n_tok,
    };
    Portable.matmul(&m, &mut MatOut::new(out, rows, n_tok, ld));
}

/// `Portable.attention` with the arguments spelled out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attn(
    q: &[f32],
    k: &[F16Bits],
    v: &[F16Bits],
    stride: usize,
    n_kv: usize,
    scale: f32,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    Portable.attention(
        &AttnArgs {
            q,
            k,
            v,
            stride,
            n_kv,
            scale,
        },
        scratch,
        out,
    );
}

//! One attention head over an f16 KV cache, as llama.cpp computes it
//! without flash attention (`mul_mat(k, q)`, `soft_max_ext`,
//! `mul_mat(v, kq)`).

use phi_edge::kernels::F16Bits;

use crate::float::{f16_to_f32, round_f16};

/// Query values rounded per pass over the keys; head dims up to this are
/// done in one pass.
const Q_CHUNK: usize = 256;

/// Attention for one head (see [`phi_edge::Kernels::attention`]).
///
/// `head_dim = q.len() = out.len()`. Steps, each rounding as llama.cpp:
/// 1. `s_j = sum_d f16(q[d]) * k_j[d]`: exact f32 products of f16 values,
///    summed in f32 in `d` order;
/// 2. `s_j *= scale`; `max = max_j s_j`;
/// 3. `e_j = expf(s_j - max)`, `sum = sum_j e_j` in f64;
/// 4. `p_j = f16(e_j * f32(1 / sum))` (kept in `scratch` as f32);
/// 5. `out[d] = sum_j p_j * v_j[d]`, summed in f32 in `j` order.
///
/// Row `j` of `k` and `v` starts at `j * stride`. With `n_kv == 0` there is
/// nothing to attend to and `out` is set to zeros (the decoder always has
/// at least the current token, so this does not arise in practice).
///
/// Panics if `out.len() != q.len()`, `scratch` holds fewer than `n_kv`
/// values, or `k` / `v` are too short for `n_kv` rows.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[F16Bits],
    v: &[F16Bits],
    stride: usize,
    n_kv: usize,
    scale: f32,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    assert!(
        out.len() == hd,
        "attention: out has {} values, head_dim is {hd}",
        out.len()
    );
    if n_kv == 0 {
        out.fill(0.0);
        return;
    }
    let need = (n_kv - 1) * stride + hd;
    assert!(
        k.len() >= need,
        "attention: k holds {} of {need} values",
        k.len()
    );
    assert!(
        v.len() >= need,
        "attention: v holds {} of {need} values",
        v.len()
    );
    assert!(
        scratch.len() >= n_kv,
        "attention: scratch holds {} of {n_kv}",
        scratch.len()
    );
    let p = &mut scratch[..n_kv];

    // Scores. Accumulating chunk by chunk into `p[j]` keeps each sum in `d`
    // order, so the chunking does not change the result.
    p.fill(0.0);
    let mut qh = [0.0f32; Q_CHUNK];
    let mut kh = [0.0f32; Q_CHUNK];
    for c0 in (0..hd).step_by(Q_CHUNK) {
        let c1 = hd.min(c0 + Q_CHUNK);
        let qc = &mut qh[..c1 - c0];
        for (r, &x) in qc.iter_mut().zip(&q[c0..c1]) {
            *r = round_f16(x);
        }
        let kc = &mut kh[..c1 - c0];
        for (j, s) in p.iter_mut().enumerate() {
            let row = &k[j * stride + c0..j * stride + c1];
            for (y, &b) in kc.iter_mut().zip(row) {
                *y = f16_to_f32(b);
            }
            let mut acc = *s;
            for (&a, &b) in qc.iter().zip(kc.iter()) {
                acc += a * b;
            }
            *s = acc;
        }
    }

    // Softmax.
    let mut max = f32::NEG_INFINITY;
    for s in p.iter_mut() {
        *s *= scale;
        max = if max > *s { max } else { *s };
    }
    let mut sum = 0.0f64;
    for s in p.iter_mut() {
        let e = libm::expf(*s - max);
        *s = e;
        sum += f64::from(e);
    }
    let inv = (1.0 / sum) as f32;
    for s in p.iter_mut() {
        *s = round_f16(*s * inv);
    }

    // Weighted sum of values.
    out.fill(0.0);
    for (j, &pj) in p.iter().enumerate() {
        let row = &v[j * stride..j * stride + hd];
        for (o, &b) in out.iter_mut().zip(row) {
            *o += pj * f16_to_f32(b);
        }
    }
}

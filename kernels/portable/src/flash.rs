//! One attention head over a Q8_0 KV cache, as llama.cpp's CPU flash
//! attention computes it for one query
//! (`ggml_compute_forward_flash_attn_ext_f16_one_chunk` in
//! `ggml-cpu/ops.cpp`; a quantized cache never takes its tiled or
//! KV-split paths, and a decode step's heads are independent, so the
//! result does not depend on llama.cpp's thread count).
//!
//! The pieces are public so that other kernel sets can vectorize some of
//! them and keep the rest: [`check_q8_args`], [`online_step`],
//! [`mad_q8_0`], [`finish`].

use phi_edge::kernels::AttnQ8Args;

use crate::expf::expf;
use crate::fma::fmaf;
use crate::quant::act::Q8_0_BYTES;
use crate::quant::q8_0::{q8_0_block, vec_dot_q8_0_q8_0};
use crate::quant::QK32;

/// Checks `a` against `out` as every kernel set must before it reads:
/// `out.len()` (the head width) a multiple of 32, `q` one head of Q8_0
/// blocks, `k` and `v` long enough for `n_kv` rows `stride` bytes apart.
/// Returns the bytes of one head's row.
///
/// Panics with a message naming the short operand (a caller bug).
pub fn check_q8_args(a: &AttnQ8Args<'_>, out: &[f32]) -> usize {
    let hd = out.len();
    assert!(
        hd % QK32 == 0,
        "attention_q8_0: head_dim {hd} is not a multiple of 32"
    );
    let row = hd / QK32 * Q8_0_BYTES;
    assert!(
        a.q.len() >= row,
        "attention_q8_0: q holds {} of {row} bytes",
        a.q.len()
    );
    if a.n_kv > 0 {
        let need = (a.n_kv - 1) * a.stride + row;
        assert!(
            a.k.len() >= need,
            "attention_q8_0: k holds {} of {need} bytes",
            a.k.len()
        );
        assert!(
            a.v.len() >= need,
            "attention_q8_0: v holds {} of {need} bytes",
            a.v.len()
        );
    }
    row
}

/// One step of ggml's online softmax for a (scaled, masked) score `s`,
/// given the running maximum `m`: when `s > m`, `m` becomes `s` and the
/// step returns `Some(expf(m_old - s))`, the factor for the accumulator
/// and the sum, with weight 1 for this row; otherwise it returns `None`
/// and the row's weight is [`expf`]`(s - m)`. Returns `(ms, vs)`: the
/// scale (1 when there is none) and the row's weight.
#[inline(always)]
pub fn online_step(m: &mut f32, s: f32) -> (Option<f32>, f32) {
    if s > *m {
        let ms = expf(*m - s);
        *m = s;
        (Some(ms), 1.0)
    } else {
        (None, expf(s - *m))
    }
}

/// `acc[d] += dequant(v)[d] * w` as ggml's `ggml_vec_mad_f32` on x86 AVX2
/// computes it after `dequantize_row_q8_0`: each value `q * d` (exact in
/// f32), fused with the multiply-add in the first `acc.len() & !31`
/// dimensions (eight-lane FMA), a plain multiply and add in the rest
/// (never, since the head width is a multiple of 32, but kept as ggml
/// has it).
#[inline(always)]
pub fn mad_q8_0(v: &[u8], w: f32, acc: &mut [f32]) {
    let fused = acc.len() & !31;
    for (i, (b, o)) in v
        .chunks_exact(Q8_0_BYTES)
        .zip(acc.chunks_exact_mut(QK32))
        .enumerate()
    {
        let (d, qs) = q8_0_block(b);
        for (y, &q) in o.iter_mut().zip(qs) {
            let x = f32::from(q as i8) * d;
            *y = if i * QK32 < fused {
                fmaf(x, w, *y)
            } else {
                *y + x * w
            };
        }
    }
}

/// The end of the head: `acc *= 1 / sum` (`0` when the sum is 0).
#[inline(always)]
pub fn finish(sum: f32, acc: &mut [f32]) {
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    for v in acc {
        *v *= inv;
    }
}

/// Attention for one head over a Q8_0 KV cache (see
/// [`phi_edge::Kernels::attention_q8_0`]), bit for bit as llama.cpp's x86
/// AVX2+FMA build computes its flash attention at batch size 1, with
/// `head_dim = out.len()`:
///
/// 1. `s = vec_dot_q8_0_q8_0(k_j, q) * scale + 0.0` for `j < n_kv` in
///    order (the `+ 0.0` is the causal mask of a visible cell; the cells
///    llama.cpp pads the KV length with are masked with `-inf` and
///    skipped);
/// 2. [`online_step`]: `M`, the scale `ms` of the accumulator
///    (`acc *= ms`, a plain multiply) and the weight `vs`;
/// 3. [`mad_q8_0`]: `acc += dequant(v_j) * vs`;
/// 4. `S = S * ms + vs` (unfused);
/// 5. [`finish`]: `out = acc * (1 / S)`.
///
/// Panics on inconsistent arguments ([`check_q8_args`]).
pub fn attention_q8_0(a: &AttnQ8Args<'_>, out: &mut [f32]) {
    let row = check_q8_args(a, out);
    let hd = out.len();
    out.fill(0.0);
    let (mut m, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    for j in 0..a.n_kv {
        let at = j * a.stride;
        let s = vec_dot_q8_0_q8_0(hd, &a.k[at..at + row], &a.q[..row]) * a.scale + 0.0;
        let (ms, vs) = online_step(&mut m, s);
        if let Some(ms) = ms {
            out.iter_mut().for_each(|v| *v *= ms);
        }
        mad_q8_0(&a.v[at..at + row], vs, out);
        sum = sum * ms.unwrap_or(1.0) + vs;
    }
    finish(sum, out);
}

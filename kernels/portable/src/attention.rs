//! One attention head over an f16 KV cache, as llama.cpp's x86 AVX2 build
//! computes it for one query without flash attention (`mul_mat(k, q)`,
//! `soft_max_ext`, `mul_mat(v, kq)` with V stored transposed).

use core::ops::Range;

use phi_edge::kernels::{AttnArgs, F16Bits};

use crate::activation::v_expf;
use crate::float::{dot_f16_row, f16_to_f32, hsum8, reduce_hadd, round_f16, LANES};

/// llama.cpp pads the number of KV cells an attention graph spans to a
/// multiple of this (`llama_kv_cache::get_n_kv`: `max(n_pad, 256)`, and
/// `n_pad` is 1 without flash attention).
pub const KV_PAD: usize = 256;

/// Output dimensions accumulated together in the value pass.
const D_CHUNK: usize = 16;

/// The KV length llama.cpp attends over when `n_kv` cells are in use:
/// `n_kv` rounded up to a multiple of [`KV_PAD`].
///
/// `get_n_kv` returns `min(kv_size, max(256, pad(used_max_p1, 256)))`, and
/// every llama.cpp KV cache size is a multiple of 256 (the context is
/// padded to 256, and so is the SWA cache), so the `min` never binds and
/// the context size does not matter. This assumes the cells in use are
/// `0..n_kv` (one sequence decoded from an empty cache).
pub fn padded_kv_len(n_kv: usize) -> usize {
    n_kv.div_ceil(KV_PAD) * KV_PAD
}

/// `MAX(a, b)` as ggml's macro: `a > b ? a : b`.
#[inline(always)]
fn ggml_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The first step of [`soft_max`], shared by every kernel set: `s_j *=
/// scale` in place, and the maximum `max = MAX(max, s_j)` in order from
/// `-inf`, then with the `-inf` padding cells when there are any (so a NaN
/// score decides the result exactly as in ggml's scalar loop).
#[inline(always)]
pub fn scale_and_max(s: &mut [f32], scale: f32) -> f32 {
    let n_kv = s.len();
    let mut max = f32::NEG_INFINITY;
    for v in s.iter_mut() {
        *v *= scale;
        max = ggml_max(max, *v);
    }
    if padded_kv_len(n_kv) > n_kv {
        max = ggml_max(max, f32::NEG_INFINITY);
    }
    max
}

/// `sum` plus the softmax denominators of the groups of 8 cells that hold
/// only padding (after the `n_kv.div_ceil(8)` groups that hold scores),
/// each [`hsum8`] of eight `pad_e`, added one group at a time as
/// [`soft_max`] does.
#[inline(always)]
pub fn add_pad_groups(mut sum: f64, n_kv: usize, pad_e: f32) -> f64 {
    let groups = n_kv.div_ceil(8)..padded_kv_len(n_kv) / 8;
    if !groups.is_empty() {
        let pad8 = f64::from(hsum8(&[pad_e; 8]));
        for _ in groups {
            sum += pad8;
        }
    }
    sum
}

/// The argument checks of [`attention`], shared by every kernel set: the
/// first `n_kv` values of `scratch` (for the scores), or `None` with `out`
/// set to zeros when `n_kv == 0`.
///
/// Panics, with [`attention`]'s messages, if `out.len() != q.len()`,
/// `scratch` holds fewer than `n_kv` values, or `k` / `v` are too short
/// for `n_kv` rows of `q.len()` values `stride` apart.
#[inline(always)]
pub fn checked_scores<'s>(
    a: &AttnArgs<'_>,
    scratch: &'s mut [f32],
    out: &mut [f32],
) -> Option<&'s mut [f32]> {
    let AttnArgs {
        q,
        k,
        v,
        stride,
        n_kv,
        ..
    } = *a;
    let hd = q.len();
    assert!(
        out.len() == hd,
        "attention: out has {} values, head_dim is {hd}",
        out.len()
    );
    if n_kv == 0 {
        out.fill(0.0);
        return None;
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
    Some(&mut scratch[..n_kv])
}

/// `ggml_compute_forward_soft_max_f32` on one row of scores `s` (in place)
/// extended by `padded_kv_len(s.len()) - s.len()` padding cells that the
/// KQ mask sets to `-inf`, as llama.cpp's x86 AVX2+FMA build computes it;
/// returns the probability of a padding cell (zero unless all scores are
/// `-inf` or NaN).
///
/// `s_j * scale` (`ggml_vec_scale_f32`; the mask then adds `0`, which
/// changes no result); `max = MAX(max, s_j)` in order; `e_j = v_expf(s_j -
/// max)` over all padded cells, a multiple of 8, so every value takes the
/// SIMD path ([`v_expf`], never libm's `expf`), and each group of 8 is
/// summed as [`hsum8`] into an f64 `sum`; finally `p_j = e_j * f32(1 /
/// sum)`.
pub fn soft_max(s: &mut [f32], scale: f32) -> f32 {
    let max = scale_and_max(s, scale);
    let pad_e = v_expf(f32::NEG_INFINITY - max);
    let mut sum = 0.0f64;
    for c in s.chunks_mut(8) {
        let mut lanes = [pad_e; 8];
        for (l, v) in lanes.iter_mut().zip(c.iter_mut()) {
            *v = v_expf(*v - max);
            *l = *v;
        }
        sum += f64::from(hsum8(&lanes));
    }
    let sum = add_pad_groups(sum, s.len(), pad_e);
    let inv = (1.0 / sum) as f32;
    for v in s.iter_mut() {
        *v *= inv;
    }
    pad_e * inv
}

/// Attention for one head (see [`phi_edge::Kernels::attention`]), bit for
/// bit as llama.cpp's x86 AVX2+FMA+F16C build computes it at batch size 1.
///
/// llama.cpp spans `n_pad = padded_kv_len(n_kv)` cells; the `n_pad - n_kv`
/// padding cells are masked with `-inf` and their (zero-initialized) V
/// rows still enter the sums. With `head_dim = q.len() = out.len()`:
/// 1. `s_j = ggml_vec_dot_f16(k_j, f16(q))` (see
///    [`crate::float::vec_dot_f16`]);
/// 2. softmax of `s_j * scale` over the padded row as [`soft_max`]: the
///    SIMD `v_expf` for every cell, groups of 8 summed into an f64;
/// 3. `p_j` rounded to f16 (kept in `scratch` as f32);
/// 4. `out[d] = ggml_vec_dot_f16(v[.][d], p)` over the `n_pad` cells, a
///    multiple of 32, so all in the 32 f32 lanes (lane `j % 32`).
///
/// Row `j` of `k` and `v` starts at `j * stride`. `out` holds the f16
/// query until the value pass. With `n_kv == 0` there is nothing to attend
/// to and `out` is set to zeros (the decoder always has at least the
/// current token, so this does not arise in practice).
///
/// Panics if `out.len() != q.len()`, `scratch` holds fewer than `n_kv`
/// values, or `k` / `v` are too short for `n_kv` rows.
pub fn attention(a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
    let Some(p) = checked_scores(a, scratch, out) else {
        return;
    };
    let AttnArgs {
        q,
        k,
        v,
        stride,
        scale,
        ..
    } = *a;
    let hd = q.len();

    // Scores, with the f16 query parked in `out`.
    for (o, &x) in out.iter_mut().zip(q) {
        *o = round_f16(x);
    }
    for (j, s) in p.iter_mut().enumerate() {
        *s = dot_f16_row(&k[j * stride..j * stride + hd], out);
    }

    // Softmax, then the f16 rounding of `mul_mat(v, kq)`'s conversion.
    let pad_p = soft_max(p, scale);
    for s in p.iter_mut() {
        *s = round_f16(*s);
    }
    value_pass(p, v, stride, pad_p, 0..hd, out);
}

/// The value pass of [`attention`] for the output dimensions `dims`:
/// `out[d] = ggml_vec_dot_f16(v[.][d], p)` over the `padded_kv_len(n_kv)`
/// cells, cell `j` in lane `j % 32`, the lanes reduced as [`reduce_hadd`];
/// `p` holds the f16-rounded probabilities of the `n_kv = p.len()` cells,
/// `pad_p` that of a padding cell (whose V rows are zero), row `j` of `v`
/// starts at `j * stride`. Each dimension's result depends on that
/// dimension alone, so a kernel set may vectorize some and leave the rest
/// to this.
pub fn value_pass(
    p: &[f32],
    v: &[F16Bits],
    stride: usize,
    pad_p: f32,
    dims: Range<usize>,
    out: &mut [f32],
) {
    let n_kv = p.len();
    // V is zero in the padding cells, so each adds `0 * p_pad` to its lane;
    // adding that same value again changes nothing, so one pass over the
    // first 32 padding cells reaches every lane they touch.
    let pad_term = 0.0 * round_f16(pad_p);
    let pad_cells = n_kv..padded_kv_len(n_kv).min(n_kv + LANES);

    // Weighted sum of values, D_CHUNK output dimensions at a time.
    for d0 in dims.clone().step_by(D_CHUNK) {
        let dc = D_CHUNK.min(dims.end - d0);
        let mut acc = [[0.0f32; LANES]; D_CHUNK];
        for (j, &pj) in p.iter().enumerate() {
            let row = &v[j * stride + d0..j * stride + d0 + dc];
            for (a, &b) in acc.iter_mut().zip(row) {
                a[j % LANES] += pj * f16_to_f32(b);
            }
        }
        for j in pad_cells.clone() {
            for a in &mut acc[..dc] {
                a[j % LANES] += pad_term;
            }
        }
        for (o, a) in out[d0..d0 + dc].iter_mut().zip(&acc) {
            *o = reduce_hadd(a);
        }
    }
}

//! One attention head over the f16 KV cache, bit-identical to the
//! portable set (llama.cpp's x86 AVX2 order over the KV length padded to
//! 256).

use phi_edge::kernels::{AttnArgs, F16Bits};
use phi_edge_portable::activation::v_expf;
use phi_edge_portable::attention::{add_pad_groups, checked_scores, padded_kv_len, scale_and_max};
use phi_edge_portable::float::{hsum8, reduce_hadd, round_f16};

use super::elementwise::{exp_minus, scale_in_place};
use super::float::{dot_f16_row, round_f16_in_place};
use super::rvv::{vlenb, V};

/// Lanes of the value pass: cell `j` accumulates into lane `j % 32`.
const LANES: usize = 32;

/// Output dimensions of one value-pass chunk at most (the lane buffer
/// holds `LANES * MAX_DC` values on the stack).
const MAX_DC: usize = 64;

/// The oracle's softmax over `s` plus its `-inf` padding cells (see the
/// portable `soft_max`); returns the probability of a padding cell. The
/// exponentials and the final scaling are vector code; the max (whose
/// NaN behaviour depends on order) and the f64 sums of groups of 8 are the
/// oracle's scalar loops.
fn soft_max(v: V, s: &mut [f32], scale: f32) -> f32 {
    let max = scale_and_max(s, scale);
    let pad_e = v_expf(f32::NEG_INFINITY - max);
    exp_minus(v, s, max);
    let mut sum = 0.0f64;
    for c in s.chunks(8) {
        let mut lanes = [pad_e; 8];
        lanes[..c.len()].copy_from_slice(c);
        sum += f64::from(hsum8(&lanes));
    }
    let sum = add_pad_groups(sum, s.len(), pad_e);
    let inv = (1.0 / sum) as f32;
    scale_in_place(v, s, inv);
    pad_e * inv
}

/// Lane `l` of the value pass for `dc` output dimensions: into `acc`,
/// `sum_j p[j] * v_j[d]` over the cells `j = l, l + 32, ..` in order
/// (`rows` of them, the first at `v[0..]`, then every `step` values), plus
/// `pad` when `pad_lane`.
#[allow(clippy::too_many_arguments)]
fn value_lane(
    _v: V,
    v: &[F16Bits],
    step: usize,
    rows: usize,
    p: &[f32],
    pad_lane: bool,
    pad: f32,
    acc: &mut [f32],
) {
    let dc = acc.len();
    assert!(dc > 0 && p.len() >= rows.saturating_sub(1) * LANES + usize::from(rows > 0));
    assert!(rows == 0 || v.len() >= (rows - 1) * step + dc);
    // SAFETY: `V` proves the CPU has V; `vl = dc`, which the caller keeps
    // within VLMAX at SEW 32, LMUL 4 (`vlenb` values). Row `i < rows` reads
    // `v[i * step..][..dc]` and `p[32 i]`, inside the slices (checked);
    // `acc` (`dc` values) is written.
    unsafe {
        vasm!(f16in
            [
                "vsetvli zero, {dc}, e32, m4, ta, ma",
                "vmv.v.i v24, 0",
                "beqz {n}, 2f",
                "1:",
                "vle16.v v4, ({v})",
                "vzext.vf2 v16, v4",
                f16_to_f32!("v16", "v20", "v8"),
                "flw {fp}, 0({p})",
                "vfmacc.vf v24, {fp}, v8",
                "add {v}, {v}, {vstep}",
                "addi {p}, {p}, 128",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
                "2:",
                "beqz {padl}, 3f",
                "vfadd.vf v24, v24, {fpad}",
                "3:",
                "vse32.v v24, ({acc})",
            ],
            v = inout(reg) v.as_ptr() => _,
            p = inout(reg) p.as_ptr() => _,
            n = inout(reg) rows => _,
            vstep = in(reg) 2 * step,
            dc = in(reg) dc,
            padl = in(reg) usize::from(pad_lane),
            fpad = in(freg) pad,
            acc = in(reg) acc.as_mut_ptr(),
            fp = out(freg) _,
        );
    }
}

/// Attention for one head (see `Kernels::attention` and the portable
/// `attention`): f16 query, scores with the 32-lane f16 dot, the padded
/// softmax, probabilities rounded to f16, then the value pass: per chunk
/// of up to `min(VLMAX, 64)` output dimensions and per lane `l < 32`, the
/// cells `j = l (mod 32)` accumulate in a vector over the dimensions, in
/// cell order as the oracle's lane `l`; the 32 lanes are then reduced per
/// dimension as `GGML_F32x8_REDUCE`.
pub(crate) fn attention(vt: V, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
    let Some(p) = checked_scores(a, scratch, out) else {
        return;
    };
    let AttnArgs {
        q,
        k,
        v,
        stride,
        n_kv,
        scale,
    } = *a;
    let hd = q.len();
    let n_pad = padded_kv_len(n_kv);

    // Scores, with the f16 query parked in `out`.
    out.copy_from_slice(q);
    round_f16_in_place(vt, out);
    for (j, s) in p.iter_mut().enumerate() {
        *s = dot_f16_row(vt, &k[j * stride..j * stride + hd], out);
    }

    let pad_p = soft_max(vt, p, scale);
    round_f16_in_place(vt, p);
    let pad_term = 0.0 * round_f16(pad_p);
    let pad_end = n_pad.min(n_kv + LANES);

    // Value pass.
    let max_dc = vlenb(vt).min(MAX_DC);
    let mut lanes = [0.0f32; LANES * MAX_DC];
    let mut d0 = 0;
    while d0 < hd {
        let dc = max_dc.min(hd - d0);
        for l in 0..LANES {
            let rows = if l < n_kv {
                (n_kv - 1 - l) / LANES + 1
            } else {
                0
            };
            // The padding cells n_kv..pad_end each touch one lane, once.
            let pad_lane = (n_kv..pad_end).any(|j| j % LANES == l);
            let vv = if rows > 0 {
                &v[l * stride + d0..]
            } else {
                &v[..0]
            };
            let pl = if rows > 0 { &p[l..] } else { &p[..0] };
            value_lane(
                vt,
                vv,
                LANES * stride,
                rows,
                pl,
                pad_lane,
                pad_term,
                &mut lanes[l * MAX_DC..l * MAX_DC + dc],
            );
        }
        // GGML_F32x8_REDUCE per dimension: lanes l, l + 8, l + 16, l + 24.
        for (d, o) in out[d0..d0 + dc].iter_mut().enumerate() {
            *o = reduce_hadd(&core::array::from_fn(|l| lanes[l * MAX_DC + d]));
        }
        d0 += dc;
    }
}

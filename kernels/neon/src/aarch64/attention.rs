//! One attention head over the f16 KV cache, bit-identical to the
//! portable set (llama.cpp's x86 AVX2 order over the KV length padded to
//! 256).

use core::arch::aarch64::*;

use phi_edge::kernels::AttnArgs;
use phi_edge_portable::attention::{
    add_pad_groups, checked_scores, padded_kv_len, scale_and_max, value_pass,
};
use phi_edge_portable::float::round_f16;

use super::elementwise::v_expf;
use super::float::dot_f16_row;
use super::simd::{f16x4_to_f32, hsum_float_8, ld_f32, ld_u16x4, round_f16x4, st_f32};

/// Lanes of the value pass: cell `j` accumulates into lane `j % 32`.
const LANES: usize = 32;

/// The oracle's softmax over `s` plus its `-inf` padding cells (see the
/// portable `soft_max`); returns the probability of a padding cell.
#[target_feature(enable = "neon")]
fn soft_max(s: &mut [f32], scale: f32) -> f32 {
    let n_kv = s.len();
    let max = scale_and_max(s, scale);
    let pad_e = vgetq_lane_f32::<0>(v_expf(vdupq_n_f32(f32::NEG_INFINITY - max)));
    let vmax = vdupq_n_f32(max);
    let mut sum = 0.0f64;
    for c in s.chunks_mut(8) {
        let mut lanes = [pad_e; 8];
        lanes[..c.len()].copy_from_slice(c);
        let (l0, l1) = lanes.split_at_mut(4);
        let (l0, l1): (&mut [f32; 4], &mut [f32; 4]) =
            (l0.try_into().unwrap(), l1.try_into().unwrap());
        let e0 = v_expf(vsubq_f32(ld_f32(l0), vmax));
        let e1 = v_expf(vsubq_f32(ld_f32(l1), vmax));
        st_f32(l0, e0);
        st_f32(l1, e1);
        let n = c.len();
        c.copy_from_slice(&lanes[..n]);
        lanes[n..].fill(pad_e);
        let (l0, l1) = lanes.split_at(4);
        sum += f64::from(hsum_float_8(
            ld_f32(l0.try_into().unwrap()),
            ld_f32(l1.try_into().unwrap()),
        ));
    }
    let sum = add_pad_groups(sum, n_kv, pad_e);
    let inv = (1.0 / sum) as f32;
    let vinv = vdupq_n_f32(inv);
    let n4 = n_kv & !3;
    for c in s[..n4].chunks_exact_mut(4) {
        let c: &mut [f32; 4] = c.try_into().unwrap();
        st_f32(c, vmulq_f32(ld_f32(c), vinv));
    }
    for v in &mut s[n4..] {
        *v *= inv;
    }
    pad_e * inv
}

/// Attention for one head (see `Kernels::attention` and the portable
/// `attention`): f16 query, scores with the 32-lane f16 dot, the padded
/// softmax, probabilities rounded to f16, then the value pass with cell
/// `j` in lane `j % 32`, vectorized across four output dimensions at a
/// time.
#[target_feature(enable = "neon")]
pub(crate) fn attention(a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
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
    let hd4 = hd & !3;
    for (o, c) in out[..hd4].chunks_exact_mut(4).zip(q[..hd4].chunks_exact(4)) {
        st_f32(
            o.try_into().unwrap(),
            round_f16x4(ld_f32(c.try_into().unwrap())),
        );
    }
    for (o, &x) in out[hd4..].iter_mut().zip(&q[hd4..]) {
        *o = round_f16(x);
    }
    for (j, s) in p.iter_mut().enumerate() {
        *s = dot_f16_row(&k[j * stride..j * stride + hd], out);
    }

    let pad_p = soft_max(p, scale);
    let n4 = n_kv & !3;
    for c in p[..n4].chunks_exact_mut(4) {
        let c: &mut [f32; 4] = c.try_into().unwrap();
        st_f32(c, round_f16x4(ld_f32(c)));
    }
    for s in &mut p[n4..] {
        *s = round_f16(*s);
    }
    let pad_term = 0.0 * round_f16(pad_p);
    let pad_cells = n_kv..n_pad.min(n_kv + LANES);

    // Value pass, four output dimensions at a time: acc[l] holds lane l of
    // the 32-lane sums of those dimensions.
    for d0 in (0..hd4).step_by(4) {
        let mut acc = [vdupq_n_f32(0.0); LANES];
        for (j, &pj) in p.iter().enumerate() {
            let row: &[u16; 4] = v[j * stride + d0..j * stride + d0 + 4].try_into().unwrap();
            let a = &mut acc[j % LANES];
            *a = vfmaq_n_f32(*a, f16x4_to_f32(ld_u16x4(row)), pj);
        }
        let pt = vdupq_n_f32(pad_term);
        for j in pad_cells.clone() {
            acc[j % LANES] = vaddq_f32(acc[j % LANES], pt);
        }
        // GGML_F32x8_REDUCE per dimension: lanes l, l + 8, l + 16, l + 24.
        let vl: [float32x4_t; 8] = core::array::from_fn(|l| {
            vaddq_f32(
                vaddq_f32(acc[l], acc[16 + l]),
                vaddq_f32(acc[8 + l], acc[24 + l]),
            )
        });
        let t: [float32x4_t; 4] = core::array::from_fn(|i| vaddq_f32(vl[i], vl[4 + i]));
        let r = vaddq_f32(vaddq_f32(t[0], t[1]), vaddq_f32(t[2], t[3]));
        st_f32((&mut out[d0..d0 + 4]).try_into().unwrap(), r);
    }
    // The last `hd % 4` dimensions, as the portable set.
    value_pass(p, v, stride, pad_p, hd4..hd, out);
}

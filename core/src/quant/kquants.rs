//! The 256-value super-block formats Q4_K and Q6_K, as ggml's reference
//! quantizers (`quantize_row_q4_K_ref`, `quantize_row_q6_K_ref`, with
//! their helpers `make_qkx2_quants` and `make_qx_quants`) write them: the
//! same search for scales and minimums, the same float operations in the
//! same order, so every byte matches.

use super::floats::{fp16_to_fp32, fp32_to_fp16};
use super::{nearest_int, signed_max};

/// Values per super-block.
pub const QK_K: usize = 256;

/// Below this a group's largest magnitude counts as zero (ggml's
/// `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

/// Scale and minimum for `x` with levels `0..=nmax`, weighted by `w`:
/// start from the min/max fit, then try `nstep + 1` other scales and keep
/// the one of least weighted squared error after a least-squares refit.
/// Writes the levels to `l` and returns `(scale, -min)`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    x: &[f32; 32],
    w: &[f32; 32],
    nmax: i32,
    l: &mut [u8],
    laux: &mut [u8; 32],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..32 {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..32].fill(0);
        return (0.0, -min);
    }
    let fmax = nmax as f32;
    let mut iscale = fmax / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..32 {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + fmax) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..32 {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let lf = q as f32;
            sum_l += w[i] * lf;
            sum_l2 += w[i] * lf * lf;
            sum_xl += w[i] * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..32 {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if cur_error < best_error {
                l[..32].copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The 6-bit scale of `x` (16 values, levels `-nmax..nmax`, weights
/// `x^2`): the amax fit, then 18 nearby scales, keeping the best
/// least-squares one. Writes `level + nmax` to `l`.
fn make_qx_quants(x: &[f32], nmax: i32, l: &mut [u8]) -> f32 {
    let (max, amax) = signed_max(x);
    if amax < GROUP_MAX_EPS {
        l[..x.len()].fill(0);
        return 0.0;
    }
    let fmax = nmax as f32;
    let mut iscale = -fmax / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (i, &v) in x.iter().enumerate() {
        let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        l[i] = (q + nmax) as u8;
        let w = v * v;
        let qf = q as f32;
        sumlx += w * v * qf;
        suml2 += w * qf * qf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9i32 {
        if is == 0 {
            continue;
        }
        iscale = -(fmax + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            let w = v * v;
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &v) in x.iter().enumerate() {
                let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
                l[i] = (q + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Scale and minimum `j` (0..8) of a Q4_K block's packed 6-bit pairs.
#[inline]
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// One Q4_K block: `d: f16`, `dmin: f16`, `scales: [u8; 12]`,
/// `qs: [u8; 128]`; eight groups of 32 with 6-bit scales and minimums.
pub fn q4_k_block(x: &[f32; QK_K], out: &mut [u8; 144]) {
    let mut levels = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; 8];
    let mut scales = [0.0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let mut xs = [0.0f32; 32];
        xs.copy_from_slice(&x[32 * j..32 * j + 32]);
        let mut sum_x2 = 0.0f32;
        for &v in &xs {
            sum_x2 += v * v;
        }
        let av_x = libm::sqrtf(sum_x2 / 32.0);
        for (w, &v) in weights.iter_mut().zip(&xs) {
            *w = av_x + v.abs();
        }
        let (scale, min) = make_qkx2_quants(
            &xs,
            &weights,
            15,
            &mut levels[32 * j..],
            &mut laux,
            -1.0,
            0.1,
            20,
        );
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut sc = [0u8; 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    let d = fp32_to_fp16(max_scale / 63.0);
    let dmin = fp32_to_fp16(max_min / 63.0);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &sc);
        let dj = fp16_to_fp32(d) * s as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = fp16_to_fp32(dmin) * m as f32;
        for i in 0..32 {
            let q = nearest_int((x[32 * j + i] + dm) / dj).clamp(0, 15);
            levels[32 * j + i] = q as u8;
        }
    }
    out[..2].copy_from_slice(&d.to_le_bytes());
    out[2..4].copy_from_slice(&dmin.to_le_bytes());
    out[4..16].copy_from_slice(&sc);
    let qs = &mut out[16..];
    for (c, chunk) in levels.chunks_exact(64).enumerate() {
        for i in 0..32 {
            qs[32 * c + i] = chunk[i] | (chunk[i + 32] << 4);
        }
    }
}

/// One Q6_K block: `ql: [u8; 128]`, `qh: [u8; 64]`, `scales: [i8; 16]`,
/// `d: f16`; sixteen groups of 16 with 8-bit scales.
pub fn q6_k_block(x: &[f32; QK_K], out: &mut [u8; 210]) {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    for (ib, s) in scales.iter_mut().enumerate() {
        *s = make_qx_quants(&x[16 * ib..16 * ib + 16], 32, &mut levels[16 * ib..]);
    }
    let (max_scale, max_abs_scale) = signed_max(&scales);
    if max_abs_scale < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = fp32_to_fp16(1.0 / iscale);
    let mut sc = [0i8; 16];
    for (o, &s) in sc.iter_mut().zip(&scales) {
        *o = nearest_int(iscale * s).min(127) as i8;
    }
    for (j, &s) in sc.iter().enumerate() {
        let dj = fp16_to_fp32(d) * s as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 0..16 {
            let q = nearest_int(x[16 * j + i] / dj).clamp(-32, 31);
            levels[16 * j + i] = (q + 32) as u8;
        }
    }
    let (ql, rest) = out.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    for (h, lv) in levels.chunks_exact(128).enumerate() {
        let ql = &mut ql[64 * h..64 * h + 64];
        let qh = &mut qh[32 * h..32 * h + 32];
        for i in 0..32 {
            let (a, b, c, e) = (lv[i], lv[i + 32], lv[i + 64], lv[i + 96]);
            ql[i] = (a & 0xf) | ((c & 0xf) << 4);
            ql[i + 32] = (b & 0xf) | ((e & 0xf) << 4);
            qh[i] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
        }
    }
    for (o, &s) in rest[..16].iter_mut().zip(&sc) {
        *o = s as u8;
    }
    rest[16..18].copy_from_slice(&d.to_le_bytes());
}

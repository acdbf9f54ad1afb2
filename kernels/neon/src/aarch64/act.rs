//! Activation quantizers, byte-identical to the portable set: Q8_0 / Q8_1
//! with the x86 build's `127 / amax` and ties to even (`fcvtns`), Q8_K as
//! `quantize_row_q8_K_ref`, and f32 / f16 / bf16 rows.

use core::arch::aarch64::*;

use phi_edge::ActFormat;
use phi_edge_portable::convert::act_out;
use phi_edge_portable::float::quantize_row_f32;
use phi_edge_portable::quant::act::{
    q8_k_iscale, quantize_row_q8_0_with, quantize_row_q8_1_with, Q8_K_BYTES,
};

use super::float::{f32_to_bf16_bytes, f32_to_f16_bytes};
use super::simd::{ld_f32, st_u8};

/// Converts `x` to `fmt` in the first `fmt.row_bytes(x.len())` bytes of
/// `out` (see `Kernels::quantize_act`).
#[target_feature(enable = "neon")]
pub(crate) fn quantize_act(fmt: ActFormat, x: &[f32], out: &mut [u8]) {
    let out = act_out(fmt, x.len(), out);
    match fmt {
        ActFormat::F32 => quantize_row_f32(x, out),
        ActFormat::F16 => f32_to_f16_bytes(x, out),
        ActFormat::BF16 => f32_to_bf16_bytes(x, out),
        ActFormat::Q8_0 => quantize_row_q8_0_with(x, out, |xb, qs| q8_block(xb, qs)),
        ActFormat::Q8_1 => quantize_row_q8_1_with(x, out, |xb, qs| q8_block(xb, qs)),
        ActFormat::Q8K => {
            for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
                q8_k_block(xb.try_into().unwrap(), ob.try_into().unwrap());
            }
        }
    }
}

/// Eight f32x4 of a 32-value block.
#[target_feature(enable = "neon")]
#[inline]
fn load32(x: &[f32; 32]) -> [float32x4_t; 8] {
    core::array::from_fn(|j| ld_f32(x[4 * j..4 * j + 4].try_into().unwrap()))
}

/// Rounds `v * m` to nearest (ties to even) and narrows four groups of
/// four to 16 saturated i8.
#[target_feature(enable = "neon")]
#[inline]
fn round_narrow(v: &[float32x4_t], m: float32x4_t) -> int8x16_t {
    let q: [int32x4_t; 4] = core::array::from_fn(|j| vcvtnq_s32_f32(vmulq_f32(v[j], m)));
    let lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
    let hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
    vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi))
}

/// One Q8_0 / Q8_1 block as the x86 build: `d = amax / 127`,
/// `q = rint(x * (127 / amax))`; returns `d` and the sum of the quants,
/// or `None` (writing nothing) if a value is NaN or infinite, where the
/// order of ggml's max loop matters: the caller then runs the portable
/// quantizer.
#[target_feature(enable = "neon")]
fn q8_block(x: &[f32; 32], qs: &mut [u8; 32]) -> Option<(f32, i32)> {
    let v = load32(x);
    let mut m = vabsq_f32(v[0]);
    for &vj in &v[1..] {
        m = vmaxq_f32(m, vabsq_f32(vj));
    }
    let amax = vmaxvq_f32(m);
    if !amax.is_finite() {
        return None;
    }
    let d = amax / 127.0;
    let id = vdupq_n_f32(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q0 = round_narrow(&v[..4], id);
    let q1 = round_narrow(&v[4..], id);
    let (a, b) = qs.split_at_mut(16);
    st_u8(a.try_into().unwrap(), vreinterpretq_u8_s8(q0));
    st_u8(b.try_into().unwrap(), vreinterpretq_u8_s8(q1));
    let sum = i32::from(vaddlvq_s8(q0)) + i32::from(vaddlvq_s8(q1));
    Some((d, sum))
}

/// One Q8_K block (`quantize_row_q8_K_ref`).
#[target_feature(enable = "neon")]
fn q8_k_block(x: &[f32; 256], ob: &mut [u8; Q8_K_BYTES]) {
    let mut m = vdupq_n_f32(0.0);
    for c in x.chunks_exact(4) {
        m = vmaxq_f32(m, vabsq_f32(ld_f32(c.try_into().unwrap())));
    }
    let Some(iscale) = q8_k_iscale(x, vmaxvq_f32(m), ob) else {
        return;
    };
    let is = vdupq_n_f32(iscale);
    let cap = vdupq_n_s32(127);
    let (head, bsums) = ob.split_at_mut(4 + 256);
    for ((xc, qc), s) in x
        .chunks_exact(16)
        .zip(head[4..].chunks_exact_mut(16))
        .zip(bsums.chunks_exact_mut(2))
    {
        let q: [int32x4_t; 4] = core::array::from_fn(|j| {
            let v = ld_f32(xc[4 * j..4 * j + 4].try_into().unwrap());
            vminq_s32(vcvtnq_s32_f32(vmulq_f32(is, v)), cap)
        });
        let lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
        let hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
        let q8 = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
        st_u8(qc.try_into().unwrap(), vreinterpretq_u8_s8(q8));
        s.copy_from_slice(&vaddlvq_s8(q8).to_le_bytes());
    }
    head[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

//! The 32-value block formats: Q4_0, Q4_1 and Q8_0, as ggml's reference
//! quantizers (`quantize_row_q4_0_ref`, `_q4_1_ref`, `_q8_0_ref`) write
//! them. Those are what `llama_model_quantize` calls for these types when
//! there is no importance matrix.
//!
//! The float-to-integer conversions follow the x86-64 build of the oracle:
//! a value outside `i32` (only reachable when a block's values are so tiny
//! that the reciprocal scale overflows to infinity) converts to
//! `i32::MIN`, of which the low byte is kept.

use super::floats::fp32_to_fp16;
use super::{amax, signed_max};

/// Values per block.
pub const QK: usize = 32;

/// C's `(int32_t)v` as x86's `cvttss2si` computes it: truncation toward
/// zero, `i32::MIN` for NaN and out-of-range values.
#[inline]
pub(crate) fn cvtt_i32(v: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// ggml's `MIN(15, (int8_t)v)` stored as `uint8_t`.
#[inline]
fn nibble(v: f32) -> u8 {
    let b = cvtt_i32(v) as i8;
    b.min(15) as u8
}

/// One Q4_0 block: `d = max / -8` (max: the value of largest magnitude),
/// `q = min(15, trunc(x / d + 8.5))`.
pub fn q4_0_block(x: &[f32; QK], out: &mut [u8; 18]) {
    let (max, _) = signed_max(x);
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
    for j in 0..QK / 2 {
        let lo = nibble(x[j] * id + 8.5);
        let hi = nibble(x[j + QK / 2] * id + 8.5);
        out[2 + j] = lo | (hi << 4);
    }
}

/// One Q4_1 block: `d = (max - min) / 15`, `m = min`,
/// `q = min(15, trunc((x - min) / d + 0.5))`.
pub fn q4_1_block(x: &[f32; QK], out: &mut [u8; 20]) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
    out[2..4].copy_from_slice(&fp32_to_fp16(min).to_le_bytes());
    for j in 0..QK / 2 {
        let lo = nibble((x[j] - min) * id + 0.5);
        let hi = nibble((x[j + QK / 2] - min) * id + 0.5);
        out[4 + j] = lo | (hi << 4);
    }
}

/// One Q8_0 block: `d = amax / 127`, `q = round(x / d)` (half away from
/// zero).
pub fn q8_0_block(x: &[f32; QK], out: &mut [u8; 34]) {
    let d = amax(x) / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
    for (o, &v) in out[2..].iter_mut().zip(x) {
        *o = cvtt_i32(libm::roundf(v * id)) as u8;
    }
}

//! Seeded random inputs: weight rows and activation vectors in several
//! flavors (ordinary, zero blocks, extreme scales, integer-exact, ...).

use std::vec;
use std::vec::Vec;

use phi_edge::DType;
use phi_edge_portable::float::{f32_to_f16, quantize_row_bf16, quantize_row_f16, quantize_row_f32};
use phi_edge_portable::testing::{random_weight_row, Rng};

/// How a weight matrix is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WFlavor {
    /// Model-like random rows (`phi_edge_portable::testing`).
    Random,
    /// Random rows with some blocks all zero (scale 0).
    ZeroBlocks,
    /// Block scales at the ends of f16: subnormal, 65504, and values far
    /// apart; float types with exponents spread over a wide range, and f16
    /// values near overflow; Q8_0 quants of -128 (which ggml's quantizer
    /// never writes but a file may hold: `|q|` is then 128 as u8).
    Extreme,
    /// Scales of exactly 1 and small integer quants, so every dot product
    /// is an integer the kernels must reproduce exactly.
    Unit,
}

/// How an activation vector is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XFlavor {
    /// Uniform in `[-1, 1)`.
    Uniform,
    /// Uniform with rare outliers 300 times larger (as in real models).
    Outliers,
    /// Uniform in `[-1e-5, 1e-5)`: Q8_0 / Q8_1 scales are f16 subnormals.
    Tiny,
    /// Uniform in `[-6e4, 6e4)`: near f16 overflow.
    Large,
    /// All zero.
    Zeros,
    /// Uniform with some 32-value blocks all zero.
    ZeroBlocks,
    /// Integers in `-7..=7` with one `+-127` in each 32-value block: the
    /// Q8 scales are exactly 1 (or -1 for Q8_K).
    Integer,
    /// Half-integers with one `+-127` per block: every quant is a rounding
    /// tie.
    HalfTies,
    /// Uniform with NaNs and infinities sprinkled in (as a diverging model
    /// would produce): quantizers must not panic and must match.
    NonFinite,
}

pub(crate) const X_FLAVORS: [XFlavor; 9] = [
    XFlavor::Uniform,
    XFlavor::Outliers,
    XFlavor::Tiny,
    XFlavor::Large,
    XFlavor::Zeros,
    XFlavor::ZeroBlocks,
    XFlavor::Integer,
    XFlavor::HalfTies,
    XFlavor::NonFinite,
];

/// f16 bytes of `x`.
pub(crate) fn h(x: f32) -> [u8; 2] {
    f32_to_f16(x).to_le_bytes()
}

/// A random activation vector of `n` values.
pub(crate) fn xs(rng: &mut Rng, flavor: XFlavor, n: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; n];
    match flavor {
        XFlavor::Uniform => rng.fill_uniform(&mut x, -1.0, 1.0),
        XFlavor::Outliers => {
            rng.fill_uniform(&mut x, -1.0, 1.0);
            for v in &mut x {
                if rng.next_u64() % 97 == 0 {
                    *v *= 300.0;
                }
            }
        }
        XFlavor::Tiny => rng.fill_uniform(&mut x, -1e-5, 1e-5),
        XFlavor::Large => rng.fill_uniform(&mut x, -6e4, 6e4),
        XFlavor::Zeros => {}
        XFlavor::ZeroBlocks => {
            rng.fill_uniform(&mut x, -1.0, 1.0);
            for c in x.chunks_mut(32) {
                if rng.next_u64() % 3 == 0 {
                    c.fill(0.0);
                }
            }
        }
        XFlavor::NonFinite => {
            rng.fill_uniform(&mut x, -1.0, 1.0);
            let special = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            for v in &mut x {
                if rng.next_u64() % 41 == 0 {
                    *v = special[(rng.next_u64() % 4) as usize];
                }
            }
        }
        XFlavor::Integer | XFlavor::HalfTies => {
            let half = if flavor == XFlavor::HalfTies {
                0.5
            } else {
                0.0
            };
            for v in &mut x {
                *v = rng.range_i32(-7, 6) as f32 + half;
            }
            for c in x.chunks_mut(32) {
                let i = rng.range_i32(0, c.len() as i32 - 1) as usize;
                c[i] = if rng.next_u64() & 1 == 0 {
                    127.0
                } else {
                    -127.0
                };
            }
        }
    }
    x
}

/// Byte offsets of the f16 scales in a block of `dtype`.
fn scale_offsets(dtype: DType) -> &'static [usize] {
    match dtype {
        DType::Q8_0 | DType::Q4_0 => &[0],
        DType::Q4_1 | DType::Q4K => &[0, 2],
        DType::Q6K => &[208],
        DType::F32 | DType::F16 | DType::BF16 => &[],
    }
}

/// A random f16 scale at one of the ends of the f16 range.
fn extreme_scale(rng: &mut Rng) -> [u8; 2] {
    let sign = if rng.next_u64() & 1 == 0 {
        0
    } else {
        0x8000u16
    };
    let mag = match rng.next_u64() % 5 {
        0 => rng.range_i32(1, 0x3ff) as u16, // subnormal
        1 => 0x7bff,                         // 65504
        2 => 0x0400,                         // smallest normal
        3 => rng.range_i32(0x5000, 0x7bff) as u16,
        _ => rng.range_i32(0x0400, 0x2000) as u16,
    };
    (sign | mag).to_le_bytes()
}

/// `rows` random weight rows of `k` values of `dtype`.
pub(crate) fn weights(
    rng: &mut Rng,
    dtype: DType,
    flavor: WFlavor,
    k: usize,
    rows: usize,
) -> Vec<u8> {
    let rb = dtype.row_bytes(k).unwrap();
    let mut w = vec![0u8; rows * rb];
    if rb == 0 {
        return w;
    }
    let mut tmp = vec![0.0f32; k];
    for row in w.chunks_exact_mut(rb) {
        match (flavor, dtype) {
            (WFlavor::Unit, DType::F32 | DType::F16 | DType::BF16) => {
                for v in &mut tmp {
                    *v = rng.range_i32(-15, 15) as f32;
                }
                float_row(dtype, &tmp, row);
            }
            (WFlavor::Extreme, DType::F32 | DType::BF16) => {
                for v in &mut tmp {
                    *v = rng.uniform(-1.0, 1.0) * 2f32.powi(rng.range_i32(-60, 60));
                }
                float_row(dtype, &tmp, row);
            }
            (WFlavor::Extreme, DType::F16) => {
                for v in &mut tmp {
                    *v = match rng.next_u64() % 3 {
                        0 => rng.uniform(-65504.0, 65504.0),
                        1 => rng.uniform(-6e-5, 6e-5), // f16 subnormals
                        _ => rng.uniform(-1.0, 1.0),
                    };
                }
                float_row(dtype, &tmp, row);
            }
            _ => random_weight_row(dtype, rng, &mut tmp, row),
        }
        if dtype.block_len() == 1 {
            continue;
        }
        for b in row.chunks_exact_mut(dtype.block_bytes()) {
            match flavor {
                WFlavor::Random => {}
                WFlavor::ZeroBlocks => {
                    if rng.next_u64() % 3 == 0 {
                        b.fill(0);
                    }
                }
                WFlavor::Extreme => {
                    for &o in scale_offsets(dtype) {
                        if rng.next_u64() % 4 != 0 {
                            b[o..o + 2].copy_from_slice(&extreme_scale(rng));
                        }
                    }
                    if dtype == DType::Q8_0 {
                        for q in &mut b[2..] {
                            if rng.next_u64() % 5 == 0 {
                                *q = 0x80;
                            }
                        }
                    }
                }
                WFlavor::Unit => unit_block(rng, dtype, b),
            }
        }
    }
    w
}

fn float_row(dtype: DType, x: &[f32], out: &mut [u8]) {
    match dtype {
        DType::F32 => quantize_row_f32(x, out),
        DType::F16 => quantize_row_f16(x, out),
        DType::BF16 => quantize_row_bf16(x, out),
        _ => unreachable!(),
    }
}

/// Rewrites a random quantized block so that its scales are exactly 1 (and
/// Q4_1's min a small integer): every dequantized value is an integer.
fn unit_block(rng: &mut Rng, dtype: DType, b: &mut [u8]) {
    let one = h(1.0);
    match dtype {
        DType::Q8_0 => {
            b[..2].copy_from_slice(&one);
            for q in &mut b[2..] {
                *q = rng.range_i32(-15, 15) as i8 as u8;
            }
        }
        DType::Q4_0 => b[..2].copy_from_slice(&one),
        DType::Q4_1 => {
            b[..2].copy_from_slice(&one);
            b[2..4].copy_from_slice(&h(rng.range_i32(-8, 8) as f32));
        }
        DType::Q4K => {
            b[..2].copy_from_slice(&one);
            b[2..4].copy_from_slice(&one);
        }
        DType::Q6K => b[208..].copy_from_slice(&one),
        DType::F32 | DType::F16 | DType::BF16 => {}
    }
}

//! Quantization of f32 rows to the weight types, byte for byte as
//! llama.cpp's quantizer (`llama_model_quantize` without an importance
//! matrix) writes them, and llama.cpp's choice of type per tensor
//! ([`policy`]).
//!
//! Each row function quantizes one row of whole blocks into a caller's
//! buffer, allocation-free; the packer runs them over a tensor's rows on
//! as many threads as it likes (rows are independent).

pub mod floats;
pub mod kquants;
pub mod legacy;
pub mod policy;

use crate::dtype::DType;

pub use policy::{Choice, FileType, Policy};

/// Why a row could not be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The row is not a whole number of the type's blocks, or `out` does
    /// not hold exactly one row.
    BadLength,
    /// The row holds a NaN or an infinity (llama.cpp refuses such data).
    NonFinite,
    /// A scale (or value) of the result is not finite in its 16-bit
    /// float: the row's magnitudes are out of the type's range
    /// (llama.cpp's row validation fails the same way).
    Overflow,
}

impl core::fmt::Display for QuantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            QuantError::BadLength => "row length is not a whole number of blocks",
            QuantError::NonFinite => "holds NaN or infinite values",
            QuantError::Overflow => {
                "values too large for the type (a scale would be infinite in f16)"
            }
        })
    }
}

/// Rounds to the nearest integer, ties to even, as ggml's `nearest_int`
/// does: adds 1.5 * 2^23 and reads the mantissa. Exact for `|f| <=
/// 4194303`, and the same bits as ggml's for any other input. The
/// quantizers, the kernels' activation quantizers and the perplexity's
/// 16-bit log-probability rows all round with it.
#[inline(always)]
pub fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// The largest magnitude in `x` (0 for an empty row), as ggml's
/// `amax = MAX(amax, fabsf(v))` loop takes it.
#[inline]
pub fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |amax, &v| {
        let a = v.abs();
        if amax > a {
            amax
        } else {
            a
        }
    })
}

/// The value of largest magnitude in `x`, with its sign, the first one on
/// ties, and that magnitude (`(0, 0)` for an empty or all-zero row): ggml's
/// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` loop.
#[inline]
pub fn signed_max(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

/// Quantizes the f32 row `x` to `dtype`, writing `dtype.row_bytes(x.len())`
/// bytes to `out`. Fails like llama.cpp's quantizer does on non-finite
/// input and on results whose f16 scales overflow.
pub fn quantize_row(dtype: DType, x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    if dtype.row_bytes(x.len()) != Some(out.len()) {
        return Err(QuantError::BadLength);
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite);
    }
    match dtype {
        DType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        DType::F16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&floats::fp32_to_fp16(v).to_le_bytes());
            }
        }
        DType::BF16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&floats::fp32_to_bf16(v).to_le_bytes());
            }
        }
        DType::Q8_0 => blocks(x, out, legacy::q8_0_block),
        DType::Q4_0 => blocks(x, out, legacy::q4_0_block),
        DType::Q4_1 => blocks(x, out, legacy::q4_1_block),
        DType::Q4K => blocks(x, out, kquants::q4_k_block),
        DType::Q6K => blocks(x, out, kquants::q6_k_block),
    }
    if validate(dtype, out) {
        Ok(())
    } else {
        Err(QuantError::Overflow)
    }
}

/// Runs `f` over the blocks of `x` and `out` (lengths already checked).
fn blocks<const N: usize, const B: usize>(
    x: &[f32],
    out: &mut [u8],
    f: fn(&[f32; N], &mut [u8; B]),
) {
    for (xb, ob) in x.chunks_exact(N).zip(out.chunks_exact_mut(B)) {
        if let (Ok(xb), Ok(ob)) = (xb.try_into(), ob.try_into()) {
            f(xb, ob);
        }
    }
}

/// ggml's `ggml_validate_row_data` for the types written here: every f16
/// scale (and every f16/bf16 value) finite.
fn validate(dtype: DType, row: &[u8]) -> bool {
    let h = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let bs = dtype.block_bytes();
    match dtype {
        DType::F32 => true,
        DType::F16 => row.chunks_exact(2).all(|b| floats::fp16_is_finite(h(b, 0))),
        DType::BF16 => row.chunks_exact(2).all(|b| floats::bf16_is_finite(h(b, 0))),
        DType::Q8_0 | DType::Q4_0 => row
            .chunks_exact(bs)
            .all(|b| floats::fp16_is_finite(h(b, 0))),
        DType::Q4_1 | DType::Q4K => row
            .chunks_exact(bs)
            .all(|b| floats::fp16_is_finite(h(b, 0)) && floats::fp16_is_finite(h(b, 2))),
        DType::Q6K => row
            .chunks_exact(bs)
            .all(|b| floats::fp16_is_finite(h(b, 208))),
    }
}

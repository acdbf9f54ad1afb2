//! Row conversions: activations to their dot-product formats, and weight or
//! activation rows back to f32.

use phi_edge::{ActFormat, DType};

use crate::float;
use crate::quant::{act, q4_0, q4_1, q4_k, q6_k, q8_0};

/// Converts `x` to activation format `fmt`, writing the first
/// `fmt.row_bytes(x.len())` bytes of `out` (see
/// [`phi_edge::Kernels::quantize_act`]).
///
/// Panics if `x.len()` is not a whole number of blocks or `out` is too
/// short.
pub fn quantize_act(fmt: ActFormat, x: &[f32], out: &mut [u8]) {
    let out = act_out(fmt, x.len(), out);
    match fmt {
        ActFormat::F32 => float::quantize_row_f32(x, out),
        ActFormat::F16 => float::quantize_row_f16(x, out),
        ActFormat::BF16 => float::quantize_row_bf16(x, out),
        ActFormat::Q8_0 => act::quantize_row_q8_0(x, out),
        ActFormat::Q8_1 => act::quantize_row_q8_1(x, out),
        ActFormat::Q8K => act::quantize_row_q8_k(x, out),
    }
}

/// The argument check of [`quantize_act`], shared by every kernel set:
/// the first `fmt.row_bytes(n)` bytes of `out`, which a row of `n` values
/// fills.
///
/// Panics if `n` is not a whole number of blocks or `out` is too short.
#[inline(always)]
pub fn act_out(fmt: ActFormat, n: usize, out: &mut [u8]) -> &mut [u8] {
    let bytes = fmt
        .row_bytes(n)
        .unwrap_or_else(|| panic!("quantize_act {fmt:?}: {n} values is not whole blocks"));
    assert!(
        out.len() >= bytes,
        "quantize_act {fmt:?}: out holds {} of {bytes} bytes",
        out.len()
    );
    &mut out[..bytes]
}

/// Converts an activation row of `out.len()` values in format `fmt` back
/// to f32 (`d * q` for the Q8 formats). Reads the first
/// `fmt.row_bytes(out.len())` bytes of `src`.
pub fn dequantize_act(fmt: ActFormat, src: &[u8], out: &mut [f32]) {
    let n = fmt.row_bytes(out.len()).unwrap_or_else(|| {
        panic!(
            "dequantize_act {fmt:?}: {} values is not whole blocks",
            out.len()
        )
    });
    assert!(
        src.len() >= n,
        "dequantize_act {fmt:?}: src holds {} of {n} bytes",
        src.len()
    );
    let src = &src[..n];
    match fmt {
        ActFormat::F32 => float::dequantize_row_f32(src, out),
        ActFormat::F16 => float::dequantize_row_f16(src, out),
        ActFormat::BF16 => float::dequantize_row_bf16(src, out),
        ActFormat::Q8_0 => q8_0::dequantize_row_q8_0(src, out),
        ActFormat::Q8_1 => act::dequantize_row_q8_1(src, out),
        ActFormat::Q8K => act::dequantize_row_q8_k(src, out),
    }
}

/// Dequantizes one row of `out.len()` values of `dtype` from the first
/// `dtype.row_bytes(out.len())` bytes of `src`, as ggml's
/// `dequantize_row_*` (see [`phi_edge::Kernels::dequantize_row`]).
pub fn dequantize_row(dtype: DType, src: &[u8], out: &mut [f32]) {
    let n = dtype.row_bytes(out.len()).unwrap_or_else(|| {
        panic!(
            "dequantize_row {}: {} values is not whole blocks",
            dtype.name(),
            out.len()
        )
    });
    assert!(
        src.len() >= n,
        "dequantize_row {}: src holds {} of {n} bytes",
        dtype.name(),
        src.len()
    );
    let src = &src[..n];
    match dtype {
        DType::F32 => float::dequantize_row_f32(src, out),
        DType::F16 => float::dequantize_row_f16(src, out),
        DType::BF16 => float::dequantize_row_bf16(src, out),
        DType::Q8_0 => q8_0::dequantize_row_q8_0(src, out),
        DType::Q4_0 => q4_0::dequantize_row_q4_0(src, out),
        DType::Q4_1 => q4_1::dequantize_row_q4_1(src, out),
        DType::Q4K => q4_k::dequantize_row_q4_k(src, out),
        DType::Q6K => q6_k::dequantize_row_q6_k(src, out),
    }
}

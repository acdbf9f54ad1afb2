//! Float element types: f16 and bf16 conversions, F32/F16/BF16 rows, and
//! their dot products.
//!
//! Dot products multiply in f32 (exact for f16 and bf16 operands, whose
//! products fit in an f32 mantissa) and accumulate in f32 in element order,
//! as the kernel contract specifies. llama.cpp's SIMD builds also
//! accumulate in f32 but in vector lanes; its plain-C fallback
//! (`ggml_vec_dot_f16` without `GGML_SIMD`) accumulates in f64. Neither
//! order can be matched bit for bit by every ISA, so float dots are compared
//! with a tolerance.

use half::f16;

/// f16 bits to f32 (exact; NaN stays NaN). Equal to `half`'s conversion
/// for every non-NaN input (tested exhaustively).
///
/// Branch-free, so it vectorizes and stays cheap on targets without a
/// hardware conversion (`half`'s portable fallback branches per value). The
/// exponent is rebased by shifting the f16 bits into f32 position and
/// scaling by a power of two (exact); subnormal inputs are rebuilt by
/// placing the mantissa under a fixed exponent and subtracting that
/// exponent's implicit one.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = i32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff; // exponent and mantissa
                         // Normal, infinite and NaN inputs: move the fields into f32 position
                         // and add 224 to the exponent (so 31 becomes 255), then scale by
                         // 2^-112 to rebase finite values from bias 15 to 127.
    let normal = f32::from_bits(((em << 13) + (0xe0 << 23)) as u32) * f32::from_bits(0x0780_0000);
    // Subnormal inputs: m * 2^-24 = (0.5 + m * 2^-24) - 0.5.
    let subnormal = f32::from_bits((em | (126 << 23)) as u32) - 0.5;
    let is_sub = -i32::from(em < 0x400); // all ones or zero
    let mag = (subnormal.to_bits() as i32 & is_sub) | (normal.to_bits() as i32 & !is_sub);
    f32::from_bits((sign | mag) as u32)
}

/// f32 to f16 bits, round to nearest even; NaN stays a quiet NaN (as F16C).
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// f32 rounded to f16 and back.
#[inline(always)]
pub fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// bf16 bits to f32 (exact).
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// f32 to bf16 bits as `ggml_compute_fp32_to_bf16`: round to nearest even;
/// a NaN keeps its top bits with the quiet bit forced on. Subnormals are
/// kept, not flushed.
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

fn check_elems(what: &str, bytes: &[u8], n: usize, size: usize) {
    assert!(
        bytes.len() == n * size,
        "{what}: expected {} bytes for {n} values, got {}",
        n * size,
        bytes.len()
    );
}

/// Writes `x` as little-endian f32 bytes.
pub fn quantize_row_f32(x: &[f32], out: &mut [u8]) {
    check_elems("f32 output", out, x.len(), 4);
    for (o, &v) in out.chunks_exact_mut(4).zip(x) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes `x` as little-endian f16 bytes (round to nearest even).
pub fn quantize_row_f16(x: &[f32], out: &mut [u8]) {
    check_elems("f16 output", out, x.len(), 2);
    for (o, &v) in out.chunks_exact_mut(2).zip(x) {
        o.copy_from_slice(&f32_to_f16(v).to_le_bytes());
    }
}

/// Writes `x` as little-endian bf16 bytes (see [`f32_to_bf16`]).
pub fn quantize_row_bf16(x: &[f32], out: &mut [u8]) {
    check_elems("bf16 output", out, x.len(), 2);
    for (o, &v) in out.chunks_exact_mut(2).zip(x) {
        o.copy_from_slice(&f32_to_bf16(v).to_le_bytes());
    }
}

/// Reads a row of little-endian f32 values.
pub fn dequantize_row_f32(src: &[u8], out: &mut [f32]) {
    check_elems("f32 input", src, out.len(), 4);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// Reads a row of little-endian f16 values.
pub fn dequantize_row_f16(src: &[u8], out: &mut [f32]) {
    check_elems("f16 input", src, out.len(), 2);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(2)) {
        *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Reads a row of little-endian bf16 values.
pub fn dequantize_row_bf16(src: &[u8], out: &mut [f32]) {
    check_elems("bf16 input", src, out.len(), 2);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(2)) {
        *y = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Dot product of two rows of `k` little-endian f32 values, accumulated in
/// f32 in element order.
pub fn vec_dot_f32(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("f32 weights", w, k, 4);
    check_elems("f32 activations", a, k, 4);
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(4).zip(a.chunks_exact(4)) {
        sum += f32::from_le_bytes([x[0], x[1], x[2], x[3]])
            * f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
    }
    sum
}

/// Dot product of two rows of `k` little-endian f16 values: exact f32
/// products accumulated in f32 in element order.
pub fn vec_dot_f16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("f16 weights", w, k, 2);
    check_elems("f16 activations", a, k, 2);
    // Convert a chunk at a time (vectorizable), then accumulate in order.
    const CHUNK: usize = 32;
    let mut wf = [0.0f32; CHUNK];
    let mut af = [0.0f32; CHUNK];
    let mut sum = 0.0f32;
    for (wc, ac) in w.chunks(2 * CHUNK).zip(a.chunks(2 * CHUNK)) {
        let n = wc.len() / 2;
        for (y, b) in wf.iter_mut().zip(wc.chunks_exact(2)) {
            *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
        }
        for (y, b) in af.iter_mut().zip(ac.chunks_exact(2)) {
            *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
        }
        for (&x, &y) in wf[..n].iter().zip(&af[..n]) {
            sum += x * y;
        }
    }
    sum
}

/// Dot product of two rows of `k` little-endian bf16 values: exact f32
/// products accumulated in f32 in element order.
pub fn vec_dot_bf16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("bf16 weights", w, k, 2);
    check_elems("bf16 activations", a, k, 2);
    let mut sum = 0.0f32;
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        sum += bf16_to_f32(u16::from_le_bytes([x[0], x[1]]))
            * bf16_to_f32(u16::from_le_bytes([y[0], y[1]]));
    }
    sum
}

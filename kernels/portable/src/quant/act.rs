//! Activation quantizers: Q8_0, Q8_1 and Q8_K rows as llama.cpp's CPU
//! backend builds them before an integer dot product.
//!
//! llama.cpp has three builds of the Q8_0 / Q8_1 quantizers, all with
//! `d = amax / 127` but differing in how they round `x / d`:
//!
//! | build                      | multiplier      | ties             |
//! |----------------------------|-----------------|------------------|
//! | `quantize_row_q8_*_ref`    | `1 / d`         | away from zero   |
//! | ARM NEON                   | `1 / d`         | to even          |
//! | x86 AVX / AVX2             | `127 / amax`    | to even          |
//!
//! [`quantize_row_q8_0`] and [`quantize_row_q8_1`] (what
//! [`Portable`](crate::Portable) uses) follow the x86 build, because the
//! parity goldens come from llama.cpp built for the x86 host: on SmolLM2,
//! whose activations have large outliers, enough quants sit on a rounding
//! boundary for the difference to show in the logits. The `_ref` variants
//! are ggml's reference quantizers (also used to make Q8_0 weight files).
//! Q8_K has a single build, `quantize_row_q8_K_ref`: the x86
//! `quantize_row_q8_K` calls it, and it is also what llama.cpp's repacked
//! Q4_K path uses for a single activation row (`from_float`; the
//! interleaved `ggml_quantize_mat_q8_K_4x8` only serves groups of four).

use super::{blocks, check_len, f16_bytes, f16_le, nearest_int, QK32, QK_K};
use phi_edge::quant::{amax, signed_max};
use phi_edge::ActFormat;

/// Bytes in a Q8_0 block: `d: f16`, `qs: [i8; 32]`.
pub const Q8_0_BYTES: usize = ActFormat::Q8_0.block_bytes();
/// Bytes in a Q8_1 block: `d: f16`, `s: f16`, `qs: [i8; 32]`.
pub const Q8_1_BYTES: usize = ActFormat::Q8_1.block_bytes();
/// Bytes in a Q8_K block: `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]`.
pub const Q8_K_BYTES: usize = ActFormat::Q8K.block_bytes();

/// How a 32-value quantizer turns `x` into a quant.
#[derive(Clone, Copy)]
enum Rounding {
    /// `roundf(x * (1 / d))`: the reference quantizers.
    Reference,
    /// `rint(x * (127 / amax))`: the x86 AVX quantizers.
    X86,
}

/// Quantizes one block of 32: returns `d` (unrounded f32) and writes the
/// quants to `qs`, returning their sum.
#[inline(always)]
fn quantize_block(x: &[f32; QK32], qs: &mut [u8], rounding: Rounding) -> (f32, i32) {
    let amax = amax(x);
    let d = amax / 127.0;
    let mut sum = 0i32;
    match rounding {
        Rounding::Reference => {
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (o, &v) in qs.iter_mut().zip(x) {
                let q = libm::roundf(v * id) as i8;
                sum += i32::from(q);
                *o = q as u8;
            }
        }
        Rounding::X86 => {
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            for (o, &v) in qs.iter_mut().zip(x) {
                let q = libm::rintf(v * id) as i8;
                sum += i32::from(q);
                *o = q as u8;
            }
        }
    }
    (d, sum)
}

#[inline(always)]
fn q8_0_row<F>(x: &[f32], out: &mut [u8], mut block: F)
where
    F: FnMut(&[f32; QK32], &mut [u8; QK32]) -> (f32, i32),
{
    let nb = blocks(x.len(), QK32);
    check_len("q8_0 output", out, nb, Q8_0_BYTES);
    for (xb, ob) in x.chunks_exact(QK32).zip(out.chunks_exact_mut(Q8_0_BYTES)) {
        let (d, _) = block(xb.try_into().unwrap(), (&mut ob[2..]).try_into().unwrap());
        ob[..2].copy_from_slice(&f16_bytes(d));
    }
}

#[inline(always)]
fn q8_1_row<F>(x: &[f32], out: &mut [u8], mut block: F)
where
    F: FnMut(&[f32; QK32], &mut [u8; QK32]) -> (f32, i32),
{
    let nb = blocks(x.len(), QK32);
    check_len("q8_1 output", out, nb, Q8_1_BYTES);
    for (xb, ob) in x.chunks_exact(QK32).zip(out.chunks_exact_mut(Q8_1_BYTES)) {
        let (d, sum) = block(xb.try_into().unwrap(), (&mut ob[4..]).try_into().unwrap());
        ob[..2].copy_from_slice(&f16_bytes(d));
        ob[2..4].copy_from_slice(&f16_bytes(sum as f32 * d));
    }
}

/// `block`, or this crate's x86 block quantizer where it returns `None`.
#[inline(always)]
fn or_x86<F>(mut block: F) -> impl FnMut(&[f32; QK32], &mut [u8; QK32]) -> (f32, i32)
where
    F: FnMut(&[f32; QK32], &mut [u8; QK32]) -> Option<(f32, i32)>,
{
    move |x, qs| block(x, qs).unwrap_or_else(|| quantize_block(x, qs, Rounding::X86))
}

/// [`quantize_row_q8_0`] with another kernel set's block quantizer:
/// `block(x, qs)` writes the 32 quants of `x` to `qs` and returns `(d,
/// sum of the quants)` exactly as this crate's x86 quantizer would, or
/// `None` where this crate's quantizer must decide (a NaN or infinite
/// value, where the order of ggml's max loop matters); its quants are then
/// overwritten.
#[inline(always)]
pub fn quantize_row_q8_0_with<F>(x: &[f32], out: &mut [u8], block: F)
where
    F: FnMut(&[f32; QK32], &mut [u8; QK32]) -> Option<(f32, i32)>,
{
    q8_0_row(x, out, or_x86(block));
}

/// [`quantize_row_q8_1`] with another kernel set's block quantizer, as
/// [`quantize_row_q8_0_with`].
#[inline(always)]
pub fn quantize_row_q8_1_with<F>(x: &[f32], out: &mut [u8], block: F)
where
    F: FnMut(&[f32; QK32], &mut [u8; QK32]) -> Option<(f32, i32)>,
{
    q8_1_row(x, out, or_x86(block));
}

/// Quantizes `x` to Q8_0 as llama.cpp's x86 AVX `quantize_row_q8_0`: per
/// block of 32, `d = amax / 127` stored as f16,
/// `q = rint(x * (127 / amax))` (ties to even). `out` must hold exactly
/// `x.len() / 32 * 34` bytes.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [u8]) {
    q8_0_row(x, out, |x, qs| quantize_block(x, qs, Rounding::X86));
}

/// Quantizes `x` to Q8_1 as llama.cpp's x86 AVX `quantize_row_q8_1`:
/// quants and `d` as [`quantize_row_q8_0`], plus `s = f16(sum(q) * d)`
/// with `d` the unrounded f32 scale. `out` must hold exactly
/// `x.len() / 32 * 36` bytes.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [u8]) {
    q8_1_row(x, out, |x, qs| quantize_block(x, qs, Rounding::X86));
}

/// ggml's `quantize_row_q8_0_ref`: as [`quantize_row_q8_0`] but
/// `q = roundf(x * (1 / d))` (ties away from zero). This is also how Q8_0
/// weight files are made.
pub fn quantize_row_q8_0_ref(x: &[f32], out: &mut [u8]) {
    q8_0_row(x, out, |x, qs| quantize_block(x, qs, Rounding::Reference));
}

/// ggml's `quantize_row_q8_1_ref`: as [`quantize_row_q8_1`] but
/// `q = roundf(x * (1 / d))` (ties away from zero).
pub fn quantize_row_q8_1_ref(x: &[f32], out: &mut [u8]) {
    q8_1_row(x, out, |x, qs| quantize_block(x, qs, Rounding::Reference));
}

/// Quantizes `x` to Q8_K (`quantize_row_q8_K_ref`).
///
/// Per block of 256: `max` is the value of largest magnitude (the first one
/// on ties) with its sign, `iscale = -127 / max`,
/// `q = min(127, nearest_int(iscale * x))` (ties to even), `d = 1 / iscale`
/// stored as f32, so `d` is negative when `max` is positive. `bsums[j]` is
/// the sum of quants `16j..16j + 16`. An all-zero block gets `d = 0`, zero
/// quants and zero sums (ggml leaves its `bsums` unwritten; they only ever
/// meet `d = 0`). `out` must hold exactly `x.len() / 256 * 292` bytes.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [u8]) {
    let nb = blocks(x.len(), QK_K);
    check_len("q8_K output", out, nb, Q8_K_BYTES);
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
        let xb: &[f32; QK_K] = xb.try_into().unwrap();
        let ob: &mut [u8; Q8_K_BYTES] = ob.try_into().unwrap();
        let (max, amax) = signed_max(xb);
        if amax == 0.0 {
            ob.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        let (head, bsums) = ob.split_at_mut(4 + QK_K);
        let qs = &mut head[4..];
        for (o, &v) in qs.iter_mut().zip(xb) {
            *o = nearest_int(iscale * v).min(127) as i8 as u8;
        }
        for (s, q16) in bsums.chunks_exact_mut(2).zip(qs.chunks_exact(16)) {
            let sum: i32 = q16.iter().map(|&q| i32::from(q as i8)).sum();
            s.copy_from_slice(&(sum as i16).to_le_bytes());
        }
        head[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// The start of a Q8_K block for another kernel set that has found
/// `amax`, the largest magnitude in `x` (NaN if a value is NaN): `Some(-127
/// / max)`, `max` the first value of that magnitude, for the set to
/// quantize with as [`quantize_row_q8_k`]; or `None` once `ob` is written,
/// all zeros when `amax == 0`, or by [`quantize_row_q8_k`] when `amax` is
/// NaN or infinite (where the order of ggml's max loop decides) or so
/// small that `-127 / max` overflows (then every product is infinite or
/// NaN, and `nearest_int`'s bit trick decides each quant).
#[inline(always)]
pub fn q8_k_iscale(x: &[f32; QK_K], amax: f32, ob: &mut [u8; Q8_K_BYTES]) -> Option<f32> {
    if amax == 0.0 {
        ob.fill(0);
        return None;
    }
    let iscale = match x.iter().find(|v| v.abs() == amax) {
        Some(&max) if amax.is_finite() => -127.0 / max,
        _ => f32::INFINITY,
    };
    if !iscale.is_finite() {
        quantize_row_q8_k(x, ob);
        return None;
    }
    Some(iscale)
}

/// Dequantizes a Q8_1 row: `d * q` (the stored `s` is not needed).
pub fn dequantize_row_q8_1(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK32);
    check_len("q8_1 input", src, nb, Q8_1_BYTES);
    for (b, o) in src.chunks_exact(Q8_1_BYTES).zip(out.chunks_exact_mut(QK32)) {
        let d = f16_le([b[0], b[1]]);
        for (y, &q) in o.iter_mut().zip(&b[4..]) {
            *y = f32::from(q as i8) * d;
        }
    }
}

/// Dequantizes a Q8_K row: `d * q` (`dequantize_row_q8_K`).
pub fn dequantize_row_q8_k(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK_K);
    check_len("q8_K input", src, nb, Q8_K_BYTES);
    for (b, o) in src.chunks_exact(Q8_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (y, &q) in o.iter_mut().zip(&b[4..4 + QK_K]) {
            *y = d * f32::from(q as i8);
        }
    }
}

/// Splits a Q8_K block into `d`, its 256 quants and its 16 little-endian
/// i16 block sums.
#[inline(always)]
pub(crate) fn q8_k_block(b: &[u8]) -> (f32, &[u8; QK_K], [i16; 16]) {
    let b: &[u8; Q8_K_BYTES] = b.try_into().unwrap();
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let qs: &[u8; QK_K] = b[4..4 + QK_K].try_into().unwrap();
    let raw: &[u8; 32] = b[4 + QK_K..].try_into().unwrap();
    let mut bsums = [0i16; 16];
    for (s, p) in bsums.iter_mut().zip(raw.chunks_exact(2)) {
        *s = i16::from_le_bytes([p[0], p[1]]);
    }
    (d, qs, bsums)
}

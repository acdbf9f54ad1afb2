//! Q4_1: 32 values per block, `d: f16`, `m: f16`, `qs: [u8; 16]`; byte `j`
//! holds value `j` in its low nibble and value `j + 16` in its high nibble;
//! value `d * q + m`.

use super::act::Q8_1_BYTES;
use super::{blocks, check_len, f16_le, QK32};

/// Bytes in a Q4_1 block.
pub const Q4_1_BYTES: usize = 20;

/// Dequantizes a Q4_1 row (`dequantize_row_q4_1`): `q * d + m`.
pub fn dequantize_row_q4_1(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK32);
    check_len("q4_1 input", src, nb, Q4_1_BYTES);
    for (b, o) in src.chunks_exact(Q4_1_BYTES).zip(out.chunks_exact_mut(QK32)) {
        let b: &[u8; Q4_1_BYTES] = b.try_into().unwrap();
        let d = f16_le([b[0], b[1]]);
        let m = f16_le([b[2], b[3]]);
        let qs: &[u8; 16] = b[4..].try_into().unwrap();
        let (lo, hi) = o.split_at_mut(16);
        for ((&q, y0), y1) in qs.iter().zip(lo).zip(hi) {
            *y0 = f32::from(q & 0x0f) * d + m;
            *y1 = f32::from(q >> 4) * d + m;
        }
    }
}

/// Dot product of a Q4_1 weight row and a Q8_1 activation row of `k`
/// values (`ggml_vec_dot_q4_1_q8_1_generic`): per block the exact i32 sum
/// `sumi` of unsigned nibbles times quants, then
/// `sumf += (dw * da) * sumi + m * s` in f32, in block order, where `s` is
/// the activation block's stored `d * sum(q)`.
pub fn vec_dot_q4_1_q8_1(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(k, QK32);
    check_len("q4_1 weights", w, nb, Q4_1_BYTES);
    check_len("q8_1 activations", a, nb, Q8_1_BYTES);
    let mut sumf = 0.0f32;
    for (wb, ab) in w.chunks_exact(Q4_1_BYTES).zip(a.chunks_exact(Q8_1_BYTES)) {
        let wb: &[u8; Q4_1_BYTES] = wb.try_into().unwrap();
        let ab: &[u8; Q8_1_BYTES] = ab.try_into().unwrap();
        let qw: &[u8; 16] = wb[4..].try_into().unwrap();
        let qa_lo: &[u8; 16] = ab[4..20].try_into().unwrap();
        let qa_hi: &[u8; 16] = ab[20..].try_into().unwrap();
        let mut sumi = 0i32;
        for j in 0..16 {
            sumi += i32::from(qw[j] & 0x0f) * i32::from(qa_lo[j] as i8)
                + i32::from(qw[j] >> 4) * i32::from(qa_hi[j] as i8);
        }
        let dw = f16_le([wb[0], wb[1]]);
        let mw = f16_le([wb[2], wb[3]]);
        let da = f16_le([ab[0], ab[1]]);
        let sa = f16_le([ab[2], ab[3]]);
        sumf += (dw * da) * sumi as f32 + mw * sa;
    }
    sumf
}

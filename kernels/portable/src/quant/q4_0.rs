//! Q4_0: 32 values per block, `d: f16`, `qs: [u8; 16]`; byte `j` holds value
//! `j` in its low nibble and value `j + 16` in its high nibble; value
//! `d * (q - 8)`.

use super::act::Q8_0_BYTES;
use super::q8_0::q8_0_block;
use super::{blocks, check_len, f16_le, QK32};

/// Bytes in a Q4_0 block.
pub const Q4_0_BYTES: usize = 18;

/// Splits a Q4_0 block into its scale and packed nibbles.
#[inline(always)]
fn q4_0_block(b: &[u8]) -> (f32, &[u8; 16]) {
    let b: &[u8; Q4_0_BYTES] = b.try_into().unwrap();
    (f16_le([b[0], b[1]]), b[2..].try_into().unwrap())
}

/// Dequantizes a Q4_0 row (`dequantize_row_q4_0`): `(q - 8) * d`.
pub fn dequantize_row_q4_0(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK32);
    check_len("q4_0 input", src, nb, Q4_0_BYTES);
    for (b, o) in src.chunks_exact(Q4_0_BYTES).zip(out.chunks_exact_mut(QK32)) {
        let (d, qs) = q4_0_block(b);
        let (lo, hi) = o.split_at_mut(16);
        for ((&q, y0), y1) in qs.iter().zip(lo).zip(hi) {
            *y0 = (i32::from(q & 0x0f) - 8) as f32 * d;
            *y1 = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }
}

/// Dot product of a Q4_0 weight row and a Q8_0 activation row of `k`
/// values (`ggml_vec_dot_q4_0_q8_0_generic`): per block the exact i32 sum
/// `sumi`, then `sumf += (sumi * dw) * da` in f32, in block order.
pub fn vec_dot_q4_0_q8_0(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(k, QK32);
    check_len("q4_0 weights", w, nb, Q4_0_BYTES);
    check_len("q8_0 activations", a, nb, Q8_0_BYTES);
    let mut sumf = 0.0f32;
    for (wb, ab) in w.chunks_exact(Q4_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let (dw, qw) = q4_0_block(wb);
        let (da, qa) = q8_0_block(ab);
        let (qa_lo, qa_hi) = qa.split_at(16);
        let mut sumi = 0i32;
        for ((&q, &y0), &y1) in qw.iter().zip(qa_lo).zip(qa_hi) {
            sumi += (i32::from(q & 0x0f) - 8) * i32::from(y0 as i8);
            sumi += (i32::from(q >> 4) - 8) * i32::from(y1 as i8);
        }
        sumf += sumi as f32 * dw * da;
    }
    sumf
}

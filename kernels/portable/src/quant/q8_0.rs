//! Q8_0: 32 values per block, `d: f16`, `qs: [i8; 32]`, value `d * q`.
//!
//! Q8_0 is both a weight type and the activation format Q8_0 and Q4_0
//! weights are multiplied with; its quantizer lives in [`super::act`].

use super::act::Q8_0_BYTES;
use super::tile::{row_dot, BlockDot};
use super::{blocks, check_len, f16_le, fmadd, hsum_float_8, quad_lanes, F32x8, QK32};

/// Splits a Q8_0 block into its scale and quants.
#[inline(always)]
pub(crate) fn q8_0_block(b: &[u8]) -> (f32, &[u8; QK32]) {
    let b: &[u8; Q8_0_BYTES] = b.try_into().unwrap();
    (f16_le([b[0], b[1]]), b[2..].try_into().unwrap())
}

/// Dequantizes a Q8_0 row (`dequantize_row_q8_0`): `q * d`.
pub fn dequantize_row_q8_0(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK32);
    check_len("q8_0 input", src, nb, Q8_0_BYTES);
    for (b, o) in src.chunks_exact(Q8_0_BYTES).zip(out.chunks_exact_mut(QK32)) {
        let (d, qs) = q8_0_block(b);
        for (y, &q) in o.iter_mut().zip(qs) {
            *y = f32::from(q as i8) * d;
        }
    }
}

/// Dot product of a Q8_0 weight row and a Q8_0 activation row of `k`
/// values, as llama.cpp's x86 AVX2 `ggml_vec_dot_q8_0_q8_0` (see
/// `Q8_0` in the source).
pub fn vec_dot_q8_0_q8_0(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q8_0>(["q8_0 weights", "q8_0 activations"], k, w, a)
}

/// Q8_0 weights times Q8_0 activations, block by block.
///
/// Per block: the f32 product `d = dw * da`; eight i32 lanes, lane `l`
/// summing the products of quants `4l..4l + 4`; then
/// `acc[l] = fma(d, lane[l], acc[l])`. The result is
/// `hsum_float_8(acc)`.
pub(crate) struct Q8_0;

impl BlockDot for Q8_0 {
    const QK: usize = QK32;
    const W_BYTES: usize = Q8_0_BYTES;
    const A_BYTES: usize = Q8_0_BYTES;
    type Weights = (f32, [i8; QK32]);
    type Acc = F32x8;
    const ZERO: F32x8 = [0.0; 8];

    #[inline(always)]
    fn unpack(wb: &[u8]) -> (f32, [i8; QK32]) {
        let (dw, qw) = q8_0_block(wb);
        (dw, qw.map(|q| q as i8))
    }

    #[inline(always)]
    fn step(&(dw, qw): &(f32, [i8; QK32]), ab: &[u8], acc: &mut F32x8) {
        let (da, qa) = q8_0_block(ab);
        let d = dw * da;
        let mut p = [0i32; QK32];
        for ((p, &w), &a) in p.iter_mut().zip(&qw).zip(qa) {
            *p = i32::from(w) * i32::from(a as i8);
        }
        let q = quad_lanes(p);
        for (s, &x) in acc.iter_mut().zip(&q) {
            *s = fmadd(d, x as f32, *s);
        }
    }

    #[inline(always)]
    fn finish(acc: F32x8) -> f32 {
        hsum_float_8(acc)
    }
}

//! Q4_1: 32 values per block, `d: f16`, `m: f16`, `qs: [u8; 16]`; byte `j`
//! holds value `j` in its low nibble and value `j + 16` in its high nibble;
//! value `d * q + m`.

use super::act::Q8_1_BYTES;
use super::tile::{row_dot, BlockDot};
use super::{
    blocks, check_len, f16_le, fmadd, hsum_float_8, nibbles, products_u8_i8, quad_lanes, F32x8,
    QK32,
};
use phi_edge::DType;

/// Bytes in a Q4_1 block.
pub const Q4_1_BYTES: usize = DType::Q4_1.block_bytes();

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
/// values, as llama.cpp's x86 AVX2 `ggml_vec_dot_q4_1_q8_1` (see
/// `Q4_1` in the source).
pub fn vec_dot_q4_1_q8_1(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q4_1>(["q4_1 weights", "q8_1 activations"], k, w, a)
}

/// Q4_1 weights times Q8_1 activations, block by block.
///
/// Per block: eight i32 lanes, lane `l` summing the products of the
/// unsigned nibbles and quants `4l..4l + 4`; then
/// `acc[l] = fma(dw * da, lane[l], acc[l])` (`dw * da` an f32 product),
/// and separately `summs += m * s` in f32, where `s` is the activation
/// block's stored `d * sum(q)`. The result is `hsum_float_8(acc) + summs`.
pub(crate) struct Q4_1;

/// An unpacked Q4_1 block: `d`, `m` and the 32 nibbles in value order.
pub(crate) struct Unpacked {
    d: f32,
    m: f32,
    q: [u8; QK32],
}

impl BlockDot for Q4_1 {
    const QK: usize = QK32;
    const W_BYTES: usize = Q4_1_BYTES;
    const A_BYTES: usize = Q8_1_BYTES;
    type Weights = Unpacked;
    type Acc = (F32x8, f32);
    const ZERO: (F32x8, f32) = ([0.0; 8], 0.0);

    #[inline(always)]
    fn unpack(wb: &[u8]) -> Unpacked {
        let wb: &[u8; Q4_1_BYTES] = wb.try_into().unwrap();
        Unpacked {
            d: f16_le([wb[0], wb[1]]),
            m: f16_le([wb[2], wb[3]]),
            q: nibbles(&wb[4..]),
        }
    }

    #[inline(always)]
    fn step(w: &Unpacked, ab: &[u8], (acc, summs): &mut (F32x8, f32)) {
        let ab: &[u8; Q8_1_BYTES] = ab.try_into().unwrap();
        let da = f16_le([ab[0], ab[1]]);
        let sa = f16_le([ab[2], ab[3]]);
        *summs += w.m * sa;
        let d = w.d * da;
        let q = quad_lanes(products_u8_i8(&w.q, &ab[4..]));
        for (s, &x) in acc.iter_mut().zip(&q) {
            *s = fmadd(d, x as f32, *s);
        }
    }

    #[inline(always)]
    fn finish((acc, summs): (F32x8, f32)) -> f32 {
        hsum_float_8(acc) + summs
    }
}

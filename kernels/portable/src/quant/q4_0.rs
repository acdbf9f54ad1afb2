//! Q4_0: 32 values per block, `d: f16`, `qs: [u8; 16]`; byte `j` holds value
//! `j` in its low nibble and value `j + 16` in its high nibble; value
//! `d * (q - 8)`.

use super::act::Q8_0_BYTES;
use super::q8_0::q8_0_block;
use super::tile::{row_dot, BlockDot};
use super::{blocks, check_len, f16_le, fmadd, hsum_float_8, nibbles, quad_lanes, F32x8, QK32};
use phi_edge::DType;

/// Bytes in a Q4_0 block.
pub const Q4_0_BYTES: usize = DType::Q4_0.block_bytes();

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

/// The 32 products `w * qa` of an unpacked Q4_0 block (values `q - 8`)
/// and a Q8_0 block's quants, in value order.
#[inline(always)]
fn products(qw: &[i8; QK32], qa: &[u8; QK32]) -> [i32; QK32] {
    let mut p = [0i32; QK32];
    for ((p, &w), &a) in p.iter_mut().zip(qw).zip(qa) {
        *p = i32::from(w) * i32::from(a as i8);
    }
    p
}

/// A Q4_0 block's scale and its 32 values `q - 8`, in value order.
#[inline(always)]
fn unpack(wb: &[u8]) -> (f32, [i8; QK32]) {
    let (dw, qw) = q4_0_block(wb);
    (dw, nibbles(qw).map(|q| q as i8 - 8))
}

/// Dot product of a Q4_0 weight row and a Q8_0 activation row of `k`
/// values, as llama.cpp's x86 AVX2 `ggml_vec_dot_q4_0_q8_0` (see
/// `Q4_0` in the source).
pub fn vec_dot_q4_0_q8_0(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q4_0>(WHAT, k, w, a)
}

/// Dot product of a Q4_0 weight row and a Q8_0 activation row of `k`
/// values, as one output row of llama.cpp's x86 AVX2
/// `ggml_gemv_q4_0_8x8_q8_0` (see `Q4_0Repacked` in the source).
pub fn vec_dot_q4_0_q8_0_repacked(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q4_0Repacked>(WHAT, k, w, a)
}

/// The two rows, for length errors.
const WHAT: [&str; 2] = ["q4_0 weights", "q8_0 activations"];

/// Q4_0 weights times Q8_0 activations in plain rows, block by block (a
/// weight llama.cpp does not repack: a tied token embedding).
///
/// Per block: the f32 product `d = dw * da`; eight i32 lanes, lane `l`
/// summing the products of values `4l..4l + 4`; then
/// `acc[l] = fma(d, lane[l], acc[l])`. The result is
/// `hsum_float_8(acc)`.
pub(crate) struct Q4_0;

impl BlockDot for Q4_0 {
    const QK: usize = QK32;
    const W_BYTES: usize = Q4_0_BYTES;
    const A_BYTES: usize = Q8_0_BYTES;
    type Weights = (f32, [i8; QK32]);
    type Acc = F32x8;
    const ZERO: F32x8 = [0.0; 8];

    #[inline(always)]
    fn unpack(wb: &[u8]) -> (f32, [i8; QK32]) {
        unpack(wb)
    }

    #[inline(always)]
    fn step((dw, qw): &(f32, [i8; QK32]), ab: &[u8], acc: &mut F32x8) {
        let (da, qa) = q8_0_block(ab);
        let d = dw * da;
        let q = quad_lanes(products(qw, qa));
        for (s, &x) in acc.iter_mut().zip(&q) {
            *s = fmadd(d, x as f32, *s);
        }
    }

    #[inline(always)]
    fn finish(acc: F32x8) -> f32 {
        hsum_float_8(acc)
    }
}

/// Q4_0 weights times Q8_0 activations in the order llama.cpp uses for
/// the Q4_0 projection weights it repacks into 8-row interleaved blocks
/// (one output row of `ggml_gemv_q4_0_8x8_q8_0`).
///
/// One f32 accumulator per row: per block the exact i32 sum `sumi`, then
/// `acc = fma(sumi, dw * da, acc)` (`dw * da` an f32 product), in block
/// order; no horizontal sum.
pub(crate) struct Q4_0Repacked;

impl BlockDot for Q4_0Repacked {
    const QK: usize = QK32;
    const W_BYTES: usize = Q4_0_BYTES;
    const A_BYTES: usize = Q8_0_BYTES;
    type Weights = (f32, [i8; QK32]);
    type Acc = f32;
    const ZERO: f32 = 0.0;

    #[inline(always)]
    fn unpack(wb: &[u8]) -> (f32, [i8; QK32]) {
        unpack(wb)
    }

    #[inline(always)]
    fn step((dw, qw): &(f32, [i8; QK32]), ab: &[u8], acc: &mut f32) {
        let (da, qa) = q8_0_block(ab);
        let sumi: i32 = products(qw, qa).iter().sum();
        *acc = fmadd(sumi as f32, dw * da, *acc);
    }

    #[inline(always)]
    fn finish(acc: f32) -> f32 {
        acc
    }
}

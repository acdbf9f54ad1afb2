//! Q6_K: 256 values per super-block in 16 sub-blocks of 16.
//!
//! Layout (210 bytes): `ql: [u8; 128]` (low 4 bits), `qh: [u8; 64]` (high
//! 2 bits), `scales: [i8; 16]`, `d: f16`. Values come in two halves `h` of
//! 128; within a half, for `l < 32`:
//!
//! | value          | low 4 bits                 | high 2 bits of `qh[32h + l]` |
//! |----------------|----------------------------|------------------------------|
//! | `128h + l`      | `ql[64h + l] & 0xf`        | bits 0..2                    |
//! | `128h + l + 32` | `ql[64h + l + 32] & 0xf`   | bits 2..4                    |
//! | `128h + l + 64` | `ql[64h + l] >> 4`         | bits 4..6                    |
//! | `128h + l + 96` | `ql[64h + l + 32] >> 4`    | bits 6..8                    |
//!
//! The 6-bit value `q` is offset by 32; value `p` is
//! `d * scales[p / 16] * (q - 32)`.

use super::act::{q8_k_block, Q8_K_BYTES};
use super::tile::{row_dot, BlockDot};
use super::{
    blocks, check_len, f16_le, fmadd, hsum_float_8, products_u8_i8, quad_lanes, F32x8, Lanes, QK_K,
};
use phi_edge::DType;

/// Bytes in a Q6_K block.
pub const Q6_K_BYTES: usize = DType::Q6K.block_bytes();

/// A Q6_K block, split.
struct Block<'a> {
    ql: &'a [u8; 128],
    qh: &'a [u8; 64],
    scales: &'a [u8; 16],
    d: f32,
}

#[inline(always)]
fn block(b: &[u8]) -> Block<'_> {
    let b: &[u8; Q6_K_BYTES] = b.try_into().unwrap();
    Block {
        ql: b[..128].try_into().unwrap(),
        qh: b[128..192].try_into().unwrap(),
        scales: b[192..208].try_into().unwrap(),
        d: f16_le([b[208], b[209]]),
    }
}

/// The 256 unsigned 6-bit quants `q` (value `q - 32`) of a block, in value
/// order.
#[inline(always)]
fn decode(b: &Block<'_>) -> [u8; QK_K] {
    let mut a = [0u8; QK_K];
    for (h, out) in a.chunks_exact_mut(128).enumerate() {
        let ql: &[u8; 64] = b.ql[64 * h..64 * h + 64].try_into().unwrap();
        let qh: &[u8; 32] = b.qh[32 * h..32 * h + 32].try_into().unwrap();
        let (o01, o23) = out.split_at_mut(64);
        let (o0, o1) = o01.split_at_mut(32);
        let (o2, o3) = o23.split_at_mut(32);
        for l in 0..32 {
            let (lo, hi, top) = (ql[l], ql[l + 32], qh[l]);
            o0[l] = (lo & 0x0f) | ((top & 3) << 4);
            o1[l] = (hi & 0x0f) | (((top >> 2) & 3) << 4);
            o2[l] = (lo >> 4) | (((top >> 4) & 3) << 4);
            o3[l] = (hi >> 4) | (((top >> 6) & 3) << 4);
        }
    }
    a
}

/// Dequantizes a Q6_K row (`dequantize_row_q6_K`): `(d * sc) * (q - 32)`.
pub fn dequantize_row_q6_k(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK_K);
    check_len("q6_K input", src, nb, Q6_K_BYTES);
    for (b, o) in src.chunks_exact(Q6_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let b = block(b);
        let q = decode(&b);
        for ((y, q), &sc) in o.chunks_exact_mut(16).zip(q.chunks_exact(16)).zip(b.scales) {
            let ds = b.d * f32::from(sc as i8);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = ds * f32::from(q as i8 - 32);
            }
        }
    }
}

/// Dot product of a Q6_K weight row and a Q8_K activation row of `k`
/// values, as llama.cpp's x86 AVX2 `ggml_vec_dot_q6_K_q8_K` (see `Q6K`
/// in the source).
pub fn vec_dot_q6_k_q8_k(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q6K>(["q6_K weights", "q8_K activations"], k, w, a)
}

/// Q6_K weights times Q8_K activations, block by block.
///
/// Per block, with `d = da * dw` (an f32 product): eight i32 lanes, lane
/// `l` summing `scales[p / 16] * q[p] * q8[p]` over the unsigned 6-bit
/// quants at the positions `p` with `(p % 32) / 4 == l`, minus the offset
/// term of the 32 values `32l..32l + 32`,
/// `32 * (bsums[2l] * scales[2l] + bsums[2l + 1] * scales[2l + 1])`; then
/// `acc[l] = fma(d, lane[l], acc[l])`. The result is `hsum_float_8(acc)`.
pub(crate) struct Q6K;

/// An unpacked Q6_K block: `d`, the 16 scales and the 256 unsigned 6-bit
/// quants in value order.
pub(crate) struct Unpacked {
    d: f32,
    sc: [i32; 16],
    q: [u8; QK_K],
}

impl BlockDot for Q6K {
    const QK: usize = QK_K;
    const W_BYTES: usize = Q6_K_BYTES;
    const A_BYTES: usize = Q8_K_BYTES;
    type Weights = Unpacked;
    type Acc = F32x8;
    const ZERO: F32x8 = [0.0; 8];

    #[inline(always)]
    fn unpack(wb: &[u8]) -> Unpacked {
        let b = block(wb);
        Unpacked {
            d: b.d,
            sc: b.scales.map(|s| i32::from(s as i8)),
            q: decode(&b),
        }
    }

    #[inline(always)]
    fn step(w: &Unpacked, ab: &[u8], acc: &mut F32x8) {
        let (da, q8, bsums) = q8_k_block(ab);
        let d = da * w.d;
        let sc = &w.sc;

        let mut sumi: Lanes = [0; 8];
        for (c, (q6, q8)) in w.q.chunks_exact(32).zip(q8.chunks_exact(32)).enumerate() {
            let (s_lo, s_hi) = (sc[2 * c], sc[2 * c + 1]);
            let part = quad_lanes(products_u8_i8(q6.try_into().unwrap(), q8));
            for (l, s) in sumi.iter_mut().enumerate() {
                *s += if l < 4 { s_lo } else { s_hi } * part[l];
            }
        }
        for (l, s) in sumi.iter_mut().enumerate() {
            let off =
                i32::from(bsums[2 * l]) * sc[2 * l] + i32::from(bsums[2 * l + 1]) * sc[2 * l + 1];
            *s -= off << 5;
        }
        for (s, &x) in acc.iter_mut().zip(&sumi) {
            *s = fmadd(d, x as f32, *s);
        }
    }

    #[inline(always)]
    fn finish(acc: F32x8) -> f32 {
        hsum_float_8(acc)
    }
}

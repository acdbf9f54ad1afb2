//! Q4_K: 256 values per super-block in 8 sub-blocks of 32.
//!
//! Layout (144 bytes): `d: f16`, `dmin: f16`, `scales: [u8; 12]`,
//! `qs: [u8; 128]`. Sub-block `s` has a 6-bit scale `sc[s]` and a 6-bit min
//! `m[s]` packed in `scales` (see [`scale_min_k4`]). Values come in four
//! 64-value chunks `c`: byte `qs[32c + l]` holds value `64c + l` (sub-block
//! `2c`) in its low nibble and value `64c + 32 + l` (sub-block `2c + 1`) in
//! its high nibble. Value = `d * sc[s] * q - dmin * m[s]`.

use super::act::{q8_k_block, Q8_K_BYTES};
use super::tile::{row_dot, BlockDot};
use super::{
    blocks, check_len, f16_le, fmadd, hsum_float_8, products_u8_i8, quad_lanes, F32x8, Lanes, QK_K,
};
use phi_edge::DType;

/// Bytes in a Q4_K block.
pub const Q4_K_BYTES: usize = DType::Q4K.block_bytes();

/// The 6-bit scale and min of sub-block `j < 8` from the packed 12 bytes
/// (ggml's `get_scale_min_k4`).
///
/// Sub-blocks 0..4 keep their scale in the low 6 bits of byte `j` and their
/// min in the low 6 bits of byte `j + 4`. Sub-blocks 4..8 keep the low 4
/// bits of scale and min in the low and high nibbles of byte `j + 4`, and
/// the top 2 bits in the top 2 bits of bytes `j - 4` (scale) and `j` (min).
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// A Q4_K block, split.
struct Block<'a> {
    d: f32,
    dmin: f32,
    sc: [u8; 8],
    m: [u8; 8],
    qs: &'a [u8; 128],
}

#[inline(always)]
fn block(b: &[u8]) -> Block<'_> {
    let b: &[u8; Q4_K_BYTES] = b.try_into().unwrap();
    let packed: &[u8; 12] = b[4..16].try_into().unwrap();
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = scale_min_k4(j, packed);
    }
    Block {
        d: f16_le([b[0], b[1]]),
        dmin: f16_le([b[2], b[3]]),
        sc,
        m,
        qs: b[16..].try_into().unwrap(),
    }
}

/// Dequantizes a Q4_K row (`dequantize_row_q4_K`):
/// `(d * sc) * q - dmin * m` per sub-block.
pub fn dequantize_row_q4_k(src: &[u8], out: &mut [f32]) {
    let nb = blocks(out.len(), QK_K);
    check_len("q4_K input", src, nb, Q4_K_BYTES);
    for (b, o) in src.chunks_exact(Q4_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let b = block(b);
        for (c, (q, y)) in
            b.qs.chunks_exact(32)
                .zip(o.chunks_exact_mut(64))
                .enumerate()
        {
            let d1 = b.d * f32::from(b.sc[2 * c]);
            let m1 = b.dmin * f32::from(b.m[2 * c]);
            let d2 = b.d * f32::from(b.sc[2 * c + 1]);
            let m2 = b.dmin * f32::from(b.m[2 * c + 1]);
            let (lo, hi) = y.split_at_mut(32);
            for ((&q, y0), y1) in q.iter().zip(lo).zip(hi) {
                *y0 = d1 * f32::from(q & 0x0f) - m1;
                *y1 = d2 * f32::from(q >> 4) - m2;
            }
        }
    }
}

/// The sums of pairs of `bsums`, one per 32-value sub-block (the AVX2
/// code's `_mm_hadd_epi16`; no i16 overflow for quants in `-127..=127`).
#[inline(always)]
fn sub_block_sums(bsums: &[i16; 16]) -> [i32; 8] {
    core::array::from_fn(|j| i32::from(bsums[2 * j]) + i32::from(bsums[2 * j + 1]))
}

/// A Q4_K block, unpacked: the scales and the 256 nibbles, as eight
/// 32-value sub-blocks in value order.
pub(crate) struct Unpacked {
    d: f32,
    dmin: f32,
    sc: [u8; 8],
    m: [u8; 8],
    q: [[u8; 32]; 8],
}

/// Unpacks a Q4_K block: chunk `c`'s 32 bytes give sub-block `2c` (low
/// nibbles) and `2c + 1` (high nibbles).
#[inline(always)]
fn unpack(wb: &[u8]) -> Unpacked {
    let b = block(wb);
    Unpacked {
        d: b.d,
        dmin: b.dmin,
        sc: b.sc,
        m: b.m,
        q: core::array::from_fn(|s| {
            let q4 = &b.qs[32 * (s / 2)..][..32];
            core::array::from_fn(|i| if s % 2 == 0 { q4[i] & 0x0f } else { q4[i] >> 4 })
        }),
    }
}

/// The two rows, for length errors.
const WHAT: [&str; 2] = ["q4_K weights", "q8_K activations"];

/// Dot product of a Q4_K weight row and a Q8_K activation row of `k`
/// values, as llama.cpp's x86 AVX2 `ggml_vec_dot_q4_K_q8_K` (see `Q4K`
/// in the source).
pub fn vec_dot_q4_k_q8_k(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q4K>(WHAT, k, w, a)
}

/// Dot product of a Q4_K weight row and a Q8_K activation row of `k`
/// values, as one output row of llama.cpp's x86 AVX2
/// `ggml_gemv_q4_K_8x8_q8_K` (see `Q4KRepacked` in the source).
pub fn vec_dot_q4_k_q8_k_repacked(k: usize, w: &[u8], a: &[u8]) -> f32 {
    row_dot::<Q4KRepacked>(WHAT, k, w, a)
}

/// Q4_K weights times Q8_K activations in plain rows, block by block (a
/// weight llama.cpp does not repack: a tied token embedding).
///
/// Per block, with `d = da * dw` and `dmin = -da * dmin_w` (f32
/// products):
/// - eight i32 lanes, lane `l` summing `sc[s] * q4 * q8` over the values
///   `4l..4l + 4` of every 32-value sub-block `s`, then
///   `acc[l] = fma(d, lane[l], acc[l])`;
/// - four i32 min terms, `t[i] = m[2i] * bs[2i] + m[2i + 1] * bs[2i + 1]`
///   with `bs[s]` the sum of the sub-block's quants (from `bsums`), then
///   `acc_m[i] = fma(dmin, t[i], acc_m[i])`.
///
/// The result is
/// `hsum_float_8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))`.
pub(crate) struct Q4K;

impl BlockDot for Q4K {
    const QK: usize = QK_K;
    const W_BYTES: usize = Q4_K_BYTES;
    const A_BYTES: usize = Q8_K_BYTES;
    type Weights = Unpacked;
    type Acc = (F32x8, [f32; 4]);
    const ZERO: (F32x8, [f32; 4]) = ([0.0; 8], [0.0; 4]);

    #[inline(always)]
    fn unpack(wb: &[u8]) -> Unpacked {
        unpack(wb)
    }

    #[inline(always)]
    fn step(w: &Unpacked, ab: &[u8], (acc, acc_m): &mut (F32x8, [f32; 4])) {
        let (da, q8, bsums) = q8_k_block(ab);
        let d = da * w.d;
        let dmin = -da * w.dmin;

        let bs = sub_block_sums(&bsums);
        for (i, m) in acc_m.iter_mut().enumerate() {
            let t = i32::from(w.m[2 * i]) * bs[2 * i] + i32::from(w.m[2 * i + 1]) * bs[2 * i + 1];
            *m = fmadd(dmin, t as f32, *m);
        }

        let mut sumi: Lanes = [0; 8];
        for (s, (q4, q8)) in w.q.iter().zip(q8.chunks_exact(32)).enumerate() {
            let part = quad_lanes(products_u8_i8(q4, q8));
            let sc = i32::from(w.sc[s]);
            for (x, p) in sumi.iter_mut().zip(part) {
                *x += sc * p;
            }
        }
        for (s, &x) in acc.iter_mut().zip(&sumi) {
            *s = fmadd(d, x as f32, *s);
        }
    }

    #[inline(always)]
    fn finish((acc, acc_m): (F32x8, [f32; 4])) -> f32 {
        hsum_float_8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))
    }
}

/// Q4_K weights times Q8_K activations in the order llama.cpp uses for
/// the Q4_K projection weights it repacks into 8-row interleaved blocks
/// (one output row of `ggml_gemv_q4_K_8x8_q8_K`).
///
/// Two f32 accumulators per row. Per block, the exact i32 sums
/// `isum = sum_s sc[s] * dot(q4, q8 over sub-block s)` and
/// `imin = sum_s m[s] * bs[s]` (`bs[s]` the sum of the sub-block's quants,
/// from `bsums`); then `acc = fma(isum, dw * da, acc)` and
/// `acc_m = fma(imin, dmin_w * da, acc_m)` (f32 products). The result is
/// `acc - acc_m`.
pub(crate) struct Q4KRepacked;

impl BlockDot for Q4KRepacked {
    const QK: usize = QK_K;
    const W_BYTES: usize = Q4_K_BYTES;
    const A_BYTES: usize = Q8_K_BYTES;
    type Weights = Unpacked;
    type Acc = (f32, f32);
    const ZERO: (f32, f32) = (0.0, 0.0);

    #[inline(always)]
    fn unpack(wb: &[u8]) -> Unpacked {
        unpack(wb)
    }

    #[inline(always)]
    fn step(w: &Unpacked, ab: &[u8], (acc, acc_m): &mut (f32, f32)) {
        let (da, q8, bsums) = q8_k_block(ab);

        let bs = sub_block_sums(&bsums);
        let mut imin = 0i32;
        for (&m, &s) in w.m.iter().zip(&bs) {
            imin += i32::from(m) * s;
        }

        let mut isum = 0i32;
        for ((q4, q8), &sc) in w.q.iter().zip(q8.chunks_exact(32)).zip(&w.sc) {
            let sum: i32 = products_u8_i8(q4, q8).iter().sum();
            isum += i32::from(sc) * sum;
        }

        *acc = fmadd(isum as f32, w.d * da, *acc);
        *acc_m = fmadd(imin as f32, w.dmin * da, *acc_m);
    }

    #[inline(always)]
    fn finish((acc, acc_m): (f32, f32)) -> f32 {
        acc - acc_m
    }
}

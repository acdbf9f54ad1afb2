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
use super::{blocks, check_len, f16_le, Lanes, QK_K};

/// Bytes in a Q6_K block.
pub const Q6_K_BYTES: usize = 210;

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

/// The 256 signed quants (`q - 32`, in -32..32) of a block, in value order.
#[inline(always)]
fn decode(b: &Block<'_>) -> [i8; QK_K] {
    let mut a = [0i8; QK_K];
    for (h, out) in a.chunks_exact_mut(128).enumerate() {
        let ql: &[u8; 64] = b.ql[64 * h..64 * h + 64].try_into().unwrap();
        let qh: &[u8; 32] = b.qh[32 * h..32 * h + 32].try_into().unwrap();
        let (o01, o23) = out.split_at_mut(64);
        let (o0, o1) = o01.split_at_mut(32);
        let (o2, o3) = o23.split_at_mut(32);
        for l in 0..32 {
            let (lo, hi, top) = (ql[l], ql[l + 32], qh[l]);
            o0[l] = ((lo & 0x0f) | ((top & 3) << 4)) as i8 - 32;
            o1[l] = ((hi & 0x0f) | (((top >> 2) & 3) << 4)) as i8 - 32;
            o2[l] = ((lo >> 4) | (((top >> 4) & 3) << 4)) as i8 - 32;
            o3[l] = ((hi >> 4) | (((top >> 6) & 3) << 4)) as i8 - 32;
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
                *y = ds * f32::from(q);
            }
        }
    }
}

/// Dot product of a Q6_K weight row and a Q8_K activation row of `k`
/// values (`ggml_vec_dot_q6_K_q8_K_generic`).
///
/// Per block: eight i32 lanes `aux[l] = sum over positions p = l (mod 8) of
/// scales[p / 16] * (q6[p] - 32) * q8[p]`; then in f32
/// `sums[l] += (d * da) * aux[l]`, and at the end `sumf = sum of sums[l]`
/// for `l` in order. This lane structure is ggml's; it fixes the f32
/// rounding order.
pub fn vec_dot_q6_k_q8_k(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(k, QK_K);
    check_len("q6_K weights", w, nb, Q6_K_BYTES);
    check_len("q8_K activations", a, nb, Q8_K_BYTES);
    let mut sums = [0.0f32; 8];
    for (wb, ab) in w.chunks_exact(Q6_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let b = block(wb);
        let (da, q8, _) = q8_k_block(ab);
        let q6 = decode(&b);

        let mut aux: Lanes = [0; 8];
        for ((q6, q8), &sc) in q6.chunks_exact(16).zip(q8.chunks_exact(16)).zip(b.scales) {
            let mut part: Lanes = [0; 8];
            for (q6, q8) in q6.chunks_exact(8).zip(q8.chunks_exact(8)) {
                for l in 0..8 {
                    part[l] += i32::from(q6[l]) * i32::from(q8[l] as i8);
                }
            }
            let sc = i32::from(sc as i8);
            for l in 0..8 {
                aux[l] += sc * part[l];
            }
        }

        let d = b.d * da;
        for (s, &x) in sums.iter_mut().zip(&aux) {
            *s += d * x as f32;
        }
    }
    let mut sumf = 0.0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}

//! Q4_K: 256 values per super-block in 8 sub-blocks of 32.
//!
//! Layout (144 bytes): `d: f16`, `dmin: f16`, `scales: [u8; 12]`,
//! `qs: [u8; 128]`. Sub-block `s` has a 6-bit scale `sc[s]` and a 6-bit min
//! `m[s]` packed in `scales` (see [`scale_min_k4`]). Values come in four
//! 64-value chunks `c`: byte `qs[32c + l]` holds value `64c + l` (sub-block
//! `2c`) in its low nibble and value `64c + 32 + l` (sub-block `2c + 1`) in
//! its high nibble. Value = `d * sc[s] * q - dmin * m[s]`.

use super::act::{q8_k_block, Q8_K_BYTES};
use super::{blocks, check_len, f16_le, Lanes, QK_K};

/// Bytes in a Q4_K block.
pub const Q4_K_BYTES: usize = 144;

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

/// Per-lane sums of `nibble(q4[l]) * q8[l]` over 32 values.
#[inline(always)]
fn lanes_32(q4: &[u8], q8: &[u8], high: bool) -> Lanes {
    let mut acc: Lanes = [0; 8];
    for (q4, q8) in q4.chunks_exact(8).zip(q8.chunks_exact(8)) {
        for l in 0..8 {
            let w = if high { q4[l] >> 4 } else { q4[l] & 0x0f };
            acc[l] += i32::from(w) * i32::from(q8[l] as i8);
        }
    }
    acc
}

/// Dot product of a Q4_K weight row and a Q8_K activation row of `k`
/// values (`ggml_vec_dot_q4_K_q8_K_generic`).
///
/// Per block: eight i32 lanes `aux[l] = sum over positions p = l (mod 8) of
/// sc[p / 32] * q4[p] * q8[p]` and the min term
/// `summ = sum_j bsums[j] * m[j / 2]`; then in f32
/// `sums[l] += (d * da) * aux[l]` and `sumf -= (dmin * da) * summ`. At the
/// end `sumf += sums[l]` for `l` in order. This lane structure is ggml's;
/// it fixes the f32 rounding order.
pub fn vec_dot_q4_k_q8_k(k: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(k, QK_K);
    check_len("q4_K weights", w, nb, Q4_K_BYTES);
    check_len("q8_K activations", a, nb, Q8_K_BYTES);
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for (wb, ab) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let b = block(wb);
        let (da, q8, bsums) = q8_k_block(ab);

        let mut summ = 0i32;
        for (j, &s) in bsums.iter().enumerate() {
            summ += i32::from(s) * i32::from(b.m[j / 2]);
        }

        let mut aux: Lanes = [0; 8];
        for (c, (q4, q8)) in b.qs.chunks_exact(32).zip(q8.chunks_exact(64)).enumerate() {
            let (q8_lo, q8_hi) = q8.split_at(32);
            let lo = lanes_32(q4, q8_lo, false);
            let hi = lanes_32(q4, q8_hi, true);
            let (s_lo, s_hi) = (i32::from(b.sc[2 * c]), i32::from(b.sc[2 * c + 1]));
            for l in 0..8 {
                aux[l] += s_lo * lo[l] + s_hi * hi[l];
            }
        }

        let d = b.d * da;
        for (s, &x) in sums.iter_mut().zip(&aux) {
            *s += d * x as f32;
        }
        let dmin = b.dmin * da;
        sumf -= dmin * summ as f32;
    }
    for s in sums {
        sumf += s;
    }
    sumf
}

//! Known-value tests: hand-built blocks whose dequantized values were worked
//! out by hand from the layouts documented on `DType`, so a layout mistake
//! in a dequantizer (and, through the exact matmul tests, in a dot product)
//! is caught.

use std::vec;

use phi_edge::DType;

use super::{deq_w, h};
use crate::float::{bf16_to_f32, f32_to_bf16};
use crate::quant::q4_k::scale_min_k4;

#[test]
fn q8_0_block() {
    let mut b = [0u8; 34];
    b[..2].copy_from_slice(&h(0.25));
    b[2 + 5] = (-4i8) as u8;
    b[2 + 31] = 127;
    b[2] = (-128i8) as u8;
    let y = deq_w(DType::Q8_0, &b, 32);
    let mut want = vec![0.0f32; 32];
    want[5] = -1.0;
    want[31] = 31.75;
    want[0] = -32.0;
    assert_eq!(y, want);
}

#[test]
fn q4_0_block() {
    let mut b = [0x88u8; 18];
    b[..2].copy_from_slice(&h(0.5));
    b[2] = 0x1f; // value 0 = 0xf, value 16 = 0x1
    b[2 + 15] = 0x00; // values 15 and 31 = 0
    let y = deq_w(DType::Q4_0, &b, 32);
    let mut want = vec![0.0f32; 32];
    want[0] = 3.5;
    want[16] = -3.5;
    want[15] = -4.0;
    want[31] = -4.0;
    assert_eq!(y, want);
}

#[test]
fn q4_1_block() {
    let mut b = [0u8; 20];
    b[..2].copy_from_slice(&h(2.0));
    b[2..4].copy_from_slice(&h(-1.0));
    b[4 + 3] = 0xa5; // value 3 = 5, value 19 = 10
    let y = deq_w(DType::Q4_1, &b, 32);
    let mut want = vec![-1.0f32; 32];
    want[3] = 9.0;
    want[19] = 19.0;
    assert_eq!(y, want);
}

/// A Q4_K block with three non-zero sub-blocks: 1 (scale 3, min 2; the
/// simple 6-bit encoding), 5 (scale 45, min 50) and 7 (scale 63, min 17),
/// whose scales and mins are split into low nibbles and top bits.
fn q4_k_known_block() -> [u8; 144] {
    let mut b = [0u8; 144];
    b[..2].copy_from_slice(&h(1.0));
    b[2..4].copy_from_slice(&h(0.5));
    let sc = &mut b[4..16];
    // Sub-block 1: scale in sc[1], min in sc[5] (low 6 bits).
    sc[1] = 3;
    sc[5] = 2;
    // Sub-block 5: low nibbles in sc[9], top 2 bits of the scale in sc[1],
    // of the min in sc[5]. 45 = 0b10_1101, 50 = 0b11_0010.
    sc[9] = 0x0d | (0x02 << 4);
    sc[1] |= 0b10 << 6;
    sc[5] |= 0b11 << 6;
    // Sub-block 7: 63 = 0b11_1111, 17 = 0b01_0001.
    sc[11] = 0x0f | (0x01 << 4);
    sc[3] |= 0b11 << 6;
    sc[7] |= 0b01 << 6;
    let qs = &mut b[16..];
    qs[7] = 0x90; // value 32 + 7 (chunk 0, high nibble) = 9
    qs[64 + 3] = 0x70; // value 160 + 3 (chunk 2, high nibble) = 7
    qs[96 + 31] = 0xf0; // value 224 + 31 (chunk 3, high nibble) = 15
    b
}

#[test]
fn q4_k_scale_unpacking() {
    let b = q4_k_known_block();
    let sc: &[u8; 12] = b[4..16].try_into().unwrap();
    let got: std::vec::Vec<(u8, u8)> = (0..8).map(|j| scale_min_k4(j, sc)).collect();
    assert_eq!(
        got,
        [
            (0, 0),
            (3, 2),
            (0, 0),
            (0, 0),
            (0, 0),
            (45, 50),
            (0, 0),
            (63, 17)
        ]
    );
}

#[test]
fn q4_k_block() {
    let y = deq_w(DType::Q4K, &q4_k_known_block(), 256);
    let mut want = vec![0.0f32; 256];
    want[32..64].fill(-1.0); // 3 * 0 - 0.5 * 2
    want[39] = 26.0; // 3 * 9 - 1
    want[160..192].fill(-25.0); // - 0.5 * 50
    want[163] = 290.0; // 45 * 7 - 25
    want[224..256].fill(-8.5); // - 0.5 * 17
    want[255] = 936.5; // 63 * 15 - 8.5
    assert_eq!(y, want);
}

#[test]
fn q6_k_block() {
    let mut b = [0u8; 210];
    let (ql, rest) = b.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    let (scales, d) = rest.split_at_mut(16);
    d.copy_from_slice(&h(0.5));
    scales[1] = 2;
    scales[2] = 1;
    scales[6] = 1;
    scales[12] = (-3i8) as u8;
    // Value 20: half 0, first quarter: ql[20] low nibble, qh[20] bits 0..2.
    ql[20] = 0x07;
    qh[20] = 0b11;
    // Value 35: half 0, second quarter: ql[32 + 3] low nibble, qh[3] bits
    // 2..4. Value 99: fourth quarter: ql[32 + 3] high nibble, qh[3] bits 6..8.
    ql[35] = 0x5a;
    qh[3] = 0b10_00_01_00;
    // Value 197: half 1, third quarter: ql[64 + 5] high nibble, qh[32 + 5]
    // bits 4..6.
    ql[69] = 0xb0;
    qh[37] = 0b10_0000;
    let y = deq_w(DType::Q6K, &b, 256);
    let mut want = vec![0.0f32; 256];
    want[16..32].fill(-32.0); // 0.5 * 2 * (0 - 32)
    want[20] = 23.0; // q = 7 | 3 << 4 = 55 -> 23
    want[32..48].fill(-16.0);
    want[35] = -3.0; // q = 10 | 1 << 4 = 26 -> -6
    want[96..112].fill(-16.0);
    want[99] = 2.5; // q = 5 | 2 << 4 = 37 -> 5
    want[192..208].fill(48.0); // 0.5 * -3 * -32
    want[197] = -16.5; // q = 11 | 2 << 4 = 43 -> 11
    assert_eq!(y, want);
}

#[test]
fn float_rows() {
    let f32_bytes: std::vec::Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(deq_w(DType::F32, &f32_bytes, 2), [1.5, -2.0]);
    // f16: 0x3e00 = 1.5, 0xc000 = -2, 0x0001 = 2^-24, 0x7bff = 65504.
    let f16_bytes = [0x00, 0x3e, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b];
    assert_eq!(
        deq_w(DType::F16, &f16_bytes, 4),
        [1.5, -2.0, 2f32.powi(-24), 65504.0]
    );
    // bf16: 0x3fc0 = 1.5, 0xc000 = -2.
    let bf16_bytes = [0xc0, 0x3f, 0x00, 0xc0];
    assert_eq!(deq_w(DType::BF16, &bf16_bytes, 2), [1.5, -2.0]);
}

#[test]
fn bf16_rounding_matches_ggml() {
    let cases: [(u32, u16); 9] = [
        (0x3f80_0000, 0x3f80), // 1.0
        (0x3f80_8000, 0x3f80), // tie, even stays
        (0x3f81_8000, 0x3f82), // tie, odd rounds up
        (0x3f80_8001, 0x3f81), // above the tie
        (0x7f80_0000, 0x7f80), // inf
        (0x7f7f_ffff, 0x7f80), // max f32 rounds to inf, as ggml
        (0x7f80_0001, 0x7fc0), // signalling NaN becomes quiet
        (0xff80_0001, 0xffc0), // negative NaN keeps its sign
        (0x0001_2345, 0x0001), // subnormal kept, not flushed
    ];
    for (bits, want) in cases {
        assert_eq!(f32_to_bf16(f32::from_bits(bits)), want, "{bits:#x}");
    }
    assert_eq!(bf16_to_f32(0xc0a0), -5.0);
}

#[test]
fn f16_to_f32_is_exact_for_every_input() {
    for bits in 0..=u16::MAX {
        let got = crate::float::f16_to_f32(bits);
        let want = half::f16::from_bits(bits).to_f32();
        if want.is_nan() {
            assert!(got.is_nan(), "{bits:#x}");
            assert_eq!(got.to_bits() >> 31, want.to_bits() >> 31, "{bits:#x} sign");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#x}");
        }
    }
}

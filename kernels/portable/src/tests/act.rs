//! Activation quantizers: hand-computed blocks, sign and rounding
//! conventions, zero blocks, and round trips.

use std::vec;
use std::vec::Vec;

use phi_edge::{ActFormat, Kernels};

use super::{deq_a, h};
use crate::quant::act::{quantize_row_q8_0_ref, quantize_row_q8_1_ref};
use crate::quant::f16_le;
use crate::testing::Rng;
use crate::Portable;

fn quantize(fmt: ActFormat, x: &[f32]) -> Vec<u8> {
    let n = fmt.row_bytes(x.len()).unwrap();
    // One sentinel byte past the row: the kernel must not write it.
    let mut out = vec![0xaa; n + 1];
    Portable.quantize_act(fmt, x, &mut out);
    assert_eq!(out[n], 0xaa, "{fmt:?} wrote past its row");
    out.truncate(n);
    out
}

/// `amax = 127` gives `d = 1` exactly, so the quants are `roundf(x)`.
fn unit_scale_block() -> [f32; 32] {
    let mut x = [0.0f32; 32];
    x[..8].copy_from_slice(&[127.0, 2.5, -2.5, 0.5, -0.5, 1.499_999_9, -126.6, 3.0]);
    x
}

#[test]
fn q8_0_rounds_ties_to_even_as_x86_llama_cpp() {
    let b = quantize(ActFormat::Q8_0, &unit_scale_block());
    assert_eq!(b[..2], h(1.0));
    let q: Vec<i8> = b[2..10].iter().map(|&v| v as i8).collect();
    assert_eq!(q, [127, 2, -2, 0, 0, 1, -127, 3]);
    assert!(b[10..].iter().all(|&v| v == 0));
}

#[test]
fn q8_ref_rounds_half_away_from_zero() {
    let x = unit_scale_block();
    let mut b = [0u8; 34];
    quantize_row_q8_0_ref(&x, &mut b);
    assert_eq!(b[..2], h(1.0));
    let q: Vec<i8> = b[2..10].iter().map(|&v| v as i8).collect();
    assert_eq!(q, [127, 3, -3, 1, -1, 1, -127, 3]);
    let mut b = [0u8; 36];
    quantize_row_q8_1_ref(&x, &mut b);
    assert_eq!(b[4..12].iter().map(|&v| v as i8).collect::<Vec<_>>(), q);
    assert_eq!(f16_le([b[2], b[3]]), 4.0);
}

#[test]
fn x86_multiplier_is_127_over_amax() {
    // For this amax, 1 / (amax / 127) and 127 / amax differ by one ulp, and
    // x * multiplier lands on 3.4999998 with the first and on 3.5 with the
    // second: the reference gives 3, x86 llama.cpp gives 4 (tie to even).
    let amax = f32::from_bits(0x3dcc_f7a4); // 0.10008171
    let x1 = f32::from_bits(0x3b34_c234); // 0.0027581574
    let mut x = [0.0f32; 32];
    x[0] = amax;
    x[1] = x1;
    let b = quantize(ActFormat::Q8_0, &x);
    assert_eq!((b[2] as i8, b[3] as i8), (127, 4));
    let mut r = [0u8; 34];
    quantize_row_q8_0_ref(&x, &mut r);
    assert_eq!((r[2] as i8, r[3] as i8), (127, 3));
    assert_eq!(b[..2], r[..2], "same d");
}

#[test]
fn q8_1_stores_scaled_sum() {
    let b = quantize(ActFormat::Q8_1, &unit_scale_block());
    assert_eq!(b[..2], h(1.0));
    let q: Vec<i8> = b[4..12].iter().map(|&v| v as i8).collect();
    assert_eq!(q, [127, 2, -2, 0, 0, 1, -127, 3]);
    assert_eq!(f16_le([b[2], b[3]]), 4.0); // 127 + 2 - 2 + 0 + 0 + 1 - 127 + 3

    // s is f16(sum * d) with the unrounded f32 d.
    let mut rng = Rng::new(7);
    let mut x = [0.0f32; 32];
    rng.fill_uniform(&mut x, -3.0, 3.0);
    let b = quantize(ActFormat::Q8_1, &x);
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let sum: i32 = b[4..].iter().map(|&v| i32::from(v as i8)).sum();
    assert_eq!(b[2..4], h(sum as f32 * d));
}

#[test]
fn q8_k_negative_max_and_ties_to_even() {
    let mut x = [0.0f32; 256];
    x[7] = -127.0; // iscale = -127 / -127 = 1
    x[..6].copy_from_slice(&[2.5, 3.5, -2.5, 0.5, 1.5, -0.5]);
    x[200] = 100.0;
    let b = quantize(ActFormat::Q8K, &x);
    assert_eq!(f32::from_le_bytes(b[..4].try_into().unwrap()), 1.0);
    let q: Vec<i8> = b[4..4 + 256].iter().map(|&v| v as i8).collect();
    assert_eq!(q[..8], [2, 4, -2, 0, 2, 0, 0, -127]);
    assert_eq!(q[200], 100);
    let bsums: Vec<i16> = b[260..]
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    let mut want = [0i16; 16];
    want[0] = 2 + 4 - 2 + 2 - 127;
    want[12] = 100;
    assert_eq!(bsums, want);
}

#[test]
fn q8_k_positive_max_gives_negative_scale() {
    let mut x = [0.0f32; 256];
    x[0] = 2.0; // first of the two largest magnitudes: max = +2
    x[1] = 1.0;
    x[2] = -2.0;
    let b = quantize(ActFormat::Q8K, &x);
    let iscale = -127.0f32 / 2.0;
    assert_eq!(f32::from_le_bytes(b[..4].try_into().unwrap()), 1.0 / iscale);
    assert_eq!([b[4] as i8, b[5] as i8, b[6] as i8], [-127, -64, 127]); // -63.5 -> -64
    let y = deq_a(ActFormat::Q8K, &b, 256);
    assert!((y[0] - 2.0).abs() < 1e-6 && (y[2] + 2.0).abs() < 1e-6);
}

#[test]
fn zero_blocks() {
    let x = [0.0f32; 512];
    for fmt in [ActFormat::Q8_0, ActFormat::Q8_1, ActFormat::Q8K] {
        let b = quantize(fmt, &x);
        assert!(
            b.iter().all(|&v| v == 0),
            "{fmt:?}: zero input must give zero bytes"
        );
    }
    // A zero block next to a non-zero one.
    let mut x = [0.0f32; 512];
    x[300] = 1.0;
    let b = quantize(ActFormat::Q8K, &x);
    assert!(b[..292].iter().all(|&v| v == 0));
    assert_eq!(b[292 + 4 + 44] as i8, -127); // max = +1: iscale = -127
}

#[test]
fn tiny_scale_underflows_like_ggml() {
    // d = 1e-10 / 127 is a normal f32 but 0 in f16: quants are still
    // computed with the f32 d (so they are full-range), and dequantize to 0.
    let mut x = [0.0f32; 32];
    x[3] = 1e-10;
    x[4] = -0.25e-10;
    let b = quantize(ActFormat::Q8_0, &x);
    assert_eq!(b[..2], [0, 0]);
    assert_eq!([b[2 + 3] as i8, b[2 + 4] as i8], [127, -32]);
    assert!(deq_a(ActFormat::Q8_0, &b, 32).iter().all(|&v| v == 0.0));
}

#[test]
fn round_trips() {
    let mut rng = Rng::new(1);
    for &(k, scale) in &[(256usize, 1.0f32), (1024, 1e-3), (512, 300.0), (256, 1e-6)] {
        let mut x = vec![0.0f32; k];
        rng.fill_uniform(&mut x, -scale, scale);
        x[5] = 0.0;
        for fmt in [ActFormat::Q8_0, ActFormat::Q8_1] {
            let b = quantize(fmt, &x);
            let y = deq_a(fmt, &b, k);
            let bb = fmt.block_bytes();
            for (blk, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let d16 = f16_le([b[blk * bb], b[blk * bb + 1]]);
                let tol = d * 0.5 * (1.0 + 1e-6) + 127.0 * (d16 - d).abs();
                for (&a, &c) in xb.iter().zip(yb) {
                    assert!((a - c).abs() <= tol, "{fmt:?} {a} -> {c}, tol {tol}");
                }
            }
        }
        let b = quantize(ActFormat::Q8K, &x);
        let y = deq_a(ActFormat::Q8K, &b, k);
        for (blk, (xb, yb)) in x.chunks(256).zip(y.chunks(256)).enumerate() {
            let o = blk * 292;
            let d = f32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            for (&a, &c) in xb.iter().zip(yb) {
                assert!(
                    (a - c).abs() <= d.abs() * 0.5 * (1.0 + 1e-5),
                    "q8_K {a} -> {c}"
                );
            }
            let qs = &b[o + 4..o + 260];
            assert!(qs.iter().all(|&q| (q as i8) >= -127));
            for (j, s) in b[o + 260..o + 292].chunks_exact(2).enumerate() {
                let want: i32 = qs[16 * j..16 * j + 16]
                    .iter()
                    .map(|&q| i32::from(q as i8))
                    .sum();
                assert_eq!(i32::from(i16::from_le_bytes([s[0], s[1]])), want);
            }
        }
        // Float formats convert each value on its own.
        let b = quantize(ActFormat::F16, &x);
        let y = deq_a(ActFormat::F16, &b, k);
        for (&a, &c) in x.iter().zip(&y) {
            assert_eq!(c, half::f16::from_f32(a).to_f32());
        }
        let b = quantize(ActFormat::BF16, &x);
        let y = deq_a(ActFormat::BF16, &b, k);
        for (&a, &c) in x.iter().zip(&y) {
            assert!((a - c).abs() <= a.abs() * 2f32.powi(-8));
        }
        let b = quantize(ActFormat::F32, &x);
        assert_eq!(deq_a(ActFormat::F32, &b, k), x);
    }
}

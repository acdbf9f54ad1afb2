//! `matmul` for every weight type and both weight uses: against an f64
//! reference, exactly on integer-valued inputs, output layout, and edge
//! cases.

use std::vec;
use std::vec::Vec;

use phi_edge::{ActFormat, DType, Kernels, WeightUse};

use super::{deq_a, deq_w, h, mm, reference_dot};
use crate::testing::{random_weight_row, Rng};
use crate::Portable;

/// Row lengths to try for `dtype`: one block, two, an odd count, and many.
fn ks(dtype: DType) -> [usize; 5] {
    let b = dtype.block_len().max(dtype.act_format().block_len());
    [b, 2 * b, 7 * b, 16 * b, 4096]
}

fn random_weights(dtype: DType, rng: &mut Rng, k: usize, rows: usize) -> Vec<u8> {
    let rb = dtype.row_bytes(k).unwrap();
    let mut w = vec![0u8; rows * rb];
    let mut tmp = vec![0.0f32; k];
    for row in w.chunks_exact_mut(rb) {
        random_weight_row(dtype, rng, &mut tmp, row);
    }
    w
}

fn quantized_acts(fmt: ActFormat, x: &[f32], k: usize) -> Vec<u8> {
    let rb = fmt.row_bytes(k).unwrap();
    let n_tok = x.len() / k;
    let mut a = vec![0u8; n_tok * rb];
    for (xr, ar) in x.chunks_exact(k).zip(a.chunks_exact_mut(rb)) {
        Portable.quantize_act(fmt, xr, ar);
    }
    a
}

/// Both ways a weight can be held (they differ in summation order for
/// Q4_0 and Q4_K).
const USES: [WeightUse; 2] = [WeightUse::Projection, WeightUse::TiedEmbedding];

/// Runs `matmul` with both weight uses and checks every output against
/// [`reference_dot`] within `rel` of the sum of term magnitudes.
fn check_against_reference(
    dtype: DType,
    w: &[u8],
    a: &[u8],
    k: usize,
    rows: usize,
    n_tok: usize,
    rel: f64,
) {
    let ld = rows + 2;
    let (wr, ar) = (
        dtype.row_bytes(k).unwrap(),
        dtype.act_format().row_bytes(k).unwrap(),
    );
    for usage in USES {
        let mut out = vec![f32::NAN; n_tok * ld];
        mm(dtype, usage, w, k, rows, a, n_tok, &mut out, ld);
        for t in 0..n_tok {
            for r in 0..rows {
                let (want, mag) = reference_dot(dtype, &w[r * wr..][..wr], &a[t * ar..][..ar], k);
                let got = f64::from(out[t * ld + r]);
                assert!(
                    (got - want).abs() <= rel * mag + 1e-30,
                    "{} {usage:?} k={k} r={r} t={t}: got {got}, want {want} (mag {mag})",
                    dtype.name()
                );
            }
        }
    }
}

#[test]
fn every_type_matches_f64_reference() {
    let mut rng = Rng::new(42);
    for dtype in DType::ALL {
        for k in ks(dtype) {
            let (rows, n_tok) = (3, 2);
            let w = random_weights(dtype, &mut rng, k, rows);
            let mut x = vec![0.0f32; n_tok * k];
            rng.fill_uniform(&mut x, -1.0, 1.0);
            for v in &mut x[k..] {
                *v *= 100.0; // a second token at another scale
            }
            let a = quantized_acts(dtype.act_format(), &x, k);
            check_against_reference(dtype, &w, &a, k, rows, n_tok, 1e-5);
        }
    }
}

/// Builds weight and activation rows whose scales are 1, so every dot
/// product is an integer below 2^24 and the f32 result must be exact.
fn integer_rows(dtype: DType, rng: &mut Rng, k: usize) -> (Vec<u8>, Vec<u8>) {
    let mut w = vec![0u8; dtype.row_bytes(k).unwrap()];
    let mut a = vec![0u8; dtype.act_format().row_bytes(k).unwrap()];
    rng.fill_bytes(&mut w);
    let small = |rng: &mut Rng, n: i32| rng.range_i32(-n, n) as i8 as u8;
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => {
            let mut wf = vec![0.0f32; k];
            let mut af = vec![0.0f32; k];
            for (x, y) in wf.iter_mut().zip(&mut af) {
                *x = rng.range_i32(-100, 100) as f32;
                *y = rng.range_i32(-100, 100) as f32;
            }
            let fmt = dtype.act_format();
            Portable.quantize_act(fmt, &wf, &mut w);
            Portable.quantize_act(fmt, &af, &mut a);
        }
        DType::Q8_0 | DType::Q4_0 => {
            let wb = dtype.block_bytes();
            for b in w.chunks_exact_mut(wb) {
                b[..2].copy_from_slice(&h(1.0));
            }
            for b in a.chunks_exact_mut(34) {
                b[..2].copy_from_slice(&h(1.0));
                for q in &mut b[2..] {
                    *q = small(rng, 127);
                }
            }
        }
        DType::Q4_1 => {
            for b in w.chunks_exact_mut(20) {
                b[..2].copy_from_slice(&h(1.0));
                b[2..4].copy_from_slice(&h(-3.0));
            }
            for b in a.chunks_exact_mut(36) {
                let mut sum = 0i32;
                for q in &mut b[4..] {
                    *q = small(rng, 60);
                    sum += i32::from(*q as i8);
                }
                b[..2].copy_from_slice(&h(1.0));
                b[2..4].copy_from_slice(&h(sum as f32)); // |sum| <= 1920: exact
            }
        }
        DType::Q4K | DType::Q6K => {
            if dtype == DType::Q4K {
                for b in w.chunks_exact_mut(144) {
                    b[..2].copy_from_slice(&h(1.0));
                    b[2..4].copy_from_slice(&h(1.0));
                }
            } else {
                for b in w.chunks_exact_mut(210) {
                    for s in &mut b[192..208] {
                        *s = small(rng, 32);
                    }
                    b[208..].copy_from_slice(&h(1.0));
                }
            }
            for b in a.chunks_exact_mut(292) {
                b[..4].copy_from_slice(&1.0f32.to_le_bytes());
                for q in &mut b[4..260] {
                    *q = small(rng, 8);
                }
                for j in 0..16 {
                    let s: i32 = b[4 + 16 * j..][..16]
                        .iter()
                        .map(|&q| i32::from(q as i8))
                        .sum();
                    b[260 + 2 * j..][..2].copy_from_slice(&(s as i16).to_le_bytes());
                }
            }
        }
    }
    (w, a)
}

#[test]
fn integer_inputs_are_exact() {
    let mut rng = Rng::new(9);
    for dtype in DType::ALL {
        let bl = dtype.block_len().max(dtype.act_format().block_len());
        for k in [bl, 4 * bl] {
            for _ in 0..20 {
                let (w, a) = integer_rows(dtype, &mut rng, k);
                let wf = deq_w(dtype, &w, k);
                let af = deq_a(dtype.act_format(), &a, k);
                let want: f64 = wf
                    .iter()
                    .zip(&af)
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum();
                assert!(want.abs() < f64::from(1 << 24) && want.fract() == 0.0);
                for usage in USES {
                    let mut out = [f32::NAN];
                    mm(dtype, usage, &w, k, 1, &a, 1, &mut out, 1);
                    assert_eq!(f64::from(out[0]), want, "{} {usage:?} k={k}", dtype.name());
                }
            }
        }
    }
}

#[test]
fn output_layout_and_vec_dot_agree() {
    let mut rng = Rng::new(3);
    for dtype in DType::ALL {
        let k = 2 * dtype.block_len().max(dtype.act_format().block_len());
        let (rows, n_tok, ld) = (5, 3, 8);
        let mut w = random_weights(dtype, &mut rng, k, rows);
        let mut x = vec![0.0f32; n_tok * k];
        rng.fill_uniform(&mut x, -2.0, 2.0);
        let mut a = quantized_acts(dtype.act_format(), &x, k);
        // Longer slices are fine: only the first rows are read.
        w.extend_from_slice(&[0xff; 7]);
        a.extend_from_slice(&[0xff; 7]);
        let sentinel = f32::from_bits(0x7fc0_1234);
        let (wr, ar) = (
            dtype.row_bytes(k).unwrap(),
            dtype.act_format().row_bytes(k).unwrap(),
        );
        for usage in USES {
            let mut out = vec![sentinel; n_tok * ld];
            mm(dtype, usage, &w, k, rows, &a, n_tok, &mut out, ld);
            let dot = |w: &[u8], a: &[u8]| {
                let mut one = [f32::NAN];
                mm(dtype, usage, w, k, 1, a, 1, &mut one, 1);
                one[0]
            };
            for t in 0..n_tok {
                for c in 0..ld {
                    let got = out[t * ld + c];
                    if c < rows {
                        let want = dot(&w[c * wr..][..wr], &a[t * ar..][..ar]);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{} {usage:?} t={t} r={c}",
                            dtype.name()
                        );
                    } else {
                        assert_eq!(
                            got.to_bits(),
                            sentinel.to_bits(),
                            "{} {usage:?} wrote gap t={t} c={c}",
                            dtype.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn only_q4_0_and_q4_k_depend_on_usage() {
    let mut rng = Rng::new(17);
    for dtype in DType::ALL {
        let k = 4 * dtype.block_len().max(dtype.act_format().block_len());
        let rows = 8;
        let w = random_weights(dtype, &mut rng, k, rows);
        let mut x = vec![0.0f32; k];
        rng.fill_uniform(&mut x, -1.0, 1.0);
        let a = quantized_acts(dtype.act_format(), &x, k);
        let [p, t] = USES.map(|usage| {
            let mut out = vec![0.0f32; rows];
            mm(dtype, usage, &w, k, rows, &a, 1, &mut out, rows);
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        });
        let repacked = matches!(dtype, DType::Q4_0 | DType::Q4K);
        assert_eq!(p != t, repacked, "{}", dtype.name());
    }
}

#[test]
fn fmadd_is_correctly_rounded() {
    // The fused multiply-add the dot products emulate `vfmadd` with,
    // against std's (a hardware or correctly rounded software FMA).
    let mut rng = Rng::new(23);
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        3.0e38,
        1.0e-20,
    ];
    for i in 0..200_000 {
        let mut v = [0.0f32; 3];
        for x in &mut v {
            *x = if i % 4 == 0 {
                special[rng.next_u64() as usize % special.len()]
            } else {
                // Products and addends of similar size: cancellation and
                // rounding ties are the hard cases.
                let e = rng.range_i32(-30, 30);
                rng.uniform(-2.0, 2.0) * 2f32.powi(e)
            };
        }
        if i % 3 == 0 {
            v[2] = -(v[0] * v[1]);
        }
        let got = crate::quant::fmadd(v[0], v[1], v[2]);
        let want = v[0].mul_add(v[1], v[2]);
        assert_eq!(got.to_bits(), want.to_bits(), "{v:?}");
    }
}

/// Weight blocks of the quantized types with the scale bytes (`d`, and
/// `dmin` / `m` where present) set to `bits`.
fn with_scale_bits(dtype: DType, w: &mut [u8], bits: u16) {
    let b = bits.to_le_bytes();
    for blk in w.chunks_exact_mut(dtype.block_bytes()) {
        match dtype {
            DType::Q8_0 | DType::Q4_0 => blk[..2].copy_from_slice(&b),
            DType::Q4_1 | DType::Q4K => {
                blk[..2].copy_from_slice(&b);
                blk[2..4].copy_from_slice(&b);
            }
            DType::Q6K => blk[208..].copy_from_slice(&b),
            _ => unreachable!(),
        }
    }
}

#[test]
fn subnormal_and_extreme_scales() {
    let mut rng = Rng::new(11);
    let quantized = [
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q4K,
        DType::Q6K,
    ];
    // Smallest subnormal, largest subnormal, smallest normal, largest finite.
    for bits in [0x0001u16, 0x03ff, 0x0400, 0x7bff] {
        for dtype in quantized {
            let k = 3 * dtype.block_len();
            let mut w = random_weights(dtype, &mut rng, k, 2);
            with_scale_bits(dtype, &mut w, bits);
            let mut x = vec![0.0f32; k];
            rng.fill_uniform(&mut x, -1.0, 1.0);
            let a = quantized_acts(dtype.act_format(), &x, k);
            check_against_reference(dtype, &w, &a, k, 2, 1, 1e-5);
        }
    }
}

#[test]
fn zero_blocks_give_exact_zeros() {
    let mut rng = Rng::new(5);
    for dtype in DType::ALL {
        let k = 2 * dtype.block_len().max(dtype.act_format().block_len());
        // All-zero weights (zero scales) times random activations.
        let w = vec![0u8; dtype.row_bytes(k).unwrap()];
        let mut x = vec![0.0f32; k];
        rng.fill_uniform(&mut x, -1.0, 1.0);
        let a = quantized_acts(dtype.act_format(), &x, k);
        let mut out = [f32::NAN];
        mm(dtype, WeightUse::Projection, &w, k, 1, &a, 1, &mut out, 1);
        assert_eq!(out[0], 0.0, "{} zero weights", dtype.name());
        // Random weights times an all-zero activation row.
        let w = random_weights(dtype, &mut rng, k, 1);
        let a = quantized_acts(dtype.act_format(), &vec![0.0; k], k);
        mm(dtype, WeightUse::Projection, &w, k, 1, &a, 1, &mut out, 1);
        assert_eq!(out[0], 0.0, "{} zero activations", dtype.name());
    }
}

#[test]
fn empty_shapes() {
    let mut out = [1.0f32; 4];
    // No rows or no tokens: nothing is written.
    mm(
        DType::Q4_0,
        WeightUse::Projection,
        &[],
        32,
        0,
        &[0; 34],
        1,
        &mut out,
        4,
    );
    mm(
        DType::Q4_0,
        WeightUse::Projection,
        &[0; 18],
        32,
        1,
        &[],
        0,
        &mut out,
        4,
    );
    assert_eq!(out, [1.0; 4]);
    // k = 0: every dot product is the empty sum.
    mm(
        DType::Q6K,
        WeightUse::Projection,
        &[],
        0,
        2,
        &[],
        2,
        &mut out,
        2,
    );
    assert_eq!(out, [0.0; 4]);
}

#[test]
#[should_panic(expected = "not a whole number of blocks")]
fn partial_block_panics() {
    let mut out = [0.0f32];
    mm(
        DType::Q4_0,
        WeightUse::Projection,
        &[0; 18],
        31,
        1,
        &[0; 34],
        1,
        &mut out,
        1,
    );
}

#[test]
fn model_sized_rows() {
    // A SmolLM2-135M sized projection (576 -> 1536) for the types the
    // parity model uses, against the reference.
    let mut rng = Rng::new(135);
    for dtype in [DType::Q4_1, DType::Q8_0, DType::Q6K] {
        let k = if dtype == DType::Q6K { 1536 } else { 576 };
        let rows = 16;
        let w = random_weights(dtype, &mut rng, k, rows);
        let mut x = vec![0.0f32; 4 * k];
        rng.fill_uniform(&mut x, -4.0, 4.0);
        let a = quantized_acts(dtype.act_format(), &x, k);
        check_against_reference(dtype, &w, &a, k, rows, 4, 1e-5);
    }
}

//! rms_norm, rope, swiglu, f32_to_f16 and attention against direct
//! formulas.

use std::vec;
use std::vec::Vec;

use phi_edge::Kernels;

use super::attn;
use crate::activation::v_expf;
use crate::attention::padded_kv_len;
use crate::float::{f16_to_f32, f32_to_f16, round_f16};
use crate::testing::Rng;
use crate::Portable;

#[test]
fn rms_norm_hand_value_and_reference() {
    // x = [3, 4]: mean square 12.5.
    let mut out = [0.0f32; 2];
    Portable.rms_norm(&[3.0, 4.0], &[1.0, 2.0], 0.0, &mut out);
    let s = 1.0 / 12.5f32.sqrt();
    assert_eq!(out, [3.0 * s, 4.0 * s * 2.0]);

    let mut rng = Rng::new(21);
    for n in [1usize, 7, 576, 3072] {
        let mut x = vec![0.0f32; n];
        let mut w = vec![0.0f32; n];
        rng.fill_uniform(&mut x, -10.0, 10.0);
        rng.fill_uniform(&mut w, 0.5, 1.5);
        let mut out = vec![0.0f32; n];
        let eps = 1e-5;
        Portable.rms_norm(&x, &w, eps, &mut out);
        let ms: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / n as f64;
        let scale = 1.0 / (ms + f64::from(eps)).sqrt();
        for i in 0..n {
            let want = f64::from(x[i]) * scale * f64::from(w[i]);
            assert!(
                (f64::from(out[i]) - want).abs() <= 1e-6 * want.abs() + 1e-30,
                "n={n} i={i}"
            );
        }
    }
    // eps keeps an all-zero row finite.
    let mut out = [1.0f32; 4];
    Portable.rms_norm(&[0.0; 4], &[1.0; 4], 1e-6, &mut out);
    assert_eq!(out, [0.0; 4]);
}

#[test]
fn rope_quarter_turn_by_hand() {
    let cs = [0.0, 1.0, 0.0, 1.0]; // cos 0, sin 1 for both pairs
    let mut x = [1.0, 0.0, 0.0, 1.0, 5.0];
    Portable.rope(&mut x, &cs, false);
    // Pairs (x0, x1) = (1, 0) -> (0, 1); (x2, x3) = (0, 1) -> (-1, 0).
    assert_eq!(x, [0.0, 1.0, -1.0, 0.0, 5.0]);
    let mut x = [1.0, 0.0, 0.0, 1.0, 5.0];
    Portable.rope(&mut x, &cs, true);
    // Pairs (x0, x2) = (1, 0) -> (0, 1); (x1, x3) = (0, 1) -> (-1, 0).
    assert_eq!(x, [0.0, -1.0, 1.0, 0.0, 5.0]);
}

/// The (cos, sin) table llama.cpp builds for position `pos`:
/// `theta_i = pos * base^(-2i / n_rot)`.
fn rope_table(pos: f64, n_rot: usize, base: f64) -> Vec<f32> {
    let mut cs = vec![0.0f32; n_rot];
    for i in 0..n_rot / 2 {
        let theta = pos * base.powf(-2.0 * i as f64 / n_rot as f64);
        cs[2 * i] = theta.cos() as f32;
        cs[2 * i + 1] = theta.sin() as f32;
    }
    cs
}

#[test]
fn rope_against_formula_with_partial_rotary() {
    let mut rng = Rng::new(8);
    for &(hd, n_rot) in &[(64usize, 64usize), (96, 96), (96, 32), (128, 64), (8, 2)] {
        for neox in [false, true] {
            for pos in [0.0, 1.0, 17.0, 4000.0] {
                let cs = rope_table(pos, n_rot, 10000.0);
                let mut x = vec![0.0f32; hd];
                rng.fill_uniform(&mut x, -3.0, 3.0);
                let orig = x.clone();
                Portable.rope(&mut x, &cs, neox);
                for i in 0..n_rot / 2 {
                    let (ia, ib) = if neox {
                        (i, i + n_rot / 2)
                    } else {
                        (2 * i, 2 * i + 1)
                    };
                    let (a, b) = (f64::from(orig[ia]), f64::from(orig[ib]));
                    let (c, s) = (f64::from(cs[2 * i]), f64::from(cs[2 * i + 1]));
                    let (wa, wb) = (a * c - b * s, a * s + b * c);
                    let tol = 1e-6 * (a.abs() + b.abs());
                    assert!(
                        (f64::from(x[ia]) - wa).abs() <= tol,
                        "hd={hd} n_rot={n_rot} neox={neox} i={i}"
                    );
                    assert!((f64::from(x[ib]) - wb).abs() <= tol);
                }
                // Dimensions past n_rot are untouched, bit for bit.
                assert_eq!(
                    x[n_rot..].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    orig[n_rot..]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                );
                if pos == 0.0 {
                    assert_eq!(x, orig, "position 0 is the identity");
                }
            }
        }
    }
}

#[test]
fn swiglu_against_formula() {
    let gate = [0.0f32, 1.0, -1.0, 20.0, -20.0, -100.0, -1000.0, 88.0, 3.5];
    let up = [2.0f32, 3.0, -0.5, 1.0, 1.0, 1.0, 7.0, 1.0, -2.0];
    let mut out = [0.0f32; 9];
    Portable.swiglu(&gate, &up, &mut out);
    for i in 0..gate.len() {
        let g = f64::from(gate[i]);
        let want = g / (1.0 + (-g).exp()) * f64::from(up[i]);
        assert!(out[i].is_finite());
        assert!(
            (f64::from(out[i]) - want).abs() <= 1e-6 * want.abs() + 1e-37,
            "i={i}: {} vs {want}",
            out[i]
        );
    }
    assert_eq!(out[0], 0.0);
    assert_eq!(out[6], 0.0); // expf(1000) = inf: silu = -0, times 7
}

#[test]
fn f32_to_f16_rounds_to_nearest_even() {
    let src = [
        1.0f32,
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65520.0,
        1e-8,
        f32::NAN,
        -0.0,
    ];
    let mut dst = [0u16; 7];
    Portable.f32_to_f16(&src, &mut dst);
    assert_eq!(dst[..5], [0x3c00, 0x3c00, 0x3c02, 0x7c00, 0x0000]);
    assert!(f16_to_f32(dst[5]).is_nan());
    assert_eq!(dst[6], 0x8000);
}

/// Attention in f64 with llama.cpp's f16 roundings of q and p.
fn attention_reference(
    q: &[f32],
    k: &[u16],
    v: &[u16],
    stride: usize,
    n_kv: usize,
    scale: f32,
) -> Vec<f64> {
    let hd = q.len();
    let s: Vec<f64> = (0..n_kv)
        .map(|j| {
            let dot: f64 = (0..hd)
                .map(|d| f64::from(round_f16(q[d])) * f64::from(f16_to_f32(k[j * stride + d])))
                .sum();
            dot * f64::from(scale)
        })
        .collect();
    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|&x| (x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    let p: Vec<f64> = e
        .iter()
        .map(|&x| f64::from(round_f16((x / sum) as f32)))
        .collect();
    (0..hd)
        .map(|d| {
            (0..n_kv)
                .map(|j| p[j] * f64::from(f16_to_f32(v[j * stride + d])))
                .sum()
        })
        .collect()
}

fn random_f16(rng: &mut Rng, n: usize, amp: f32) -> Vec<u16> {
    (0..n).map(|_| f32_to_f16(rng.uniform(-amp, amp))).collect()
}

#[test]
fn attention_against_f64_reference() {
    let mut rng = Rng::new(77);
    for &(hd, n_kv) in &[(64usize, 1usize), (64, 5), (96, 33), (128, 200), (300, 9)] {
        let stride = hd + 16; // rows are strided, as in a KV cache of several heads
        let k = random_f16(&mut rng, n_kv * stride, 2.0);
        let v = random_f16(&mut rng, n_kv * stride, 2.0);
        let mut q = vec![0.0f32; hd];
        rng.fill_uniform(&mut q, -2.0, 2.0);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut scratch = vec![0.0f32; n_kv + 3];
        let mut out = vec![f32::NAN; hd];
        attn(&q, &k, &v, stride, n_kv, scale, &mut scratch, &mut out);
        let want = attention_reference(&q, &k, &v, stride, n_kv, scale);
        // p_j may land one f16 ulp apart (2^-11 relative) where the f32 and
        // f64 softmax straddle a rounding boundary.
        let vmax = 2.0f64;
        for d in 0..hd {
            let tol = 2f64.powi(-10) * vmax + 1e-6;
            assert!(
                (f64::from(out[d]) - want[d]).abs() <= tol,
                "hd={hd} n_kv={n_kv} d={d}: {} vs {}",
                out[d],
                want[d]
            );
        }
        // Scratch holds the f16-rounded probabilities.
        for &p in &scratch[..n_kv] {
            assert_eq!(p, round_f16(p));
        }
    }
}

#[test]
fn attention_exact_cases() {
    let hd = 8;
    let mut rng = Rng::new(4);
    let v = random_f16(&mut rng, 4 * hd, 3.0);
    let k = random_f16(&mut rng, 4 * hd, 3.0);
    let q = [0.5f32; 8];
    let mut scratch = [0.0f32; 4];
    let mut out = [0.0f32; 8];
    // One key: p = 1, out = v_0 exactly.
    attn(&q, &k, &v, hd, 1, 0.3, &mut scratch, &mut out);
    let v0: Vec<f32> = v[..hd].iter().map(|&b| f16_to_f32(b)).collect();
    assert_eq!(out.to_vec(), v0);
    assert_eq!(scratch[0], 1.0);
    // Four equal keys: p = 1/4 exactly. Cells 0..4 sit in lanes 0..4 of
    // ggml's 32 f32 lanes, which its reduction sums as (l0 + l1) + (l2 + l3).
    let k_same: Vec<u16> = (0..4).flat_map(|_| k[..hd].to_vec()).collect();
    attn(&q, &k_same, &v, hd, 4, 0.3, &mut scratch, &mut out);
    assert_eq!(scratch, [0.25; 4]);
    for d in 0..hd {
        let l = |j: usize| 0.25 * f16_to_f32(v[j * hd + d]);
        assert_eq!(out[d], (l(0) + l(1)) + (l(2) + l(3)));
    }
    // No keys: zeros.
    out = [9.0; 8];
    attn(&q, &[], &[], hd, 0, 0.3, &mut scratch, &mut out);
    assert_eq!(out, [0.0; 8]);
}

#[test]
fn kv_length_is_padded_to_256() {
    assert_eq!(padded_kv_len(1), 256);
    assert_eq!(padded_kv_len(256), 256);
    assert_eq!(padded_kv_len(257), 512);
    assert_eq!(padded_kv_len(4096), 4096);
}

#[test]
fn attention_rounds_q_to_f16() {
    // q[0] = 1 + 2^-12 rounds to 1 in f16, so both keys score exactly 1000
    // after scaling; unrounded, key 0 would win by 0.24 and take p = 0.56.
    let q = [1.0 + 2f32.powi(-12), 1.0];
    let (one, zero) = (f32_to_f16(1.0), f32_to_f16(0.0));
    let k = [one, zero, zero, one];
    let v = [one, zero, zero, one];
    let mut scratch = [0.0f32; 2];
    let mut out = [0.0f32; 2];
    attn(&q, &k, &v, 2, 2, 1000.0, &mut scratch, &mut out);
    assert_eq!(scratch, [0.5, 0.5]);
    assert_eq!(out, [0.5, 0.5]);
}

#[test]
fn attention_rounds_probabilities_to_f16() {
    // Three equal keys: e = 1, sum = 3, p = f16(1 * f32(1 / 3)).
    let p = round_f16((1.0f64 / 3.0) as f32);
    assert_ne!(p, 1.0 / 3.0);
    let hd = 2;
    let k = [f32_to_f16(0.5); 6];
    let v = [f32_to_f16(1.0); 6];
    let mut scratch = [0.0f32; 3];
    let mut out = [0.0f32; 2];
    attn(&[1.0, -1.0], &k, &v, hd, 3, 0.125, &mut scratch, &mut out);
    assert_eq!(scratch, [p; 3]);
    assert_eq!(out, [p + p + p; 2]);
}

#[test]
fn elementwise_ops_follow_their_f32_formulas_exactly() {
    let mut rng = Rng::new(99);
    let n = 1000;
    let mut a = vec![0.0f32; n];
    let mut b = vec![0.0f32; n];
    rng.fill_uniform(&mut a, -12.0, 12.0);
    rng.fill_uniform(&mut b, -3.0, 3.0);

    // swiglu: whole groups of 8 take ggml's SIMD silu, the tail the scalar
    // one; 997 values leave a tail of 5.
    let n_swiglu = 997;
    let mut out = vec![0.0f32; n_swiglu];
    Portable.swiglu(&a[..n_swiglu], &b[..n_swiglu], &mut out);
    for i in 0..n_swiglu {
        let silu = if i < 992 {
            a[i] / (1.0 + v_expf(0.0 - a[i]))
        } else {
            a[i] / (1.0 + libm::expf(-a[i]))
        };
        assert_eq!(out[i].to_bits(), (silu * b[i]).to_bits(), "swiglu {i}");
    }
    let mut out = vec![0.0f32; n];

    let cs: Vec<f32> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                libm::cosf(b[i])
            } else {
                libm::sinf(b[i - 1])
            }
        })
        .collect();
    // Adjacent pairs (not neox) are fused as GCC's vfmaddsub computes them,
    // except a last odd pair; 1000 values and 14 values (7 pairs) cover both.
    for (n, neox) in [(n, false), (n, true), (14, false), (14, true)] {
        let mut x = a[..n].to_vec();
        Portable.rope(&mut x, &cs[..n], neox);
        let fused = if neox { 0 } else { (n / 2) & !1 };
        for i in 0..n / 2 {
            let (ia, ib) = if neox {
                (i, i + n / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let want = if i < fused {
                (
                    libm::fmaf(a[ia], c, -(a[ib] * s)),
                    libm::fmaf(a[ia], s, a[ib] * c),
                )
            } else {
                (a[ia] * c - a[ib] * s, a[ia] * s + a[ib] * c)
            };
            assert_eq!(
                x[ia].to_bits(),
                want.0.to_bits(),
                "rope n={n} neox={neox} pair {i}"
            );
            assert_eq!(
                x[ib].to_bits(),
                want.1.to_bits(),
                "rope n={n} neox={neox} pair {i}"
            );
        }
    }

    let w: Vec<f32> = b.iter().map(|v| v.abs() + 0.5).collect();
    Portable.rms_norm(&a, &w, 1e-5, &mut out);
    let sum: f64 = a.iter().map(|&v| f64::from(v * v)).sum();
    let scale = 1.0 / libm::sqrtf((sum / n as f64) as f32 + 1e-5);
    for i in 0..n {
        assert_eq!(
            out[i].to_bits(),
            (a[i] * scale * w[i]).to_bits(),
            "rms_norm {i}"
        );
    }
}

#[test]
fn rms_norm_sums_squares_in_f64() {
    // 1e8 followed by 4096 ones: an f32 running sum would lose every one
    // (the f32 spacing at 1e8 is 8), shifting the scale by ~2e-5.
    let mut x = vec![1.0f32; 4097];
    x[0] = 1e4;
    let w = vec![1.0f32; 4097];
    let mut out = vec![0.0f32; 4097];
    Portable.rms_norm(&x, &w, 0.0, &mut out);
    let scale = 1.0 / libm::sqrtf(((1e8f64 + 4096.0) / 4097.0) as f32);
    assert_eq!(out[1], scale);
    let f32_scale = 1.0 / libm::sqrtf(1e8f32 / 4097.0);
    assert!((out[1] / f32_scale - 1.0).abs() > 1e-5);
}

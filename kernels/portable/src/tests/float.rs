//! Bit-exact checks of the float kernels against llama.cpp's x86 AVX2
//! build.
//!
//! `float_golden.rs` holds outputs of ggml's `vec.cpp` / `vec.h` (see
//! `gen_float_golden.cpp` for how it was made and the attention chain it
//! composes). The inputs are regenerated here from the same seeds with the
//! same splitmix64 stream.

#[path = "float_golden.rs"]
mod golden;

use std::vec;
use std::vec::Vec;

use phi_edge::{DType, Kernels, WeightUse};

use super::{attn, mm};
use crate::activation::{v_expf, v_silu};
use crate::attention::soft_max;
use crate::float::{dot_f16_row, f32_to_f16, round_f16};
use crate::testing::Rng;
use crate::{vec_dot_bf16, vec_dot_f16, vec_dot_f32, Portable};

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// fnv64 of f32 bits, every NaN written as `0x7fc00000` (as the generator).
fn fnv_f32(x: &[f32]) -> u64 {
    fnv(x.iter().flat_map(|v| {
        let b = if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() };
        b.to_le_bytes()
    }))
}

/// `n` values uniform in `[-mag, mag)`, each scaled by `2^e`, `e` uniform
/// in `-12..=12`, when `spread` (the generator's `fill`).
fn fill(rng: &mut Rng, n: usize, mag: f32, spread: bool) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let x = rng.uniform(-mag, mag);
            if spread {
                let e = (rng.next_u64() % 25) as i32 - 12;
                x * f32::from_bits(((127 + e) as u32) << 23)
            } else {
                x
            }
        })
        .collect()
}

#[test]
fn float_dots_match_x86_llama_cpp() {
    for &(tag, n, seed, mag, spread, want) in golden::DOTS {
        let dtype = DType::from_ggml_id(u32::from(tag)).unwrap();
        let mut rng = Rng::new(seed);
        let x = fill(&mut rng, n, f32::from_bits(mag), spread);
        let y = fill(&mut rng, n, f32::from_bits(mag), spread);
        let fmt = dtype.act_format();
        let mut w = vec![0u8; dtype.row_bytes(n).unwrap()];
        let mut a = vec![0u8; fmt.row_bytes(n).unwrap()];
        // Weights and activations both go through the kernels' converters.
        Portable.quantize_act(fmt, &x, &mut w);
        Portable.quantize_act(fmt, &y, &mut a);
        let direct = match dtype {
            DType::F32 => vec_dot_f32(n, &w, &a),
            DType::F16 => vec_dot_f16(n, &w, &a),
            _ => vec_dot_bf16(n, &w, &a),
        };
        let mut out = [0.0f32];
        mm(dtype, WeightUse::Projection, &w, n, 1, &a, 1, &mut out, 1);
        assert_eq!(
            direct.to_bits(),
            want,
            "{} n={n} seed {seed}: {direct} vs {}",
            dtype.name(),
            f32::from_bits(want)
        );
        assert_eq!(
            out[0].to_bits(),
            want,
            "{} n={n} seed {seed}: matmul",
            dtype.name()
        );
    }
}

#[test]
fn swiglu_matches_x86_llama_cpp() {
    const SPECIALS: [f32; 11] = [
        0.0, -0.0, 88.0, 89.0, -88.0, -89.0, -104.0, 120.0, -200.0, 1e-30, -1e-30,
    ];
    for &(n, seed, want) in golden::SWIGLU {
        let mut rng = Rng::new(seed);
        let mut g = fill(&mut rng, n, 30.0, false);
        let u = fill(&mut rng, n, 3.0, false);
        for v in &mut g {
            if rng.next_u64() % 8 == 0 {
                *v = SPECIALS[(rng.next_u64() % 11) as usize];
            }
        }
        let mut out = vec![0.0f32; n];
        Portable.swiglu(&g, &u, &mut out);
        assert_eq!(fnv_f32(&out), want, "swiglu n={n} seed {seed}");
    }
}

/// The generator's `exp_inputs`.
fn exp_inputs() -> Vec<f32> {
    let mut rng = Rng::new(9000);
    let mut x: Vec<f32> = (0..4096 * 8).map(|_| rng.uniform(-110.0, 100.0)).collect();
    x.extend(
        (0..1u64 << 32)
            .step_by(65521)
            .map(|u| f32::from_bits(u as u32)),
    );
    x.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        88.0,
        f32::from_bits(0x42b1_7217), // 0x1.62e42ep6
        f32::from_bits(0x42b1_7218),
        f32::from_bits(0xc2cf_f1b4), // -0x1.9fe368p6
        f32::from_bits(0xc2cf_f1b5),
        -87.33,
        -87.34,
        -103.9,
        87.3365,
        -87.3365,
    ]);
    while x.len() % 8 != 0 {
        x.push(1.0);
    }
    x
}

#[test]
fn v_expf_and_v_silu_match_ggml() {
    let x = exp_inputs();
    let (len, want) = golden::V_EXPF;
    assert_eq!(x.len(), len);
    let e: Vec<f32> = x.iter().map(|&v| v_expf(v)).collect();
    assert_eq!(fnv_f32(&e), want, "ggml_v_expf");
    let s: Vec<f32> = x.iter().map(|&v| v_silu(v)).collect();
    assert_eq!(fnv_f32(&s), golden::V_SILU, "ggml_v_silu");
}

#[test]
fn f32_to_f16_matches_f16c_including_nan() {
    let mut rng = Rng::new(9100);
    let mut h = Vec::new();
    for _ in 0..200_000 {
        let f = f32::from_bits(rng.next_u64() as u32);
        h.extend_from_slice(&f32_to_f16(f).to_le_bytes());
    }
    assert_eq!(fnv(h), golden::F16C);
}

#[test]
fn attention_matches_x86_llama_cpp() {
    for &(hd, n_kv, seed, amp, scale, kq_hash, sm_hash, p_hash, out_hash) in golden::ATTENTION {
        let stride = hd + 16;
        let mut rng = Rng::new(seed);
        let q = fill(&mut rng, hd, f32::from_bits(amp), false);
        let k: Vec<u16> = (0..n_kv * stride)
            .map(|_| f32_to_f16(rng.uniform(-1.0, 1.0)))
            .collect();
        let v: Vec<u16> = (0..n_kv * stride)
            .map(|_| f32_to_f16(rng.uniform(-1.0, 1.0)))
            .collect();
        let scale = f32::from_bits(scale);
        let what = |s: &str| std::format!("hd={hd} n_kv={n_kv}: {s}");

        // The steps one by one.
        let qh: Vec<f32> = q.iter().map(|&x| round_f16(x)).collect();
        let mut s: Vec<f32> = (0..n_kv)
            .map(|j| dot_f16_row(&k[j * stride..j * stride + hd], &qh))
            .collect();
        assert_eq!(fnv_f32(&s), kq_hash, "{}", what("scores"));
        assert_eq!(soft_max(&mut s, scale), 0.0);
        assert_eq!(fnv_f32(&s), sm_hash, "{}", what("softmax"));

        // The whole kernel.
        let mut scratch = vec![f32::NAN; n_kv];
        let mut out = vec![f32::NAN; hd];
        attn(&q, &k, &v, stride, n_kv, scale, &mut scratch, &mut out);
        assert_eq!(fnv_f32(&scratch), p_hash, "{}", what("probabilities"));
        assert_eq!(fnv_f32(&out), out_hash, "{}", what("output"));
    }
}

//! Bit-exact checks against llama.cpp itself.
//!
//! `ggml_golden.rs` holds outputs of ggml's reference quantizers and
//! dequantizers, of the x86 AVX2 activation quantizers, and of the dot
//! products of llama.cpp's x86 AVX2 CPU backend at batch size 1, for both
//! ways it holds a weight (see `gen_ggml_golden.c` for how it was made).
//! The inputs are regenerated here from the same seeds with the same
//! splitmix64 stream, so the table stays small: it stores hashes of the
//! activation bytes and dequantized rows, and the f32 bits of each dot
//! product.

#[path = "ggml_golden.rs"]
#[rustfmt::skip]
mod golden;

use std::vec;
use std::vec::Vec;

use phi_edge::{ActFormat, DType, Kernels, WeightUse};

use super::mm;
use super::{deq_w, h};
use crate::float::{f32_to_bf16, f32_to_f16};
use crate::quant::act::{quantize_row_q8_0_ref, quantize_row_q8_1_ref, quantize_row_q8_k};
use crate::testing::{quantize_row_ref, Rng};
use crate::Portable;

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fnv_f32(x: &[f32]) -> u64 {
    fnv(x.iter().flat_map(|v| v.to_le_bytes()))
}

/// Activations as ggml's reference quantizers make them.
fn quantize(dtype: DType, x: &[f32]) -> Vec<u8> {
    let fmt = dtype.act_format();
    let mut a = vec![0u8; fmt.row_bytes(x.len()).unwrap()];
    match fmt {
        ActFormat::Q8_0 => quantize_row_q8_0_ref(x, &mut a),
        ActFormat::Q8_1 => quantize_row_q8_1_ref(x, &mut a),
        ActFormat::Q8K => quantize_row_q8_k(x, &mut a),
        _ => unreachable!(),
    }
    a
}

/// `rows` dot products of the weight rows in `w` with the activation row
/// `a`, through `matmul` with `usage`.
fn dots(dtype: DType, usage: WeightUse, w: &[u8], a: &[u8], k: usize, rows: usize) -> Vec<u32> {
    let mut out = vec![f32::NAN; rows];
    mm(dtype, usage, w, k, rows, a, 1, &mut out, rows);
    out.iter().map(|v| v.to_bits()).collect()
}

/// Rebuilds case `seed` exactly as the C generator drew it.
fn regenerate(dtype: DType, k: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    const MAGS: [f32; 4] = [1e-3, 0.5, 1.0, 300.0];
    let c = seed - 1000;
    let mut rng = Rng::new(seed);
    let mag = MAGS[(c / 20 % 4) as usize];
    let mut x: Vec<f32> = (0..k).map(|_| rng.uniform(-mag, mag)).collect();
    if c % 7 == 0 {
        for v in &mut x {
            *v = ((rng.next_u64() % 255) as i32 - 127) as f32 * 0.5; // exact ties
        }
        x[0] = 127.0;
    }
    if c % 11 == 0 {
        x[..dtype.block_len()].fill(0.0);
    }
    let mut w = vec![0u8; dtype.row_bytes(k).unwrap()];
    match dtype {
        DType::Q8_0 | DType::Q4_0 | DType::Q4_1 => {
            let wf: Vec<f32> = (0..k).map(|_| rng.uniform(-1.0, 1.0)).collect();
            match dtype {
                DType::Q8_0 => quantize_row_q8_0_ref(&wf, &mut w),
                _ => quantize_row_ref(dtype, &wf, &mut w),
            }
        }
        DType::Q4K | DType::Q6K => random_k_blocks(dtype, &mut rng, &mut w),
        _ => unreachable!(),
    }
    (x, w)
}

/// The generator's `random_k_blocks`: one draw per byte, then the scales
/// of each block.
fn random_k_blocks(dtype: DType, rng: &mut Rng, w: &mut [u8]) {
    for b in w.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    for blk in w.chunks_exact_mut(dtype.block_bytes()) {
        if dtype == DType::Q4K {
            blk[..2].copy_from_slice(&h(rng.uniform(1e-3, 1e-2)));
            blk[2..4].copy_from_slice(&h(rng.uniform(1e-3, 1e-2)));
        } else {
            blk[208..].copy_from_slice(&h(rng.uniform(1e-4, 1e-3)));
        }
    }
}

#[test]
fn reference_quantizers_and_dequantizers_match_ggml_bit_for_bit() {
    for &(tag, k, seed, act_hash, deq_hash) in golden::CASES {
        let dtype = DType::from_tag(tag).unwrap();
        let (x, w) = regenerate(dtype, k, seed);
        let a = quantize(dtype, &x);
        assert_eq!(
            fnv(a.iter().copied()),
            act_hash,
            "{} seed {seed}: activation bytes",
            dtype.name()
        );
        assert_eq!(
            fnv_f32(&deq_w(dtype, &w, k)),
            deq_hash,
            "{} seed {seed}: dequantized row",
            dtype.name()
        );
    }
}

/// Rebuilds `DOTS` case `seed` exactly as the C generator drew it: the
/// activation values, then eight weight rows.
fn regenerate_dot(dtype: DType, k: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    const MAGS: [f32; 4] = [1e-3, 0.5, 1.0, 300.0];
    let c = seed - 2000;
    let mut rng = Rng::new(seed);
    let mag = MAGS[(c % 4) as usize];
    let extreme = c % 13 == 6;
    let mut x: Vec<f32> = (0..k).map(|_| rng.uniform(-mag, mag)).collect();
    if c % 7 == 0 {
        for v in &mut x {
            *v = ((rng.next_u64() % 255) as i32 - 127) as f32 * 0.5; // exact ties
        }
        x[0] = 127.0;
    }
    if c % 11 == 0 {
        x[..dtype.block_len()].fill(0.0);
    }
    if extreme {
        x.fill(mag);
    }
    let rb = dtype.row_bytes(k).unwrap();
    let mut w = vec![0u8; 8 * rb];
    let mut tmp = vec![0.0f32; k];
    for row in w.chunks_exact_mut(rb) {
        if dtype.block_len() == 256 {
            random_k_blocks(dtype, &mut rng, row);
        } else {
            if extreme {
                tmp.fill(1.0); // no draws
            } else {
                rng.fill_uniform(&mut tmp, -1.0, 1.0);
            }
            match dtype {
                DType::Q8_0 => quantize_row_q8_0_ref(&tmp, row),
                _ => quantize_row_ref(dtype, &tmp, row),
            }
        }
        if extreme {
            // Largest quants and scales: integer lanes above 2^24.
            for blk in row.chunks_exact_mut(dtype.block_bytes()) {
                match dtype {
                    DType::Q4K => blk[4..].fill(0xff),
                    DType::Q6K => {
                        blk[..192].fill(0xff);
                        for (j, s) in blk[192..208].iter_mut().enumerate() {
                            *s = if j % 2 == 1 { 0x80 } else { 0x7f };
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    (x, w)
}

#[test]
fn dots_match_x86_avx2_llama_cpp_bit_for_bit() {
    let mut repacked_differs = false;
    for &(tag, k, seed, act_hash, tied, proj) in golden::DOTS {
        let dtype = DType::from_tag(tag).unwrap();
        let (x, w) = regenerate_dot(dtype, k, seed);
        // The activation row as llama.cpp's x86 build quantizes it.
        let fmt = dtype.act_format();
        let mut a = vec![0u8; fmt.row_bytes(k).unwrap()];
        Portable.quantize_act(fmt, &x, &mut a);
        assert_eq!(
            fnv(a.iter().copied()),
            act_hash,
            "{} seed {seed}: activation",
            dtype.name()
        );
        for (usage, want) in [
            (WeightUse::TiedEmbedding, tied),
            (WeightUse::Projection, proj),
        ] {
            let got = dots(dtype, usage, &w, &a, k, 8);
            assert_eq!(got, want, "{} k={k} seed {seed} {usage:?}", dtype.name());
        }
        repacked_differs |= tied != proj;
    }
    // The table can tell the two orders apart.
    assert!(repacked_differs);
}

#[test]
fn k_quant_blocks_from_ggml_quantizers() {
    let mut rng = Rng::new(golden::KREF_SEED);
    let x: Vec<f32> = (0..512)
        .map(|_| {
            rng.next_u64(); // the weight input's draw
            rng.uniform(-2.0, 2.0)
        })
        .collect();
    let (act_hash, q4_hash, q6_hash, q4_dot, q4_repacked, q6_dot) = golden::KREF;
    let a = quantize(DType::Q4K, &x);
    assert_eq!(fnv(a.iter().copied()), act_hash);
    assert_eq!(fnv_f32(&deq_w(DType::Q4K, &golden::Q4K_REF, 512)), q4_hash);
    assert_eq!(fnv_f32(&deq_w(DType::Q6K, &golden::Q6K_REF, 512)), q6_hash);
    let (q4, q6) = (&golden::Q4K_REF, &golden::Q6K_REF);
    let tied = WeightUse::TiedEmbedding;
    assert_eq!(dots(DType::Q4K, tied, q4, &a, 512, 1), [q4_dot]);
    assert_eq!(
        dots(DType::Q4K, WeightUse::Projection, q4, &a, 512, 1),
        [q4_repacked]
    );
    assert_eq!(dots(DType::Q6K, tied, q6, &a, 512, 1), [q6_dot]);
    assert_eq!(
        dots(DType::Q6K, WeightUse::Projection, q6, &a, 512, 1),
        [q6_dot]
    );
}

#[test]
fn activation_quantizers_match_x86_llama_cpp() {
    const MAGS: [f32; 4] = [1e-3, 0.5, 1.0, 300.0];
    for &(seed, k, q8_0_hash, q8_1_hash) in golden::X86_Q8 {
        let c = seed - 5000;
        let mut rng = Rng::new(seed);
        let mag = MAGS[(c % 4) as usize];
        let mut x: Vec<f32> = (0..k).map(|_| rng.uniform(-mag, mag)).collect();
        if c % 3 == 0 {
            for v in &mut x {
                *v = ((rng.next_u64() % 255) as i32 - 127) as f32 * 0.5;
            }
            x[0] = 127.0;
        }
        if c % 5 == 0 {
            x[..32].fill(0.0);
        }
        for (fmt, want) in [(ActFormat::Q8_0, q8_0_hash), (ActFormat::Q8_1, q8_1_hash)] {
            let mut a = vec![0u8; fmt.row_bytes(k).unwrap()];
            Portable.quantize_act(fmt, &x, &mut a);
            assert_eq!(fnv(a.iter().copied()), want, "{fmt:?} seed {seed}");
        }
    }
}

#[test]
fn float_conversions_match_ggml() {
    let mut rng = Rng::new(5);
    let (mut hb, mut hh) = (Vec::new(), Vec::new());
    for _ in 0..200_000 {
        let f = f32::from_bits(rng.next_u64() as u32);
        hb.extend_from_slice(&f32_to_bf16(f).to_le_bytes());
        if !f.is_nan() {
            hh.extend_from_slice(&f32_to_f16(f).to_le_bytes());
        }
    }
    assert_eq!((fnv(hb), fnv(hh)), golden::CONV);
}

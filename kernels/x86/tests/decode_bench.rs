//! Decode-shaped matmul throughput, by hand:
//! `cargo test --release -p phi-edge-x86 --test decode_bench -- --ignored --nocapture`.
//!
//! One "token" runs SmolLM2-135M's matmuls: per layer q, k, v, o
//! (576 x 576, 192 x 576 twice, 576 x 576), gate and up (1536 x 576),
//! down (576 x 1536), for 30 layers in the layer type, then the tied
//! 49152 x 576 Q8_0 output. The ~100 MB of weights do not fit any cache,
//! so the GB/s are those of streaming weights from memory, as in decode.
//! First, the suite's cache-resident 2048 x 2048 matmuls (`phi-edge
//! bench`) for each set.
//!
//! `PHI_BENCH_TYPES=q4_1,q8_0` limits the layer types, and
//! `PHI_BENCH_SETS=avx2` the sets (for `perf stat` on one kernel).
#![cfg(target_arch = "x86_64")]

use std::time::Instant;

use phi_edge::{DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::testing::Rng;

/// `rows x k` weights of `dtype`: random quants, normal f16 scales.
fn weights(rng: &mut Rng, dtype: DType, rows: usize, k: usize) -> Vec<u8> {
    let mut w = vec![0u8; rows * dtype.row_bytes(k).unwrap()];
    rng.fill_bytes(&mut w);
    let scales: &[usize] = match dtype {
        DType::Q8_0 | DType::Q4_0 => &[0],
        DType::Q4_1 | DType::Q4K => &[0, 2],
        DType::Q6K => &[208],
        _ => &[],
    };
    for b in w.chunks_exact_mut(dtype.block_bytes()) {
        for &o in scales {
            let h = 0x2000 + (rng.next_u64() % 0x1000) as u16;
            b[o..o + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    w
}

/// Activation rows of `k` values for `n_tok` tokens in `dtype`'s format.
fn acts(rng: &mut Rng, dtype: DType, k: usize, n_tok: usize) -> Vec<u8> {
    let fmt = dtype.act_format();
    let mut x = vec![0.0f32; k];
    let rb = fmt.row_bytes(k).unwrap();
    let mut a = vec![0u8; rb * n_tok];
    for row in a.chunks_exact_mut(rb) {
        rng.fill_uniform(&mut x, -1.0, 1.0);
        phi_edge_portable::Portable.quantize_act(fmt, &x, row);
    }
    a
}

/// One matmul of the sweep.
struct Mat {
    dtype: DType,
    usage: WeightUse,
    rows: usize,
    k: usize,
    w: Vec<u8>,
}

/// A SmolLM2-135M-shaped stack of 30 layers of `layer` weights.
fn layers(rng: &mut Rng, layer: DType) -> Vec<Mat> {
    // K-quant rows are whole 256-value blocks: the same model widened to
    // 768 / 2048 for them.
    let (d, ff) = if layer.block_len() == 256 {
        (768, 2048)
    } else {
        (576, 1536)
    };
    let shapes = [
        (d, d),
        (d / 3, d),
        (d / 3, d),
        (d, d),
        (ff, d),
        (ff, d),
        (d, ff),
    ];
    let mut v = Vec::new();
    for _ in 0..30 {
        for &(rows, k) in &shapes {
            let w = weights(rng, layer, rows, k);
            v.push(Mat {
                dtype: layer,
                usage: WeightUse::Projection,
                rows,
                k,
                w,
            });
        }
    }
    v
}

/// Seconds per pass over `mats` with `n_tok` tokens (best of `reps`).
fn sweep<K: Kernels>(kern: &K, mats: &[Mat], rng: &mut Rng, n_tok: usize, reps: usize) -> f64 {
    let mut acts: Vec<(DType, usize, Vec<u8>)> = Vec::new();
    for m in mats {
        if !acts.iter().any(|(d, k, _)| *d == m.dtype && *k == m.k) {
            acts.push((m.dtype, m.k, self::acts(rng, m.dtype, m.k, n_tok)));
        }
    }
    let mut out = vec![0.0f32; mats.iter().map(|m| m.rows).max().unwrap() * n_tok];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for m in mats {
            let a = &acts
                .iter()
                .find(|(d, k, _)| *d == m.dtype && *k == m.k)
                .unwrap()
                .2;
            let args = MatmulArgs {
                dtype: m.dtype,
                usage: m.usage,
                w: &m.w,
                k: m.k,
                rows: m.rows,
                act: a,
                n_tok,
            };
            kern.matmul(&args, &mut MatOut::new(&mut out, m.rows, n_tok, m.rows));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn gbs(mats: &[Mat], s: f64) -> f64 {
    mats.iter().map(|m| m.w.len()).sum::<usize>() as f64 / s / 1e9
}

/// Whether `name` is in the comma-separated list of environment variable
/// `var` (or the variable is unset).
fn wanted(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |v| v.split(',').any(|x| x == name))
}

fn report<K: Kernels>(kern: &K) {
    if !wanted("PHI_BENCH_SETS", kern.name()) {
        return;
    }
    if wanted("PHI_BENCH_TYPES", "2048") {
        for line in phi_edge_kernel_suite::bench(kern, 2048, 300)
            .iter()
            .filter(|l| l.gb_per_s.is_some())
        {
            println!("{}: {line}", kern.name());
        }
    }
    let mut rng = Rng::new(7);
    let name = kern.name();
    let output = [Mat {
        dtype: DType::Q8_0,
        usage: WeightUse::TiedEmbedding,
        rows: 49152,
        k: 576,
        w: weights(&mut rng, DType::Q8_0, 49152, 576),
    }];
    let out_s = sweep(kern, &output, &mut rng, 1, 20);
    println!(
        "{name}: tied q8_0 output 49152 x 576, 1 token: {:.2} ms, {:.2} GB/s",
        out_s * 1e3,
        gbs(&output, out_s)
    );
    for layer in [
        DType::Q4_1,
        DType::Q8_0,
        DType::Q6K,
        DType::Q4K,
        DType::Q4_0,
    ] {
        if !wanted("PHI_BENCH_TYPES", layer.name()) {
            continue;
        }
        let mats = layers(&mut rng, layer);
        // One feed-forward matrix, cache-resident: the kernel's compute rate.
        let hot = &mats[4..5];
        let hot_s = sweep(kern, hot, &mut rng, 1, 300);
        let s1 = sweep(kern, &mats, &mut rng, 1, 20);
        let s16 = sweep(kern, &mats, &mut rng, 16, 8);
        println!(
            "{name}: {:<5} {} x {} cached {:>6.2} GB/s | 30 layers {:>6.2} GB/s, +output {:>6.1} tok/s | 16 tokens {:>6.2} GB/s, {:>6.1} tok/s",
            layer.name(),
            hot[0].rows,
            hot[0].k,
            gbs(hot, hot_s),
            gbs(&mats, s1),
            1.0 / (s1 + out_s),
            gbs(&mats, s16),
            16.0 / s16,
        );
    }
}

#[test]
#[ignore = "a benchmark: run by hand with --ignored --nocapture"]
fn smollm2_decode_sweep() {
    if let Some(k) = phi_edge_x86::Avx2::detect() {
        report(&k);
    }
    if let Some(k) = phi_edge_x86::Avx512::detect() {
        report(&k);
    }
}

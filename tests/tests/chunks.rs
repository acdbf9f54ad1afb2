//! Tiled prefill never changes a bit: for the llama.cpp cases of the
//! three model families the issue names (a phi3 Q4_K_M, a llama GQA Q4_1
//! with tied embeddings, SmolLM2-135M Q4_1), every kernel set the host has,
//! on a [`ThreadPool`] of 1 to 4 threads, with prefill chunks of 1, 7, 16
//! and 64 tokens, gives llama.cpp's decode-path logits at every position
//! to the bit. (llama.cpp's own logits change with its batch size.)

use phi_edge::parallel::ThreadPool;
use phi_edge::{Kernels, Mapped, Model, Parallel, Plan, RunOptions, Session};
use phi_edge_portable::Portable;
use phi_edge_tests::goldens::{self, bitwise, Case};
use phi_edge_tests::npy::Array2;
use phi_edge_tests::ref_dir;

/// The cases of `cases.json` this test runs.
const CASES: [&str; 3] = ["phi3-q4_k_m", "llama-gqa-tied-q4_1", "smollm2"];
/// Thread counts.
const THREADS: [usize; 4] = [1, 2, 3, 4];
/// Prefill chunk sizes: one token, a size that leaves ragged chunks and
/// ragged token tiles, the default, and more than a whole prompt.
const CHUNKS: [u32; 4] = [1, 7, 16, 64];

/// The logits of every position of `c`, evaluated in one call with
/// prefill chunks of `chunk` tokens.
fn logits<K: Kernels>(
    k: K,
    model: &Model<'_>,
    image: &[u8],
    c: &Case,
    pool: &ThreadPool,
    chunk: u32,
) -> Vec<f32> {
    let mut opts = RunOptions::mapped(c.n_ctx);
    opts.threads = pool.threads() as u32;
    opts.prefill_chunk = chunk;
    let nv = model.config().n_vocab as usize;
    let mut arena = vec![0u8; Plan::new(model.config(), &opts).unwrap().bytes() + 64];
    let mut out = vec![0f32; c.tokens.len() * nv];
    let mut s = Session::new(model, k, Mapped(image), &mut arena, &opts)
        .unwrap()
        .with_parallel(pool);
    s.eval(&c.tokens, Some(&mut out)).unwrap();
    out
}

/// Every (threads, chunk) of set `k` on case `c`: a report line and the
/// failures.
fn run_set<K: Kernels + Copy>(
    k: K,
    model: &Model<'_>,
    image: &[u8],
    c: &Case,
    golden: &Array2,
    pools: &[ThreadPool],
) -> (String, Vec<String>) {
    let mut fails = vec![];
    let mut runs = 0;
    for pool in pools {
        for chunk in CHUNKS {
            let (identical, differs) = bitwise(&logits(k, model, image, c, pool, chunk), golden);
            runs += 1;
            if let Some(i) = differs {
                fails.push(format!(
                    "{} {}: {} threads, prefill chunk {chunk}: position {i} is not llama.cpp's to the bit ({identical}/{} positions are)",
                    c.name,
                    k.name(),
                    pool.threads(),
                    c.tokens.len()
                ));
            }
        }
    }
    let line = format!(
        "{:<22} {:<11} {}/{runs} (threads, chunk) runs bit-identical to llama.cpp",
        c.name,
        k.name(),
        runs - fails.len()
    );
    (line, fails)
}

#[test]
fn every_thread_count_and_prefill_chunk_gives_llama_cpps_logits() {
    let dir = ref_dir();
    let cases = goldens::load(&dir);
    let pools: Vec<ThreadPool> = THREADS
        .iter()
        .map(|&t| ThreadPool::new(t).unwrap())
        .collect();
    println!("threads {THREADS:?} x prefill chunks {CHUNKS:?}");
    let mut fails = vec![];
    for name in CASES {
        let c = cases
            .cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("cases.json has no case {name:?}: run `cargo xtask ref`"));
        let image = c.image(&dir);
        let model = Model::open_mapped(&image).unwrap();
        let golden = c.golden(&dir, model.config().n_vocab as usize);
        let t = std::time::Instant::now();
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut results = vec![run_set(Portable, &model, &image, c, &golden, &pools)];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = phi_edge_x86::Avx2::detect() {
                results.push(run_set(k, &model, &image, c, &golden, &pools));
            }
            if let Some(k) = phi_edge_x86::Avx512::detect() {
                results.push(run_set(k, &model, &image, c, &golden, &pools));
            }
        }
        for (line, f) in results {
            println!("{line}");
            fails.extend(f);
        }
        println!("    ({:.1} s)", t.elapsed().as_secs_f64());
    }
    assert!(
        fails.is_empty(),
        "chunked prefill differs from llama.cpp:\n{}",
        fails.join("\n")
    );
}

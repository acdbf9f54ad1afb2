//! Logits do not depend on how the work is cut: every thread count (a
//! [`ThreadPool`] of 1 to 4 threads, also more threads than the session's
//! attention scratch was planned for) and every prefill chunk size gives
//! the same bits, for prefill (all positions) and for the decoding steps
//! after it, with the portable set and every SIMD set the host has, which
//! all agree with each other.

use phi_edge::pack::pack_to_vec;
use phi_edge::parallel::ThreadPool;
use phi_edge::{DType, Kernels, Mapped, Model, Parallel, Plan, RunOptions, Session};
use phi_edge_portable::Portable;
use phi_edge_tests::synth::{self, Spec};

const N_CTX: u32 = 64;
/// Prefill length: several chunks of every size but the largest.
const PROMPT: usize = 40;
/// Tokens decoded one at a time after the prompt.
const DECODE: usize = 8;

fn tokens(n_vocab: u32) -> Vec<u32> {
    (0..(PROMPT + DECODE) as u32)
        .map(|i| (i * 37 + 11) % n_vocab)
        .collect()
}

/// The logits of every prompt position, then of each decoded token.
fn logits<K: Kernels>(k: K, image: &[u8], pool: &ThreadPool, planned: u32, chunk: u32) -> Vec<f32> {
    let model = Model::open_mapped(image).unwrap();
    let nv = model.config().n_vocab as usize;
    let toks = tokens(model.config().n_vocab);
    let mut opts = RunOptions::mapped(N_CTX);
    opts.prefill_chunk = chunk;
    opts.threads = planned;
    let mut arena = vec![0u8; Plan::new(model.config(), &opts).unwrap().bytes() + 64];
    let mut s = Session::new(&model, k, Mapped(image), &mut arena, &opts)
        .unwrap()
        .with_parallel(pool);
    let mut out = vec![0f32; toks.len() * nv];
    s.eval(&toks[..PROMPT], Some(&mut out[..PROMPT * nv]))
        .unwrap();
    for (i, &t) in toks.iter().enumerate().skip(PROMPT) {
        let l = s.eval(&[t], None).unwrap();
        out[i * nv..(i + 1) * nv].copy_from_slice(l);
    }
    out
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Every (threads, chunk) combination of set `k` against `reference`.
fn check_set<K: Kernels + Copy>(
    k: K,
    spec: &Spec,
    image: &[u8],
    pools: &[ThreadPool],
    reference: &[f32],
) {
    for pool in pools {
        let t = pool.threads() as u32;
        for chunk in [1, 7, 16, 64] {
            let got = logits(k, image, pool, t, chunk);
            assert!(
                same_bits(&got, reference),
                "{:?} {:?}, {}: {t} threads, prefill chunk {chunk}",
                spec.arch,
                spec.dtype,
                k.name()
            );
        }
    }
    // More threads than the arena has attention scratch for: attention
    // uses the planned ones, matmuls all of them.
    let got = logits(k, image, &pools[2], 1, 7);
    assert!(
        same_bits(&got, reference),
        "{:?} {:?}, {}: 3 threads on a session planned for 1",
        spec.arch,
        spec.dtype,
        k.name()
    );
}

#[test]
fn logits_are_bitwise_independent_of_threads_and_chunk_size() {
    let pools: Vec<ThreadPool> = (1..=4).map(|t| ThreadPool::new(t).unwrap()).collect();
    for spec in [
        Spec::phi3(DType::Q4K),
        Spec::llama(DType::Q4_1),
        Spec {
            n_head_kv: 2,
            ..Spec::phi3(DType::Q6K)
        },
    ] {
        let image = pack_to_vec(&synth::build(&spec)).unwrap();
        let reference = logits(Portable, &image, &pools[0], 1, 16);
        assert!(
            reference.iter().all(|v| v.is_finite()),
            "{spec:?}: non-finite logits"
        );
        check_set(Portable, &spec, &image, &pools, &reference);
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = phi_edge_x86::Avx2::detect() {
                check_set(k, &spec, &image, &pools, &reference);
            }
            if let Some(k) = phi_edge_x86::Avx512::detect() {
                check_set(k, &spec, &image, &pools, &reference);
            }
        }
    }
}

//! The Q8_0 KV cache (`--cache-type q8_0`) against llama.cpp's
//! flash-attention path with `type_k = type_v = q8_0` (the only path on
//! which llama.cpp quantizes its V cache), from `tests/oracle/kvcache_ref.py`
//! (`target/ref/kvcache.json`).
//!
//! For SmolLM2 and two synthetic phi3 models, every kernel set the host
//! has, on 1, 2 and 3 threads with prefill chunks of 1, 7 and 16 tokens,
//! must give llama.cpp's q8_0 flash-attention logits at every position to
//! the bit. The report adds how far the q8_0 cache is from the f16 one
//! (llama.cpp's non-flash f16 goldens, which the f16 cache matches to the
//! bit, and its flash-attention f16 path), and the perplexity of a text of
//! the repository under SmolLM2 with each cache, next to llama.cpp's.

use std::path::Path;

use phi_edge::parallel::ThreadPool;
use phi_edge::{Kernels, KvType, Mapped, Model, Parallel, Plan, RunOptions, Session};
use phi_edge_portable::Portable;
use phi_edge_tests::goldens::read_json;
use phi_edge_tests::metrics::compare;
use phi_edge_tests::npy::{self, Array2};
use phi_edge_tests::ref_dir;
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    cases: Vec<KvCase>,
    text: Text,
}

#[derive(Deserialize)]
struct KvCase {
    name: String,
    model: String,
    n_ctx: u32,
    tokens: Vec<u32>,
    logits: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Text {
    model: String,
    source: String,
    n_ctx: u32,
    tokens: Vec<u32>,
    ppl: std::collections::BTreeMap<String, f64>,
    kl: std::collections::BTreeMap<String, f64>,
}

fn load(dir: &Path) -> Doc {
    read_json(dir, "kvcache.json")
}

fn image(dir: &Path, model: &str) -> Vec<u8> {
    let gguf = std::fs::read(dir.join(model)).unwrap_or_else(|e| panic!("{model}: {e}"));
    phi_edge::pack::pack_to_vec(&gguf).unwrap_or_else(|e| panic!("{model}: cannot pack: {e}"))
}

fn golden(dir: &Path, rel: &str) -> Array2 {
    npy::read_f32_2d(&dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e:?}"))
}

/// Logits after every token, with the cache type `kv`.
#[allow(clippy::too_many_arguments)]
fn logits<K: Kernels>(
    k: K,
    model: &Model<'_>,
    image: &[u8],
    tokens: &[u32],
    n_ctx: u32,
    kv: KvType,
    pool: &ThreadPool,
    chunk: u32,
) -> Vec<f32> {
    let mut opts = RunOptions::mapped(n_ctx);
    opts.threads = pool.threads() as u32;
    opts.prefill_chunk = chunk;
    opts.kv_type = kv;
    let nv = model.config().n_vocab as usize;
    let plan = Plan::new(model.config(), &opts).unwrap();
    let mut arena = vec![0u8; plan.bytes() + 64];
    let mut out = vec![0f32; tokens.len() * nv];
    let mut s = Session::new(model, k, Mapped(image), &mut arena, &opts)
        .unwrap()
        .with_parallel(pool);
    assert_eq!(s.kv_type(), kv);
    s.eval(tokens, Some(&mut out)).unwrap();
    out
}

/// Positions whose logits all equal the golden's bits.
fn identical(ours: &[f32], g: &Array2) -> usize {
    (0..g.rows)
        .filter(|&i| {
            ours[i * g.cols..(i + 1) * g.cols]
                .iter()
                .zip(g.row(i))
                .all(|(a, b)| a.to_bits() == b.to_bits())
        })
        .count()
}

/// (max per-position nrmse, mean KL(ref || ours)) over every position.
fn distance(ours: &[f32], r: &Array2) -> (f64, f64) {
    let ps: Vec<_> = (0..r.rows)
        .map(|i| compare(&ours[i * r.cols..(i + 1) * r.cols], r.row(i)))
        .collect();
    (
        ps.iter().map(|p| p.nrmse).fold(0.0, f64::max),
        ps.iter().map(|p| p.kl).sum::<f64>() / ps.len() as f64,
    )
}

/// The f32 logits as an [`Array2`] of `cols` columns.
fn array(v: Vec<f32>, cols: usize) -> Array2 {
    Array2 {
        rows: v.len() / cols,
        cols,
        data: v,
    }
}

/// (threads, prefill chunk) runs per kernel set: one token at a time on
/// one thread, ragged chunks on two, the default chunk on three.
const RUNS: [(usize, u32); 3] = [(1, 1), (2, 7), (3, 16)];

/// One case's model and goldens.
struct Run<'a> {
    c: &'a KvCase,
    model: Model<'a>,
    img: &'a [u8],
    /// llama.cpp: flash attention with the q8_0 and the f16 cache, and
    /// the goldens' non-flash f16 path.
    q8: Array2,
    fa16: Array2,
    nofa: Array2,
    /// Ours with the f16 cache.
    f16_cache: Vec<f32>,
}

/// Every (threads, chunk) of set `k` with the q8_0 cache: a report line,
/// and the failures pushed to `fails`.
fn check_set<K: Kernels + Copy>(k: K, r: &Run<'_>, pools: &[ThreadPool], fails: &mut Vec<String>) {
    let c = r.c;
    let mut first = None;
    let (mut n_ident, mut runs) = (0, 0);
    for (pool, (_, chunk)) in pools.iter().zip(RUNS) {
        let ours = logits(
            k,
            &r.model,
            r.img,
            &c.tokens,
            c.n_ctx,
            KvType::Q8_0,
            pool,
            chunk,
        );
        let same = identical(&ours, &r.q8);
        runs += 1;
        if same == c.tokens.len() {
            n_ident += 1;
        } else {
            fails.push(format!(
                "{} {}: {} threads, chunk {chunk}: {same}/{} positions bit-identical to llama.cpp's fa-q8_0",
                c.name,
                k.name(),
                pool.threads(),
                c.tokens.len()
            ));
        }
        first.get_or_insert(ours);
    }
    let ours = first.unwrap();
    let (a, b, d) = (
        distance(&ours, &r.q8),
        distance(&ours, &r.fa16),
        distance(&ours, &r.nofa),
    );
    let e = distance(&r.f16_cache, &r.q8);
    println!(
        "{:<18} {:<11} {:>3}/{runs:<3} | {:>9.2e} / {:<9.2e} {:>9.2e} / {:<9.2e} {:>9.2e} / {:<9.2e} | {:>9.2e} / {:<9.2e}",
        c.name,
        k.name(),
        n_ident,
        a.0,
        a.1,
        b.0,
        b.1,
        d.0,
        d.1,
        e.0,
        e.1
    );
    // Sharp: the q8_0 cache is llama.cpp's q8_0 path, far closer to it
    // than to either f16 path.
    if !(a.0 * 100.0 <= d.0 && a.0 * 100.0 <= b.0) {
        fails.push(format!(
            "{} {}: not much closer to fa-q8_0 than to the f16 paths",
            c.name,
            k.name()
        ));
    }
}

#[test]
fn q8_0_cache_gives_llama_cpps_flash_attention_logits() {
    let dir = ref_dir();
    let doc = load(&dir);
    assert!(doc.cases.len() >= 3, "kvcache.json has too few cases");
    let base = phi_edge_tests::goldens::load(&dir);
    let pools: Vec<ThreadPool> = RUNS
        .iter()
        .map(|&(t, _)| ThreadPool::new(t).unwrap())
        .collect();
    let mut fails = vec![];
    println!("(threads, prefill chunk) {RUNS:?}; max nrmse / mean KL");
    println!(
        "{:<18} {:<11} {:>7} | q8_0 cache vs llama.cpp: {:>21} {:>21} {:>21} | f16 cache vs fa-q8_0",
        "case", "set", "exact", "fa-q8_0", "fa-f16", "nofa-f16"
    );
    for c in &doc.cases {
        let img = image(&dir, &c.model);
        let model = Model::open_mapped(&img).unwrap();
        let nv = model.config().n_vocab as usize;
        let g = |cfg: &str| {
            let a = golden(&dir, &c.logits[cfg]);
            assert_eq!((a.rows, a.cols), (c.tokens.len(), nv), "{} {cfg}", c.name);
            a
        };
        let nofa = base
            .cases
            .iter()
            .find(|b| b.name == c.name)
            .unwrap_or_else(|| panic!("cases.json has no case {}", c.name))
            .golden(&dir, nv);
        let f16_cache = logits(
            Portable,
            &model,
            &img,
            &c.tokens,
            c.n_ctx,
            KvType::F16,
            &pools[0],
            16,
        );
        assert_eq!(
            identical(&f16_cache, &nofa),
            c.tokens.len(),
            "{}: the f16 cache moved",
            c.name
        );
        let nv = model.config().n_vocab as usize;
        let (p16, p8) = (
            ppl(&f16_cache, nv, &c.tokens),
            ppl(&g("fa-q8_0").data, nv, &c.tokens),
        );
        println!(
            "{:<18} perplexity of its {} tokens: f16 cache {p16:.6}, q8_0 cache {p8:.6} ({:+.4}%)",
            c.name,
            c.tokens.len(),
            (p8 / p16 - 1.0) * 100.0
        );
        let r = Run {
            c,
            model,
            img: &img,
            q8: g("fa-q8_0"),
            fa16: g("fa-f16"),
            nofa,
            f16_cache,
        };
        check_set(Portable, &r, &pools, &mut fails);
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = phi_edge_x86::Avx2::detect() {
                check_set(k, &r, &pools, &mut fails);
            }
            if let Some(k) = phi_edge_x86::Avx512::detect() {
                check_set(k, &r, &pools, &mut fails);
            }
        }
    }
    assert!(
        fails.is_empty(),
        "the q8_0 cache differs from llama.cpp's flash attention:\n{}",
        fails.join("\n")
    );
}

/// Perplexity of `tokens[1..]` under the logits before each, and the mean
/// KL(ref || ours) of the next-token distributions.
fn ppl(all: &[f32], nv: usize, tokens: &[u32]) -> f64 {
    let nll: f64 = (0..tokens.len() - 1)
        .map(|i| {
            let row = &all[i * nv..(i + 1) * nv];
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let lse = row
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln()
                + max;
            lse - row[tokens[i + 1] as usize] as f64
        })
        .sum();
    (nll / (tokens.len() - 1) as f64).exp()
}

#[test]
fn q8_0_cache_perplexity_on_a_text_is_llama_cpps() {
    let dir = ref_dir();
    let t = load(&dir).text;
    let img = image(&dir, &t.model);
    let model = Model::open_mapped(&img).unwrap();
    let nv = model.config().n_vocab as usize;
    let pool = ThreadPool::new(2).unwrap();
    let run = |kv| logits(Portable, &model, &img, &t.tokens, t.n_ctx, kv, &pool, 16);
    let (f16, q8) = (run(KvType::F16), run(KvType::Q8_0));
    let (p16, p8) = (ppl(&f16, nv, &t.tokens), ppl(&q8, nv, &t.tokens));
    let n = t.tokens.len() - 1;
    let (nrmse, kl) = distance(&q8[..n * nv], &array(f16[..n * nv].to_vec(), nv));
    println!(
        "{} ({} tokens, SmolLM2): PPL f16 cache {p16:.6}, q8_0 cache {p8:.6} ({:+.4}%); q8_0 vs f16 cache: max nrmse {nrmse:.3e}, mean KL {kl:.3e}",
        t.source,
        t.tokens.len(),
        (p8 / p16 - 1.0) * 100.0
    );
    println!(
        "llama.cpp: PPL nofa-f16 {:.6}, fa-f16 {:.6}, fa-q8_0 {:.6}; mean KL vs nofa-f16: fa-f16 {:.3e}, fa-q8_0 {:.3e}",
        t.ppl["nofa-f16"], t.ppl["fa-f16"], t.ppl["fa-q8_0"], t.kl["fa-f16"], t.kl["fa-q8_0"]
    );
    // Same logits to the bit give the same perplexity up to the order
    // numpy and this test sum in.
    for (ours, theirs) in [(p16, t.ppl["nofa-f16"]), (p8, t.ppl["fa-q8_0"])] {
        assert!(
            (ours / theirs - 1.0).abs() < 1e-9,
            "perplexity {ours} vs llama.cpp's {theirs}"
        );
    }
    // A q8_0 cache costs SmolLM2 well under 1% of perplexity on this text.
    assert!(
        (p8 / p16 - 1.0).abs() < 0.01,
        "q8_0 cache PPL {p8} vs f16 {p16}"
    );
}

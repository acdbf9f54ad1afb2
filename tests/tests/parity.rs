//! Numerical parity with llama.cpp on the models and goldens that
//! `cargo xtask ref` writes (synthetic phi3/llama GGUFs and the real
//! SmolLM2-135M-Instruct Q4_1), over every position of every case.
//!
//! Thresholds (nrmse = rms(ours - ref) / std(ref), per position):
//! f32 <= 1e-4; f16/bf16/q8_0 <= 5e-3; 4-bit <= 2e-2 with mean
//! KL(ref || ours) <= 1e-3; argmax equal at >= 98% of positions, and every
//! miss a near-tie (reference top-2 gap < 1e-3 x std).
//!
//! The goldens come from llama.cpp built for x86-64 AVX2 (see
//! `tests/oracle/llama-cpp-build.txt`) and evaluated one token per batch;
//! the portable kernels reproduce that build's arithmetic, so the test also
//! prints how many positions are bit-identical (all of them, when this was
//! written). The limits above are what it asserts.

use std::path::Path;

use phi_edge::pack::pack_to_vec;
use phi_edge::{Model, Plan, RunOptions, Session, Mapped};
use phi_edge_portable::Portable;
use phi_edge_tests::metrics::{compare, Position};
use phi_edge_tests::{npy, ref_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Cases {
    llama_cpp_python: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    model: String,
    class: String,
    n_ctx: u32,
    tokens: Vec<u32>,
    logits: String,
}

/// Fewest positions (in percent) whose argmax must agree; every miss must
/// also be a near-tie.
const ARGMAX_PCT: usize = 98;

struct Limits {
    nrmse: f64,
    kl: Option<f64>,
}

fn limits(class: &str) -> Limits {
    let (nrmse, kl) = match class {
        "f32" => (1e-4, None),
        "f16" | "q8" => (5e-3, None),
        "q4" => (2e-2, Some(1e-3)),
        other => panic!("unknown class {other:?} in cases.json"),
    };
    Limits { nrmse, kl }
}

/// Runs one case; returns its report line and any failures.
fn run_case(dir: &Path, c: &Case) -> (String, Vec<String>) {
    let gguf = std::fs::read(dir.join(&c.model)).unwrap_or_else(|e| panic!("{}: {e}", c.model));
    let image = pack_to_vec(&gguf).unwrap_or_else(|e| panic!("{}: cannot pack: {e}", c.name));
    let model = Model::open_mapped(&image).unwrap();
    let reference = npy::read_f32_2d(&dir.join(&c.logits)).unwrap();
    let nv = model.config().n_vocab as usize;
    assert_eq!((reference.rows, reference.cols), (c.tokens.len(), nv), "{}: golden shape", c.name);
    let opts = RunOptions::mapped(c.n_ctx);
    let mut arena = vec![0u8; Plan::new(model.config(), &opts).unwrap().bytes() + 64];
    let mut ours = vec![0f32; c.tokens.len() * nv];
    let mut s = Session::new(&model, Portable, Mapped(&image), &mut arena, &opts).unwrap();
    s.eval(&c.tokens, Some(&mut ours)).unwrap();

    let lim = limits(&c.class);
    let pos: Vec<Position> = (0..c.tokens.len()).map(|i| compare(&ours[i * nv..(i + 1) * nv], reference.row(i))).collect();
    let max_nrmse = pos.iter().map(|p| p.nrmse).fold(0.0, f64::max);
    let mean_kl = pos.iter().map(|p| p.kl).sum::<f64>() / pos.len() as f64;
    let equal = pos.iter().filter(|p| p.argmax_equal).count();
    let identical = (0..pos.len())
        .filter(|&i| ours[i * nv..(i + 1) * nv].iter().zip(reference.row(i)).all(|(a, b)| a.to_bits() == b.to_bits()))
        .count();
    let mut fails = vec![];
    for (i, p) in pos.iter().enumerate() {
        if p.nrmse > lim.nrmse {
            fails.push(format!("{}: position {i} nrmse {:.3e} > {:.0e}", c.name, p.nrmse, lim.nrmse));
        }
        if !p.argmax_equal {
            let tie = p.ref_gap_over_std < 1e-3;
            println!("{}: argmax differs at position {i} (reference top-2 gap {:.2e} x std{})", c.name, p.ref_gap_over_std, if tie { ", a near-tie" } else { "" });
            if !tie {
                fails.push(format!("{}: argmax differs at position {i}, not a near-tie", c.name));
            }
        }
    }
    if let Some(kl) = lim.kl {
        if mean_kl > kl {
            fails.push(format!("{}: mean KL {mean_kl:.3e} > {kl:.0e}", c.name));
        }
    }
    if equal * 100 < pos.len() * ARGMAX_PCT {
        fails.push(format!("{}: argmax equal at {equal} of {} positions", c.name, pos.len()));
    }
    let line = format!(
        "{:<24} {:<4} {:>4} tok  ctx {:>5}  max nrmse {:.2e} (limit {:.0e})  mean KL {:.2e}  argmax {}/{}  bit-identical {}/{}{}",
        c.name, c.class, c.tokens.len(), c.n_ctx, max_nrmse, lim.nrmse, mean_kl, equal, pos.len(), identical, pos.len(),
        if s.uses_long_rope() { "  [long rope]" } else { "" },
    );
    (line, fails)
}

#[test]
fn logits_match_llama_cpp() {
    let dir = ref_dir();
    let path = dir.join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}\nThe llama.cpp goldens are missing: run `cargo xtask ref` (`cargo xtask test` does it for you).", path.display())
    });
    let cases: Cases = serde_json::from_str(&text).expect("cases.json");
    assert!(!cases.cases.is_empty(), "cases.json lists no cases");
    println!("parity against llama.cpp (llama-cpp-python {}), portable kernels", cases.llama_cpp_python);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![None; cases.cases.len()]);
    std::thread::scope(|s| {
        for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(c) = cases.cases.get(i) else { break };
                let r = run_case(&dir, c);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    let mut fails = vec![];
    for r in results.into_inner().unwrap().into_iter().flatten() {
        println!("{}", r.0);
        fails.extend(r.1);
    }
    assert!(fails.is_empty(), "parity failures:\n{}", fails.join("\n"));
}

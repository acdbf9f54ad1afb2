//! `phi-edge run` on the real SmolLM2 model: greedy generation gives the
//! token ids llama.cpp gives (goldens from `cargo xtask ref`,
//! `tests/oracle/generate_ref.py`), and seeded sampling is reproducible.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phi_edge_tests::ref_dir;
use serde::Deserialize;

#[derive(Deserialize)]
struct Goldens {
    model: PathBuf,
    n_ctx: u32,
    max_tokens: u32,
    prompts: Vec<Prompt>,
}

#[derive(Deserialize)]
struct Prompt {
    name: String,
    chat: bool,
    system: Option<String>,
    text: String,
    prompt_ids: Vec<u32>,
    ids: Vec<u32>,
    gap_over_std: Vec<f64>,
}

#[derive(Deserialize)]
struct Ids {
    prompt: Vec<u32>,
    generated: Vec<u32>,
}

/// A llama.cpp top-2 gap below this (in units of the logits' std) is a
/// near-tie, where a different pick is accepted.
const NEAR_TIE: f64 = 1e-3;

fn goldens() -> Goldens {
    let path = ref_dir().join("generate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}\nThe llama.cpp goldens are missing: run `cargo xtask ref`.", path.display())
    });
    serde_json::from_str(&text).expect("generate.json")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phi-edge-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_phi-edge")).args(args).output().expect("run phi-edge");
    assert!(
        out.status.success(),
        "phi-edge {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Packs the model once per test process (running on the GGUF would pack
/// it in memory on every run).
fn image(model: &Path) -> PathBuf {
    let phi = tmp("smollm2.phi");
    if !phi.exists() {
        run(&["pack", model.to_str().unwrap(), "-o", phi.to_str().unwrap()]);
    }
    phi
}

#[test]
fn greedy_generation_matches_llama_cpp() {
    let g = goldens();
    let phi = image(&g.model);
    let ctx = g.n_ctx.to_string();
    let max = g.max_tokens.to_string();
    let mut failures = Vec::new();
    for p in &g.prompts {
        let ids_out = tmp(&format!("{}.json", p.name));
        let mut args = vec!["run", "--model", phi.to_str().unwrap(), "--prompt", &p.text, "--temp", "0"];
        args.extend(["--max-tokens", &max, "--ctx", &ctx, "--ids-out", ids_out.to_str().unwrap()]);
        if p.chat {
            args.push("--chat");
        }
        if let Some(s) = &p.system {
            args.extend(["--system", s]);
        }
        let out = run(&args);
        let ids: Ids = serde_json::from_slice(&std::fs::read(&ids_out).unwrap()).unwrap();
        if ids.prompt != p.prompt_ids {
            failures.push(format!("{}: prompt ids {:?} != llama.cpp's {:?}", p.name, ids.prompt, p.prompt_ids));
            continue;
        }
        let same = ids.generated.iter().zip(&p.ids).take_while(|(a, b)| a == b).count();
        let verdict = if ids.generated == p.ids {
            "identical".to_string()
        } else if same < p.ids.len().min(ids.generated.len()) && p.gap_over_std[same] < NEAR_TIE {
            format!("differs from token {same} on, at a near-tie (gap {:.2e} x std)", p.gap_over_std[same])
        } else {
            failures.push(format!("{}: generated {:?}\n  llama.cpp {:?}", p.name, ids.generated, p.ids));
            format!("DIFFERS from token {same} on")
        };
        println!(
            "{:<14} {} prompt tokens, {} generated: {verdict}: {:?}",
            p.name,
            ids.prompt.len(),
            ids.generated.len(),
            String::from_utf8_lossy(&out.stdout).trim_end()
        );
    }
    assert!(g.prompts.len() >= 5, "at least 5 prompts");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seeds_reproduce_and_differ() {
    let g = goldens();
    let phi = image(&g.model);
    let sample = |seed: &str| {
        let args = ["run", "--model", phi.to_str().unwrap(), "--prompt", "Once upon a time", "--temp", "0.9", "--seed", seed, "--max-tokens", "24"];
        run(&args).stdout
    };
    let a = sample("1");
    assert!(!a.is_empty());
    assert_eq!(a, sample("1"), "the same seed must give the same text");
    assert_ne!(a, sample("2"), "two seeds gave the same 24 tokens");
}

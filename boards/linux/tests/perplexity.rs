//! `phi-edge perplexity` against llama.cpp: the perplexity, its
//! uncertainty, the running value after each chunk and (with `--base`) the
//! KL-divergence statistics equal `llama-perplexity`'s figures computed on
//! llama.cpp's decode path (goldens from `cargo xtask ref`,
//! `tests/oracle/perplexity_ref.py`), whatever the prefill chunk, thread
//! count or weight source; bad requests exit 2 with one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use phi_edge_tests::goldens::read_json;
use phi_edge_tests::{ref_dir, tmp_path, workspace_root};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Goldens {
    text: PathBuf,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    model: PathBuf,
    base: Option<PathBuf>,
    n_ctx: u32,
    chunks: u32,
    n_tokens: u64,
    add_bos: bool,
    ppl: f64,
    ppl_uncertainty: f64,
    chunk_ppl: Vec<f64>,
    kl: Option<serde_json::Map<String, Value>>,
}

/// The logits are llama.cpp's to the bit; the golden's sums run in numpy
/// with correctly rounded `expf` where phi-edge calls glibc's: what is left
/// is far below this.
const REL_TOL: f64 = 1e-6;

/// Below this a statistic counts as zero (a model against itself has a
/// mean KL divergence of a few 1e-7, the noise of the 16-bit base rows).
const ABS_TOL: f64 = 1e-12;

fn goldens() -> Goldens {
    read_json(&ref_dir(), "perplexity.json")
}

fn tmp(name: &str) -> PathBuf {
    tmp_path("ppl", name)
}

fn phi_edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phi-edge"))
        .args(args)
        .output()
        .expect("run phi-edge")
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= REL_TOL * want.abs() + ABS_TOL
}

/// `gguf` packed by `phi-edge pack` into this test's temporary directory
/// (once per file): the mapped and streamed runs read an image.
fn image(gguf: &Path) -> PathBuf {
    let phi = image_path(gguf);
    if !phi.is_file() {
        let out = phi_edge(&["pack", gguf.to_str().unwrap(), "-o", phi.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "phi-edge pack {}: {}",
            gguf.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    phi
}

/// Where [`image`] writes the image of `gguf`.
fn image_path(gguf: &Path) -> PathBuf {
    tmp(&format!(
        "{}.phi",
        gguf.file_stem().unwrap().to_str().unwrap()
    ))
}

/// Runs one golden case with `extra` options and checks every figure.
fn check(g: &Goldens, case: &Case, model: &Path, base: Option<&Path>, extra: &[&str]) {
    let json = tmp(&format!("{}.json", case.name));
    let text = workspace_root().join(&g.text);
    let (ctx, chunks) = (case.n_ctx.to_string(), case.chunks.to_string());
    let mut args = vec![
        "perplexity",
        "--model",
        model.to_str().unwrap(),
        "--file",
        text.to_str().unwrap(),
        "--ctx",
        &ctx,
        "--chunks",
        &chunks,
        "--json",
        json.to_str().unwrap(),
    ];
    if let Some(b) = base {
        args.extend(["--base", b.to_str().unwrap()]);
    }
    args.extend(extra);
    let out = phi_edge(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: phi-edge {args:?} failed: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let what = &case.name;
    assert_eq!(
        got["n_tokens"].as_u64(),
        Some(case.n_tokens),
        "{what}: tokens of the text (if {} changed, run `cargo xtask ref --force`)",
        g.text.display()
    );
    assert_eq!(
        got["chunks"].as_u64(),
        Some(u64::from(case.chunks)),
        "{what}"
    );
    assert_eq!(got["add_bos"].as_bool(), Some(case.add_bos), "{what}");
    let ppl = got["ppl"].as_f64().unwrap();
    let unc = got["ppl_uncertainty"].as_f64().unwrap();
    println!(
        "{what}: PPL {ppl:.8} +/- {unc:.8}, llama.cpp {:.8} +/- {:.8} (relative {:+.1e})",
        case.ppl,
        case.ppl_uncertainty,
        ppl / case.ppl - 1.0
    );
    assert!(close(ppl, case.ppl), "{what}: PPL {ppl} != {}", case.ppl);
    assert!(
        close(unc, case.ppl_uncertainty),
        "{what}: uncertainty {unc} != {}",
        case.ppl_uncertainty
    );
    let chunk_ppl: Vec<f64> = got["chunk_ppl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(chunk_ppl.len(), case.chunk_ppl.len(), "{what}");
    for (i, (&a, &b)) in chunk_ppl.iter().zip(&case.chunk_ppl).enumerate() {
        assert!(close(a, b), "{what}: PPL after chunk {} {a} != {b}", i + 1);
    }
    // The last line, as llama.cpp prints it, with the same figures.
    let last = stdout.trim_end().lines().last().unwrap_or("");
    let figures: Vec<f64> = last
        .strip_prefix("Final estimate: PPL = ")
        .unwrap_or_else(|| panic!("{what}: last line {last:?}"))
        .split(" +/- ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(last, format!("Final estimate: PPL = {ppl:.4} +/- {unc:.5}"));
    // Rounded to 4 and 5 decimals.
    let near = |printed: f64, want: f64, half_ulp: f64| {
        (printed - want).abs() <= half_ulp + REL_TOL * want.abs()
    };
    assert!(
        near(figures[0], case.ppl, 5e-5) && near(figures[1], case.ppl_uncertainty, 5e-6),
        "{what}: {last}"
    );

    match &case.kl {
        None => {
            assert!(got["kl"].is_null(), "{what}: KL figures without --base");
            let progress: String = (1..=case.chunks)
                .zip(&case.chunk_ppl)
                .map(|(i, p)| format!("[{i}]{p:.4},"))
                .collect();
            assert_eq!(stdout.lines().next(), Some(progress.as_str()), "{what}");
        }
        Some(kl) => {
            let mine = got["kl"].as_object().expect("KL figures");
            for (key, want) in kl {
                let have = &mine[key];
                match (want.as_f64(), have.as_f64()) {
                    (Some(w), Some(h)) => assert!(close(h, w), "{what}: {key} {h} != {w}"),
                    _ => assert_eq!(have, want, "{what}: {key}"),
                }
            }
            if kl["count"].as_u64().unwrap() >= 100 {
                assert!(stdout.contains("====== KL divergence statistics ======"));
                let mean = format!(
                    "Mean    KLD: {:10.6} ± {:10.6}",
                    kl["kld"].as_f64().unwrap(),
                    kl["kld_unc"].as_f64().unwrap()
                );
                assert!(stdout.contains(&mean), "{what}: no {mean:?} in\n{stdout}");
            }
        }
    }
}

#[test]
fn perplexity_and_kl_divergence_match_llama_cpp() {
    let g = goldens();
    assert!(!g.cases.is_empty());
    for case in &g.cases {
        let model = ref_dir().join(&case.model);
        let base = case.base.as_ref().map(|b| ref_dir().join(b));
        match (case.name.as_str(), &base) {
            // The real model, mapped from its image, on two threads.
            ("smollm2", None) => check(&g, case, &image(&model), None, &["--threads", "2"]),
            // A model against itself, both streamed from the image, odd
            // prefill chunks on one thread: every figure still llama.cpp's.
            (_, Some(b)) if *b == model => check(
                &g,
                case,
                &image(&model),
                Some(&image(b)),
                &["--chunk", "7", "--threads", "1", "--stream", "512"],
            ),
            _ => check(&g, case, &model, base.as_deref(), &["--threads", "2"]),
        }
    }
    for case in &g.cases {
        let _ = std::fs::remove_file(image_path(&ref_dir().join(&case.model)));
    }
}

fn assert_bad_request(out: &Output, what: &str, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(says),
        "{what}: expected {says:?} in {err}"
    );
}

#[test]
fn bad_requests_exit_2_with_one_line() {
    let g = goldens();
    let phi3 = ref_dir().join("models/phi3-f32.gguf");
    let phi3 = phi3.to_str().unwrap();
    let text = workspace_root().join(&g.text);
    let text = text.to_str().unwrap();
    let short = tmp("short.txt");
    std::fs::write(&short, "Only a few words.\n").unwrap();
    let short = short.to_str().unwrap();
    let ppl = |extra: &[&str]| {
        let mut a = vec!["perplexity", "--model", phi3];
        a.extend(extra);
        phi_edge(&a)
    };
    assert_bad_request(
        &ppl(&["--file", short, "--ctx", "64"]),
        "short text",
        "at least 128 (two chunks)",
    );
    assert_bad_request(
        &ppl(&["--file", text, "--ctx", "127"]),
        "odd --ctx",
        "--ctx 127",
    );
    assert_bad_request(
        &ppl(&["--file", text, "--ctx", "4"]),
        "tiny --ctx",
        "--ctx 4",
    );
    assert_bad_request(
        &ppl(&["--file", text, "--ctx", "8192"]),
        "--ctx over the trained context",
        "trained context (4096)",
    );
    assert_bad_request(
        &ppl(&["--file", "/nonexistent/text.txt"]),
        "missing text",
        "cannot read",
    );
    let smol = g
        .cases
        .iter()
        .find(|c| c.name == "smollm2")
        .map(|c| ref_dir().join(&c.model))
        .expect("the smollm2 case");
    assert_bad_request(
        &ppl(&[
            "--file",
            text,
            "--ctx",
            "64",
            "--base",
            smol.to_str().unwrap(),
        ]),
        "--base with another vocabulary",
        "another vocabulary",
    );
}

//! How the logits depend on how a prompt is cut, next to `bench model`'s
//! speed figures: llama.cpp evaluates the bench prompt with batch sizes
//! [`LLAMA_BATCHES`] (its decode path, batch 1, is what phi-edge
//! reproduces), phi-edge with prefill chunks [`CHUNKS`]; each is compared
//! with its own first cut, and phi-edge also with the pinned llama.cpp's
//! batch 1.

use std::path::Path;
use std::process::Command;

use super::model::{execute, Subjects};
use crate::cross::{compare, read_npy};
use crate::python::LlamaBuild;
use crate::{Failure, Result, Workspace};

/// llama.cpp's batch sizes: the decode path, a typical ubatch, the whole
/// prompt in one batch (llama-cpp-python's default `n_batch`).
const LLAMA_BATCHES: [u32; 3] = [1, 16, 512];
/// phi-edge's prefill chunks: one token, ragged, the default, the whole
/// prompt.
const CHUNKS: [u32; 4] = [1, 7, 16, 64];

/// The report lines; the logits go to `target/bench-batches/`.
pub fn invariance(
    ws: &Workspace,
    s: &Subjects,
    prompt: &str,
    n_ctx: u32,
    threads: usize,
) -> Result<Vec<String>> {
    let dir = ws.target().join("bench-batches");
    std::fs::create_dir_all(&dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let script = ws.root.join("tests").join("bench").join("llama_batches.py");
    let mut lines = vec![format!("logits against the first cut of the same engine, on the bench prompt ({threads} thread{}):", if threads == 1 { "" } else { "s" })];
    let mut ids = vec![];
    let mut pinned_b1 = None;
    for build in [LlamaBuild::Pinned, LlamaBuild::Native] {
        let mut c = Command::new(s.python(build));
        c.arg(&script)
            .arg(&s.gguf)
            .arg(prompt)
            .arg(n_ctx.to_string())
            .arg(threads.to_string())
            .arg(&dir);
        c.args(LLAMA_BATCHES.map(|b| b.to_string()));
        let out = execute(&mut c)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                Failure::new(format!("llama_batches.py printed no JSON line:\n{stdout}"))
            })?;
        ids = json["ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        let logits: Vec<(Vec<f32>, usize)> = LLAMA_BATCHES
            .iter()
            .map(|b| read_npy(&dir.join(format!("llama-b{b}.npy"))))
            .collect::<Result<_>>()?;
        let cells: Vec<String> = LLAMA_BATCHES
            .iter()
            .zip(&logits)
            .skip(1)
            .map(|(b, l)| cell(&format!("batch {b}"), &logits[0], l))
            .collect();
        lines.push(format!(
            "  llama.cpp {:<7} vs batch 1: {}",
            name(build),
            cells.join("; ")
        ));
        if build == LlamaBuild::Pinned {
            pinned_b1 = logits.into_iter().next();
        }
    }
    let pinned_b1 = pinned_b1.ok_or_else(|| Failure::new("no logits from the pinned llama.cpp"))?;
    let tokens: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut ours = vec![];
    for chunk in CHUNKS {
        let path = dir.join(format!("phi-edge-c{chunk}.npy"));
        phi_edge_logits(s, &tokens.join(","), n_ctx, threads, chunk, &path)?;
        ours.push(read_npy(&path)?);
    }
    let cells: Vec<String> = CHUNKS
        .iter()
        .zip(&ours)
        .skip(1)
        .map(|(c, l)| cell(&format!("chunk {c}"), &ours[0], l))
        .collect();
    lines.push(format!(
        "  phi-edge          vs chunk 1: {}",
        cells.join("; ")
    ));
    lines.push(format!(
        "  phi-edge chunk 16 vs llama.cpp pinned batch 1: {}",
        cell("", &pinned_b1, &ours[2]).trim_start()
    ));
    Ok(lines)
}

/// A build's name in the report.
fn name(build: LlamaBuild) -> &'static str {
    match build {
        LlamaBuild::Pinned => "pinned",
        LlamaBuild::Native => "native",
    }
}

/// `label: bit-identical at k/n positions, max nrmse x, argmax differs at
/// m`.
fn cell(label: &str, reference: &(Vec<f32>, usize), got: &(Vec<f32>, usize)) -> String {
    let c = compare(reference, got, reference.1);
    format!(
        "{label} bit-identical at {}/{} positions, max nrmse {:.1e}, argmax differs at {}",
        c.identical,
        c.positions,
        c.max_nrmse,
        c.positions - c.argmax_equal
    )
}

/// `phi-edge logits` of `tokens` with prefill chunks of `chunk` tokens.
fn phi_edge_logits(
    s: &Subjects,
    tokens: &str,
    n_ctx: u32,
    threads: usize,
    chunk: u32,
    out: &Path,
) -> Result<()> {
    let mut c = Command::new(&s.cli);
    c.arg("logits")
        .arg("--model")
        .arg(&s.image)
        .args(["--tokens", tokens]);
    c.args([
        "--ctx",
        &n_ctx.to_string(),
        "--threads",
        &threads.to_string(),
        "--chunk",
        &chunk.to_string(),
    ]);
    c.arg("--out").arg(out);
    execute(&mut c).map(|_| ())
}

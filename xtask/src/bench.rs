//! `cargo xtask bench [kernels|model]`: speed, measured, never asserted.
//!
//! - `kernels`: `phi-edge bench` on this machine's kernel set: GB/s of
//!   weights for a 2048 x 2048 matmul of every weight type, ns per call for
//!   the other kernels. `kernels --emulated` also runs the NEON and RVV
//!   sets' conformance suites under qemu-user, for correctness only (time
//!   under emulation says nothing about a real core).
//! - `model`: prefill and decode tokens/s of `phi-edge run` on SmolLM2 and
//!   of llama.cpp (the oracle's build, through llama-cpp-python) on the same
//!   prompt in the same run, both on one thread, and their ratio.

use std::process::Command;

use crate::cmd::{capture, phi_edge, run};
use crate::{demo, python, setup, Failure, Result, Workspace};

/// The prompt both engines prefill.
const PROMPT: &str = "The history of the printing press begins in the fifteenth century, when \
                      Johannes Gutenberg combined movable metal type, oil-based inks and a wooden \
                      screw press into a system that could produce books quickly and cheaply. \
                      Within fifty years, printing shops had spread to more than two hundred \
                      cities across Europe, and the number of books in circulation grew from \
                      thousands to millions.";
/// Tokens generated after the prompt.
const N_GEN: u32 = 32;

/// Runs the benchmarks named in `args` (both when none).
pub fn run_bench(ws: &Workspace, args: &[String]) -> Result<()> {
    let (kernels, emulated, model) = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => (true, false, true),
        ["kernels"] => (true, false, false),
        ["kernels", "--emulated"] => (true, true, false),
        ["model"] => (false, false, true),
        other => {
            return Err(Failure::new(format!("`bench` takes `kernels [--emulated]` or `model` (got {other:?})"))
                .retry("cargo xtask bench [kernels [--emulated]|model]"))
        }
    };
    if kernels {
        run(phi_edge(ws).arg("bench"))?;
    }
    if emulated {
        for line in crate::cross::run_suites(ws)? {
            println!("{line}: all equal to portable (emulated: correctness only, no timing)");
        }
    }
    if model {
        model_bench(ws)?;
    }
    Ok(())
}

fn model_bench(ws: &Workspace) -> Result<()> {
    let py = python::ensure(ws)?;
    let gguf = setup::smollm2_path(ws);
    if !gguf.is_file() {
        setup::smollm2(ws, &py)?;
    }
    let image = demo::image(ws)?;
    let out = Command::new(cli_path(ws))
        .arg("run")
        .arg("--model")
        .arg(&image)
        .args(["--prompt", PROMPT, "--temp", "0", "--max-tokens", &N_GEN.to_string()])
        .output()
        .map_err(|e| Failure::new(format!("cannot run phi-edge: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new(format!("phi-edge run failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    let ours = parse_summary(&summary)
        .ok_or_else(|| Failure::new(format!("no summary line in phi-edge's output: {summary}")))?;
    let script = ws.root.join("tests/bench/llama_speed.py");
    let json = capture(Command::new(&py).arg(script).arg(&gguf).arg(PROMPT).arg(N_GEN.to_string()))?;
    let theirs: serde_json::Value =
        serde_json::from_str(json.trim()).map_err(|e| Failure::new(format!("llama_speed.py: {e}: {json}")))?;
    let get = |k: &str| theirs.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    println!(
        "SmolLM2-135M-Instruct Q4_1, one thread, {} prompt tokens, {} generated ({} for llama.cpp)",
        ours.n_prompt,
        ours.n_gen,
        get("n_gen")
    );
    println!("{:<16}{:>22}{:>12}{:>8}", "", format!("phi-edge ({})", ours.kernels), "llama.cpp", "ratio");
    for (what, a, b) in [("prefill tok/s", ours.prefill, get("prefill_tok_s")), ("decode tok/s", ours.decode, get("decode_tok_s"))] {
        println!("{what:<16}{a:>22.1}{b:>12.1}{:>8.2}", a / b);
    }
    Ok(())
}

/// Figures from `phi-edge run`'s summary line.
struct Summary {
    n_prompt: u64,
    prefill: f64,
    n_gen: u64,
    decode: f64,
    kernels: String,
}

/// Parses "prompt N tokens, prefill X tok/s; generated M tokens, decode Y
/// tok/s; perplexity P; arena B bytes; kernels K".
fn parse_summary(text: &str) -> Option<Summary> {
    let line = text.lines().find(|l| l.contains("prefill") && l.contains("decode"))?;
    let after = |key: &str| line.split(key).nth(1).and_then(|r| r.split_whitespace().next());
    Some(Summary {
        n_prompt: after("prompt ")?.parse().ok()?,
        prefill: after("prefill ")?.parse().ok()?,
        n_gen: after("generated ")?.parse().ok()?,
        decode: after("decode ")?.parse().ok()?,
        kernels: line.split("kernels ").nth(1)?.trim().to_string(),
    })
}

/// The release binary (built by [`phi_edge`] in `demo::image`).
fn cli_path(ws: &Workspace) -> std::path::PathBuf {
    ws.target().join("release").join("phi-edge")
}

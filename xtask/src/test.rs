//! `cargo xtask test`: the whole test pipeline, one [`Step`] after another.
//!
//! Today: setup, ref (goldens), host tests. Later steps (cross builds of
//! the kernels and boards, runs under qemu-user / qemu-system) are added to
//! [`pipeline`] as further non-required steps, so one failing stage still
//! lets the others report.

use crate::cmd::{self, cargo};
use crate::steps::{self, Step};
use crate::{Result, Workspace};

/// Environment variable naming the goldens directory for the parity tests.
pub const REF_DIR_ENV: &str = "PHI_EDGE_REF_DIR";

/// The steps of `cargo xtask test`, in order.
pub fn pipeline() -> Vec<Step> {
    vec![
        steps::setup(),
        steps::reference(false),
        crate::lint::check(),
        bare_metal_core(),
        host_tests(),
        docs_and_packages(),
        crate::demo::check(),
        crate::cross::kernels(),
        crate::cross::cli(),
        crate::ffi::check(),
        crate::fuzz::smoke(),
        crate::boards::check(),
    ]
}

/// The bare-metal targets the core must build for with no `alloc`.
const BARE_METAL: [&str; 2] = ["aarch64-unknown-none", "riscv64gc-unknown-none-elf"];

/// `cargo build -p phi-edge --target T` for each bare-metal target, the
/// firmware example for aarch64, and a check that the core never declares
/// `extern crate alloc`.
fn bare_metal_core() -> Step {
    Step {
        name: "no_std core for bare-metal targets",
        required: false,
        retry: "cargo build -p phi-edge --target aarch64-unknown-none",
        run: Box::new(|ws| {
            for target in BARE_METAL {
                let mut cmd = cargo();
                cmd.current_dir(&ws.root)
                    .args(["build", "-p", "phi-edge", "--target", target]);
                cmd::run(&mut cmd)?;
            }
            // The firmware-style example: a static arena sized by the
            // const fn, the model in a `&'static [u8]`, no heap.
            let mut cmd = cargo();
            cmd.current_dir(&ws.root).args([
                "build",
                "--release",
                "--manifest-path",
                "boards/firmware-example/Cargo.toml",
                "--target",
                BARE_METAL[0],
            ]);
            cmd::run(&mut cmd)?;
            for entry in walk(&ws.root.join("core/src"))? {
                let text = std::fs::read_to_string(&entry)
                    .map_err(|e| crate::Failure::new(format!("{}: {e}", entry.display())))?;
                if text.contains("extern crate alloc") {
                    return Err(crate::Failure::new(format!(
                        "{} uses alloc: the core must not allocate",
                        entry.display()
                    )));
                }
            }
            Ok(())
        }),
    }
}

/// Every `.rs` file below `dir`.
fn walk(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = vec![];
    let entries = std::fs::read_dir(dir)
        .map_err(|e| crate::Failure::new(format!("{}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(out)
}

/// Runs [`pipeline`]; with `filters`, only the required steps and those
/// whose name contains one of them (e.g. `cargo xtask test board`).
pub fn run(ws: &Workspace, filters: &[String]) -> Result<()> {
    let steps: Vec<Step> = pipeline()
        .into_iter()
        .filter(|s| {
            s.required || filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str()))
        })
        .collect();
    steps::run_all(ws, &steps)
}

/// `cargo test --workspace --exclude xtask --no-fail-fast`, output passed
/// through, with PHI_EDGE_REF_DIR pointing at the goldens.
fn host_tests() -> Step {
    Step {
        name: "host tests",
        required: false,
        retry: "cargo test --workspace --exclude xtask --no-fail-fast",
        run: Box::new(|ws| {
            let mut cmd = cargo();
            cmd.current_dir(&ws.root)
                .args([
                    "test",
                    "--workspace",
                    "--exclude",
                    "xtask",
                    "--no-fail-fast",
                ])
                .env(REF_DIR_ENV, ws.reference());
            cmd::run(&mut cmd)
        }),
    }
}

/// The crates published to crates.io, in dependency order.
const PUBLISHED: [&str; 5] = [
    "phi-edge",
    "phi-edge-portable",
    "phi-edge-neon",
    "phi-edge-rvv",
    "phi-edge-x86",
];

/// `cargo doc --no-deps --workspace` with rustdoc's warnings as errors
/// (and the core once more with every feature), then `cargo package` of
/// the published crates together, so each is verified by building it from
/// its `.crate` file against the others' (cargo's local registry overlay):
/// for the host, and for both bare-metal targets, where the NEON and RVV
/// sets are not empty. `--allow-dirty`: a check, not a release. Every
/// command runs even when an earlier one failed; the step fails naming them.
fn docs_and_packages() -> Step {
    Step {
        name: "docs and packages",
        required: false,
        retry: "cargo xtask test docs",
        run: Box::new(|ws| {
            let mut cmds = vec![];
            for which in [
                &["--workspace", "--keep-going"][..],
                &["-p", "phi-edge", "--all-features"],
            ] {
                let mut cmd = cargo();
                cmd.current_dir(&ws.root)
                    .args(["doc", "--no-deps"])
                    .args(which)
                    .env("RUSTDOCFLAGS", "-D warnings");
                cmds.push(cmd);
            }
            for target in [None, Some(BARE_METAL[0]), Some(BARE_METAL[1])] {
                let mut cmd = cargo();
                cmd.current_dir(&ws.root).args(["package", "--allow-dirty"]);
                for p in PUBLISHED {
                    cmd.args(["-p", p]);
                }
                if let Some(t) = target {
                    cmd.args(["--target", t]);
                }
                cmds.push(cmd);
            }
            // The doc commands run with RUSTDOCFLAGS="-D warnings".
            let failed: Vec<String> = cmds
                .iter_mut()
                .filter_map(|c| cmd::run(c).err().map(|f| f.what))
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(crate::Failure::new(failed.join("\n")))
            }
        }),
    }
}

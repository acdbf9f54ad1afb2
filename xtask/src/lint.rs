//! `cargo xtask lint` and the pipeline's lint step: `cargo fmt --check` and
//! `cargo clippy --all-targets -- -D warnings` on the workspace and on
//! every board workspace (each built for its own bare-metal target).

use crate::cmd::{self, cargo};
use crate::steps::Step;
use crate::{Failure, Result, Workspace};

/// The board workspaces, with the target `--all-targets` builds them for
/// (`None`: the one their `.cargo/config.toml` sets).
const BOARD_WORKSPACES: [(&str, Option<&str>); 4] = [
    ("boards/firmware-example", Some("aarch64-unknown-none")),
    ("boards/qemu-virt-aarch64", None),
    ("boards/qemu-virt-riscv64", None),
    ("boards/raspi4", None),
];

/// Runs every check; fails naming each that failed (all run regardless).
pub fn run_lints(ws: &Workspace) -> Result<()> {
    let mut failed = vec![];
    let mut check = |what: String, cmd: &mut std::process::Command| {
        if cmd::run(cmd).is_err() {
            eprintln!("{what} failed");
            failed.push(what);
        }
    };
    check(
        "cargo fmt --check".into(),
        cargo()
            .current_dir(&ws.root)
            .args(["fmt", "--all", "--check"]),
    );
    check(
        "cargo clippy (workspace)".into(),
        cargo().current_dir(&ws.root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    );
    // One target directory for the boards: their shared crates are checked
    // once per target.
    let board_target = ws.target().join("lint-boards");
    for (dir, target) in BOARD_WORKSPACES {
        let path = ws.root.join(dir);
        // Without --all: that would check the path dependencies too, which
        // the workspace's check covers.
        check(
            format!("cargo fmt --check ({dir})"),
            cargo().current_dir(&path).args(["fmt", "--check"]),
        );
        let mut cmd = cargo();
        cmd.current_dir(&path)
            .env("CARGO_TARGET_DIR", &board_target)
            .args(["clippy", "--all-targets"]);
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        cmd.args(["--", "-D", "warnings"]);
        check(format!("cargo clippy ({dir})"), &mut cmd);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!("lints failed: {}", failed.join(", "))))
    }
}

/// The pipeline's lint step.
pub fn check() -> Step {
    Step {
        name: "lints (rustfmt, clippy)",
        required: false,
        retry: "cargo xtask lint",
        run: Box::new(run_lints),
    }
}

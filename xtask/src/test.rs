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
    vec![steps::setup(), steps::reference(false), host_tests()]
}

/// Runs [`pipeline`].
pub fn run(ws: &Workspace) -> Result<()> {
    steps::run_all(ws, &pipeline())
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

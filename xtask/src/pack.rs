//! `cargo xtask pack IN.gguf -o OUT.phi [--type TYPE]`: forwards to the CLI's `pack`
//! subcommand, built in release mode, and returns its exit code.

use std::process::ExitCode;

use crate::cmd::{phi_edge, show};
use crate::Workspace;

/// Runs `cargo run --release -p phi-edge-cli -- pack ARGS...` and
/// returns its exit code.
pub fn run(ws: &Workspace, args: &[String]) -> ExitCode {
    if args.is_empty() {
        eprintln!("usage: cargo xtask pack IN.gguf -o OUT.phi [--type q4_0|q4_1|q8_0|q4_k_m|q6_k|f16|bf16]");
        return ExitCode::from(2);
    }
    // The caller's working directory is kept, so relative paths in `args`
    // mean what they meant on the command line.
    let mut cmd = phi_edge(ws);
    cmd.arg("pack").args(args);
    eprintln!("$ {}", show(&cmd));
    match cmd.status() {
        Ok(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => {
                eprintln!(
                    "xtask pack: failed (exit code {code}); to retry: cargo xtask pack {}",
                    args.join(" ")
                );
                ExitCode::from(u8::try_from(code).unwrap_or(1))
            }
            None => {
                eprintln!("xtask pack: `{}` was killed ({status})", show(&cmd));
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("xtask pack: could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

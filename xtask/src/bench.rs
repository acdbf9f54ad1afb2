//! `cargo xtask bench [kernels|model]`: speed, measured, never asserted.
//!
//! - `kernels`: `phi-edge bench` on this machine's kernel set: GB/s of
//!   weights for a 2048 x 2048 matmul of every weight type, ns per call for
//!   the other kernels. `kernels --emulated` also runs the NEON and RVV
//!   sets' conformance suites under qemu-user, for correctness only (time
//!   under emulation says nothing about a real core).
//! - `model [--threads N] [--pairs K] [--no-callgrind]`: prefill and decode
//!   tokens/s of `phi-edge run` and of two llama.cpp builds on SmolLM2, in
//!   fresh processes and alternating order, with the median ratios (see
//!   [`model`]); then instructions per decoded token of phi-edge and of the
//!   pinned llama.cpp under callgrind (see [`callgrind`]), and how the
//!   logits of each depend on the batch size or prefill chunk (see
//!   [`batch`]).
//! - `model --stream [--stage KIB]`: decode and prefill tokens/s of
//!   `phi-edge run --stream KIB` (default 256) against the mapped run, in
//!   alternating order, with the median ratio streamed / mapped and the
//!   bytes read per token (see [`stream`]).
//! - `arm`, `riscv`: instructions per prefill and decode token of phi-edge
//!   and of llama.cpp in one Linux guest under `qemu-system -icount
//!   shift=0`, on a Cortex-A76 (neon+dotprod) or an RV64GCV at VLEN 256
//!   (see [`guest`]).

mod batch;
mod callgrind;
mod guest;
mod load;
mod model;
mod stream;

use crate::cmd::{phi_edge, run};
use crate::{Failure, Result, Workspace};

/// How to call `bench`, for messages.
const BENCH_USAGE: &str =
    "cargo xtask bench [kernels [--emulated] | model [--threads N] [--pairs K] \
                           [--no-callgrind | --stream [--stage KIB]] | arm | riscv]";

/// Runs the benchmarks named in `args` (both, with their defaults, when
/// none).
pub fn run_bench(ws: &Workspace, args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => {
            run(phi_edge(ws).arg("bench"))?;
            model::run(ws, &model::Options::parse(&[])?)
        }
        ["kernels"] => run(phi_edge(ws).arg("bench")),
        ["kernels", "--emulated"] => {
            run(phi_edge(ws).arg("bench"))?;
            for line in crate::cross::run_suites(ws)? {
                println!("{line}: all equal to portable (emulated: correctness only, no timing)");
            }
            Ok(())
        }
        ["model", rest @ ..] => model::run(ws, &model::Options::parse(rest)?),
        ["arm"] => guest::run_bench(ws, &guest::ARM64),
        ["riscv"] => guest::run_bench(ws, &guest::RISCV64),
        other => Err(Failure::new(format!(
            "`bench` takes `kernels [--emulated]`, `model [--threads N] [--pairs K] [--no-callgrind | --stream [--stage KIB]]`, \
             `arm` or `riscv` (got {other:?})"
        ))
        .retry(BENCH_USAGE)),
    }
}

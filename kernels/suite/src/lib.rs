//! The kernel conformance suite: every kernel of a [`Kernels`] set checked
//! against the portable oracle ([`phi_edge_portable::Portable`]) on the
//! same seeded random inputs, plus a small throughput benchmark.
//!
//! Every kernel set runs the same suite (as tract's `frame` tests do):
//! the portable set against itself natively, NEON under `qemu-aarch64`,
//! RVV under `qemu-riscv64` at each VLEN.
//!
//! ```ignore
//! let report = phi_edge_kernel_suite::run_all(&MyKernels);
//! println!("{report}"); // "<name>: N cases, 0 failed" and a line per kernel
//! report.assert_ok();
//! ```
//!
//! # What is checked
//!
//! - `matmul` for every weight type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
//!   Q4_K, Q6_K) with its activation format made by the oracle's
//!   quantizer, both [`phi_edge::WeightUse`] values, one to many blocks
//!   (odd counts; float rows with partial 32-lane tails), 1 to 8 tokens
//!   and 1 to 33 rows around the multiples of 2, 4 and 8 that multi-row
//!   and multi-token tiles use, `ld_out > rows` (the gaps must be left
//!   untouched), `k = 0`, and
//!   input flavors: model-like, outliers, zero blocks, f16 scales that are
//!   subnormal or 65504, activations near f16 overflow or with subnormal
//!   scales, and integer-exact rows (all scales 1) whose results must be
//!   exactly equal;
//! - `quantize_act` for every format: bytes identical, including rounding
//!   ties, and nothing written past `row_bytes`;
//! - `dequantize_row`, `rms_norm`, `rope` (NORM and NEOX, partial rotary),
//!   `swiglu` (lengths not multiples of 8, `exp` overflow and underflow),
//!   `f32_to_f16` (bits identical, NaN payloads, infinities, subnormals,
//!   ties, overflow), `attention` (various `n_kv`, `head_dim`, `stride`,
//!   sharp softmax, V near f16 overflow, f16 subnormals);
//! - on Unix, the same kernels with every slice ending exactly at a
//!   `PROT_NONE` page ([`guard::Guarded`]): reading or writing past a slice
//!   faults.
//!
//! # Tolerances
//!
//! Integer parts of dot products must be exact: the integer-exact cases
//! compare bits whenever the sum of the magnitudes of the terms is below
//! 2^24 (so every partial sum, in any order, is exact in f32).
//! `quantize_act` and `f32_to_f16` compare bytes. Other float results must
//! lie within [`REL_TOL`] (1e-6) of the oracle's relative to the magnitude
//! of their terms ([`Tol::Rel`]): `sum |w_i| |a_i|` for a dot product
//! (plus the separately summed offset terms of Q4_0, Q4_1, Q4_K, Q6_K),
//! `|a| + |b|` for a rotated pair, the result itself for element-wise kernels,
//! and `max_j |v_j[d]|` for attention, whose tolerance is [`ATTN_TOL`]
//! because it rounds probabilities to f16. The report also counts the
//! calls whose outputs were bit-identical and the largest relative error.
#![deny(missing_docs)]

use std::string::ToString;

use phi_edge::Kernels;
use phi_edge_portable::testing::Rng;

mod bench;
mod gen;
#[cfg(unix)]
pub mod guard;
mod matmul;
mod ops;
#[cfg(unix)]
mod page_end;
mod report;

pub use bench::{bench, BenchLine};
pub use report::{Report, Stats, Tol, ATTN_TOL, MAX_MESSAGES, REL_TOL};

/// The seed every run starts from, so all sets see the same inputs.
pub const SEED: u64 = 0x5eed_4b65_726e_656c;

/// Runs every check of `kern` against the portable oracle and returns the
/// statistics; does not panic on a mismatch (see [`Report::assert_ok`]).
pub fn run_all<K: Kernels>(kern: &K) -> Report {
    let mut r = Report::new(kern.name());
    let mut rng = Rng::new(SEED);
    matmul::quantize_acts(&mut r, kern, &mut rng);
    matmul::matmuls(&mut r, kern, &mut rng);
    matmul::dequantize_rows(&mut r, kern, &mut rng);
    ops::rms_norms(&mut r, kern, &mut rng);
    ops::ropes(&mut r, kern, &mut rng);
    ops::swiglus(&mut r, kern, &mut rng);
    ops::f32_to_f16s(&mut r, kern, &mut rng);
    ops::attentions(&mut r, kern, &mut rng);
    #[cfg(unix)]
    page_end::page_end(&mut r, kern, &mut rng);
    ops::specials(&mut r, kern, &mut rng);
    ops::attentions_q8_0(&mut r, kern, &mut rng);
    r
}

/// The set's name and total case count, as one line (`"neon: 2345 cases"`).
pub fn summary(r: &Report) -> std::string::String {
    let mut s = r.set.to_string();
    s.push_str(&std::format!(": {} cases", r.cases()));
    s
}

//! x86-64 kernels for phi-edge: [`Avx2`], for CPUs with AVX2, FMA and F16C
//! (Intel Haswell, AMD Excavator / Zen and later), the host's baseline
//! set, and [`Avx512`], the same kernels with AVX-512 VNNI quantized
//! matmuls (Intel Ice Lake and later, AMD Zen 4 and later).
//!
//! Both sets implement [`phi_edge::Kernels`] with results bit-identical to
//! the portable oracle (`phi-edge-portable`), which reproduces llama.cpp's
//! x86 AVX2 build operation for operation: for each (row, token) product
//! the same fused multiply-adds and reductions run in the same order, so
//! the code here is the oracle's arithmetic executed by the instructions it
//! emulates. What is free, and where the speed comes from, is the order
//! across rows and tokens and the integer arithmetic (`vpdpbusd` gives the
//! same exact quad sums as `vpmaddubsw` + `vpmaddwd`).
//!
//! Quantized matmuls run in tiles of 4 weight rows by 4 tokens: activation
//! blocks are loaded once for the 4 rows, weight blocks unpacked once for
//! the 4 tokens, each (row, token) in its own accumulators. A tile's rows
//! come from 4 bands of the matrix, so the weights stream from memory as 4
//! sequential runs, prefetched a little ahead. The shared conformance
//! suite (`phi-edge-kernel-suite`) checks every kernel against portable on
//! tile shapes and tails; `tests/decode_bench.rs` measures SmolLM2-shaped
//! decode and prefill by hand.
//!
//! The crate is `#![no_std]`; on targets other than x86-64 it is empty.
//! Feature `std` adds [`Avx2::detect`] and [`Avx512::detect`].
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// Without `std` there are no `detect` functions for the docs to link to
// (docs.rs documents the crate with `std`); on other targets the crate is
// empty.
#![cfg_attr(
    any(not(target_arch = "x86_64"), not(feature = "std")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86_64")]
pub use x86_64::{Avx2, Avx512};

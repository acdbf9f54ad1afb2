//! NEON kernels for phi-edge on aarch64: [`Neon`] (baseline ARMv8-A
//! Advanced SIMD, Cortex-A53 / A72) and [`NeonDot`] (with the `sdot`
//! dot product extension, Cortex-A55 / A76 and later).
//!
//! Both implement [`phi_edge::Kernels`] and give results bit-identical to
//! the portable oracle (`phi-edge-portable`), which reproduces llama.cpp's
//! x86 AVX2 build: the AVX2 code's eight f32 lanes map onto two f32x4, its
//! `maddubs`/`madd` quads onto `sdot`'s four adjacent products per lane
//! (or the widening multiply and pairwise adds of baseline NEON), and the
//! same fused multiply-adds and reductions run in the same order. The
//! shared conformance suite (`phi-edge-kernel-suite`) checks this under
//! qemu for both sets.
//!
//! | kernel | NEON | result vs portable |
//! |---|---|---|
//! | `matmul` Q8_0, Q4_0 (both uses), Q4_1, Q4_K (both uses), Q6_K | tiles of weight rows x tokens (Q4_0 / Q4_K projections 4 x 4, Q8_0, Q4_1 4 x 2, Q4_0 tied 2 x 4, Q4_K tied, Q6_K 2 x 2): each weight block unpacked once per tile's tokens; `sdot` (dotprod) or `smull`+`addp`/`saddlp` (baseline; `smull`+`smlal` block sums for the projections), f32x4 FMA | bit-identical |
//! | `matmul` F32, F16, BF16 | one (row, token) at a time, 8 x f32x4 lanes, `fcvtl` | bit-identical |
//! | `quantize_act` (all formats) | `fcvtns`, `fcvtn`, saturating narrows | bytes identical |
//! | `attention` | f16 dots, vector `ggml_v_expf`, value pass 4 dims at a time | bit-identical |
//! | `rms_norm`, `rope`, `swiglu`, `f32_to_f16` | f32x4 | bit-identical |
//! | `dequantize_row` | delegated to portable (one row per token) | identical |
//!
//! The crate is `#![no_std]` and builds for `aarch64-unknown-none` and
//! `aarch64-unknown-linux-gnu`; on other targets it is empty. Feature
//! `std` adds `NeonDot::detect`.
//!
//! # Testing under qemu-user
//!
//! `.cargo/config.toml` runs aarch64 Linux test binaries with
//! `qemu-aarch64 -cpu cortex-a53` (no dotprod: only [`Neon`] runs):
//!
//! ```text
//! cargo test -p phi-edge-neon --target aarch64-unknown-linux-gnu
//! ```
//!
//! The dotprod build runs on a CPU model that has the extension:
//!
//! ```text
//! CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max" \
//! RUSTFLAGS="-C target-feature=+dotprod" \
//!     cargo test -p phi-edge-neon --target aarch64-unknown-linux-gnu
//! ```
//!
//! Both print the case count of each set the suite ran (`neon: N cases`,
//! `neon+dotprod: N cases`).
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// On other targets the crate is empty, so the links to its kernel sets
// have nothing to point at (docs.rs documents it for aarch64).
#![cfg_attr(
    not(all(target_arch = "aarch64", target_feature = "neon")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod aarch64;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub use aarch64::{Neon, NeonDot};

//! RISC-V Vector (RVV 1.0) kernels for phi-edge: [`Rvv`], named
//! `rvv (VLEN n)` after the vector length of the CPU it runs on.
//!
//! The kernels are inline assembly (stable Rust has no RVV intrinsics, and
//! `cfg(target_feature = "v")` stays unset even with `-C
//! target-feature=+v`): every asm block brackets its vector code with
//! `.option push` / `.option arch, +v` / `.option pop`, so the crate
//! assembles for any riscv64 target, and declares the vector registers it
//! uses as clobbers. Nothing assumes a VLEN: element-wise kernels
//! strip-mine with `vsetvli`, and the dot products, which must sum in
//! llama.cpp's x86 order, ask for a fixed `vl` of 8, 16 or 32 elements with
//! an LMUL that holds it at the smallest VLEN V allows (128), so they run
//! unchanged at 128, 256, 512 and beyond; the 32-value quantized matmuls
//! take 32 lanes (four rows) where VLMAX allows it, else 16 (two rows).
//!
//! Results match the portable oracle (`phi-edge-portable`), which
//! reproduces llama.cpp's x86 AVX2 build, bit for bit:
//!
//! | kernel | RVV | result vs portable |
//! |---|---|---|
//! | `matmul` Q8_0, Q4_0 (both uses), Q4_1 | tiles of 8 rows x up to 16 tokens (below), several rows per vector: `vl = 32` (4 rows x 8 lanes) at VLEN >= 256, `vl = 16` (2 rows) at VLEN 128; per block one `vlseg4e8` of the rows' unpacked values (the AVX2 code's 8 lanes of 4 values each), the activation block repeated per row by `vloxseg4ei8`, `vwmul` / `vwadd` (Q8_0) or four products summed in i16 by `vwmul(su)` / `vwmacc(su)` and `vsext` (Q4), row scales spread over their lanes by `vloxei8`, `vfmul.vf` and one `vfmacc.vv` (repacked Q4_0: lanes summed by integer slides first); f16 scales converted by vector per chunk; `hsum_float_8` by slides in the oracle's order | bit-identical |
//! | `matmul` Q4_K (both uses), Q6_K | tiles of 4 rows x up to 16 tokens; two 32-value sub-blocks per `vlseg4e8` (`vl = 16`), i16 quads (`vwmulsu`/`vwmaccsu`), per-lane i16 scales by `vwmacc.vv`; per block `vfmacc.vf` on 8 f32 lanes (Q4_K plain, also on its 4 min lanes; Q6_K) or `vredsum` and two scalar FMA chains (repacked Q4_K) | bit-identical |
//! | `matmul` F32, F16, BF16 | 32 f32 lanes (`vl = 32` / `2 x 16`), f16 and bf16 widened with integer ops (no Zvfh needed) | bit-identical |
//! | `quantize_act` Q8_0, Q8_1, Q8_K, F16, BF16 | `vfredmax`, `vfcvt.x.f` (ties to even), narrowing shifts, `vwredsum` | bytes identical |
//! | `attention` | f16 score dots, vector `ggml_v_expf`, probabilities rounded to f16 in vector, value pass vectorized over head dimensions per lane | bit-identical |
//! | `rms_norm` | squares summed in f64 in element order (`vfwredosum`) | bit-identical |
//! | `rope`, `swiglu`, `f32_to_f16` | strip-mined, `vlseg2e32` pairs, vector `ggml_v_expf`, integer f32 to f16 | bit-identical |
//! | `dequantize_row` | delegated to portable (one row per token) | identical |
//!
//! The quantized matmuls run in tiles of 8 (32-value types) or 4 (K types)
//! weight rows x up to 16 tokens:
//! a chunk of each row's blocks is unpacked once (Q4 nibbles, Q6_K's 6-bit
//! values, Q8_0 copied: one byte per value, in a stack buffer) and then
//! serves every token of the tile, and per token one asm loop loads each
//! activation block (or pair of sub-blocks) once for the tile's rows. Each (row, token)
//! product keeps its own accumulators and runs the float operations of
//! its per-row dot product in the same order; only exact integer sums are
//! regrouped. The last tile of rows repeats the matrix's last row (those
//! products are dropped), the last tile of tokens is narrower. A matmul
//! uses about 36 KiB (32-value types) or 17 KiB (K types) of stack for
//! the tile's scratch space.
//!
//! The crate is `#![no_std]`; it builds for `riscv64gc-unknown-none-elf`
//! and `riscv64gc-unknown-linux-gnu`, and is empty on other targets.
//! Feature `std` adds [`Rvv::detect`] (Linux: `AT_HWCAP`). Bare-metal
//! firmware must set `mstatus.VS` before constructing the set with
//! [`Rvv::new_unchecked`].
//!
//! See `README.md` for the qemu-user test commands at VLEN 128, 256 and
//! 512.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// On other targets the crate is empty, so the links to its kernel set
// have nothing to point at (docs.rs documents it for riscv64, with `std`),
// and without `std` there is no `Rvv::detect`.
#![cfg_attr(
    any(not(target_arch = "riscv64"), not(feature = "std")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(target_arch = "riscv64")]
mod riscv64;

#[cfg(target_arch = "riscv64")]
pub use riscv64::Rvv;

//! Portable scalar kernels for phi-edge: the oracle every NEON and RVV
//! kernel is checked against, and the fallback on any target.
//!
//! [`Portable`] implements [`phi_edge::Kernels`]. Every kernel is also a
//! plain public function (one `vec_dot_*` per weight type, the quantizers,
//! the dequantizers) so other kernel sets can test against them piece by
//! piece.
//!
//! # What "matches llama.cpp" means here
//!
//! The numerics are those of llama.cpp's reference and generic scalar code
//! (`ggml-quants.c` `quantize_row_*_ref` / `dequantize_row_*`,
//! `ggml-cpu/quants.c` `ggml_vec_dot_*_generic`, `ggml-cpu/ops.cpp`), with
//! one deliberate exception:
//!
//! - integer dot products are exact and identical to ggml's;
//! - the float operations after them run in ggml's order (including the
//!   eight f32 lanes of the generic Q4_K and Q6_K dots), with no FMA
//!   contraction; the test suite checks quantizers, dequantizers and dots
//!   bit for bit against outputs of llama.cpp's own C code;
//! - the exception: the Q8_0 / Q8_1 *activation* quantizers follow
//!   llama.cpp's x86 AVX build (`127 / amax`, ties to even), the build the
//!   parity goldens come from, instead of `_ref` (`1 / d`, ties away from
//!   zero). Both are public; see [`quant::act`].
//!
//! llama.cpp's SIMD builds still differ from this crate in ways a parity
//! test can see, at the level of float rounding:
//!
//! - ARM NEON `quantize_row_q8_0` / `q8_1` use `1 / d` with ties to even,
//!   so on ARM llama.cpp differs from both variants here on rare ties;
//! - the SIMD dot products (quantized and float) sum in a different order,
//!   and C compilers may contract `a * b + c` into FMA (GCC does by default
//!   on aarch64);
//! - float dots (`ggml_vec_dot_f16/bf16/f32`) follow the x86 AVX2 build
//!   here, bit for bit (32 f32 lanes, ggml's reductions, f64 tails for F16
//!   and BF16), so other SIMD builds and the plain-C fallback (f64
//!   throughout) differ;
//! - `swiglu` and attention's `soft_max` follow the x86 AVX2 build too:
//!   ggml's vectorized `expf` (`ggml_v_expf`) on whole groups of 8 (all of
//!   the softmax, as llama.cpp pads the KV length to 256) and glibc's
//!   `expf` on a `swiglu` tail; other builds use other `expf`s.
//!
//! All blocks are read from unaligned little-endian bytes; the crate has no
//! `unsafe`.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod activation;
pub mod attention;
pub mod convert;
pub mod float;
pub mod matmul;
pub mod norm;
pub mod quant;
pub mod rope;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use activation::{silu, swiglu};
pub use attention::attention;
pub use convert::{dequantize_act, dequantize_row, quantize_act};
pub use float::{vec_dot_bf16, vec_dot_f16, vec_dot_f32};
pub use matmul::{matmul, vec_dot_fn, VecDot};
pub use norm::rms_norm;
pub use quant::act::{
    quantize_row_q8_0, quantize_row_q8_0_ref, quantize_row_q8_1, quantize_row_q8_1_ref,
    quantize_row_q8_k,
};
pub use quant::q4_0::vec_dot_q4_0_q8_0;
pub use quant::q4_1::vec_dot_q4_1_q8_1;
pub use quant::q4_k::vec_dot_q4_k_q8_k;
pub use quant::q6_k::vec_dot_q6_k_q8_k;
pub use quant::q8_0::vec_dot_q8_0_q8_0;
pub use rope::rope;

use phi_edge::kernels::F16Bits;
use phi_edge::{ActFormat, DType, Kernels, WeightUse};

/// The portable kernel set: plain Rust, no target features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Portable;

impl Kernels for Portable {
    fn name(&self) -> &'static str {
        "portable"
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        convert::quantize_act(fmt, x, out);
    }

    fn matmul(
        &self,
        dtype: DType,
        usage: WeightUse,
        w: &[u8],
        k: usize,
        rows: usize,
        act: &[u8],
        n_tok: usize,
        out: &mut [f32],
        ld_out: usize,
    ) {
        matmul::matmul(dtype, usage, w, k, rows, act, n_tok, out, ld_out);
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        convert::dequantize_row(dtype, src, out);
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        norm::rms_norm(x, w, eps, out);
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        rope::rope(x, cs, neox);
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        activation::swiglu(gate, up, out);
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        assert!(
            src.len() == dst.len(),
            "f32_to_f16: src {} and dst {} lengths differ",
            src.len(),
            dst.len()
        );
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = float::f32_to_f16(s);
        }
    }

    fn attention(
        &self,
        q: &[f32],
        k: &[F16Bits],
        v: &[F16Bits],
        stride: usize,
        n_kv: usize,
        scale: f32,
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        attention::attention(q, k, v, stride, n_kv, scale, scratch, out);
    }
}

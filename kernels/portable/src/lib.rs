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
//! The parity oracle is llama.cpp built for x86-64 with AVX2, FMA and F16C,
//! no AVX-512 and `-ffp-contract=off` (`tests/oracle/llama-cpp-build.txt`),
//! evaluated one token per batch. This crate reproduces that build's
//! arithmetic bit for bit, and its tests check each kernel against outputs
//! of llama.cpp's own C code compiled the same way:
//!
//! - quantizers and dequantizers: ggml's reference code
//!   (`quantize_row_*_ref`, `dequantize_row_*`), except the Q8_0 / Q8_1
//!   *activation* quantizers, which follow the x86 build (`127 / amax`,
//!   ties to even; the `_ref` variants stay public, see [`quant::act`]);
//! - quantized dot products: exact integer sums, then the float steps of
//!   `ggml_vec_dot_*` (eight f32 lanes, FMA, `hsum_float_8`), or for the
//!   Q4_0 / Q4_K projection weights llama.cpp repacks, of
//!   `ggml_gemv_*_8x8_*` (see [`matmul()`] and [`WeightUse`](phi_edge::WeightUse));
//! - float dot products (`ggml_vec_dot_f16/bf16/f32`): 32 f32 lanes,
//!   ggml's reductions, f64 tails for F16 and BF16;
//! - `swiglu` and attention's softmax: ggml's vectorized `expf`
//!   (`ggml_v_expf`) on whole groups of 8, which is all of the softmax
//!   (llama.cpp pads the KV length to 256) and all of `swiglu` for widths
//!   that are multiples of 8, as in every real model; a `swiglu` tail uses
//!   `libm`'s `expf`, which can differ from glibc's in the last bit;
//! - `rms_norm` and `rope`: ggml's scalar formulas;
//! - attention over a Q8_0 KV cache: llama.cpp's flash attention
//!   ([`flash`]), whose online softmax calls the C library's `expf`,
//!   reproduced as glibc's x86-64 FMA build computes it ([`expf`]).
//!
//! Other llama.cpp builds differ from this crate at the level of float
//! rounding: NEON's `quantize_row_q8_0` / `q8_1` use `1 / d` with ties to
//! even; NEON, AVX-512 and plain C sum dot products in other orders (plain
//! C in f64); batches of several tokens go through llamafile's sgemm and
//! repacked gemm kernels; and C compilers may contract `a * b + c` into
//! FMA (GCC does by default on aarch64).
//!
//! All blocks are read from unaligned little-endian bytes; the crate has no
//! `unsafe`.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod activation;
pub mod attention;
pub mod convert;
pub mod expf;
pub mod flash;
pub mod float;
mod fma;
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
pub use flash::attention_q8_0;
pub use float::{vec_dot_bf16, vec_dot_f16, vec_dot_f32};
pub use matmul::matmul;
pub use norm::rms_norm;
pub use quant::act::{
    quantize_row_q8_0, quantize_row_q8_0_ref, quantize_row_q8_1, quantize_row_q8_1_ref,
    quantize_row_q8_k,
};
pub use quant::q4_0::{vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_repacked};
pub use quant::q4_1::vec_dot_q4_1_q8_1;
pub use quant::q4_k::{vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_repacked};
pub use quant::q6_k::vec_dot_q6_k_q8_k;
pub use quant::q8_0::vec_dot_q8_0_q8_0;
pub use rope::rope;

use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::{ActFormat, DType, Kernels};

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

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        matmul::matmul(m, out);
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
        float::check_f32_to_f16(src, dst);
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = float::f32_to_f16(s);
        }
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        attention::attention(a, scratch, out);
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        flash::attention_q8_0(a, out);
    }
}

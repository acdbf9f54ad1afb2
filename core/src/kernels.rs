//! The kernel contract: every numeric inner loop the decoder runs.
//!
//! One implementation per instruction set (portable, NEON, RVV) lives in its
//! own crate. The portable set is the oracle: every other set must give
//! bit-identical integer dot products and float results within 1e-6
//! relative on the same inputs.
//!
//! The numerics follow llama.cpp's CPU backend so that the decoder matches
//! it: activations are quantized to the weight type's
//! [`ActFormat`](crate::dtype::ActFormat) before a dot product, products are
//! accumulated in f32, and attention rounds the query and the softmax
//! probabilities to f16 before multiplying them with the f16 KV cache.
//!
//! Slices hold raw little-endian block bytes as documented on
//! [`DType`] and [`ActFormat`]; they need no alignment. Kernels never read
//! outside the slices they are given; callers pass correctly sized slices
//! (the decoder checks sizes once, when it plans the arena), and a kernel
//! may panic on a size mismatch, which is a bug in the caller.

use crate::dtype::{ActFormat, DType};

/// f16 bits, as stored in the KV cache.
pub type F16Bits = u16;

/// How a weight matrix is used, which decides how llama.cpp's CPU backend
/// stores it and therefore in which order its x86 build sums each dot
/// product.
///
/// llama.cpp moves projection weights of some types (on x86 AVX2: Q4_0 and
/// Q4_K with a row count divisible by 8) into an interleaved layout and
/// multiplies them with dedicated kernels, while a token embedding, loaded
/// for row lookups, stays in plain rows even when it doubles as the output
/// projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightUse {
    /// A projection weight (attention, feed-forward, untied output).
    Projection,
    /// The token embedding reused as the output projection (tied output).
    TiedEmbedding,
}

/// A set of kernels for one instruction set.
///
/// Implementations are cheap handles (usually zero-sized); the decoder is
/// generic over them so the choice is made at compile time, or at run time
/// through an enum that implements this trait.
pub trait Kernels {
    /// Short name of the set for logs, e.g. `portable` or `neon+dotprod`.
    fn name(&self) -> &'static str;

    /// Converts `x` to activation format `fmt`, writing exactly
    /// `fmt.row_bytes(x.len())` bytes to `out`.
    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]);

    /// Matrix times a batch of activation rows.
    ///
    /// `w` holds `rows` weight rows of `dtype`, each of `k` values
    /// (`dtype.row_bytes(k)` bytes). `act` holds `n_tok` activation rows in
    /// `dtype.act_format()`, each `act_format.row_bytes(k)` bytes. For every
    /// token `t < n_tok` and row `r < rows`:
    /// `out[t * ld_out + r] = dot(w[r], act[t])`.
    ///
    /// `usage` says how llama.cpp's CPU backend would hold this weight;
    /// kernel sets that reproduce its summation order need it (see
    /// [`WeightUse`]), others may ignore it.
    #[allow(clippy::too_many_arguments)]
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
    );

    /// Dequantizes one row of `out.len()` values of `dtype` from `src`.
    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]);

    /// RMSNorm as ggml computes it: `scale = 1 / sqrt(mean(x^2) + eps)` with
    /// the sum of squares accumulated in f64, then
    /// `out[i] = (x[i] * scale) * w[i]`.
    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]);

    /// Rotates one head in place.
    ///
    /// `cs` holds `(cos, sin)` pairs for the rotary dimensions:
    /// `cs[2i] = cos(theta_i)`, `cs[2i + 1] = sin(theta_i)` for
    /// `i < n_rot / 2` where `n_rot = cs.len()`. Dimensions at and past
    /// `n_rot` are left unchanged.
    ///
    /// With `neox = false` (llama.cpp's `NORM` mode) pair `i` is
    /// `(x[2i], x[2i + 1])`; with `neox = true` it is
    /// `(x[i], x[i + n_rot / 2])`. Each pair `(a, b)` becomes
    /// `(a * cos - b * sin, a * sin + b * cos)`.
    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool);

    /// `out[i] = silu(gate[i]) * up[i]`, with `silu(x) = x / (1 + exp(-x))`.
    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]);

    /// Converts f32 values to f16 bits, round to nearest even.
    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]);

    /// One attention head over an f16 KV cache, the way llama.cpp computes it
    /// without flash attention.
    ///
    /// - `q`: the head's query (`head_dim` values), rounded to f16 first;
    /// - `k`, `v`: rows `j < n_kv` start at `j * stride` and hold `head_dim`
    ///   f16 values each;
    /// - scores `s_j = dot(f16(q), k_j) * scale`, then softmax over
    ///   `j < n_kv` (max-subtracted, sum accumulated in f64), each
    ///   probability rounded to f16;
    /// - `out[d] = sum_j p_j * v_j[d]`, accumulated in f32.
    ///
    /// `scratch` holds at least `n_kv` values.
    #[allow(clippy::too_many_arguments)]
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
    );
}

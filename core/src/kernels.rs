//! The kernel contract: every numeric inner loop the decoder runs.
//!
//! One implementation per instruction set (portable, NEON, RVV) lives in its
//! own crate. The portable set is the oracle: every other set must give
//! bit-identical integer dot products and float results within 1e-6
//! relative on the same inputs.
//!
//! The numerics follow llama.cpp's CPU backend so that the decoder matches
//! it: activations are quantized to the weight type's
//! [`ActFormat`] before a dot product, products are
//! accumulated in f32, and attention rounds the query and the softmax
//! probabilities to f16 before multiplying them with the f16 KV cache.
//! Over a Q8_0 KV cache, attention follows llama.cpp's flash attention
//! instead ([`Kernels::attention_q8_0`]).
//!
//! Slices hold raw little-endian block bytes as documented on
//! [`DType`] and [`ActFormat`]; they need no alignment. Kernels never read
//! outside the slices they are given; callers pass correctly sized slices
//! (the decoder checks sizes once, when it plans the arena), and a kernel
//! may panic on a size mismatch, which is a bug in the caller.

use core::marker::PhantomData;
use core::ops::Range;

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

/// The inputs of one matrix product: `rows` weight rows of `k` values
/// times `n_tok` activation rows (see [`Kernels::matmul`]).
#[derive(Clone, Copy, Debug)]
pub struct MatmulArgs<'a> {
    /// The weight type.
    pub dtype: DType,
    /// How llama.cpp's CPU backend would hold this weight (see [`WeightUse`]).
    pub usage: WeightUse,
    /// `rows` weight rows, `dtype.row_bytes(k)` bytes each; may be longer.
    pub w: &'a [u8],
    /// Values per row (the shared dimension).
    pub k: usize,
    /// Weight rows: output values per token.
    pub rows: usize,
    /// `n_tok` activation rows in `dtype.act_format()`,
    /// `act_format.row_bytes(k)` bytes each; may be longer.
    pub act: &'a [u8],
    /// Activation rows (tokens).
    pub n_tok: usize,
}

impl<'a> MatmulArgs<'a> {
    /// Bytes of one weight row.
    ///
    /// Panics if `k` is not a whole number of blocks (a caller bug).
    pub fn w_row_bytes(&self) -> usize {
        match self.dtype.row_bytes(self.k) {
            Some(n) => n,
            None => panic!(
                "matmul {}: k = {} is not a whole number of blocks",
                self.dtype.name(),
                self.k
            ),
        }
    }

    /// Bytes of one activation row (see [`MatmulArgs::w_row_bytes`]).
    pub fn act_row_bytes(&self) -> usize {
        match self.dtype.act_format().row_bytes(self.k) {
            Some(n) => n,
            None => panic!(
                "matmul {}: k = {} is not a whole number of blocks",
                self.dtype.name(),
                self.k
            ),
        }
    }

    /// The product restricted to weight rows `r` (same activations).
    ///
    /// Panics if `r` is not within `0..rows`.
    pub fn with_rows(&self, r: Range<usize>) -> MatmulArgs<'a> {
        assert!(
            r.start <= r.end && r.end <= self.rows,
            "matmul rows {r:?} outside 0..{}",
            self.rows
        );
        let row = self.w_row_bytes();
        MatmulArgs {
            w: &self.w[r.start * row..],
            rows: r.len(),
            ..*self
        }
    }

    /// Checks the arguments against each other and against `out`, as every
    /// kernel set must before it reads: `k` a whole number of blocks, `w`
    /// and `act` long enough, `out` exactly `rows` wide and `n_tok` tall.
    ///
    /// Panics with a message naming the type and the short operand (a
    /// caller bug); returns `(weight row bytes, activation row bytes)`.
    pub fn check(&self, out: &MatOut<'_>) -> (usize, usize) {
        let name = self.dtype.name();
        let (w_row, a_row) = (self.w_row_bytes(), self.act_row_bytes());
        assert!(
            out.cols() == self.rows && out.n_tok() == self.n_tok,
            "matmul {name}: out is {} x {}, not {} x {}",
            out.n_tok(),
            out.cols(),
            self.n_tok,
            self.rows
        );
        assert!(
            self.w.len() >= self.rows * w_row,
            "matmul {name}: w holds {} of {} bytes",
            self.w.len(),
            self.rows * w_row
        );
        assert!(
            self.act.len() >= self.n_tok * a_row,
            "matmul {name}: act holds {} of {} bytes",
            self.act.len(),
            self.n_tok * a_row
        );
        (w_row, a_row)
    }
}

/// A mutable view of some columns of a row-major f32 matrix: `n_tok` rows
/// (one per token) of `cols` values each, consecutive rows `ld` values
/// apart. A matmul writes `out.token(t)[r]`; attention writes a head's
/// columns.
///
/// Views made with [`MatOut::split_at`] cover disjoint columns of the same
/// rows, so kernels on different cores can fill one output matrix.
#[derive(Debug)]
pub struct MatOut<'a> {
    ptr: *mut f32,
    cols: usize,
    n_tok: usize,
    ld: usize,
    _out: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `MatOut` is a unique borrow of the elements it covers (like
// `&mut [f32]`, which is `Send`); views split from it cover disjoint
// elements.
unsafe impl Send for MatOut<'_> {}

impl<'a> MatOut<'a> {
    /// The first `cols` values of `n_tok` rows of `out`, `ld` apart.
    ///
    /// Panics if `out` is too short or rows overlap (`ld < cols` with more
    /// than one row).
    pub fn new(out: &'a mut [f32], cols: usize, n_tok: usize, ld: usize) -> Self {
        assert!(
            n_tok <= 1 || ld >= cols,
            "output rows overlap: ld {ld} < {cols} columns"
        );
        let need = if n_tok == 0 || cols == 0 {
            0
        } else {
            (n_tok - 1) * ld + cols
        };
        assert!(
            out.len() >= need,
            "output holds {} of {need} values",
            out.len()
        );
        MatOut {
            ptr: out.as_mut_ptr(),
            cols,
            n_tok,
            ld: if n_tok <= 1 { cols } else { ld },
            _out: PhantomData,
        }
    }

    /// One row of `out` as a whole: `cols` values for one token.
    pub fn row(out: &'a mut [f32]) -> Self {
        let n = out.len();
        Self::new(out, n, 1, n)
    }

    /// Values per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows (tokens).
    pub fn n_tok(&self) -> usize {
        self.n_tok
    }

    /// Row `t`'s values. Panics if `t >= n_tok`.
    pub fn token(&mut self, t: usize) -> &mut [f32] {
        assert!(t < self.n_tok, "token {t} outside 0..{}", self.n_tok);
        // SAFETY: `new` checked that row `t < n_tok` lies inside the
        // borrowed slice (`t * ld + cols <= len`), and this view owns
        // these columns of every row exclusively for `'a`; the returned
        // borrow of `self` keeps any other access out while it lives.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(t * self.ld), self.cols) }
    }

    /// A shorter-lived view of the same columns.
    pub fn reborrow(&mut self) -> MatOut<'_> {
        MatOut {
            ptr: self.ptr,
            cols: self.cols,
            n_tok: self.n_tok,
            ld: self.ld,
            _out: PhantomData,
        }
    }

    /// Splits into columns `..c` and `c..`. Panics if `c > cols`.
    pub fn split_at(self, c: usize) -> (MatOut<'a>, MatOut<'a>) {
        assert!(c <= self.cols, "split at column {c} of {}", self.cols);
        // SAFETY: `c <= cols`, so both views lie inside this one and cover
        // disjoint columns; `self` is consumed.
        unsafe { (self.cols_unchecked(0..c), self.cols_unchecked(c..self.cols)) }
    }

    /// Columns `r` of this view, without consuming it.
    ///
    /// # Safety
    /// `r` must lie within `0..cols`, and while the returned view lives no
    /// other view may access its columns: callers hand disjoint ranges to
    /// different cores and use `self` for nothing else meanwhile.
    pub unsafe fn cols_unchecked(&self, r: Range<usize>) -> MatOut<'a> {
        debug_assert!(r.start <= r.end && r.end <= self.cols);
        MatOut {
            // SAFETY: `r.start <= cols`, so the pointer stays inside (or one
            // past) the first row, as the caller guarantees.
            ptr: unsafe { self.ptr.add(r.start) },
            cols: r.len(),
            n_tok: self.n_tok,
            ld: self.ld,
            _out: PhantomData,
        }
    }

    /// Row `t` of this view alone, as a one-row view.
    ///
    /// # Safety
    /// `t < n_tok`, and as for [`MatOut::cols_unchecked`]: no other view
    /// may access that row's columns while the returned view lives.
    pub unsafe fn row_unchecked(&self, t: usize) -> MatOut<'a> {
        debug_assert!(t < self.n_tok);
        MatOut {
            // SAFETY: row `t < n_tok` lies inside the borrowed slice
            // (checked by `new`), as the caller guarantees.
            ptr: unsafe { self.ptr.add(t * self.ld) },
            cols: self.cols,
            n_tok: 1,
            ld: self.cols,
            _out: PhantomData,
        }
    }
}

/// The inputs of one attention head (see [`Kernels::attention`]).
#[derive(Clone, Copy, Debug)]
pub struct AttnArgs<'a> {
    /// The head's query, `head_dim` values.
    pub q: &'a [f32],
    /// Keys: row `j < n_kv` starts at `j * stride`, `head_dim` f16 values.
    pub k: &'a [F16Bits],
    /// Values, laid out as `k`.
    pub v: &'a [F16Bits],
    /// Distance between consecutive KV rows, in elements.
    pub stride: usize,
    /// Cached positions to attend to.
    pub n_kv: usize,
    /// Multiplies each score before the softmax.
    pub scale: f32,
}

/// The inputs of one attention head over a Q8_0 KV cache (see
/// [`Kernels::attention_q8_0`]). Every row holds `head_dim / 32` Q8_0
/// blocks of 34 bytes (an f16 scale, 32 `i8`).
#[derive(Clone, Copy, Debug)]
pub struct AttnQ8Args<'a> {
    /// The head's query, already quantized to Q8_0 the way llama.cpp's
    /// flash attention converts it to K's dot type (`quantize_row_q8_0`,
    /// the activation quantizer of [`ActFormat::Q8_0`]).
    pub q: &'a [u8],
    /// Keys: row `j < n_kv` starts at byte `j * stride`.
    pub k: &'a [u8],
    /// Values, laid out as `k`.
    pub v: &'a [u8],
    /// Bytes between consecutive KV rows.
    pub stride: usize,
    /// Cached positions to attend to.
    pub n_kv: usize,
    /// Multiplies each score before the softmax.
    pub scale: f32,
}

/// A set of kernels for one instruction set.
///
/// Implementations are cheap handles (usually zero-sized); the decoder is
/// generic over them so the choice is made at compile time, or at run time
/// through an enum that implements this trait. `Sync`, so that the cores
/// of a [`Parallel`](crate::parallel::Parallel) share one set.
pub trait Kernels: Sync {
    /// Short name of the set for logs, e.g. `portable` or `neon+dotprod`.
    fn name(&self) -> &'static str;

    /// Converts `x` to activation format `fmt`, writing exactly
    /// `fmt.row_bytes(x.len())` bytes to `out`.
    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]);

    /// Matrix times a batch of activation rows:
    /// `out.token(t)[r] = dot(w[r], act[t])` for every token `t < n_tok`
    /// and row `r < rows` (see [`MatmulArgs`]). With `k == 0` every
    /// product is 0.
    ///
    /// Each (row, token) product must keep the float order of llama.cpp's
    /// x86 build for `m.dtype` and `m.usage`; across rows and tokens the
    /// loop order is free. Panics on inconsistent arguments
    /// ([`MatmulArgs::check`]).
    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>);

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
    /// without flash attention:
    ///
    /// - scores `s_j = dot(f16(q), k_j) * scale` for `j < n_kv`, the query
    ///   rounded to f16 first;
    /// - softmax over them (max-subtracted, sum accumulated in f64), each
    ///   probability rounded to f16;
    /// - `out[d] = sum_j p_j * v_j[d]`, accumulated in f32.
    ///
    /// `scratch` holds at least `n_kv` values.
    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]);

    /// One attention head over a Q8_0 KV cache, the way llama.cpp's CPU
    /// flash attention computes it for one query
    /// (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`, the only
    /// path it has for a quantized cache), with `head_dim = out.len()`, a
    /// multiple of 32:
    ///
    /// - for `j < n_kv` in order, `s = vec_dot_q8_0_q8_0(k_j, q) * scale`
    ///   (then `+ 0.0`, the causal mask);
    /// - online softmax in f32 with the C library's `expf`: when `s > M`,
    ///   `M = s`, `ms = expf(M_old - M)` and the accumulator is scaled by
    ///   `ms`, else `vs = expf(s - M)`;
    /// - `acc[d] = fma(dequant(v_j)[d], vs, acc[d])`, `S = S * ms + vs`;
    /// - `out = acc * (1 / S)` (zeros if `S == 0`).
    ///
    /// `out` serves as the accumulator. With `n_kv == 0`, `out` is zeros.
    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]);
}

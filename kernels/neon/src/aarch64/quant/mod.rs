//! Quantized matmuls: tiles of weight rows times tiles of tokens,
//! bit-identical to the portable set.
//!
//! Each weight type is a [`Format`], whose `tile` computes the products
//! of `R` weight rows with `T` activation rows in one pass over their
//! blocks: a weight block is loaded and unpacked once for the `T` tokens,
//! an activation block loaded once for the `R` rows, and the f16 scales of
//! a tile's rows (and of its tokens) convert together in one `fcvtl`
//! (exact: the portable `f16_to_f32` value, NaNs quieted alike). [`run`]
//! walks the matrix in tiles of `R` rows by `T` tokens (the format's
//! sizes, chosen in `matmul.rs` so the accumulators stay in registers),
//! with two-row / two-token and single tiles at the edges.
//!
//! Every (row, token) product keeps its own accumulators and runs exactly
//! the float operations of the portable dot product its format names, in
//! the same order, each multiply with its operands in the same order (so
//! even a NaN's payload comes out the same); only integer sums, which are
//! exact, are formed in whatever order is cheapest. The integer part of
//! a block uses [`dot4`](super::simd::dot4) (or, for 4- and 6-bit
//! weights, [`dot4_small`](super::simd::dot4_small)): lane `l` of a
//! 16-byte half sums the four products `4l..4l + 4`, exactly the lanes of
//! the AVX2 code the oracle emulates. The repacked projections need only
//! each block's total, which the baseline set sums in i16 lanes of four
//! products (`smull`, `smlal`). A (row, token) scale `dw * da` is lane
//! `r` of a by-element multiply of the rows' scales, and `fma_lane` the
//! AVX2 `fmadd` per lane with it; the final reductions are
//! [`hsum_float_8`](super::simd::hsum_float_8). The repacked Q4_0 / Q4_K
//! projections keep one scalar FMA chain per (row, token); a tile holds
//! the chains of its rows in the lanes of one vector per token, and a lane
//! of `vfmaq_f32` is the scalar FMA.

/// Runs `$body` with `$i` bound to each of `0..$n` in turn, unrolled
/// (`$n <= 4` is a constant, such as a tile's `R`): a row loop whose body
/// is too large for LLVM to unroll on its own would otherwise pick
/// accumulators and `fma_lane` lanes at run time.
macro_rules! unroll {
    ($i:ident < $n:expr => $body:block) => {{
        const { assert!($n <= 4) };
        {
            let $i = 0usize;
            if $i < $n $body
        }
        {
            let $i = 1usize;
            if $i < $n $body
        }
        {
            let $i = 2usize;
            if $i < $n $body
        }
        {
            let $i = 3usize;
            if $i < $n $body
        }
    }};
}

mod q4_0;
mod q4_1;
mod q4_k;
mod q6_k;
mod q8_0;
mod rows4;

use core::arch::aarch64::*;

use phi_edge::kernels::{MatOut, MatmulArgs};

use super::simd::{f16x4_to_f32, st_f32};

pub(crate) use q4_0::{Q4_0Repacked, Q4_0};
pub(crate) use q4_1::Q4_1;
pub(crate) use q4_k::{Q4KRepacked, Q4K};
pub(crate) use q6_k::Q6K;
pub(crate) use q8_0::Q8_0;

/// One quantized weight type times its activation format, in the float
/// order of one portable dot product.
pub(crate) trait Format {
    /// Values per block.
    const QK: usize;

    /// The products of `R` weight rows and `T` activation rows of `nb`
    /// blocks each: `out[t][r] = dot(w[r], a[t])`. Each `w[r]` and `a[t]`
    /// holds at least `nb` blocks (a block past the slice panics).
    ///
    /// `SDOT` selects the `sdot` instruction (see `simd::dot4`).
    ///
    /// # Safety
    /// The CPU has NEON, and the dot product extension if `SDOT`.
    unsafe fn tile<const SDOT: bool, const R: usize, const T: usize>(
        w: [&[u8]; R],
        a: [&[u8]; T],
        nb: usize,
    ) -> [[f32; R]; T];
}

/// The first `nb` blocks of a row of `N`-byte blocks (panics if the row
/// is shorter): indexing them with `b < nb` needs no bounds check.
#[inline(always)]
fn blocks<const N: usize>(row: &[u8], nb: usize) -> &[[u8; N]] {
    assert!(
        N > 0 && nb <= row.len() / N,
        "a row of {} bytes holds fewer than {nb} blocks",
        row.len()
    );
    // SAFETY: `[u8; N]` has the size `N` and alignment 1, and the `nb * N`
    // bytes read lie in `row` (checked above), borrowed for the result's
    // lifetime. (`<[u8]>::as_chunks` does this from Rust 1.88, past the
    // workspace's MSRV.)
    unsafe { core::slice::from_raw_parts(row.as_ptr().cast::<[u8; N]>(), nb) }
}

/// The little-endian f16 at `h[0..2]` of up to four blocks as f32, in
/// lanes `0..N` (0.0 past `N`), exactly (`fcvtl`: the portable
/// `f16_to_f32` value of every f16, NaNs quieted as it does).
#[target_feature(enable = "neon")]
#[inline]
fn f16s<const N: usize>(h: [&[u8; 2]; N]) -> float32x4_t {
    const { assert!(N <= 4) };
    let mut bits = 0u64;
    for (i, h) in h.iter().enumerate() {
        bits |= u64::from(u16::from_le_bytes(**h)) << (16 * i);
    }
    f16x4_to_f32(vcreate_u16(bits))
}

/// `v * s[i]` per lane (`fmul` by element), `i < 4`.
#[target_feature(enable = "neon")]
#[inline]
fn mul_lane(v: float32x4_t, s: float32x4_t, i: usize) -> float32x4_t {
    match i {
        0 => vmulq_laneq_f32::<0>(v, s),
        1 => vmulq_laneq_f32::<1>(v, s),
        2 => vmulq_laneq_f32::<2>(v, s),
        _ => vmulq_laneq_f32::<3>(v, s),
    }
}

/// `acc + x * d[i]` per lane, rounded once (`fmla` by element), `i < 4`:
/// the same fused operation as `vfmaq_f32(acc, splat(d[i]), x)`, whose
/// product is the same and whose NaN handling differs only when `x` is a
/// NaN (never for converted integers).
#[target_feature(enable = "neon")]
#[inline]
fn fma_lane(acc: float32x4_t, x: float32x4_t, d: float32x4_t, i: usize) -> float32x4_t {
    match i {
        0 => vfmaq_laneq_f32::<0>(acc, x, d),
        1 => vfmaq_laneq_f32::<1>(acc, x, d),
        2 => vfmaq_laneq_f32::<2>(acc, x, d),
        _ => vfmaq_laneq_f32::<3>(acc, x, d),
    }
}

/// The lane sums of `p[r]` in lane `r` (0 past `R <= 4`): exact integer
/// sums, in pairwise order.
#[target_feature(enable = "neon")]
#[inline]
fn totals<const R: usize>(p: [int32x4_t; R]) -> int32x4_t {
    const { assert!(R <= 4) };
    let z = vdupq_n_s32(0);
    let g = |r: usize| if r < R { p[r] } else { z };
    vpaddq_s32(vpaddq_s32(g(0), g(1)), vpaddq_s32(g(2), g(3)))
}

/// The first `R` lanes of `v`.
#[target_feature(enable = "neon")]
#[inline]
fn first<const R: usize>(v: float32x4_t) -> [f32; R] {
    const { assert!(R <= 4) };
    let mut o = [0.0f32; 4];
    st_f32(&mut o, v);
    core::array::from_fn(|r| o[r])
}

/// `out.token(t)[r] = dot(w[r], act[t])` for every row and token, in
/// tiles of `R` rows by `T` tokens (see `Kernels::matmul`). Panics on
/// inconsistent arguments ([`MatmulArgs::check`]).
///
/// The rows go `R` at a time, then (for `R > 2`) two if two remain, then
/// one at a time; within a row tile the tokens likewise (`T`, 2, 1). A
/// row tile passes all the tokens while its weight rows stay in L1.
///
/// `SDOT` selects the `sdot` instruction: only `NeonDot`, whose
/// constructors guarantee the extension, instantiates it (see
/// `simd::dot4`).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn run<F: Format, const SDOT: bool, const R: usize, const T: usize>(
    m: &MatmulArgs<'_>,
    out: &mut MatOut<'_>,
) {
    let (w_row, a_row) = m.check(out);
    if m.k == 0 {
        for t in 0..m.n_tok {
            out.token(t).fill(0.0);
        }
        return;
    }
    let mut r = 0;
    while m.rows - r >= R {
        row_tile::<F, SDOT, R, T>(m, out, r, w_row, a_row);
        r += R;
    }
    if R > 2 && m.rows - r >= 2 {
        row_tile::<F, SDOT, 2, T>(m, out, r, w_row, a_row);
        r += 2;
    }
    while r < m.rows {
        row_tile::<F, SDOT, 1, T>(m, out, r, w_row, a_row);
        r += 1;
    }
}

/// Weight rows `r0..r0 + R` times every token, `T` at a time (see
/// [`run`]); `m` is checked against `out`, `w_row` and `a_row` are its
/// row sizes.
#[target_feature(enable = "neon")]
#[inline]
fn row_tile<F: Format, const SDOT: bool, const R: usize, const T: usize>(
    m: &MatmulArgs<'_>,
    out: &mut MatOut<'_>,
    r0: usize,
    w_row: usize,
    a_row: usize,
) {
    let nb = m.k / F::QK;
    let w: [&[u8]; R] = core::array::from_fn(|i| &m.w[(r0 + i) * w_row..][..w_row]);
    let act = |t: usize| &m.act[t * a_row..][..a_row];
    let mut t = 0;
    while m.n_tok - t >= T {
        // SAFETY: NEON by this function's target feature; `sdot` as the
        // caller guarantees for `SDOT` (see `run`).
        let p = unsafe { F::tile::<SDOT, R, T>(w, core::array::from_fn(|i| act(t + i)), nb) };
        for (i, p) in p.iter().enumerate() {
            out.token(t + i)[r0..r0 + R].copy_from_slice(p);
        }
        t += T;
    }
    if T > 2 && m.n_tok - t >= 2 {
        // SAFETY: as above.
        let p = unsafe { F::tile::<SDOT, R, 2>(w, [act(t), act(t + 1)], nb) };
        for (i, p) in p.iter().enumerate() {
            out.token(t + i)[r0..r0 + R].copy_from_slice(p);
        }
        t += 2;
    }
    while t < m.n_tok {
        // SAFETY: as above.
        let [p] = unsafe { F::tile::<SDOT, R, 1>(w, [act(t)], nb) };
        out.token(t)[r0..r0 + R].copy_from_slice(&p);
        t += 1;
    }
}

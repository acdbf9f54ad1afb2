//! Quantized matmuls: tiles of weight rows times tiles of tokens.
//!
//! Each weight type is a [`Format`], whose `tile` computes the products
//! of `R` weight rows with `T` activation rows in one pass over their
//! blocks: activation blocks are loaded (and their shared terms computed)
//! once for the `R` rows, weight blocks unpacked once for the `T` tokens.
//! Every (row, token) product keeps its own accumulators and runs exactly
//! the float operations of the portable dot product its format names, in
//! the same order; only integer sums, which are exact, are computed in
//! whatever order is cheapest. [`run`] walks the matrix in tiles of
//! [`ROWS`] rows by [`TOKENS`] tokens, with smaller tiles at the edges.
//!
//! The ISA is a type parameter ([`Quads`]): the same tiles compile into
//! the AVX2 entry point and, with `vpdpbusd`, into the AVX-512 VNNI one.

mod q4_0;
mod q4_1;
mod q4_k;
mod q6_k;
mod q8_0;
mod simd;

use phi_edge::kernels::{MatOut, MatmulArgs};

pub(crate) use q4_0::{Q4_0Repacked, Q4_0};
pub(crate) use q4_1::Q4_1;
pub(crate) use q4_k::{Q4KRepacked, Q4K};
pub(crate) use q6_k::Q6K;
pub(crate) use q8_0::Q8_0;
pub(crate) use simd::{Maddubs, Quads, Vnni};

/// Weight rows per tile.
const ROWS: usize = 4;
/// Tokens per tile.
const TOKENS: usize = 4;
/// How far ahead in each row's stream the tiles prefetch weights: about
/// what memory delivers to one stream during a miss's latency.
const PREFETCH_BYTES: usize = 2048;

/// One quantized weight type times its activation format, in the float
/// order of one portable dot product.
pub(crate) trait Format {
    /// Values per block.
    const QK: usize;

    /// The products of `R <= 4` weight rows and `T` activation rows of
    /// `nb` blocks each: `out[t][r] = dot(w[r], a[t])`. While reading
    /// block `b` of row `r` it prefetches block `b` at `pf[r]`, the same
    /// stream further on (which may lie past the matrix).
    ///
    /// # Safety
    /// The CPU has AVX2, FMA, F16C and the features of `I`; each `w[r]`
    /// points at `nb` readable weight blocks and each `a[t]` at `nb`
    /// readable activation blocks.
    unsafe fn tile<I: Quads, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [*const u8; T],
        nb: usize,
        pf: [*const u8; R],
    ) -> [[f32; R]; T];
}

/// `out.token(t)[r] = dot(w[r], act[t])` for every row and token, in
/// tiles of [`ROWS`] x [`TOKENS`] (see `Kernels::matmul`). Panics on
/// inconsistent arguments ([`MatmulArgs::check`]).
///
/// The rows are cut into [`ROWS`] bands of `rows / ROWS` consecutive rows
/// (the last `rows % ROWS` rows go one at a time at the end), and a tile
/// takes row `i` of every band: its rows are far apart, so the weights
/// stream in as [`ROWS`] sequential runs, which the hardware prefetchers
/// follow (neighbouring rows read side by side, block by block, are a
/// pattern they do not, and run at a fraction of the memory bandwidth).
///
/// # Safety
/// The CPU has AVX2, FMA, F16C and the features of `I`.
#[inline(always)]
pub(crate) unsafe fn run<F: Format, I: Quads>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let (w_row, a_row) = m.check(out);
    if m.k == 0 {
        for t in 0..m.n_tok {
            out.token(t).fill(0.0);
        }
        return;
    }
    let nb = m.k / F::QK;
    let band = m.rows / ROWS;
    for i in 0..band {
        let rows: [usize; ROWS] = core::array::from_fn(|b| b * band + i);
        // SAFETY: `check` proved `w` holds `rows` rows of `w_row` bytes
        // (`nb` blocks each) and `act` `n_tok` rows of `a_row` bytes;
        // `b * band + i < ROWS * band <= rows`.
        unsafe { row_tile::<F, I, ROWS>(m, out, rows, w_row, a_row, nb) };
    }
    for r in ROWS * band..m.rows {
        // SAFETY: as above; `r < rows`.
        unsafe { row_tile::<F, I, 1>(m, out, [r], w_row, a_row, nb) };
    }
}

/// Weight rows `rows` times every token, [`TOKENS`] at a time: the weight
/// rows stay in L1 while the tokens pass.
///
/// # Safety
/// As [`run`], and `rows` are below `m.rows` (`m` checked against `out`).
#[inline(always)]
unsafe fn row_tile<F: Format, I: Quads, const R: usize>(
    m: &MatmulArgs<'_>,
    out: &mut MatOut<'_>,
    rows: [usize; R],
    w_row: usize,
    a_row: usize,
    nb: usize,
) {
    let w: [*const u8; R] = core::array::from_fn(|i| m.w[rows[i] * w_row..].as_ptr());
    let act = |t: usize| m.act[t * a_row..].as_ptr();
    let pf = w.map(|p| p.wrapping_add(PREFETCH_BYTES));
    let mut t = 0;
    while t < m.n_tok {
        if m.n_tok - t >= TOKENS {
            // SAFETY: as the caller guarantees; tokens `t..t + TOKENS`
            // exist.
            let p =
                unsafe { F::tile::<I, R, TOKENS>(w, core::array::from_fn(|i| act(t + i)), nb, pf) };
            for (i, p) in p.iter().enumerate() {
                store(out.token(t + i), rows, p);
            }
            t += TOKENS;
        } else {
            // SAFETY: as the caller guarantees; token `t` exists.
            let p = unsafe { F::tile::<I, R, 1>(w, [act(t)], nb, pf) };
            store(out.token(t), rows, &p[0]);
            t += 1;
        }
    }
}

/// `out[rows[i]] = p[i]`.
#[inline(always)]
fn store<const R: usize>(out: &mut [f32], rows: [usize; R], p: &[f32; R]) {
    for (&r, &v) in rows.iter().zip(p) {
        out[r] = v;
    }
}

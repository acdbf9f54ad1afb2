//! Quantized matmuls in tiles of [`ROWS`] (K types) or [`ROWS32`]
//! (32-value types) weight rows x up to [`TOKENS`] tokens, bit-identical
//! to the portable set.
//!
//! llama.cpp's AVX2 code sums each 32-value group in eight i32 lanes, lane
//! `l` holding the four products `4l..4l + 4`. A unit-stride segment load
//! `vlseg4e8` with `vl = 8` splits 32 bytes into exactly those lanes
//! (field `j` of segment `l` is byte `4l + j`), so the eight lanes are four
//! widening multiplies and a few adds away, at any VLEN. The K types run
//! every integer step with `vl = 16` (two sub-blocks) per row at a small
//! LMUL that holds it at VLEN 128; the 32-value types put several rows
//! side by side in one vector, lane `8r + l` for row `r`'s lane `l`:
//! `vl = 32` (four rows) at VLEN >= 256, `vl = 16` (two rows) at VLEN
//! 128, a tile of [`ROWS32`] rows in two or four such groups.
//!
//! A tile works in two passes over a chunk of blocks:
//!
//! 1. each weight row's blocks are unpacked once into a stack buffer of
//!    one byte per value in natural order (Q4 nibbles split and offset,
//!    Q6_K's 6-bit values assembled; Q8_0 copied), interleaved so that the
//!    tile's rows lie side by side; the 32-value types also convert the
//!    f16 scales of the chunk's rows and tokens by vector here;
//! 2. for each token, one asm loop walks the chunk's blocks and loads each
//!    activation block (or 32-value sub-block) once for all the tile's
//!    rows (or each group of them), whose lanes it keeps in vector
//!    registers.
//!
//! So a weight block is unpacked once per tile for up to [`TOKENS`] tokens
//! and an activation block loaded once per tile (or group) of rows. Every (row,
//! token) product keeps its own accumulators and executes the float
//! operations of its per-row dot product in the same order (the portable
//! oracle's); only exact integer sums are regrouped.

mod blocks32;
mod kquants;

use phi_edge::kernels::{MatOut, MatmulArgs};

pub(crate) use blocks32::Tiles32;
pub(crate) use kquants::TilesK;

/// Weight rows per tile of the K types.
pub(crate) const ROWS: usize = 4;
/// Weight rows per tile of the 32-value types (two or four row groups).
pub(crate) const ROWS32: usize = 8;
/// Tokens per tile at most.
pub(crate) const TOKENS: usize = 16;

/// `out.token(t)[r] = dot(w[r], act[t])` for every row and token (see
/// `Kernels::matmul`), in tiles of `R` consecutive rows ([`ROWS`] or
/// [`ROWS32`]) by up to [`TOKENS`] tokens: `tile(w, a, res)` sets
/// `res[t][i] = dot(w[i], a[t])` for `a.len()` tokens, the consecutive
/// rows of the activation matrix. The last tile of rows repeats the matrix's last
/// row past its end (those products are computed and dropped); the last
/// tile of tokens is narrower. Panics on inconsistent arguments
/// ([`MatmulArgs::check`]).
pub(crate) fn run<const R: usize, F>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>, mut tile: F)
where
    F: FnMut(&[&[u8]; R], &[&[u8]], &mut [[f32; R]]),
{
    let (w_row, a_row) = m.check(out);
    if m.k == 0 {
        for t in 0..m.n_tok {
            out.token(t).fill(0.0);
        }
        return;
    }
    let mut res = [[0.0f32; R]; TOKENS];
    let mut a: [&[u8]; TOKENS] = [&[]; TOKENS];
    for r0 in (0..m.rows).step_by(R) {
        let w: [&[u8]; R] = core::array::from_fn(|i| {
            let r = (r0 + i).min(m.rows - 1);
            &m.w[r * w_row..][..w_row]
        });
        let live = R.min(m.rows - r0);
        for t0 in (0..m.n_tok).step_by(TOKENS) {
            let nt = TOKENS.min(m.n_tok - t0);
            for (i, ai) in a[..nt].iter_mut().enumerate() {
                *ai = &m.act[(t0 + i) * a_row..][..a_row];
            }
            tile(&w, &a[..nt], &mut res[..nt]);
            for (i, p) in res[..nt].iter().enumerate() {
                out.token(t0 + i)[r0..r0 + live].copy_from_slice(&p[..live]);
            }
        }
    }
}

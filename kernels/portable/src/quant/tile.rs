//! Quantized dot products cut at their blocks, so that a matmul unpacks
//! each weight block once for several tokens.
//!
//! A [`BlockDot`] is one weight type's dot product in three steps:
//! [`unpack`](BlockDot::unpack) a weight block (scales to f32, nibbles or
//! 6-bit quants to bytes), [`step`](BlockDot::step) one activation block
//! into one (row, token) product's float state, and
//! [`finish`](BlockDot::finish) that state into the result. A row's dot
//! product ([`row_dot`]) is the steps over its blocks in order; a matmul
//! ([`matmul`]) runs the same steps for up to [`TOKENS`] tokens per pass
//! over a weight row, each token with its own state. Both run exactly the
//! same float operations per (row, token) in the same order, so every
//! prefill chunk size gives the same bits.

use phi_edge::kernels::{MatOut, MatmulArgs};

use super::{blocks, check_len};

/// Tokens per pass over a weight row: their float states stay in
/// registers or L1 while each weight block is unpacked once for all of
/// them.
pub const TOKENS: usize = 8;

/// One quantized weight type times its activation format, block by block.
pub trait BlockDot {
    /// Values per block (of the weights and of the activations).
    const QK: usize;
    /// Bytes in a weight block.
    const W_BYTES: usize;
    /// Bytes in an activation block.
    const A_BYTES: usize;
    /// A weight block, unpacked.
    type Weights;
    /// One (row, token) product's float state between blocks.
    type Acc: Copy;
    /// The state before the first block.
    const ZERO: Self::Acc;

    /// Unpacks a weight block of [`W_BYTES`](Self::W_BYTES) bytes.
    fn unpack(wb: &[u8]) -> Self::Weights;
    /// Adds the product of `w` and an activation block of
    /// [`A_BYTES`](Self::A_BYTES) bytes to `acc`.
    fn step(w: &Self::Weights, ab: &[u8], acc: &mut Self::Acc);
    /// The dot product from the state after the last block.
    fn finish(acc: Self::Acc) -> f32;
}

/// The dot product of a weight row and an activation row of `k` values.
///
/// Panics if `k` is not a whole number of blocks or a row is not exactly
/// its blocks long (`what` names the two rows in the message).
#[inline(always)]
pub(crate) fn row_dot<F: BlockDot>(what: [&str; 2], k: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(k, F::QK);
    check_len(what[0], w, nb, F::W_BYTES);
    check_len(what[1], a, nb, F::A_BYTES);
    let mut acc = F::ZERO;
    for (wb, ab) in w.chunks_exact(F::W_BYTES).zip(a.chunks_exact(F::A_BYTES)) {
        F::step(&F::unpack(wb), ab, &mut acc);
    }
    F::finish(acc)
}

/// `out.token(t)[r] = dot(w[r], act[t])` for every row and token (see
/// [`phi_edge::Kernels::matmul`]): each weight row is read once for every
/// [`TOKENS`] tokens, and each of its blocks unpacked once for them.
/// Panics on inconsistent arguments ([`MatmulArgs::check`]).
pub(crate) fn matmul<F: BlockDot>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let (w_row, a_row) = m.check(out);
    if m.k == 0 {
        for t in 0..m.n_tok {
            out.token(t).fill(0.0);
        }
        return;
    }
    for (r, wr) in m.w[..m.rows * w_row].chunks_exact(w_row).enumerate() {
        let mut t0 = 0;
        while t0 < m.n_tok {
            let n = TOKENS.min(m.n_tok - t0);
            let act = &m.act[t0 * a_row..(t0 + n) * a_row];
            let mut acc = [F::ZERO; TOKENS];
            for (b, wb) in wr.chunks_exact(F::W_BYTES).enumerate() {
                let w = F::unpack(wb);
                for (acc, ar) in acc.iter_mut().zip(act.chunks_exact(a_row)) {
                    F::step(&w, &ar[b * F::A_BYTES..][..F::A_BYTES], acc);
                }
            }
            for (i, &acc) in acc[..n].iter().enumerate() {
                out.token(t0 + i)[r] = F::finish(acc);
            }
            t0 += n;
        }
    }
}

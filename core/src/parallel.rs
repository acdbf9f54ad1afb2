//! Work split across cores: the [`Parallel`] contract and the splits the
//! decoder uses.
//!
//! A matmul's rows and attention's heads are independent work items. The
//! session cuts them into at most [`Parallel::threads`] parts and hands
//! the parts to a `Parallel`: a thread pool on Linux (`ThreadPool`,
//! feature `std`), the secondary cores on a board, or [`Serial`] (the
//! calling core alone). Every (row, token) product is computed by the same
//! code whichever part it falls in, so results are bitwise independent of
//! the thread count.

use core::ops::Range;

use crate::kernels::{Kernels, MatOut, MatmulArgs};

mod claim;
#[cfg(feature = "std")]
mod pool;
pub use claim::Claim;
#[cfg(feature = "std")]
pub use pool::{ThreadPool, CALLER_SPIN_FACTOR, DEFAULT_SPIN};

/// Runs independent jobs on several cores.
pub trait Parallel: Sync {
    /// How many jobs can run at once (1 for [`Serial`]).
    fn threads(&self) -> usize;

    /// Calls `job(i)` once for every `i < n`, possibly concurrently, and
    /// returns when every call has returned. Jobs must not depend on the
    /// order they run in.
    fn run(&self, n: usize, job: &(dyn Fn(usize) + Sync));
}

/// The calling core alone: jobs run one after another, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }

    fn run(&self, n: usize, job: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(job);
    }
}

/// A shared `Parallel` is one too: several sessions (or tests) can use
/// one pool.
impl<P: Parallel + ?Sized> Parallel for &P {
    fn threads(&self) -> usize {
        (**self).threads()
    }

    fn run(&self, n: usize, job: &(dyn Fn(usize) + Sync)) {
        (**self).run(n, job)
    }
}

/// Rows per part are a multiple of this, so that kernels that compute
/// several rows per pass (and llama.cpp's 8-row interleaved layouts) see
/// whole groups.
pub const ROW_GRAIN: usize = 16;

/// Part `i` of `n` items cut into `parts` nearly equal runs whose
/// boundaries are multiples of `grain` (the last run takes the rest).
pub fn part(n: usize, parts: usize, grain: usize, i: usize) -> Range<usize> {
    let units = n.div_ceil(grain);
    let (per, extra) = (units / parts, units % parts);
    let start = i * per + i.min(extra);
    let end = start + per + usize::from(i < extra);
    (start * grain).min(n)..(end * grain).min(n)
}

/// How many parts to cut `n` items into on `par`: one per thread, but no
/// part smaller than `grain` items.
pub fn parts(par: &dyn Parallel, n: usize, grain: usize) -> usize {
    par.threads().clamp(1, n.div_ceil(grain).max(1))
}

/// `out` shared by jobs that each write disjoint columns.
struct SharedOut<'a>(MatOut<'a>);

// SAFETY: jobs only reach the view through `SharedOut::cols`, whose
// contract makes each job's columns disjoint from every other job's;
// writes to disjoint elements from several threads are data-race free.
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    /// Columns `r` for one job.
    ///
    /// # Safety
    /// No two live views taken from one `SharedOut` may overlap.
    unsafe fn cols(&self, r: Range<usize>) -> MatOut<'a> {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.cols_unchecked(r) }
    }

    /// Row `i` alone, as a one-row view.
    ///
    /// # Safety
    /// As [`SharedOut::cols`]: no two live views may overlap.
    unsafe fn row(&self, i: usize) -> MatOut<'a> {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.row_unchecked(i) }
    }
}

/// [`Kernels::matmul`] with its rows split across the cores of `par`.
pub fn matmul<K: Kernels>(par: &dyn Parallel, k: &K, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let n = parts(par, m.rows, ROW_GRAIN);
    if n <= 1 {
        return k.matmul(m, out);
    }
    m.check(out);
    let shared = SharedOut(out.reborrow());
    par.run(n, &|i| {
        let rows = part(m.rows, n, ROW_GRAIN, i);
        // SAFETY: `part` gives the jobs disjoint row ranges, so their
        // column views of `out` are disjoint.
        let mut piece = unsafe { shared.cols(rows.clone()) };
        k.matmul(&m.with_rows(rows), &mut piece);
    });
}

/// A [`for_cols`] job: `(columns, those columns of out, scratch)`.
pub type ColsJob<'j> = dyn Fn(Range<usize>, MatOut<'_>, &mut [f32]) + Sync + 'j;

/// Cuts `out`'s columns into `n_parts` runs at multiples of `grain` and
/// `scratch` into `n_parts` equal chunks, and calls
/// `job(columns, that part of out, that chunk of scratch)` for each part
/// across the cores of `par`.
///
/// Panics if `n_parts` is 0 while `out` has columns.
pub fn for_cols(
    par: &dyn Parallel,
    out: &mut MatOut<'_>,
    scratch: &mut [f32],
    n_parts: usize,
    grain: usize,
    job: &ColsJob<'_>,
) {
    let cols = out.cols();
    assert!(n_parts > 0 || cols == 0, "no parts for {cols} columns");
    let chunk = scratch.len() / n_parts.max(1);
    let shared = SharedOut(out.reborrow());
    let scratch = SharedOut(MatOut::new(scratch, chunk, n_parts, chunk));
    par.run(n_parts, &|i| {
        let r = part(cols, n_parts, grain, i);
        // SAFETY: `part` gives the jobs disjoint column ranges, and job `i`
        // alone takes scratch row `i`.
        let (piece, mut mine) = unsafe { (shared.cols(r.clone()), scratch.row(i)) };
        job(r, piece, mine.token(0));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_everything_once() {
        for n in [0usize, 1, 15, 16, 17, 100, 576, 1536, 49152] {
            for threads in 1..=9 {
                let k = threads.clamp(1, n.div_ceil(ROW_GRAIN).max(1));
                let mut next = 0;
                for i in 0..k {
                    let r = part(n, k, ROW_GRAIN, i);
                    assert_eq!(r.start, next, "n {n} parts {k}");
                    assert!(r.end == n || r.end % ROW_GRAIN == 0);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}

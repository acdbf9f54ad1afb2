//! The generated tokens' perplexity and the CRC-32 of the logits they were
//! drawn from, their work spread over the session's cores.
//!
//! The vocabulary is cut into one run per core. The first run's softmax
//! weights are summed as they are computed, the others' are stored in the
//! arena, one more job takes the CRC, then the stored runs are added in
//! order. The results are those of [`log_prob`](crate::sample::log_prob)
//! and [`Crc32::update_f32s`] on one core, bit for bit, whatever the
//! number of cores.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::crc::Crc32;
use crate::parallel::Parallel;
use crate::sample::{max_logit, softmax_weights, WeightSum};

/// Weights a job computes on its stack before storing them.
const BATCH: usize = 256;

/// Arena bytes for the stored runs of a session planned for `threads`
/// cores.
pub(super) const fn weight_bytes(n_vocab: usize, threads: usize) -> usize {
    if threads > 1 {
        8 * n_vocab
    } else {
        0
    }
}

/// Running perplexity and logits CRC of one turn.
pub(super) struct Book<'a> {
    /// Softmax weights of the runs after the first, as f64 bits.
    weights: &'a [AtomicU64],
    crc: Crc32,
    /// The largest logit and the softmax denominator of the logits last
    /// weighed.
    max: f32,
    sum: WeightSum,
    /// Sum of the taken tokens' negative log probabilities.
    nll: f64,
}

impl<'a> Book<'a> {
    /// A book storing runs in `weights` (which may be empty: one core).
    pub(super) fn new(weights: &'a [AtomicU64]) -> Book<'a> {
        Book {
            weights,
            crc: Crc32::new(),
            max: 0.0,
            sum: WeightSum::new(),
            nll: 0.0,
        }
    }

    /// Starts a new turn.
    pub(super) fn clear(&mut self) {
        self.crc = Crc32::new();
        self.nll = 0.0;
    }

    /// The CRC-32 of every vector weighed this turn.
    pub(super) fn crc(&self) -> u32 {
        self.crc.finish()
    }

    /// Sum of the taken tokens' negative log probabilities.
    pub(super) fn nll(&self) -> f64 {
        self.nll
    }

    /// Feeds `logits` to the CRC and sums their softmax weights, on up to
    /// `par.threads()` cores.
    pub(super) fn weigh(&mut self, par: &impl Parallel, logits: &[f32]) {
        let max = max_logit(logits);
        self.max = max;
        let cores = par.threads().max(1);
        if cores == 1 || self.weights.len() < logits.len() {
            // One core: log_prob's fused loop.
            self.sum = WeightSum::new();
            self.sum.add_softmax(logits, max);
            self.crc.update_f32s(logits);
            return;
        }
        let run_len = logits.len().div_ceil(cores).max(1);
        let n_runs = logits.len().div_ceil(run_len);
        let run = |i: usize| {
            let start = (i * run_len).min(logits.len());
            (start, &logits[start..(start + run_len).min(logits.len())])
        };
        let head = AtomicU64::new(0);
        let crc = AtomicU32::new(self.crc.register());
        let stored = self.weights;
        par.run(n_runs + 1, &|i| {
            if i == 0 {
                let mut sum = WeightSum::new();
                sum.add_softmax(run(0).1, max);
                head.store(sum.value().to_bits(), Relaxed);
            } else if i < n_runs {
                let (start, logits) = run(i);
                let mut w = [0.0f64; BATCH];
                for (k, batch) in logits.chunks(BATCH).enumerate() {
                    softmax_weights(batch, max, &mut w[..batch.len()]);
                    let at = start + k * BATCH;
                    for (cell, &v) in stored[at..at + batch.len()].iter().zip(&w) {
                        cell.store(v.to_bits(), Relaxed);
                    }
                }
            } else {
                let mut c = Crc32::from_register(crc.load(Relaxed));
                c.update_f32s(logits);
                crc.store(c.register(), Relaxed);
            }
        });
        // `run` returns after every job has, with their stores visible.
        let mut sum = WeightSum::from_value(f64::from_bits(head.load(Relaxed)));
        let mut w = [0.0f64; BATCH];
        for cells in stored[run_len.min(logits.len())..logits.len()].chunks(BATCH) {
            for (v, cell) in w.iter_mut().zip(cells) {
                *v = f64::from_bits(cell.load(Relaxed));
            }
            sum.add(&w[..cells.len()]);
        }
        self.sum = sum;
        self.crc = Crc32::from_register(crc.load(Relaxed));
    }

    /// Accounts for token `tok`, drawn from the logits last weighed.
    pub(super) fn take(&mut self, logits: &[f32], tok: u32) {
        if let Some(&logit) = logits.get(tok as usize) {
            self.nll -= self.sum.log_prob(logit, self.max);
        }
    }
}

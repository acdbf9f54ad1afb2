//! The word through which a pool of cores hands out one run's jobs.

use core::sync::atomic::{AtomicU64, Ordering};

/// `epoch << 32 | jobs left to take`, in one atomic word.
///
/// The core that runs a [`Parallel::run`](super::Parallel::run) publishes
/// the run with one store ([`Claim::publish`]), which also gives it the
/// next epoch; every core then takes job indices with
/// [`Claim::take`]: job `i` goes to the compare-and-swap that takes the
/// count from `i + 1` to `i` and also finds the run's epoch, so a core that
/// wakes up late never takes a job of a later run. Only `publish` changes
/// the epoch bits (a take never borrows from them), so the word itself
/// holds the current epoch.
#[derive(Debug, Default)]
pub struct Claim(AtomicU64);

impl Claim {
    /// No run published yet (epoch 0, no jobs).
    pub const fn new() -> Claim {
        Claim(AtomicU64::new(0))
    }

    /// Publishes a run of `n < 2^32` jobs under the next epoch (32 bits,
    /// wrapping) and returns that epoch. Call only from the one core that
    /// runs runs, once the job and its other state are stored: the store
    /// is SeqCst, so it also comes before that core's next SeqCst access
    /// (its check for sleeping cores).
    pub fn publish(&self, n: usize) -> u64 {
        let epoch = self.epoch_with(Ordering::Acquire).wrapping_add(1) & 0xFFFF_FFFF;
        self.0.store(epoch << 32 | n as u64, Ordering::SeqCst);
        epoch
    }

    /// The epoch of the run published last (a SeqCst load: a core that
    /// marks itself asleep and then finds no new run here cannot miss the
    /// publisher's wake-up).
    pub fn epoch(&self) -> u64 {
        self.epoch_with(Ordering::SeqCst)
    }

    fn epoch_with(&self, order: Ordering) -> u64 {
        self.0.load(order) >> 32
    }

    /// Takes the next job of run `epoch`: its index, or `None` once that
    /// run has no job left to take (or a later run is published). A
    /// successful take reads the store that published the run (or a take
    /// after it), so it sees everything stored before [`Claim::publish`].
    pub fn take(&self, epoch: u64) -> Option<usize> {
        let mut c = self.0.load(Ordering::Acquire);
        loop {
            let left = c & 0xFFFF_FFFF;
            if c >> 32 != epoch || left == 0 {
                return None;
            }
            match self
                .0
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some((left - 1) as usize),
                Err(now) => c = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Claim;

    #[test]
    fn a_run_hands_out_each_job_once_and_only_under_its_epoch() {
        let c = Claim::new();
        assert_eq!(c.epoch(), 0);
        let e = c.publish(3);
        assert_eq!((e, c.epoch()), (1, 1));
        assert_eq!(c.take(e + 1), None, "another epoch's take gets nothing");
        assert_eq!(
            [c.take(e), c.take(e), c.take(e), c.take(e)],
            [Some(2), Some(1), Some(0), None]
        );
        let next = c.publish(1);
        assert_eq!(next, 2);
        assert_eq!(c.take(e), None, "a late core never takes a later run's job");
        assert_eq!(c.take(next), Some(0));
    }

    #[test]
    fn the_epoch_wraps_at_32_bits() {
        let c = Claim(core::sync::atomic::AtomicU64::new(0xFFFF_FFFF << 32));
        assert_eq!(c.publish(2), 0);
        assert_eq!(c.take(0), Some(1));
    }
}

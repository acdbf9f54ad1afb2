//! [`ThreadPool`]: a [`Parallel`] over persistent std threads (feature
//! `std`), for the CLI and the host tests.
//!
//! `threads - 1` workers wait for runs; the thread that calls
//! [`Parallel::run`] works too. A run is published by storing the job and
//! then one atomic word, a [`Claim`] (the run's epoch and the jobs left to
//! take). Everyone takes job indices from it, so a worker that wakes up
//! late can never take a job of a later run. `pending` counts the jobs not
//! yet finished; `run` returns when it reaches 0.
//!
//! Waiting spins first (decode issues a run every few microseconds, and a
//! futex wake-up costs tens of them), then parks on a condition variable,
//! so an idle pool uses no CPU. Workers spin for [`DEFAULT_SPIN`] between
//! runs; the caller, whose wait ends when the other threads' jobs do,
//! spins [`CALLER_SPIN_FACTOR`] times as long. A worker that is late (it
//! was parked, or descheduled) costs little: the caller claims the jobs
//! nobody has taken yet. A panic in a job is caught, the run still
//! completes, and the panic resumes on the calling thread.

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Claim, Parallel};

/// A job as `run` receives it; workers get a pointer to the caller's copy.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// How long a waiting thread spins before it parks, unless
/// [`ThreadPool::with_spin`] says otherwise. Long enough to bridge the gaps
/// between one decode step's runs (norms, quantization, RoPE: a few µs to a
/// few tens of µs), short enough that a pool between tokens or between
/// requests soon sleeps.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// The caller of `run` spins this many times a worker's spin for the last
/// jobs to finish: it only waits while others work, usually for less than
/// the imbalance of one matmul's parts.
pub const CALLER_SPIN_FACTOR: u32 = 20;

/// Keeps a hot atomic on its own cache line (128 bytes: adjacent-line
/// prefetchers pull pairs of 64-byte lines).
#[repr(align(128))]
struct Line<T>(T);

/// State shared by the pool's handle and its workers.
struct Shared {
    /// The current run and the jobs left to take.
    claim: Line<Claim>,
    /// Jobs of the current run not yet finished.
    pending: Line<AtomicUsize>,
    /// The current run's job: points at the `Job` on the stack of the
    /// thread inside `run`. Valid from the `claim` store that publishes a
    /// run until `pending` reaches 0.
    job: AtomicPtr<Job<'static>>,
    /// Workers asleep on `work`, or about to be (counted under `lock`).
    sleepers: AtomicUsize,
    /// Whether the thread inside `run` sleeps on `finished`.
    caller_asleep: AtomicBool,
    /// Set once, by `Drop`.
    shutdown: AtomicBool,
    /// The first panic of the current run's jobs.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    lock: Mutex<()>,
    /// Workers wait here for a new run.
    work: Condvar,
    /// The caller waits here for the last job.
    finished: Condvar,
    spin: Duration,
}

/// Runs jobs on `threads - 1` persistent worker threads and the calling
/// thread.
///
/// One run at a time: a `run` that finds the pool busy (a job of the pool
/// calling `run` again, or a second thread sharing the pool) runs its jobs
/// itself, one after another, which is always correct because jobs do not
/// depend on their order. Dropping the pool stops and joins the workers.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Held by the thread inside `run`.
    busy: AtomicBool,
}

impl ThreadPool {
    /// A pool of `threads` threads in all: the caller of `run` and
    /// `threads - 1` workers. Fails if `threads` is 0 or the OS will not
    /// start a thread.
    pub fn new(threads: usize) -> io::Result<ThreadPool> {
        Self::with_spin(threads, DEFAULT_SPIN)
    }

    /// As [`ThreadPool::new`], with workers spinning for `spin` before they
    /// park (and the caller of `run` for [`CALLER_SPIN_FACTOR`] times
    /// that).
    pub fn with_spin(threads: usize, spin: Duration) -> io::Result<ThreadPool> {
        if threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread pool needs at least one thread",
            ));
        }
        let shared = Arc::new(Shared {
            claim: Line(Claim::new()),
            pending: Line(AtomicUsize::new(0)),
            job: AtomicPtr::new(core::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            caller_asleep: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
            lock: Mutex::new(()),
            work: Condvar::new(),
            finished: Condvar::new(),
            spin,
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::with_capacity(threads - 1),
            busy: AtomicBool::new(false),
        };
        for i in 1..threads {
            let shared = Arc::clone(&pool.shared);
            let handle = thread::Builder::new()
                .name(std::format!("phi-edge-{i}"))
                .spawn(move || shared.worker())?;
            // On an early return, dropping `pool` stops the ones started.
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Runs `n` jobs on the pool; the caller holds `busy`.
    fn run_pooled(&self, n: usize, job: Job<'_>) {
        let s = &*self.shared;
        // Workers read the job through this pointer only while `pending`
        // is non-zero, and this function does not return before it is 0.
        s.job.store(
            (&job as *const Job<'_>).cast_mut().cast(),
            Ordering::Relaxed,
        );
        s.pending.0.store(n, Ordering::Relaxed);
        // Publishes job and pending (SeqCst: ordered before the load of
        // `sleepers` below; see `Shared::wait_for_run`).
        let epoch = s.claim.0.publish(n);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = s.locked();
            s.work.notify_all();
        }
        s.work_on(epoch);
        s.wait_until_finished();
        let payload = s
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(p) = payload {
            panic::resume_unwind(p);
        }
    }
}

impl Shared {
    fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker: waits for each run, works on it, until shutdown.
    fn worker(&self) {
        let mut seen = 0u64;
        while let Some(epoch) = self.wait_for_run(seen) {
            self.work_on(epoch);
            seen = epoch;
        }
    }

    /// Waits until a run other than `seen` is published (its epoch), or
    /// for shutdown (`None`).
    fn wait_for_run(&self, seen: u64) -> Option<u64> {
        let fresh = || {
            if self.shutdown.load(Ordering::SeqCst) {
                return Some(None);
            }
            let epoch = self.claim.0.epoch();
            (epoch != seen).then_some(Some(epoch))
        };
        if let Some(r) = spin_until(self.spin, fresh) {
            return r;
        }
        let mut g = self.locked();
        // Counted before the check, under the lock: a `run` that stores
        // `claim` after our check sees `sleepers > 0` (both SeqCst) and
        // notifies under the lock, so after we wait.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            if let Some(r) = fresh() {
                break r;
            }
            g = self.work.wait(g).unwrap_or_else(PoisonError::into_inner);
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Claims and runs jobs of run `epoch` until none are left.
    fn work_on(&self, epoch: u64) {
        while let Some(i) = self.claim.0.take(epoch) {
            // SAFETY: `take` claimed job `i` of run `epoch`, so that run is
            // not finished before this job's `pending` decrement below: the
            // thread inside `run` is still blocked there and the `Job` `job`
            // points at, on its stack, is alive. The take read the store
            // that published the run (or a later take of it), so it sees
            // that run's `job`.
            let job = unsafe { *self.job.load(Ordering::Relaxed) };
            self.finish(panic::catch_unwind(AssertUnwindSafe(|| job(i))));
        }
    }

    /// Records one finished job; the last one wakes the caller if it
    /// sleeps.
    fn finish(&self, result: thread::Result<()>) {
        if let Err(p) = result {
            let mut slot = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert(p);
        }
        if self.pending.0.fetch_sub(1, Ordering::SeqCst) == 1
            && self.caller_asleep.load(Ordering::SeqCst)
        {
            let _g = self.locked();
            self.finished.notify_all();
        }
    }

    /// The caller's wait for the run's last job.
    fn wait_until_finished(&self) {
        let done = || (self.pending.0.load(Ordering::Acquire) == 0).then_some(());
        if spin_until(self.spin.saturating_mul(CALLER_SPIN_FACTOR), done).is_some() {
            return;
        }
        let mut g = self.locked();
        self.caller_asleep.store(true, Ordering::SeqCst);
        while self.pending.0.load(Ordering::SeqCst) != 0 {
            g = self
                .finished
                .wait(g)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.caller_asleep.store(false, Ordering::Relaxed);
    }
}

/// Polls `ready` for about `budget`, with `spin_loop` hints in between.
fn spin_until<T>(budget: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if let Some(r) = ready() {
                return Some(r);
            }
            core::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return ready();
        }
    }
}

impl Parallel for ThreadPool {
    fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    fn run(&self, n: usize, job: &(dyn Fn(usize) + Sync)) {
        if n <= 1 || self.workers.is_empty() || self.busy.swap(true, Ordering::Acquire) {
            return (0..n).for_each(job);
        }
        /// Frees the pool even if the run panics.
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _busy = Release(&self.busy);
        // A `Claim` holds at most u32::MAX jobs per run.
        let mut start = 0;
        while start < n {
            let m = (n - start).min(u32::MAX as usize);
            let base = start;
            self.run_pooled(m, &|i| job(base + i));
            start += m;
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.locked();
            self.shared.work.notify_all();
        }
        for w in self.workers.drain(..) {
            // A worker never panics: jobs' panics are caught.
            let _ = w.join();
        }
    }
}

impl core::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads())
            .field("spin", &self.shared.spin)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_index_runs_exactly_once() {
        for threads in 1..=5 {
            let pool = ThreadPool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            for n in [0usize, 1, 2, 3, 4, 5, 7, 8, 16, 33, 100, 1000] {
                for _ in 0..20 {
                    let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                    pool.run(n, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(
                        hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                        "threads {threads} n {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_short_runs_with_parked_and_spinning_workers() {
        for spin in [Duration::ZERO, Duration::from_micros(5), DEFAULT_SPIN] {
            let pool = ThreadPool::with_spin(3, spin).unwrap();
            let total = AtomicUsize::new(0);
            for r in 0..3000 {
                let n = r % 5;
                pool.run(n, &|i| {
                    total.fetch_add(i + 1, Ordering::Relaxed);
                });
                if r % 1000 == 999 {
                    // Let the workers park.
                    thread::sleep(Duration::from_millis(2));
                }
            }
            let want: usize = (0..3000).map(|r| (1..=r % 5).sum::<usize>()).sum();
            assert_eq!(total.load(Ordering::Relaxed), want, "spin {spin:?}");
        }
    }

    #[test]
    fn a_caller_that_parks_is_woken_by_the_last_job() {
        // Jobs far longer than the caller's spin: it parks until the last
        // worker's job wakes it.
        let pool = ThreadPool::with_spin(3, Duration::from_micros(1)).unwrap();
        for _ in 0..20 {
            let count = AtomicUsize::new(0);
            pool.run(3, &|i| {
                if i != 2 {
                    thread::sleep(Duration::from_millis(1));
                }
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(count.load(Ordering::Relaxed), 3);
        }
    }

    #[test]
    fn nested_and_concurrent_runs_are_serial_and_complete() {
        let pool = ThreadPool::new(3).unwrap();
        let hits: Vec<AtomicU32> = (0..6 * 5).map(|_| AtomicU32::new(0)).collect();
        pool.run(6, &|i| {
            pool.run(5, &|j| {
                hits[i * 5 + j].fetch_add(1, Ordering::Relaxed);
            });
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        // Two threads sharing one pool.
        let count = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..500 {
                        pool.run(4, &|_| {
                            count.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 2 * 500 * 4);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let f = |i: usize| (i as f32 * 0.37).sin();
        let want: Vec<u32> = (0..1000).map(|i| f(i).to_bits()).collect();
        for threads in 1..=4 {
            let pool = ThreadPool::new(threads).unwrap();
            let got: Vec<AtomicU32> = (0..1000).map(|_| AtomicU32::new(0)).collect();
            pool.run(got.len(), &|i| {
                got[i].store(f(i).to_bits(), Ordering::Relaxed)
            });
            let got: Vec<u32> = got.iter().map(|g| g.load(Ordering::Relaxed)).collect();
            assert_eq!(got, want, "threads {threads}");
        }
    }

    #[test]
    fn zero_threads_is_an_error() {
        assert_eq!(
            ThreadPool::new(0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_panicking_job_reaches_the_caller_and_the_pool_still_works() {
        let pool = ThreadPool::new(3).unwrap();
        for bad in [0usize, 2] {
            let ran = AtomicUsize::new(0);
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.run(6, &|i| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    assert!(i != bad, "job {i} fails");
                })
            }));
            let msg = r.unwrap_err();
            let msg = msg
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or("");
            assert!(msg.contains("fails"), "{msg}");
            // Every job ran: the run completed before unwinding.
            assert_eq!(ran.load(Ordering::Relaxed), 6);
        }
        let count = AtomicUsize::new(0);
        pool.run(8, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn an_idle_pool_sleeps_and_drops_promptly() {
        let pool = ThreadPool::with_spin(4, Duration::from_micros(10)).unwrap();
        pool.run(4, &|_| {});
        let t = Instant::now();
        while pool.shared.sleepers.load(Ordering::SeqCst) < 3
            && t.elapsed() < Duration::from_secs(5)
        {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            pool.shared.sleepers.load(Ordering::SeqCst),
            3,
            "workers should be parked"
        );
        let t = Instant::now();
        drop(pool);
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}

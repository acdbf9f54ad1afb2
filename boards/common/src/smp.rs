//! The board's cores as the decoder's [`Parallel`]: the boot core publishes
//! each run in one job slot, every core (the boot core too) claims and runs
//! jobs, and the boot core returns once all of them are finished.
//!
//! A run is published by storing the job and then one atomic word, a
//! [`Claim`] (the run's epoch and the jobs left to take, the word core's
//! `ThreadPool` uses too). Every core takes job indices from it, so a core
//! that wakes up late can never take a job of a later run, and reads the
//! job only after a successful take. `pending`
//! counts the jobs not yet finished; [`Parallel::run`] returns when it is
//! 0, so no core touches a job after `run` has returned.
//!
//! Idle cores do not spin for long: a core with nothing to do spins for
//! the board's spin budget (the gaps between one decode step's runs are
//! short), then marks itself asleep and waits in a [`Signal::sleep`]
//! (`wfi`), which the publisher ends with [`Signal::wake`] (an
//! inter-processor interrupt: a GIC SGI on the Arm boards, a CLINT
//! software interrupt on RISC-V; see `gicv2` and `clint`). The same
//! goes for the boot core waiting for the last job: the core that finishes
//! it wakes the boot core if that one sleeps. Under QEMU this matters: a
//! vCPU in `wfi` is halted and gives its host core to the others, while a
//! spinning one (or one in aarch64 `wfe`, which QEMU treats as a mere
//! yield) keeps burning it.
//!
//! Sleeping and waking pair up without a lost wake-up: the sleeper stores
//! its `asleep` flag, then checks for work again before `wfi`; the
//! publisher stores `claim`, then reads the flags (all SeqCst), so at
//! least one of them sees the other. The interrupt stays pending until the
//! sleeper clears it, so a wake sent just before the `wfi` ends it at
//! once; a stale one only costs one spurious turn of the loop.
//!
//! Core indices are logical: 0 is the boot core, the secondaries are
//! `1..`; the board's [`Signal`] maps them to its hardware (GIC CPU
//! interface numbers, hart ids). The board starts each secondary on its
//! own stack and calls [`Cores::serve`] there; the boot core calls
//! [`Cores::start`], which waits for them.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use phi_edge::parallel::Claim;
use phi_edge::Parallel;

#[cfg(target_arch = "riscv64")]
pub mod clint;
#[cfg(target_arch = "aarch64")]
pub mod gicv2;

/// Most cores one [`Cores`] drives (the boot core included).
pub const MAX_CORES: usize = 8;

/// The boot core, waiting for the last part of a run, spins this many
/// times an idle core's spin before it sleeps: it only waits while others
/// work, usually for less than the imbalance of one matmul's parts, and
/// every microsecond its wake-up takes delays the whole run.
pub const CALLER_SPIN_FACTOR: u64 = 5;

/// A job as [`Parallel::run`] receives it; the others get a pointer to the
/// boot core's copy.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// How a core waits for work and how it is woken: the board's
/// inter-processor interrupt, in arch code.
pub trait Signal: Sync {
    /// Readies the calling core, `core`, to be woken: unmasks the wake-up
    /// interrupt at its source (not at the core: it is never taken, it
    /// only ends `wfi`). Called once on every core before it sleeps.
    fn prepare(&self, core: usize);

    /// Makes `core`'s current or next [`Signal::sleep`] return.
    fn wake(&self, core: usize);

    /// Waits (`wfi`) until the calling core, `core`, is woken, then clears
    /// the wake-up. May return early; callers check their condition again.
    fn sleep(&self, core: usize);

    /// A monotonic tick count (the board's timer), for the spin budget.
    fn now(&self) -> u64;

    /// [`Signal::now`]'s ticks per second.
    fn frequency(&self) -> u64;
}

/// Keeps a hot atomic on its own cache line (128 bytes: adjacent-line
/// prefetchers pull pairs of 64-byte lines).
#[repr(align(128))]
struct Line<T>(T);

/// The board's cores as a [`Parallel`]: one `static` per board, shared by
/// the boot core (which calls [`Parallel::run`]) and the secondaries
/// (which [`Cores::serve`]).
pub struct Cores<S: Signal> {
    signal: S,
    /// The current run and the jobs left to take.
    claim: Line<Claim>,
    /// Jobs of the current run not yet finished.
    pending: Line<AtomicUsize>,
    /// The current run's job: points at the `Job` on the boot core's
    /// stack, valid from the `claim` store that publishes a run until
    /// `pending` reaches 0.
    job: AtomicPtr<Job<'static>>,
    /// Which cores sleep, or are about to (bit `i`: core `i`).
    asleep: Line<AtomicUsize>,
    /// Secondaries serving runs.
    online: AtomicUsize,
    /// Cores the runs are cut for ([`Cores::start`]'s result).
    threads: AtomicUsize,
    /// Held by the core inside `run`.
    busy: AtomicBool,
    /// Microseconds an idle core spins before it sleeps.
    spin_us: u64,
    /// Jobs each core has run, and times it has slept (for the log).
    counts: [Line<Counts>; MAX_CORES],
}

/// What one core did.
struct Counts {
    jobs: AtomicUsize,
    sleeps: AtomicUsize,
}

/// What one core did, from [`Cores::activity`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Jobs (parts of runs) it ran.
    pub jobs: usize,
    /// Times it slept in [`Signal::sleep`].
    pub sleeps: usize,
}

impl<S: Signal> Cores<S> {
    /// The cores woken through `signal`, idle ones spinning for `spin_us`
    /// microseconds before they sleep. Until [`Cores::start`] runs,
    /// everything runs on the calling core alone.
    pub const fn new(signal: S, spin_us: u64) -> Cores<S> {
        Cores {
            signal,
            claim: Line(Claim::new()),
            pending: Line(AtomicUsize::new(0)),
            job: AtomicPtr::new(core::ptr::null_mut()),
            asleep: Line(AtomicUsize::new(0)),
            online: AtomicUsize::new(0),
            threads: AtomicUsize::new(1),
            busy: AtomicBool::new(false),
            spin_us,
            counts: [const {
                Line(Counts {
                    jobs: AtomicUsize::new(0),
                    sleeps: AtomicUsize::new(0),
                })
            }; MAX_CORES],
        }
    }

    /// The board's wake-up signal.
    pub fn signal(&self) -> &S {
        &self.signal
    }

    /// What `core` has done so far (zeros for an index past
    /// [`MAX_CORES`]).
    pub fn activity(&self, core: usize) -> Activity {
        self.counts
            .get(core)
            .map_or(Activity::default(), |c| Activity {
                jobs: c.0.jobs.load(Ordering::Relaxed),
                sleeps: c.0.sleeps.load(Ordering::Relaxed),
            })
    }

    /// `us` microseconds in [`Signal::now`] ticks.
    fn ticks(&self, us: u64) -> u64 {
        (u128::from(self.signal.frequency()) * u128::from(us) / 1_000_000) as u64
    }

    /// On the boot core, once the board has started `secondaries` cores
    /// (each calls [`Cores::serve`]): waits up to `timeout_us`
    /// microseconds for them and returns how many cores the runs use from
    /// now on (the boot core and the secondaries that came up, at most
    /// [`MAX_CORES`]).
    pub fn start(&self, secondaries: usize, timeout_us: u64) -> usize {
        self.signal.prepare(0);
        let want = secondaries.min(MAX_CORES - 1);
        let timeout = self.ticks(timeout_us);
        let t0 = self.signal.now();
        while self.online.load(Ordering::Acquire) < want
            && self.signal.now().wrapping_sub(t0) < timeout
        {
            spin_loop();
        }
        let threads = 1 + self.online.load(Ordering::Acquire).min(want);
        self.threads.store(threads, Ordering::Release);
        threads
    }

    /// A secondary core's life once the board has set it up (stack, MMU,
    /// FPU, vector unit): reports for work and runs jobs for good. `core`
    /// is its logical index (1 and up); one beyond [`MAX_CORES`] only
    /// sleeps.
    pub fn serve(&self, core: usize) -> ! {
        if core == 0 || core >= MAX_CORES {
            loop {
                self.signal.sleep(core);
            }
        }
        self.signal.prepare(core);
        self.online.fetch_add(1, Ordering::AcqRel);
        let mut seen = self.claim.0.epoch();
        loop {
            let epoch = self.wait_for_run(core, seen);
            self.work_on(core, epoch);
            seen = epoch;
        }
    }

    /// Waits until a run other than `seen` is published; returns its
    /// epoch.
    fn wait_for_run(&self, core: usize, seen: u64) -> u64 {
        let fresh = || {
            let epoch = self.claim.0.epoch();
            (epoch != seen).then_some(epoch)
        };
        loop {
            if let Some(epoch) = self.spin_until(self.spin_us, fresh) {
                return epoch;
            }
            if let Some(epoch) = self.sleep_until(core, fresh) {
                return epoch;
            }
        }
    }

    /// Polls `ready` for `spin_us` microseconds.
    fn spin_until<T>(&self, spin_us: u64, ready: impl Fn() -> Option<T>) -> Option<T> {
        let spin = self.ticks(spin_us);
        let t0 = self.signal.now();
        loop {
            if let Some(v) = ready() {
                return Some(v);
            }
            if self.signal.now().wrapping_sub(t0) >= spin {
                return None;
            }
            for _ in 0..16 {
                spin_loop();
            }
        }
    }

    /// Marks `core` asleep and sleeps once, unless `ready` turns out to be
    /// ready after all.
    fn sleep_until<T>(&self, core: usize, ready: impl Fn() -> Option<T>) -> Option<T> {
        let bit = 1 << core;
        self.asleep.0.fetch_or(bit, Ordering::SeqCst);
        let r = ready();
        if r.is_none() {
            self.counts[core].0.sleeps.fetch_add(1, Ordering::Relaxed);
            self.signal.sleep(core);
        }
        self.asleep.0.fetch_and(!bit, Ordering::SeqCst);
        r
    }

    /// Claims and runs jobs of run `epoch` on `core` until none are left.
    fn work_on(&self, core: usize, epoch: u64) {
        while let Some(i) = self.claim.0.take(epoch) {
            // SAFETY: `take` claimed job `i` of run `epoch`, so that run is
            // not finished before this job's `pending` decrement below: the
            // boot core is still inside `run`, and the `Job` `job` points
            // at, on its stack, is alive. The take read the store that
            // published the run (or a later take of it), so it sees that
            // run's `job`.
            let job = unsafe { *self.job.load(Ordering::Relaxed) };
            job(i);
            self.counts[core].0.jobs.fetch_add(1, Ordering::Relaxed);
            self.finish();
        }
    }

    /// Records one finished job; the last one wakes the boot core if it
    /// sleeps.
    fn finish(&self) {
        if self.pending.0.fetch_sub(1, Ordering::SeqCst) == 1
            && self.asleep.0.load(Ordering::SeqCst) & 1 != 0
        {
            self.signal.wake(0);
        }
    }

    /// Runs `n` jobs on every core; the caller holds `busy`.
    fn run_shared(&self, n: usize, job: Job<'_>) {
        // The others read the job through this pointer only while
        // `pending` is non-zero, and this function does not return before
        // it is 0.
        self.job.store(
            (&job as *const Job<'_>).cast_mut().cast(),
            Ordering::Relaxed,
        );
        self.pending.0.store(n, Ordering::Relaxed);
        // Publishes job and pending; SeqCst orders it before the load of
        // `asleep` (see the module docs).
        let epoch = self.claim.0.publish(n);
        let mut sleepers = self.asleep.0.load(Ordering::SeqCst) & !1;
        // Wake no more cores than there are jobs left for them.
        let mut wakes = n - 1;
        while sleepers != 0 && wakes > 0 {
            let core = sleepers.trailing_zeros() as usize;
            self.signal.wake(core);
            sleepers &= sleepers - 1;
            wakes -= 1;
        }
        self.work_on(0, epoch);
        let done = || (self.pending.0.load(Ordering::SeqCst) == 0).then_some(());
        let spin_us = self.spin_us.saturating_mul(CALLER_SPIN_FACTOR);
        while self.spin_until(spin_us, done).is_none() && self.sleep_until(0, done).is_none() {}
    }
}

impl<S: Signal> Parallel for Cores<S> {
    fn threads(&self) -> usize {
        self.threads.load(Ordering::Relaxed)
    }

    /// Runs the jobs on every core that serves. A run from inside a job
    /// (or from a secondary) runs its jobs on the calling core, in order,
    /// which is always correct: jobs do not depend on their order.
    fn run(&self, n: usize, job: &(dyn Fn(usize) + Sync)) {
        if n <= 1 || self.threads() <= 1 || self.busy.swap(true, Ordering::Acquire) {
            return (0..n).for_each(job);
        }
        self.run_shared(n, job);
        self.busy.store(false, Ordering::Release);
    }
}

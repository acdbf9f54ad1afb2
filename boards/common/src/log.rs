//! defmt logger over the semihosting console (feature `semihosting-log`),
//! for every board image: the board defines `defmt::timestamp!` itself, and
//! a board without a semihosting host (a Pi on its own) turns the logger
//! off with [`set_enabled`].
//!
//! defmt encodes each log frame with rzCOBS (its default encoding), which
//! never emits a zero byte inside a frame and ends every frame with one.
//! The logger sends the frame's bytes with `SYS_WRITE0` (a NUL-terminated
//! string) and the zero delimiter with `SYS_WRITEC`: the two calls that
//! write to QEMU's semihosting console, whose destination the QEMU command
//! line chooses (`SYS_WRITE` to a `:tt` handle would go straight to QEMU's
//! own stdout or stderr instead). With
//! `-semihosting-config enable=on,target=native,chardev=defmt` and
//! `-chardev file,id=defmt,path=defmt.bin` the frames land in a file that
//! `defmt-print -e <elf>` decodes; without a chardev QEMU writes them to
//! its stderr. defmt's `encoding-raw` feature would put zero bytes inside
//! frames and must stay off.

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};

use defmt::Encoder;
use heapless::Vec;
use semihosting::sys::arm_compat::{sys_write0, sys_writec};

use crate::Progress;

/// Whether frames go to the host (on by default).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the logger on or off; off, frames are dropped (no semihosting
/// host to take them).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Bytes sent per `SYS_WRITE0`, the terminating NUL included.
const CHUNK_BYTES: usize = 256;

/// The logger's state, used only between `acquire` and `release`.
struct State {
    encoder: Encoder,
    sink: Sink,
}

/// Encoded bytes on their way to the semihosting console.
struct Sink {
    chunk: Vec<u8, CHUNK_BYTES>,
}

impl Sink {
    /// Sends the buffered bytes as one NUL-terminated string.
    fn send(&mut self) {
        // `put` keeps a byte free for the NUL and never buffers a zero, so
        // both steps succeed whenever there is something to send.
        if !self.chunk.is_empty() && self.chunk.push(0).is_ok() {
            if let Ok(s) = CStr::from_bytes_with_nul(&self.chunk) {
                sys_write0(s);
            }
        }
        self.chunk.clear();
    }

    /// Buffers encoded bytes; a zero (the frame delimiter) sends the frame.
    /// With the logger off the bytes are dropped.
    fn put(&mut self, bytes: &[u8]) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        for &b in bytes {
            if b == 0 {
                self.send();
                sys_writec(0);
                continue;
            }
            // Keep room for the NUL `send` appends.
            if self.chunk.len() == CHUNK_BYTES - 1 {
                self.send();
            }
            // Cannot fail: there is room (see above).
            let _ = self.chunk.push(b);
        }
    }
}

/// The one logger state.
struct Global(UnsafeCell<State>);

// SAFETY: only the logger touches the state, and only between `acquire`
// and `release`, which `TAKEN` makes exclusive; one core runs and no
// interrupt handler logs.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    encoder: Encoder::new(),
    sink: Sink { chunk: Vec::new() },
}));
static TAKEN: AtomicBool = AtomicBool::new(false);

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire` panics if the logger is already taken, so the state is
// never used by two frames at once.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger used while already taken");
        }
        // SAFETY: TAKEN is now held by this frame.
        let State { encoder, sink } = unsafe { &mut *STATE.0.get() };
        encoder.start_frame(|b| sink.put(b));
    }

    unsafe fn flush() {
        // SAFETY: the caller holds the logger (defmt's contract).
        unsafe { &mut *STATE.0.get() }.sink.send();
    }

    unsafe fn release() {
        // SAFETY: the caller holds the logger (defmt's contract).
        let State { encoder, sink } = unsafe { &mut *STATE.0.get() };
        encoder.end_frame(|b| sink.put(b));
        sink.send();
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: the caller holds the logger (defmt's contract).
        let State { encoder, sink } = unsafe { &mut *STATE.0.get() };
        encoder.write(bytes, |b| sink.put(b));
    }
}

/// Logs a milestone of the generation loop.
pub fn progress(event: Progress) {
    match event {
        Progress::Verified { ticks } => defmt::info!("model verified in {=u64} ticks", ticks),
        Progress::Prompt {
            tokens,
            arena_bytes,
        } => {
            defmt::info!(
                "prompt: {=usize} tokens, arena {=usize} bytes",
                tokens,
                arena_bytes
            )
        }
        Progress::Prefilled => defmt::info!("prefill done"),
    }
}

/// Logs the request's settings.
pub fn request(req: &crate::Request<'_>) {
    defmt::info!(
        "request: chat {=bool}, max_tokens {=u32}, temperature {=f32}, seed {=u64}, n_ctx {=u32}, icount {=bool}, cache {=str}",
        req.chat,
        req.max_tokens,
        req.temperature,
        req.seed,
        req.n_ctx,
        req.icount,
        phi_edge::KvType::from(req.cache_type).name()
    );
}

/// Logs what each core of `cores` did: jobs run, times slept.
pub fn cores<S: crate::smp::Signal>(cores: &crate::smp::Cores<S>) {
    use phi_edge::Parallel;
    for core in 0..cores.threads() {
        let a = cores.activity(core);
        defmt::info!(
            "core {=usize}: {=usize} jobs, slept {=usize} times",
            core,
            a.jobs,
            a.sleeps
        );
    }
}

//! The semihosting host, if one answers: QEMU's `-semihosting`, or a
//! debugger on the Pi's JTAG pins. With one, the exit status and the defmt
//! logs go to it; without one (a Pi on its own), logs are dropped and the
//! image halts in a `wfe` loop when it is done.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::boot;

/// Set by [`init`] if the host answered.
static PRESENT: AtomicBool = AtomicBool::new(false);

/// Asks whether a host answers. Call once, before any log or exit.
pub fn init() {
    let present = boot::probe_semihosting();
    PRESENT.store(present, Ordering::Relaxed);
    phi_edge_board::log::set_enabled(present);
}

/// Whether a host answered [`init`]'s probe.
pub fn present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

/// Ends the run: the host's exit with `status`, or, without a host, this
/// core waits for events for good (the caller has printed the outcome).
pub fn exit(status: i32) -> ! {
    if present() {
        semihosting::process::exit(status)
    }
    loop {
        // SAFETY: `wfe` only waits; nothing is touched.
        unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

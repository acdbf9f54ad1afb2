//! The Arm generic timer's virtual counter (CNTVCT_EL0 at CNTFRQ_EL0 Hz) as
//! the generation loop's [`Clock`] (aarch64 only).
//!
//! Under QEMU the counter follows the host's clock, so durations measured
//! with it are emulated time: they say how fast QEMU ran the image, not how
//! fast a Cortex-A72 would. Under `-icount shift=0` it follows the guest's
//! instruction count instead: one nanosecond per instruction, so 16
//! instructions a tick at the 62.5 MHz QEMU gives the virt and raspi4b
//! Cortex-A72s.

use core::arch::asm;

use crate::Clock;

/// Counter ticks since boot.
pub fn ticks() -> u64 {
    let t: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL1 (and EL0 unless trapped); the
    // isb keeps the read from being hoisted above earlier instructions.
    unsafe {
        asm!("isb", "mrs {0}, cntvct_el0", out(reg) t, options(nomem, nostack, preserves_flags))
    };
    t
}

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {0}, cntfrq_el0", out(reg) f, options(nomem, nostack, preserves_flags)) };
    f
}

/// Microseconds since boot (a board's defmt timestamp).
pub fn micros() -> u64 {
    let f = frequency().max(1);
    (u128::from(ticks()) * 1_000_000 / u128::from(f)) as u64
}

/// The counter as the generation loop's clock.
pub struct GenericTimer {
    /// Whether the counter runs under an emulator (QEMU), whose rates are
    /// then marked "(emulated)".
    pub emulated: bool,
}

impl Clock for GenericTimer {
    fn ticks(&self) -> u64 {
        ticks()
    }

    fn frequency(&self) -> u64 {
        frequency()
    }

    fn emulated(&self) -> bool {
        self.emulated
    }
}

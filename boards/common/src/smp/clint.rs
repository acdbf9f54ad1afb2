//! Wake-ups through the CLINT's machine software interrupts (arch code,
//! riscv64 in M-mode): `msip` of hart `i` at `base + 4 i`. `mie.MSIE` is
//! set and `mstatus.MIE` clear, so the interrupt is never taken; pending,
//! it ends the hart's `wfi`, and the hart clears its own `msip`.
//!
//! Logical core `i` is hart `i` (QEMU virt's harts are 0 up; hart 0 boots).

use core::arch::asm;

use super::Signal;

/// `mie`/`mip` bit of the machine software interrupt.
const MSI: usize = 1 << 3;

/// The CLINT's software interrupts as the cores' wake-up signal.
pub struct Clint {
    base: usize,
    mtime: usize,
    mtime_hz: u64,
}

impl Clint {
    /// The CLINT's `msip` registers at `base` (QEMU virt: `0x0200_0000`),
    /// and the `mtime` counter at `mtime` (`0x0200_bff8`), counting at
    /// `mtime_hz` (10 MHz).
    ///
    /// # Safety
    ///
    /// `base` must be a CLINT's `msip` block with a register for every
    /// hart this value wakes, `mtime` its `mtime`, and no other code may
    /// use the software interrupts.
    pub const unsafe fn new(base: usize, mtime: usize, mtime_hz: u64) -> Clint {
        Clint {
            base,
            mtime,
            mtime_hz,
        }
    }

    fn msip(&self, hart: usize) -> *mut u32 {
        (self.base + 4 * hart) as *mut u32
    }
}

impl Signal for Clint {
    fn prepare(&self, _core: usize) {
        // SAFETY: enables the software interrupt at the hart's `mie` only;
        // `mstatus.MIE` stays clear, so it is never taken.
        unsafe { asm!("csrs mie, {0}", in(reg) MSI, options(nomem, nostack)) };
    }

    fn wake(&self, core: usize) {
        // SAFETY: orders the publisher's stores before the interrupt; the
        // register is the hart's `msip` (`new`'s caller vouched for it).
        unsafe {
            asm!("fence rw, ow", options(nostack));
            self.msip(core).write_volatile(1);
        }
    }

    fn sleep(&self, core: usize) {
        // SAFETY: `wfi` only waits (until `mip & mie` is non-zero); then
        // the hart clears its own `msip`.
        unsafe {
            asm!("wfi", options(nomem, nostack));
            self.msip(core).write_volatile(0);
        }
    }

    fn now(&self) -> u64 {
        // SAFETY: `mtime` is a 64-bit device register that reading does
        // not disturb (`new`'s caller vouched for the address).
        unsafe { (self.mtime as *const u64).read_volatile() }
    }

    fn frequency(&self) -> u64 {
        self.mtime_hz
    }
}

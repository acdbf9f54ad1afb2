//! Wake-ups through a GICv2 (arch code, aarch64): software-generated
//! interrupt [`WAKE_SGI`], never taken (PSTATE.I stays set), only pending,
//! which ends the target core's `wfi`.
//!
//! QEMU virt's default GIC (distributor `0x0800_0000`, CPU interface
//! `0x0801_0000`) and the BCM2711's GIC-400 (`0xff84_1000`, `0xff84_2000`)
//! are both GICv2. The boot core enables the distributor; every core
//! enables its own (banked) SGI and CPU interface in [`Signal::prepare`].
//! Logical core `i` is CPU interface `i` (the boards' cores 0-3 are
//! MPIDR Aff0 0-3).
//!
//! On a GIC with the security extensions, non-secure code (this image at
//! EL1) can only raise and take Group 1 interrupts; the Pi's firmware
//! stub puts every interrupt in Group 1, and the non-secure views of the
//! control registers used here enable Group 1.

use core::arch::asm;

use super::Signal;

/// The SGI that wakes a core.
pub const WAKE_SGI: u32 = 0;

/// Distributor: control.
const GICD_CTLR: usize = 0x000;
/// Distributor: set-enable of interrupts 0-31 (banked per core).
const GICD_ISENABLER0: usize = 0x100;
/// Distributor: software-generated interrupts.
const GICD_SGIR: usize = 0xF00;
/// CPU interface: control.
const GICC_CTLR: usize = 0x000;
/// CPU interface: priority mask.
const GICC_PMR: usize = 0x004;
/// CPU interface: interrupt acknowledge.
const GICC_IAR: usize = 0x00C;
/// CPU interface: end of interrupt.
const GICC_EOIR: usize = 0x010;
/// IAR: interrupt ids from 1020 up are special (1023: nothing pending).
const SPECIAL_IDS: u32 = 1020;

/// A GICv2 as the cores' wake-up signal.
pub struct GicV2 {
    dist: usize,
    cpu: usize,
}

impl GicV2 {
    /// The GIC with its distributor at `dist` and CPU interface at `cpu`.
    ///
    /// # Safety
    ///
    /// Both must be a GICv2's register blocks, mapped as device memory on
    /// every core that uses this value, and no other code may program
    /// the GIC.
    pub const unsafe fn new(dist: usize, cpu: usize) -> GicV2 {
        GicV2 { dist, cpu }
    }

    fn write(&self, addr: usize, value: u32) {
        // SAFETY: `addr` is a register of the blocks `new`'s caller
        // vouched for.
        unsafe { (addr as *mut u32).write_volatile(value) }
    }

    fn read(&self, addr: usize) -> u32 {
        // SAFETY: as in `write`.
        unsafe { (addr as *const u32).read_volatile() }
    }
}

impl Signal for GicV2 {
    /// On the boot core (0) also enables the distributor (both groups; a
    /// non-secure write sets Group 1's enable), before any wake-up.
    fn prepare(&self, core: usize) {
        if core == 0 {
            self.write(self.dist + GICD_CTLR, 0b11);
        }
        self.write(self.dist + GICD_ISENABLER0, 1 << WAKE_SGI);
        self.write(self.cpu + GICC_PMR, 0xff);
        self.write(self.cpu + GICC_CTLR, 0b11);
    }

    fn wake(&self, core: usize) {
        // SAFETY: orders the publisher's stores before the interrupt
        // (the GIC is not coherent with the caches' ordering).
        unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
        // Target list filter 0 (the list), NSATT 1 (a Group 1 SGI when
        // the GIC has the security extensions, ignored otherwise).
        self.write(
            self.dist + GICD_SGIR,
            (1 << (16 + core)) | (1 << 15) | WAKE_SGI,
        );
    }

    fn sleep(&self, _core: usize) {
        // SAFETY: `wfi` only waits; it returns when an interrupt is
        // pending at this core, taken or not (PSTATE.I stays set).
        unsafe { asm!("dsb sy", "wfi", options(nomem, nostack, preserves_flags)) };
        let iar = self.read(self.cpu + GICC_IAR);
        if iar & 0x3FF < SPECIAL_IDS {
            self.write(self.cpu + GICC_EOIR, iar);
        }
    }

    fn now(&self) -> u64 {
        crate::generic_timer::ticks()
    }

    fn frequency(&self) -> u64 {
        crate::generic_timer::frequency()
    }
}

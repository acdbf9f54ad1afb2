//! The ACLINT machine timer's `mtime` counter, memory-mapped at
//! [`MTIME_ADDR`] and counting at [`MTIME_HZ`] (QEMU virt's fixed
//! timebase, the device tree's `timebase-frequency`).
//!
//! Under QEMU the counter follows the host's clock, so durations measured
//! with it are emulated time: they say how fast QEMU ran the image. Under
//! `-icount shift=0` it follows the guest's instruction count instead: one
//! nanosecond per instruction, so 100 instructions a tick.

/// `mtime` on QEMU virt (ACLINT MTIMER at 0x0200_0000, `mtime` at +0xbff8).
pub const MTIME_ADDR: usize = 0x0200_bff8;
/// QEMU virt's timebase.
pub const MTIME_HZ: u64 = 10_000_000;

/// Counter ticks since boot.
pub fn ticks() -> u64 {
    // SAFETY: `mtime` is a 64-bit, 8-byte aligned device register that
    // reading does not disturb; M-mode addresses it physically.
    unsafe { (MTIME_ADDR as *const u64).read_volatile() }
}

/// Microseconds since boot (the defmt timestamp).
pub fn micros() -> u64 {
    ticks() / (MTIME_HZ / 1_000_000)
}

/// The counter as the generation loop's clock.
pub struct MachineTimer;

impl phi_edge_board::Clock for MachineTimer {
    fn ticks(&self) -> u64 {
        ticks()
    }

    fn frequency(&self) -> u64 {
        MTIME_HZ
    }

    /// QEMU's counter follows the host's clock.
    fn emulated(&self) -> bool {
        true
    }
}

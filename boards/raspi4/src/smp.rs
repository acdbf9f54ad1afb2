//! Cores 1-3 (board code): their stacks, their Rust entry and the
//! [`Cores`] they serve.
//!
//! They wait in the spin table (the firmware's armstub on the Pi, QEMU's
//! own loop under `-M raspi4b`) until [`start`] writes [`secondary_boot`]
//! into their slots ([`crate::boot`]: the drop to EL1, MMU, FP/SIMD,
//! vector, this core's stack from [`STACKS`]), then [`secondary`] sends
//! them to [`Cores::serve`]. The kernel command line's `maxcpus=N`
//! (`/chosen/bootargs`: the Pi's `cmdline.txt`, QEMU's `-append`) limits
//! the cores that work; QEMU's raspi4b always has four (`-smp` 4 only).
//!
//! [`secondary_boot`]: crate::boot::secondary_boot

use aarch64_rt::Stack;
use phi_edge_board::smp::gicv2::GicV2;
use phi_edge_board::smp::Cores;

use crate::boot;
use crate::memory::BootInfo;

/// Cores this image runs on, the boot core included (the BCM2711 has 4).
pub const MAX_CORES: usize = 4;
/// The BCM2711's GIC-400: distributor and CPU interface.
const GICD_BASE: usize = 0xff84_1000;
const GICC_BASE: usize = 0xff84_2000;
/// Pages (4 KiB) of stack for each secondary core: they run kernels only.
const STACK_PAGES: usize = 32;
/// Bytes of one secondary's stack.
pub const STACK_BYTES: usize = STACK_PAGES * 4096;
/// How long an idle core spins before it sleeps, in µs.
const SPIN_US: u64 = 200;
/// How long the boot core waits for the others to report, in µs.
const START_TIMEOUT_US: u64 = 1_000_000;

/// The cores as the decoder's [`Parallel`](phi_edge::Parallel).
// SAFETY: the GIC-400's blocks, mapped as device memory by boot.rs's
// identity map on every core; only this module programs the GIC.
pub static CORES: Cores<GicV2> = Cores::new(unsafe { GicV2::new(GICD_BASE, GICC_BASE) }, SPIN_US);

/// The secondaries' stacks, in `.bss`: core `i` (1 up) uses `STACKS[i -
/// 1]`, whose end is `i` stacks past the start (`boot::secondary_el1`).
pub static mut STACKS: [Stack<STACK_PAGES>; MAX_CORES - 1] =
    [const { Stack::new() }; MAX_CORES - 1];

const _: () = assert!(size_of::<Stack<STACK_PAGES>>() == STACK_BYTES);

/// A secondary's Rust entry, on its own stack with the MMU, FP/SIMD and
/// the exception vector set up (`boot::secondary_el1`); `core` is its
/// MPIDR Aff0.
pub extern "C" fn secondary(core: usize) -> ! {
    CORES.serve(core)
}

/// On the boot core: sends the spin table's cores to work (Aff0 1 to
/// `min(maxcpus, MAX_CORES) - 1`) or to sleep (the others), and waits for
/// the first to serve. Returns the cores the runs use.
pub fn start(boot: &BootInfo) -> usize {
    let limit = boot.max_cpus.unwrap_or(MAX_CORES).clamp(1, MAX_CORES);
    let works = |mpidr: u64| mpidr > 0 && mpidr < limit as u64;
    let workers = boot.spin_table.iter().filter(|(m, _)| works(*m)).count();
    let slots = boot.spin_table.iter().map(|&(mpidr, addr)| {
        let entry: unsafe extern "C" fn() -> ! = if works(mpidr) {
            boot::secondary_boot
        } else {
            boot::boot
        };
        (addr, entry)
    });
    // SAFETY: the slots come from the device tree's cpu nodes of the
    // other cores; only cores with Aff0 1..MAX_CORES work, each on its own
    // stack.
    unsafe { boot::release_secondaries(slots) };
    CORES.start(workers, START_TIMEOUT_US)
}

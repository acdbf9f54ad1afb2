//! The secondary cores (board code): started with PSCI `CPU_ON` through
//! aarch64-rt's [`start_core`], each on its own stack, and the [`Cores`]
//! they serve.
//!
//! QEMU's direct kernel boot (`-kernel` ELF, no firmware) holds every
//! core but the first powered off and answers PSCI itself, through the
//! conduit the device tree's `/psci` node names (`method`: `hvc` here, the
//! image running at EL1 with no EL2; `smc` with `virtualization=on`).
//! [`start_core`] points the core at aarch64-rt's `secondary_entry`, which
//! enables the MMU and caches with the same [`INITIAL_PAGETABLE`]
//! (crate::boot), FP/SIMD (CPACR_EL1) and the exception vector, sets the
//! stack and calls the closure: [`Cores::serve`].
//!
//! [`INITIAL_PAGETABLE`]: aarch64_rt::InitialPagetable

use aarch64_rt::{start_core, Stack};
use fdt::Fdt;
use phi_edge_board::smp::gicv2::GicV2;
use phi_edge_board::smp::Cores;
use smccc::{Hvc, Smc};

/// Cores this image runs on, the boot core included.
pub const MAX_CORES: usize = 4;
/// QEMU virt's GICv2: distributor and CPU interface.
const GICD_BASE: usize = 0x0800_0000;
const GICC_BASE: usize = 0x0801_0000;
/// Pages (4 KiB) of stack for each secondary core: they run kernels only.
const STACK_PAGES: usize = 32;
/// How long an idle core spins before it sleeps, in µs.
const SPIN_US: u64 = 200;
/// How long the boot core waits for the others to report, in µs.
const START_TIMEOUT_US: u64 = 1_000_000;
/// MPIDR_EL1's affinity fields (Aff3, Aff2-Aff0).
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;

/// The cores as the decoder's [`Parallel`](phi_edge::Parallel).
// SAFETY: QEMU virt's GICv2 blocks, mapped as device memory by boot.rs's
// identity map on every core; only this module programs the GIC.
pub static CORES: Cores<GicV2> = Cores::new(unsafe { GicV2::new(GICD_BASE, GICC_BASE) }, SPIN_US);

/// The secondaries' stacks, in `.bss`.
static mut STACKS: [Stack<STACK_PAGES>; MAX_CORES - 1] = [const { Stack::new() }; MAX_CORES - 1];

/// What the device tree says about the cores.
pub struct CoreInfo {
    /// MPIDR affinity values of the cores `/cpus` lists, in order.
    pub mpidr: heapless::Vec<u64, 64>,
    /// `/psci`'s `method`: `true` for `smc`, `false` for `hvc`.
    pub smc: bool,
}

/// Reads `/cpus` and `/psci` from the device tree at `dtb`.
pub fn core_info(dtb: &[u8]) -> Option<CoreInfo> {
    let fdt = Fdt::new(dtb).ok()?;
    let smc = fdt
        .find_node("/psci")
        .and_then(|n| n.property("method"))
        .and_then(|p| p.as_str())
        == Some("smc");
    let mut mpidr = heapless::Vec::new();
    for cpu in fdt.find_node("/cpus")?.children() {
        if cpu.name.split('@').next() != Some("cpu") {
            continue;
        }
        let Some(reg) = cpu.reg().and_then(|mut r| r.next()) else {
            continue;
        };
        // A tree with more than 64 cores: the rest are not used anyway.
        let _ = mpidr.push(reg.starting_address as u64);
    }
    Some(CoreInfo { mpidr, smc })
}

/// This core's MPIDR affinity.
fn my_mpidr() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe {
        core::arch::asm!("mrs {0}, mpidr_el1", out(reg) mpidr, options(nomem, nostack, preserves_flags))
    };
    mpidr & MPIDR_AFFINITY
}

/// A secondary's Rust entry (on its own stack, MMU, FP/SIMD and vector
/// set up).
fn secondary(core: usize) {
    CORES.serve(core)
}

/// On the boot core: starts the cores of `info` whose MPIDR Aff0 is below
/// [`MAX_CORES`] (Aff0 is their logical index and GIC CPU interface), and
/// waits for them to serve. Returns the cores the runs use and how many
/// PSCI refused.
pub fn start(info: &CoreInfo) -> (usize, usize) {
    let me = my_mpidr();
    let mut started = 0;
    let mut refused = 0;
    for &mpidr in &info.mpidr {
        let core = (mpidr & 0xff) as usize;
        if mpidr == me || mpidr & !0xff != me & !0xff || core == 0 || core >= MAX_CORES {
            continue;
        }
        // SAFETY: each secondary gets its own stack (indexed by its
        // distinct Aff0), mapped by the identity map, which no other code
        // touches; the core only starts once.
        let stack = unsafe { (&raw mut STACKS).cast::<Stack<STACK_PAGES>>().add(core - 1) };
        let entry = move || secondary(core);
        // SAFETY: as above: the stack is this core's alone and stays valid
        // for good (a static).
        let on = unsafe {
            if info.smc {
                start_core::<Smc, _, STACK_PAGES>(mpidr, stack, entry)
            } else {
                start_core::<Hvc, _, STACK_PAGES>(mpidr, stack, entry)
            }
        };
        match on {
            Ok(()) => started += 1,
            Err(e) => {
                defmt::warn!("PSCI CPU_ON {=u64:#x}: {}", mpidr, defmt::Debug2Format(&e));
                refused += 1;
            }
        }
    }
    (CORES.start(started, START_TIMEOUT_US), refused)
}

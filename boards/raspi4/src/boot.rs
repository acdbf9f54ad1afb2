//! Start-up (arch code): the first instructions of kernel8.img, what
//! aarch64-rt needs from this board, and the exception handlers.
//!
//! The Pi's firmware jumps to the image's first byte at EL2 on core 0 with
//! the device tree's address in x0, cores 1-3 waiting in the firmware's
//! spin table; QEMU's `-M raspi4b` does the same with the raw kernel8.img
//! (its own spin table, the same addresses), and jumps to an ELF image's
//! entry at EL3 on all four cores. [`boot`] makes these look alike: cores
//! other than 0 sleep in a `wfi` loop for good, and core 0 drops to EL1
//! (non-secure, AArch64, interrupts masked), from EL3 or EL2, with x0-x3
//! untouched ([`drop_to_el1`]); at EL1 already it goes straight on. Then
//! aarch64-rt's `entry` runs as on any EL1 image: MMU and caches on with
//! [`INITIAL_PAGETABLE`], FP/SIMD enabled through CPACR_EL1 (the drop
//! cleared the EL2/EL3 traps, CPTR_EL2/EL3), `.bss` zeroed, stack set,
//! exception vector installed, then `main`.
//!
//! Once `main` has read the device tree, [`release_secondaries`] sends the
//! spin table's cores that are to work to [`secondary_boot`]: the same
//! drop to EL1, then [`secondary_el1`] (MMU with the same page table,
//! FP/SIMD, vector, the core's own stack) and [`crate::smp`]. Cores left
//! out (`maxcpus=`) go to [`boot`]'s `wfi` loop: under QEMU a core that
//! spins on `wfe` in the spin table takes emulation time from the others.
//!
//! The MMU must be on: with it off every data access is Device memory,
//! where the unaligned loads of the decoder and kernels fault.

use core::arch::{asm, naked_asm};
use core::sync::atomic::{AtomicBool, Ordering};

use aarch64_rt::{
    exception_handlers, initial_pagetable, ExceptionHandlers, InitialPagetable, RegisterStateRef,
};

/// HCR_EL2: EL1 is AArch64 (RW); nothing else is trapped or virtualised.
const HCR_EL2_RW: u64 = 1 << 31;
/// CPTR_EL2 with no traps: the RES1 bits (13:12, 9:0) only, TFP clear.
const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;
/// CNTHCTL_EL2: EL1 may read the physical counter and use the timer.
const CNTHCTL_EL2_EL1PCTEN_EL1PCEN: u64 = 0b11;
/// SCTLR_EL1 before aarch64-rt sets it: its RES1 bits, MMU and caches off,
/// little-endian.
const SCTLR_EL1_RES1: u64 = 0x30d0_0800;
/// SCR_EL3: lower levels non-secure (NS), RES1 bits 5:4, EL2 is AArch64 (RW).
const SCR_EL3_NS_RW: u64 = (1 << 0) | (0b11 << 4) | (1 << 10);
/// SPSR for the drop: EL1 with its own stack pointer (EL1h), D, A, I, F
/// masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// The image's first instruction (kernel8.img offset 0, the ELF entry).
///
/// # Safety
///
/// Never called: the firmware or QEMU jumps here with the MMU off, x0 the
/// device tree's address.
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".init.boot")]
pub unsafe extern "C" fn boot() -> ! {
    naked_asm!(
        // Only core 0 (MPIDR_EL1.Aff0) goes on; x0-x3 are kept for `main`.
        // The others sleep for good: `wfi` (not `wfe`, which QEMU treats
        // as a spin) with every interrupt disabled at its source.
        "mrs x4, mpidr_el1",
        "and x4, x4, #0xff",
        "cbz x4, 2f",
        "1:",
        "wfi",
        "b 1b",
        "2:",
        "adrp x6, entry",
        "add x6, x6, :lo12:entry",
        "b {drop}",
        drop = sym drop_to_el1,
    )
}

/// Where a spin-table slot sends a secondary core that is to work: the
/// drop to EL1, then [`secondary_el1`].
///
/// # Safety
///
/// Never called: the spin table's loop jumps here with the MMU off, at
/// EL2 (the Pi's firmware and QEMU's raw-image boot both leave the
/// secondaries there).
#[unsafe(naked)]
#[unsafe(link_section = ".init.secondary")]
pub unsafe extern "C" fn secondary_boot() -> ! {
    naked_asm!(
        "adrp x6, {el1}",
        "add x6, x6, :lo12:{el1}",
        "b {drop}",
        el1 = sym secondary_el1,
        drop = sym drop_to_el1,
    )
}

/// Goes on at the address in x6 at EL1 (non-secure, AArch64, interrupts
/// masked), from EL3 or EL2; at EL1 already it branches there. x0-x3 are
/// kept.
///
/// # Safety
///
/// Only for [`boot`] and [`secondary_boot`], with the MMU off.
#[unsafe(naked)]
#[unsafe(link_section = ".init.secondary")]
unsafe extern "C" fn drop_to_el1() -> ! {
    naked_asm!(
        "mrs x4, CurrentEL",
        "ubfx x4, x4, #2, #2",
        "cmp x4, #1",
        "b.ne 3f",
        "br x6",
        "3:",
        // EL2 or EL3: set up EL2 so that EL1 runs AArch64 without traps.
        "mov x5, #{hcr}",
        "msr hcr_el2, x5",
        "mov x5, #{cptr}",
        "msr cptr_el2, x5",
        "mrs x5, cnthctl_el2",
        "orr x5, x5, #{cnthctl}",
        "msr cnthctl_el2, x5",
        "msr cntvoff_el2, xzr",
        "movz x5, #{sctlr_lo}",
        "movk x5, #{sctlr_hi}, lsl #16",
        "msr sctlr_el1, x5",
        "mov x5, #{spsr}",
        "cmp x4, #3",
        "b.eq 4f",
        "msr spsr_el2, x5",
        "msr elr_el2, x6",
        "eret",
        "4:",
        // EL3: no FP/SIMD traps, non-secure AArch64 below.
        "msr cptr_el3, xzr",
        "mov x7, #{scr}",
        "msr scr_el3, x7",
        "msr spsr_el3, x5",
        "msr elr_el3, x6",
        "eret",
        hcr = const HCR_EL2_RW,
        cptr = const CPTR_EL2_NO_TRAPS,
        cnthctl = const CNTHCTL_EL2_EL1PCTEN_EL1PCEN,
        sctlr_lo = const SCTLR_EL1_RES1 & 0xffff,
        sctlr_hi = const SCTLR_EL1_RES1 >> 16,
        spsr = const SPSR_EL1H_MASKED,
        scr = const SCR_EL3_NS_RW,
    )
}

/// A secondary core at EL1, MMU still off: what aarch64-rt's entry does
/// for core 0, on the core's own stack ([`crate::smp`]): MMU and caches on
/// with [`INITIAL_PAGETABLE`], FP/SIMD through CPACR_EL1, the exception
/// vector; then [`crate::smp::secondary`] with the core's MPIDR Aff0.
///
/// # Safety
///
/// Only for [`drop_to_el1`], on a core whose Aff0 is 1 to
/// [`crate::smp::MAX_CORES`] - 1 (each has its own stack).
#[unsafe(naked)]
#[unsafe(link_section = ".init.secondary")]
unsafe extern "C" fn secondary_el1() -> ! {
    naked_asm!(
        "mrs x19, mpidr_el1",
        "and x19, x19, #0xff",
        // The stack of core i (1 up) ends i stacks past the array's start.
        "adrp x20, {stacks}",
        "add x20, x20, :lo12:{stacks}",
        "mov x21, #{stack_bytes}",
        "madd x20, x19, x21, x20",
        "bl enable_mmu",
        "mrs x30, cpacr_el1",
        "orr x30, x30, #(0x3 << 20)",
        "msr cpacr_el1, x30",
        "isb",
        "mov sp, x20",
        "bl {vector}",
        "mov x0, x19",
        "b {main}",
        stacks = sym crate::smp::STACKS,
        stack_bytes = const crate::smp::STACK_BYTES,
        vector = sym aarch64_rt::set_exception_vector,
        main = sym crate::smp::secondary,
    )
}

/// Sends each core waiting in the spin table to its entry: `(slot, entry)`
/// pairs, a slot being the device tree's `cpu-release-addr` of one of
/// cores 1-3 and the entry [`secondary_boot`] (to work) or [`boot`]
/// (to sleep in `wfi` for good: under QEMU a core left spinning on `wfe`
/// in the spin table takes emulation time from the others).
///
/// # Safety
///
/// Each slot must be a spin-table slot in RAM that the firmware (or QEMU)
/// gave one of this core's siblings, and nothing else may live there; a
/// core sent to [`secondary_boot`] must have its own stack (Aff0 1 to
/// [`crate::smp::MAX_CORES`] - 1).
pub unsafe fn release_secondaries(
    slots: impl Iterator<Item = (usize, unsafe extern "C" fn() -> !)>,
) {
    for (addr, entry) in slots {
        // SAFETY: the caller vouched for the slot, which the waiting core
        // reads with its MMU off: the line is cleaned to memory before the
        // event wakes it.
        unsafe {
            (addr as *mut u64).write_volatile(entry as usize as u64);
            asm!("dc civac, {0}", in(reg) addr, options(nostack, preserves_flags));
        }
    }
    // SAFETY: orders the slot writes before the wake-up event.
    unsafe { asm!("dsb sy", "sev", options(nomem, nostack, preserves_flags)) };
}

/// Level-1 block descriptor: valid, a 1 GiB block (not a table).
const BLOCK: usize = 0b01;
/// AttrIndx 0 of aarch64-rt's default MAIR: Device-nGnRE.
const ATTR_DEVICE: usize = 0 << 2;
/// AttrIndx 1 of aarch64-rt's default MAIR: Normal, write-back cacheable.
const ATTR_NORMAL: usize = 1 << 2;
/// Inner shareable.
const INNER_SHAREABLE: usize = 0b11 << 8;
/// Access flag (no access-flag faults).
const ACCESSED: usize = 1 << 10;
/// Never execute, at EL1 and EL0.
const EXECUTE_NEVER: usize = (1 << 53) | (1 << 54);
/// The GiB holding the peripherals (low-peripheral mode: 0xFC00_0000 up).
const PERIPHERAL_GIB: usize = 3;
/// GiBs of physical address space mapped: the 8 GB Pi 4's RAM ends at
/// 0x2_0000_0000.
const MAPPED_GIB: usize = 8;

/// The identity map, in 1 GiB blocks: 0..3 GiB (RAM, the VideoCore's share
/// included) and 4..8 GiB (the high RAM of 4 and 8 GB boards) as normal
/// memory, 3..4 GiB as device memory for the peripheral window
/// 0xFC00_0000..0x1_0000_0000. That block also holds RAM at
/// 0xC000_0000..0xFC00_0000 on boards with more than 2 GiB, which the image
/// never uses (the model and arena live in the first RAM bank, see
/// [`crate::memory`]). Nothing above 8 GiB is mapped: the PCIe window at
/// 0x6_0000_0000 stays out of reach of speculative accesses.
const fn identity_map() -> InitialPagetable {
    let mut table = [0usize; 512];
    let mut gib = 0;
    while gib < MAPPED_GIB {
        table[gib] = if gib == PERIPHERAL_GIB {
            gib << 30 | BLOCK | ATTR_DEVICE | ACCESSED | EXECUTE_NEVER
        } else {
            gib << 30 | BLOCK | ATTR_NORMAL | INNER_SHAREABLE | ACCESSED
        };
        gib += 1;
    }
    InitialPagetable(table)
}

initial_pagetable!(identity_map());

/// Set while [`probe_semihosting`] runs: an undefined-instruction trap then
/// means "no semihosting host", not a bug.
static PROBING: AtomicBool = AtomicBool::new(false);
/// What the probe's x0 holds after its `hlt` trapped.
const TRAPPED: u64 = u64::MAX;
/// Semihosting `SYS_ERRNO`: no arguments, no side effects.
const SYS_ERRNO: u64 = 0x13;
/// ESR_ELx.EC of an instruction the core does not accept (a `hlt` with
/// halting debug off).
const EC_UNKNOWN: u64 = 0;

/// Whether a semihosting host answers: QEMU with `-semihosting`, or a
/// debugger. On a Pi without one, the `hlt #0xf000` that semihosting uses
/// is an undefined instruction; the exception handler skips it and marks
/// the call as trapped.
pub fn probe_semihosting() -> bool {
    PROBING.store(true, Ordering::SeqCst);
    let x0: u64;
    // SAFETY: a semihosting SYS_ERRNO call, which reads nothing and
    // writes only x0; if it traps, `sync_current` resumes after it with
    // x0 = TRAPPED.
    unsafe { asm!("hlt #0xf000", inout("x0") SYS_ERRNO => x0, in("x1") 0u64, options(nostack)) };
    PROBING.store(false, Ordering::SeqCst);
    x0 != TRAPPED
}

/// Exceptions: besides the semihosting probe, every one is a bug here (no
/// interrupts are unmasked), so each handler panics with the syndrome, and
/// the panic handler reports it.
struct Exceptions;

impl ExceptionHandlers for Exceptions {
    extern "C" fn sync_current(mut state: RegisterStateRef) {
        let (esr, far): (u64, u64);
        // SAFETY: reads of the EL1 syndrome and fault address registers;
        // no memory is touched.
        unsafe {
            asm!("mrs {0}, esr_el1", "mrs {1}, far_el1", out(reg) esr, out(reg) far,
                 options(nomem, nostack, preserves_flags));
        }
        if PROBING.load(Ordering::SeqCst) && esr >> 26 == EC_UNKNOWN {
            // SAFETY: the probe's `hlt` trapped: resuming at the next
            // instruction with x0 = TRAPPED is what `probe_semihosting`
            // expects (x0 is its output operand).
            let regs = unsafe { state.get_mut() };
            regs.elr += 4;
            regs.registers[0] = TRAPPED;
            return;
        }
        panic!(
            "synchronous exception: ESR_EL1 {esr:#x} (class {:#x}), FAR_EL1 {far:#x}, ELR {:#x}",
            esr >> 26,
            state.elr
        );
    }
}

exception_handlers!(Exceptions);

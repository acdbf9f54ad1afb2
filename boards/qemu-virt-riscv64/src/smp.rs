//! The other harts (board code): how they wait at boot, how they are
//! released, and the [`Cores`] they serve.
//!
//! With `-bios none` every hart starts at 0x8000_0000 in M-mode with its
//! hart id in `a0`. riscv-rt's `_start` sends harts above `_max_hart_id`
//! (`memory.x`: [`MAX_HARTS`] - 1) to `abort` (parked in `wfi` for good),
//! gives each other hart its own stack (`_hart_stack_size` bytes below
//! `_stack_start`, hart 0 at the top) and calls `_mp_hook`, defined here:
//! hart 0 goes on to initialise RAM; the others enable the software
//! interrupt (`mie.MSIE`; `mstatus.MIE` stays clear, so it is never
//! taken) and wait in `wfi` until hart 0 raises their `msip`, once
//! `.data` and `.bss` are ready ([`start`]). They then clear it, enable
//! the FPU (riscv-rt) and reach `main`, which checks `misa.V`, sets
//! `mstatus.VS` ([`crate::isa::start_vector`]) and sends them to
//! [`Cores::serve`] (a hart without V is parked instead).

use core::arch::global_asm;

use fdt::Fdt;
use phi_edge_board::smp::clint::Clint;
use phi_edge_board::smp::Cores;

use crate::timer::{MTIME_ADDR, MTIME_HZ};

/// Harts this image runs on (hart ids 0 up to this minus one); keep
/// `_max_hart_id` in `memory.x` one less.
pub const MAX_HARTS: usize = 4;
/// The CLINT's `msip` registers on QEMU virt.
const MSIP_BASE: usize = 0x0200_0000;
/// How long an idle hart spins before it sleeps, in µs.
const SPIN_US: u64 = 200;
/// How long hart 0 waits for the others to report, in µs.
const START_TIMEOUT_US: u64 = 1_000_000;

/// The harts as the decoder's [`Parallel`](phi_edge::Parallel).
// SAFETY: the CLINT of QEMU virt, with an `msip` for each of the
// MAX_HARTS harts; only this module raises software interrupts.
pub static CORES: Cores<Clint> = Cores::new(
    unsafe { Clint::new(MSIP_BASE, MTIME_ADDR, MTIME_HZ) },
    SPIN_US,
);

// `_mp_hook` (riscv-rt): returns 1 on hart 0; parks the others until hart
// 0 raises their `msip`, clears it and returns 0. Uses only t0 and t1
// (riscv-rt keeps a0-a2 in s0-s2).
global_asm!(
    ".section .init.mp_hook, \"ax\"
    .global _mp_hook
_mp_hook:
    beqz a0, 2f
    li t0, 8
    csrs mie, t0
1:  wfi
    csrr t0, mip
    andi t0, t0, 8
    beqz t0, 1b
    li t0, {msip}
    slli t1, a0, 2
    add t0, t0, t1
    sw zero, 0(t0)
    li a0, 0
    ret
2:  li a0, 1
    ret",
    msip = const MSIP_BASE,
);

/// Harts the device tree at `dtb` lists under `/cpus` (1 if it lists
/// none).
pub fn harts_in_tree(dtb: usize) -> usize {
    // SAFETY: QEMU wrote a device tree at `dtb` before boot (memory.rs
    // reads it the same way).
    let Ok(fdt) = (unsafe { Fdt::from_ptr(dtb as *const u8) }) else {
        return 1;
    };
    fdt.find_node("/cpus")
        .map(|cpus| {
            cpus.children()
                .filter(|c| c.name.split('@').next() == Some("cpu"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// On hart 0: releases harts `1..harts` (at most [`MAX_HARTS`]) from
/// `_mp_hook` and waits for them to serve; returns the harts the runs use.
pub fn start(harts: usize) -> usize {
    let harts = harts.clamp(1, MAX_HARTS);
    for hart in 1..harts {
        // SAFETY: the hart's `msip` on QEMU virt's CLINT (hart < MAX_HARTS).
        unsafe { ((MSIP_BASE + 4 * hart) as *mut u32).write_volatile(1) };
    }
    CORES.start(harts - 1, START_TIMEOUT_US)
}

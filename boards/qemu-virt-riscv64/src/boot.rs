//! Start-up (arch code): what riscv-rt needs from this board.
//!
//! With `-bios none` QEMU's reset vector jumps to the start of RAM in
//! M-mode with the hart id in `a0` and the device tree's address in `a1`.
//! riscv-rt's `_start` (first in `.init`, linked at 0x8000_0000) masks
//! interrupts, sends harts above `_max_hart_id` (3) to [`abort`](self)
//! (below: parked in `wfi`), sets each hart's stack (its share of the rest
//! of the image region, see `memory.x`) and the global pointer, holds
//! harts other than 0 in `_mp_hook` (see [`crate::smp`]) while hart 0
//! copies `.data` and zeroes `.bss`, enables the FPU on every hart
//! (`mstatus.FS` = Initial, `fcsr` = 0: the target has F and D), installs
//! its trap vector and calls `main(a0, a1, a2)` on every hart.
//!
//! The vector unit is left to [`crate::isa::start_vector`], which `main`
//! calls on every hart before any vector code: it checks `misa.V` first,
//! then sets `mstatus.VS`. The target (`riscv64gc`) lets the compiler emit
//! no vector instructions, so only the RVV kernels' inline assembly uses
//! them.

use core::arch::global_asm;

use riscv::register::{mcause, mepc, mtval};

// `abort`: where riscv-rt sends harts whose id is above `_max_hart_id`
// (3): they wait here for good, without a stack (no interrupt is enabled
// for them). Also riscv-rt's fallback
// for interrupts, none of which are enabled.
global_asm!(
    ".section .text.abort, \"ax\"
    .global abort
abort:
    wfi
    j abort"
);

/// Every exception (a trap that is not an interrupt) panics with the cause,
/// the faulting pc and `mtval`.
#[export_name = "ExceptionHandler"]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    panic!(
        "exception: mcause {:#x}, mepc {:#x}, mtval {:#x}",
        mcause::read().bits(),
        mepc::read(),
        mtval::read()
    )
}

//! Start-up (arch code): what aarch64-rt needs from this board.
//!
//! aarch64-rt's entry code runs before any Rust code: it enables the MMU
//! and caches with [`INITIAL_PAGETABLE`], enables FP/SIMD (CPACR_EL1.FPEN,
//! so the NEON kernels and all float code may run), zeroes `.bss`, sets the
//! boot stack, installs the exception vector and calls `main`. The MMU must
//! be on: with it off every data access is Device memory, where the
//! unaligned loads of the decoder and kernels fault.
//!
//! Other cores need no parking: QEMU's direct kernel boot starts secondary
//! CPUs powered off (PSCI), so with any `-smp` only CPU 0 runs this image.

use core::arch::asm;

use aarch64_rt::{
    exception_handlers, initial_pagetable, ExceptionHandlers, InitialPagetable, RegisterStateRef,
};

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

/// The identity map, in 1 GiB blocks of a 512 GiB address space: the first
/// GiB (flash, GIC, PL011 and the other virt devices) as device memory, and
/// 1..64 GiB as normal memory, which covers virt's RAM for any `-m` up to
/// 63 GiB. Blocks past the end of RAM are mapped but never touched.
const fn identity_map() -> InitialPagetable {
    let mut table = [0usize; 512];
    table[0] = BLOCK | ATTR_DEVICE | ACCESSED | EXECUTE_NEVER;
    let mut gib = 1;
    while gib < 64 {
        table[gib] = gib << 30 | BLOCK | ATTR_NORMAL | INNER_SHAREABLE | ACCESSED;
        gib += 1;
    }
    InitialPagetable(table)
}

initial_pagetable!(identity_map());

/// Exceptions: every one is a bug here (no interrupts are unmasked), so
/// each handler panics with the syndrome, and the panic handler reports it
/// and exits non-zero.
struct Exceptions;

impl ExceptionHandlers for Exceptions {
    extern "C" fn sync_current(state: RegisterStateRef) {
        let (esr, far): (u64, u64);
        // SAFETY: reads of the EL1 syndrome and fault address registers;
        // no memory is touched.
        unsafe {
            asm!("mrs {0}, esr_el1", "mrs {1}, far_el1", out(reg) esr, out(reg) far,
                 options(nomem, nostack, preserves_flags));
        }
        panic!(
            "synchronous exception: ESR_EL1 {esr:#x} (class {:#x}), FAR_EL1 {far:#x}, ELR {:#x}",
            esr >> 26,
            state.elr
        );
    }
}

exception_handlers!(Exceptions);

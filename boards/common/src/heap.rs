//! The board's heap (feature `heap`): embedded-alloc's first-fit allocator
//! as the global allocator, over RAM the board found at boot.
//!
//! It holds what the board itself needs per request (the rendered chat
//! prompt, the prompt's and the answer's token ids, the tokenizer's working
//! memory). The model's session and the sampler live in the arena, planned
//! up front; the core never allocates. [`generate::run`](crate::generate::run)
//! reserves every buffer with `try_reserve`, so a full heap is a
//! [`RunError::HeapFull`], not an allocation failure.
//!
//! On aarch64 the allocator's critical section masks IRQ and FIQ on the
//! one running core; RISC-V boards enable the `riscv` crate's
//! `critical-section-single-hart`.

use core::sync::atomic::{AtomicBool, Ordering};

use embedded_alloc::LlffHeap;

use crate::RunError;

/// Bytes of heap: a prompt of up to about 200 KB of text fits.
pub const HEAP_BYTES: usize = 4 << 20;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// Set once the heap has its memory.
static READY: AtomicBool = AtomicBool::new(false);

/// Gives the heap the first [`HEAP_BYTES`] of `ram` and returns the rest
/// (for the arena). Fails if `ram` is shorter, or if the heap already has
/// its memory.
pub fn init(ram: &'static mut [u8]) -> Result<&'static mut [u8], RunError> {
    if ram.len() < HEAP_BYTES || READY.swap(true, Ordering::AcqRel) {
        return Err(RunError::NoHeap {
            need: HEAP_BYTES,
            got: ram.len(),
        });
    }
    let (heap, rest) = ram.split_at_mut(HEAP_BYTES);
    // SAFETY: `heap` is memory this function owns for good (a `'static`
    // exclusive slice, never handed out again), and READY makes this the
    // only initialisation.
    unsafe { HEAP.init(heap.as_mut_ptr() as usize, heap.len()) };
    Ok(rest)
}

#[cfg(target_arch = "aarch64")]
mod single_core {
    use core::arch::asm;

    /// Critical sections on one core: mask IRQ and FIQ, and give the
    /// previous DAIF back afterwards (so sections nest).
    struct SingleCore;

    critical_section::set_impl!(SingleCore);

    // SAFETY: `acquire` masks interrupts on the only running core and
    // returns the previous DAIF; `release` restores it, so sections nest.
    unsafe impl critical_section::Impl for SingleCore {
        unsafe fn acquire() -> u64 {
            let daif: u64;
            // SAFETY: reading DAIF and masking IRQ/FIQ touches no memory.
            unsafe {
                asm!("mrs {0}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack, preserves_flags))
            };
            daif
        }

        unsafe fn release(daif: u64) {
            // SAFETY: restores the DAIF value `acquire` read.
            unsafe {
                asm!("msr daif, {0}", in(reg) daif, options(nomem, nostack, preserves_flags))
            };
        }
    }
}

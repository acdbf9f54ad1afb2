//! phi-edge on the Raspberry Pi 4B: BCM2711, Cortex-A72, NEON kernels, no
//! operating system; the same image boots under QEMU's `-M raspi4b`.
//!
//! The image starts at 0x80000 ([`boot`]: cores 1-3 parked, core 0 at EL1,
//! then aarch64-rt: MMU, caches, FP/SIMD, `.bss`, stack), reads the device
//! tree the firmware (or QEMU) passed in x0 for the RAM and the initramfs,
//! checks the model at the start of the initramfs (header, manifest and
//! every tensor's CRC-32), reads the request blob that follows it (see
//! [`memory`]), and runs the request with the baseline [`Neon`] kernel set
//! (Cortex-A72 has no dot product extension). Generated text goes to UART0
//! as it is produced, then four machine-readable lines:
//!
//! ```text
//! prompt_ids: 1 9690 198 ...
//! ids: 60 23 39614 ...
//! logits_crc32: 0x032034dc
//! stats: prompt 37 tokens, prefill 0.98 tok/s; generated 16 tokens, decode 0.75 tok/s; perplexity 2.7473; arena 13465984 bytes; kernels neon; cores 4
//! ```
//!
//! With a semihosting host (QEMU's `-semihosting`) the exit status is 0 on
//! success and 1 on any error (one `error:` line on the UART); a panic
//! prints its message and exits with 101; defmt logs go to the host (see
//! `phi_edge_board::log`). Without one (the Pi on its own) the image prints a `halted`
//! line with that status and waits for events for good. README.md has the
//! build and QEMU command lines and the Pi's `config.txt`.
#![no_std]
#![no_main]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod boot;
mod error;
mod gpio;
mod host;
mod memory;
mod smp;
mod uart;

use core::fmt::Write as _;
use core::panic::PanicInfo;

use aarch64_rt::entry;
use phi_edge::image::header::{Header, HEADER_LEN};
use phi_edge::Kernels;
use phi_edge_board::console::{print_panic, LineConsole};
use phi_edge_board::generic_timer::{self, GenericTimer};
use phi_edge_board::pl011::Pl011;
use phi_edge_board::{Request, EXIT_PANIC};
use phi_edge_neon::Neon;

use error::BoardError;

/// The console: UART0, line-buffered.
type Console = LineConsole<Pl011>;

// 64 pages (256 KiB) of boot stack: the core keeps its buffers in the arena.
entry!(main, 64);

fn main(dtb: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    host::init();
    // SAFETY: UART0 and the GPIO block are mapped as device memory by
    // boot.rs; only this console and the panic handler (which never
    // returns) drive them.
    let mut console = Console::new(unsafe { uart::uart0() });
    let outcome = run(&mut console, dtb as usize);
    let status = phi_edge_board::exit_status(&mut console, outcome);
    halt(&mut console, status)
}

/// Ends the run with `status`: through the semihosting host, or, on its
/// own, after a line that says so.
fn halt(out: &mut impl core::fmt::Write, status: i32) -> ! {
    if !host::present() {
        let _ = writeln!(out, "halted, exit status {status}");
    }
    host::exit(status)
}

/// Boot checks, then the request.
fn run(out: &mut Console, dtb: usize) -> Result<(), BoardError> {
    let kernels = Neon;
    let _ = writeln!(
        out,
        "phi-edge on Raspberry Pi 4B, kernels {}",
        kernels.name()
    );
    // SAFETY: the only call.
    let boot = unsafe { memory::boot_info(dtb) }.map_err(BoardError::Boot)?;
    if boot.spin_table.len() + 1 > smp::MAX_CORES {
        let _ = writeln!(
            out,
            "warning: the device tree lists {} cores; this image runs on {}",
            boot.spin_table.len() + 1,
            smp::MAX_CORES
        );
    }
    let cores = smp::start(&boot);
    defmt::info!("{=usize} cores serving", cores);
    defmt::info!(
        "device tree at {=usize:#x}; RAM bank {=usize:#x}..{=usize:#x}; initramfs {=usize:#x}..{=usize:#x}",
        dtb,
        boot.ram.start,
        boot.ram.end,
        boot.initrd.start,
        boot.initrd.end
    );

    let image = model_image(boot.initrd_bytes()).map_err(BoardError::Model)?;
    let blob = boot.request_region(image.len());
    if blob.is_empty() {
        return Err(BoardError::NoRequest);
    }
    let req = Request::decode(blob).map_err(BoardError::Request)?;
    phi_edge_board::log::request(&req);

    // SAFETY: the only call; the model is read through `image` only.
    let arena = unsafe { boot.free_ram() };
    defmt::info!(
        "arena {=usize:#x}, {=usize} bytes",
        arena.as_ptr() as usize,
        arena.len()
    );
    // A semihosting host means QEMU here (a debugger on the Pi's JTAG pins
    // would be one too, and its rates would be marked wrongly).
    let clock = GenericTimer {
        emulated: host::present(),
    };
    let outcome = phi_edge_board::generate::open_mapped(image, out, &clock).and_then(|model| {
        phi_edge_board::generate::run(model, kernels, &smp::CORES, &req, arena, out, &clock)
    });
    phi_edge_board::log::cores(&smp::CORES);
    outcome.map_err(BoardError::Run)?;
    Ok(())
}

/// The model image at the start of the initramfs: its header gives its
/// length, which must fit in the initramfs (the generation loop checks the
/// rest).
fn model_image(initrd: &'static [u8]) -> Result<&'static [u8], phi_edge::Error> {
    let header = Header::decode(&initrd[..HEADER_LEN.min(initrd.len())], initrd.len() as u64)?;
    // In range: the header was checked against the initramfs' length.
    Ok(&initrd[..(header.data_offset + header.data_len) as usize])
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // SAFETY: UART0 and the GPIO block are mapped as device memory by
    // boot.rs; the console in `main` is never used again, since this
    // handler does not return.
    let mut console = Console::new(unsafe { uart::uart0() });
    print_panic(&mut console, info);
    halt(&mut console, EXIT_PANIC)
}

// defmt's timestamp for the shared logger (`phi_edge_board::log`).
defmt::timestamp!("{=u64:us}", generic_timer::micros());

//! phi-edge on QEMU's `virt` board: riscv64 in M-mode, RVV kernels, no
//! operating system and no firmware (`-bios none`).
//!
//! The image starts with riscv-rt (stack, `.bss`, FPU; see [`boot`]),
//! turns the vector unit on, finds the RAM in the device tree QEMU passes
//! in `a1`, reads the request blob and the model that QEMU's `-device
//! loader` put at fixed addresses (see [`memory`]), and runs the request
//! with the [`Rvv`] kernel set through the shared loop
//! ([`phi_edge_board::generate::run`]): model check (header, manifest,
//! every tensor's CRC-32), prompt, prefill, text on the 16550 UART as it
//! is produced, then the `prompt_ids:`, `ids:` and `stats:` lines.
//!
//! The exit status, through the SiFive test device, is 0 on success and 1
//! on any error (one `error:` line on the UART); a panic (every exception
//! panics) prints its message and exits with 101. Logs go out as defmt
//! frames over semihosting (see [`log`]). README.md has the build and QEMU
//! command lines.
#![no_std]
#![no_main]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod boot;
mod error;
mod exit;
mod memory;
mod timer;
mod uart;

use core::fmt::Write as _;
use core::panic::PanicInfo;

use phi_edge::Kernels;
use phi_edge_board::Request;
use phi_edge_rvv::Rvv;
use riscv_rt::entry;

use error::BoardError;
use memory::Ram;
use timer::MachineTimer;
use uart::{Console, Uart16550, UART0_BASE};

/// Exit status of a failed run.
const EXIT_ERROR: u16 = 1;
/// Exit status of a panic (Rust's, as for a panicking test).
const EXIT_PANIC: u16 = 101;

/// The boot hart's Rust entry: `a0` is the hart id, `a1` the device
/// tree's address (QEMU's reset vector sets both).
#[entry]
fn main(_hartid: usize, dtb: usize, _a2: usize) -> ! {
    boot::enable_vector();
    // SAFETY: only this console and the panic handler (which never
    // returns) drive the UART.
    let mut console = Console::new(unsafe { Uart16550::new(UART0_BASE) });
    let status = match run(&mut console, dtb) {
        Ok(()) => 0,
        Err(e) => {
            console.flush();
            let _ = writeln!(console, "\nerror: {e}");
            defmt::error!("{}", defmt::Display2Format(&e));
            EXIT_ERROR
        }
    };
    console.flush();
    exit::exit(status)
}

/// Boot checks, then the request.
fn run(out: &mut Console, dtb: usize) -> Result<(), BoardError> {
    // SAFETY: `main` set mstatus.VS, and QEMU's `-cpu rv64,v=true` (the
    // documented command line) implements RVV 1.0.
    let kernels = unsafe { Rvv::new_unchecked() };
    let _ = writeln!(out, "phi-edge on QEMU virt riscv64, kernels {}", kernels.name());
    let ram = Ram::find(dtb).map_err(BoardError::Ram)?;
    defmt::info!("RAM {=usize:#x}..{=usize:#x}, device tree at {=usize:#x}", memory::RAM_BASE, ram.end, ram.dtb);

    let req = Request::decode(memory::request_region()).map_err(BoardError::Request)?;
    defmt::info!(
        "request: chat {=bool}, max_tokens {=u32}, temperature {=f32}, seed {=u64}, n_ctx {=u32}",
        req.chat,
        req.max_tokens,
        req.temperature,
        req.seed,
        req.n_ctx
    );

    let end = ram.free_end();
    let image = memory::model_image(end).map_err(BoardError::Model)?;
    // SAFETY: the only call; the model is read through `image` only.
    let arena = unsafe { memory::arena_region(image.len(), end) };
    phi_edge_board::generate::run(image, kernels, &req, arena, out, &MachineTimer).map_err(BoardError::Run)?;
    Ok(())
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // SAFETY: the console in `main` is never used again, since this
    // handler does not return.
    let mut uart = unsafe { Uart16550::new(UART0_BASE) };
    let _ = writeln!(uart, "\npanic: {info}");
    exit::exit(EXIT_PANIC)
}

// defmt's timestamp for the shared logger (`phi_edge_board::log`).
defmt::timestamp!("{=u64:us}", crate::timer::micros());

//! phi-edge on QEMU's `virt` board: riscv64 in M-mode, RVV kernels, no
//! operating system and no firmware (`-bios none`).
//!
//! The image starts with riscv-rt (stack, `.bss`, FPU; see [`boot`]),
//! checks that the hart has the V extension and turns the vector unit on
//! ([`isa`]), finds the RAM in the device tree QEMU passes
//! in `a1`, reads the request blob that QEMU's `-device loader` put at a
//! fixed address (see [`memory`]), finds the model, and runs the request
//! with the [`Rvv`] kernel set through the shared loop
//! ([`phi_edge_board::generate::run`]): model check (header, manifest,
//! every tensor's CRC-32), prompt, prefill, text on the 16550 UART as it
//! is produced, then the `prompt_ids:`, `ids:`, `logits_crc32:` and `stats:`
//! lines.
//!
//! The model is read from a virtio block device if the device tree lists
//! one (`cargo xtask run --stream`): only its header and manifest are
//! kept in RAM and the weights are streamed through the arena, so the
//! model may be larger than the RAM. Without one, the model is the image
//! `-device loader` put in RAM (see [`memory`]), read in place.
//!
//! The exit status, through the SiFive test device, is 0 on success and 1
//! on any error (one `error:` line on the UART; a hart without V is one);
//! a panic (every exception panics) prints its message and exits with 101.
//! Logs go out as defmt frames over semihosting (`phi_edge_board::log`).
//! README.md has the build and QEMU command lines.
#![no_std]
#![no_main]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod boot;
mod error;
mod exit;
mod isa;
mod memory;
mod smp;
mod timer;
mod uart;

use core::fmt::Write as _;
use core::panic::PanicInfo;

use fdt::Fdt;
use phi_edge::Kernels;
use phi_edge_board::console::{print_panic, LineConsole};
use phi_edge_board::generate::{open_mapped, open_streamed, run as generate};
use phi_edge_board::virtio_blk::VirtioBlk;
use phi_edge_board::{Request, EXIT_PANIC};
use riscv_rt::entry;

use error::BoardError;
use memory::{Ram, RamError};
use timer::MachineTimer;
use uart::{Uart16550, UART0_BASE};

/// The console: the 16550, line-buffered.
type Console = LineConsole<Uart16550>;

/// Every hart's Rust entry: `a0` is the hart id, `a1` the device tree's
/// address (QEMU's reset vector sets both). Hart 0 runs the request; the
/// others (released by [`smp::start`]) serve its parallel work if they
/// have the V extension, and are parked for good if not (hart 0 then
/// runs without them: [`smp::start`] counts only the harts that report).
#[entry]
fn main(hartid: usize, dtb: usize, _a2: usize) -> ! {
    if hartid != 0 {
        if isa::start_vector().is_ok() {
            smp::CORES.serve(hartid)
        }
        loop {
            riscv::asm::wfi();
        }
    }
    // SAFETY: only this console and the panic handler (which never
    // returns) drive the UART.
    let mut console = Console::new(unsafe { Uart16550::new(UART0_BASE) });
    let outcome = run(&mut console, dtb);
    exit::exit(phi_edge_board::exit_status(&mut console, outcome))
}

/// Boot checks, then the request.
fn run(out: &mut Console, dtb: usize) -> Result<(), BoardError> {
    let kernels = isa::start_vector().map_err(BoardError::NoVector)?;
    let _ = writeln!(
        out,
        "phi-edge on QEMU virt riscv64, kernels {}",
        kernels.name()
    );
    let ram = Ram::find(dtb).map_err(BoardError::Ram)?;
    defmt::info!(
        "RAM {=usize:#x}..{=usize:#x}, device tree at {=usize:#x}",
        memory::RAM_BASE,
        ram.end,
        ram.dtb
    );

    let harts = smp::harts_in_tree(dtb);
    if harts > smp::MAX_HARTS {
        let _ = writeln!(
            out,
            "warning: the device tree lists {harts} harts; this image runs on {}",
            smp::MAX_HARTS
        );
    }
    let cores = smp::start(harts);
    defmt::info!("{=usize} of {=usize} harts serving", cores, harts);

    let req = Request::decode(memory::request_region()).map_err(BoardError::Request)?;
    phi_edge_board::log::request(&req);

    let end = ram.free_end();
    let clock = MachineTimer;
    let outcome = match model_disk(dtb)? {
        Some(disk) => {
            defmt::info!(
                "model on the virtio block device at {=usize:#x}",
                disk.addr()
            );
            // SAFETY: the only call (this arm or the other); no model in RAM.
            let ram = unsafe { memory::free_ram(0, end) };
            open_streamed(disk, ram, out, &clock).and_then(|(model, arena)| {
                generate(model, kernels, &smp::CORES, &req, arena, out, &clock)
            })
        }
        None => {
            let image = memory::model_image(end).map_err(BoardError::Model)?;
            // SAFETY: the only call; the model is read through `image` only.
            let arena = unsafe { memory::free_ram(image.len(), end) };
            open_mapped(image, out, &clock)
                .and_then(|model| generate(model, kernels, &smp::CORES, &req, arena, out, &clock))
        }
    };
    phi_edge_board::log::cores(&smp::CORES);
    outcome.map_err(BoardError::Run)?;
    Ok(())
}

/// The virtio block device the device tree at `dtb` lists, started, if
/// any.
fn model_disk(dtb: usize) -> Result<Option<VirtioBlk>, BoardError> {
    // SAFETY: as in `Ram::find`, which read this device tree already: QEMU
    // wrote it at `dtb` before boot, in RAM that nothing else writes.
    let fdt = unsafe { Fdt::from_ptr(dtb as *const u8) }
        .map_err(|err| BoardError::Ram(RamError::BadDeviceTree { addr: dtb, err }))?;
    VirtioBlk::find(&fdt).map_err(BoardError::Disk)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // SAFETY: the console in `main` is never used again, since this
    // handler does not return.
    let mut console = Console::new(unsafe { Uart16550::new(UART0_BASE) });
    print_panic(&mut console, info);
    exit::exit(EXIT_PANIC)
}

// defmt's timestamp for the shared logger (`phi_edge_board::log`).
defmt::timestamp!("{=u64:us}", crate::timer::micros());

//! phi-edge on QEMU's `virt` board: aarch64, Cortex-A72, NEON kernels, no
//! operating system.
//!
//! The image boots at EL1 (aarch64-rt: MMU, caches, FP/SIMD, `.bss`,
//! stack), finds the RAM size in the device tree, reads the request blob
//! that QEMU's `-device loader` put at a fixed address (see [`memory`]),
//! finds the model, checks its header, manifest and every tensor's CRC-32,
//! and runs the request with the baseline [`Neon`] kernel set (Cortex-A72
//! has no dot product extension).
//!
//! The model is read from a virtio block device if the device tree lists
//! one (`cargo xtask run --stream`): only its header and manifest are
//! kept in RAM and the weights are streamed through the arena, so the
//! model may be larger than the RAM. Without one, the model is the image
//! `-device loader` put in RAM (see [`memory`]), read in place.
//!
//! Generated text goes to the PL011 UART as it is produced, then four
//! machine-readable lines:
//!
//! ```text
//! prompt_ids: 1 9690 198 ...
//! ids: 60 23 39614 ...
//! logits_crc32: 0x032034dc
//! stats: prompt 37 tokens, prefill 0.98 tok/s; generated 16 tokens, decode 0.75 tok/s (emulated); perplexity 2.7473; arena 13465984 bytes; kernels neon; cores 4
//! ```
//!
//! The exit status, through semihosting, is 0 on success and 1 on any
//! error (one `error:` line on the UART); a panic prints its message and
//! exits with 101. Logs go out as defmt frames over semihosting
//! (`phi_edge_board::log`). README.md has the build and QEMU command lines.
#![no_std]
#![no_main]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod boot;
mod error;
mod memory;
mod smp;

use core::fmt::Write as _;
use core::panic::PanicInfo;

use aarch64_rt::entry;
use fdt::Fdt;
use phi_edge::Kernels;
use phi_edge_board::console::{print_panic, LineConsole};
use phi_edge_board::generate::{open_mapped, open_streamed, run as generate};
use phi_edge_board::generic_timer::{self, GenericTimer};
use phi_edge_board::pl011::Pl011;
use phi_edge_board::virtio_blk::VirtioBlk;
use phi_edge_board::{Request, EXIT_PANIC};
use phi_edge_neon::Neon;

use error::BoardError;
use memory::RamError;

/// Base address of the first PL011 on QEMU's virt board.
const UART0_BASE: usize = 0x0900_0000;

/// The console: PL011 UART0, line-buffered.
type Console = LineConsole<Pl011>;

// 64 pages (256 KiB) of boot stack: the core keeps its buffers in the arena.
entry!(main, 64);

fn main(_x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    // SAFETY: UART0 is mapped as device memory by boot.rs; only this
    // console and the panic handler (which never returns) drive it.
    let mut console = Console::new(unsafe { Pl011::new(UART0_BASE) });
    let outcome = run(&mut console);
    semihosting::process::exit(phi_edge_board::exit_status(&mut console, outcome))
}

/// Boot checks, then the request.
fn run(out: &mut Console) -> Result<(), BoardError> {
    let kernels = Neon;
    let _ = writeln!(
        out,
        "phi-edge on QEMU virt aarch64, kernels {}",
        kernels.name()
    );
    let ram_end = memory::ram_end().map_err(BoardError::Ram)?;
    defmt::info!("RAM {=usize:#x}..{=usize:#x}", memory::RAM_BASE, ram_end);

    match smp::core_info(memory::device_tree()) {
        Some(info) => {
            let listed = info.mpidr.len();
            if listed > smp::MAX_CORES {
                let _ = writeln!(
                    out,
                    "warning: the device tree lists {listed} cores; this image runs on {}",
                    smp::MAX_CORES
                );
            }
            let (cores, refused) = smp::start(&info);
            if refused > 0 {
                let _ = writeln!(out, "warning: PSCI refused to start {refused} cores");
            }
            defmt::info!("{=usize} of {=usize} cores serving", cores, listed);
        }
        None => {
            let _ = writeln!(
                out,
                "warning: no /cpus in the device tree; running on one core"
            );
        }
    }

    let req = Request::decode(memory::request_region()).map_err(BoardError::Request)?;
    phi_edge_board::log::request(&req);

    let clock = GenericTimer { emulated: true };
    let outcome = match model_disk()? {
        Some(disk) => {
            defmt::info!(
                "model on the virtio block device at {=usize:#x}",
                disk.addr()
            );
            // SAFETY: the only call (this arm or the other); no model in RAM.
            let ram = unsafe { memory::free_ram(0, ram_end) };
            open_streamed(disk, ram, out, &clock).and_then(|(model, arena)| {
                generate(model, kernels, &smp::CORES, &req, arena, out, &clock)
            })
        }
        None => {
            let image = memory::model_image(ram_end).map_err(BoardError::Model)?;
            // SAFETY: the only call; the model is read through `image` only.
            let arena = unsafe { memory::free_ram(image.len(), ram_end) };
            open_mapped(image, out, &clock)
                .and_then(|model| generate(model, kernels, &smp::CORES, &req, arena, out, &clock))
        }
    };
    phi_edge_board::log::cores(&smp::CORES);
    outcome.map_err(BoardError::Run)?;
    Ok(())
}

/// The virtio block device the device tree lists, started, if any.
fn model_disk() -> Result<Option<VirtioBlk>, BoardError> {
    let fdt =
        Fdt::new(memory::device_tree()).map_err(|e| BoardError::Ram(RamError::BadDeviceTree(e)))?;
    VirtioBlk::find(&fdt).map_err(BoardError::Disk)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // SAFETY: UART0 is mapped as device memory by boot.rs; the console in
    // `main` is never used again, since this handler does not return.
    let mut console = Console::new(unsafe { Pl011::new(UART0_BASE) });
    print_panic(&mut console, info);
    semihosting::process::exit(EXIT_PANIC)
}

// defmt's timestamp for the shared logger (`phi_edge_board::log`).
defmt::timestamp!("{=u64:us}", generic_timer::micros());

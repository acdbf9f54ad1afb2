//! A firmware-style phi-edge program: what a board's firmware writes
//! around the core, minus the board.
//!
//! - `no_std`, no heap: one `static` arena, sized at compile time by
//!   [`GenOptions::arena_bytes`] for the model's [`Config`];
//! - the model image in memory-mapped flash (XIP), a `&'static [u8]` the
//!   kernels read in place;
//! - one [`Generator`]: the model's chat template, greedy decoding, the
//!   text streamed to a UART as it is produced.
//!
//! It builds for any bare-metal target (CI builds it for
//! `aarch64-unknown-none`); the addresses below are QEMU virt's. Real
//! firmware gets its entry point, stack and UART from its runtime crate
//! (aarch64-rt, riscv-rt, a vendor HAL) and would pick the target's
//! kernel set (`phi_edge_neon::NeonDot`, `phi_edge_rvv::Rvv`) instead of
//! the portable one; `boards/qemu-virt-aarch64` is such a firmware, run
//! under QEMU in CI.
#![no_std]
#![no_main]

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use phi_edge::{Arch, Config, GenOptions, Generator, Mapped, Model};
use phi_edge_portable::Portable;

/// The model the arena is planned for: SmolLM2-135M-Instruct (what
/// `phi-edge inspect` prints for its image). [`Generator::new`] checks the
/// flashed image's own hyperparameters against the arena: a larger model
/// is [`phi_edge::Error::ArenaTooSmall`], not a crash.
const CONFIG: Config = Config {
    arch: Arch::Llama,
    n_vocab: 49152,
    n_embd: 576,
    n_layer: 30,
    n_head: 9,
    n_head_kv: 3,
    head_dim: 64,
    n_ff: 1536,
    n_rot: 64,
    rms_eps: 1e-5,
    rope_theta: 100000.0,
    rope_freq_scale: 1.0,
    rope_attn_factor: 1.0,
    n_ctx_train: 8192,
    n_ctx_orig: 8192,
    has_rope_factors: false,
    rope_cache_rows: 4096,
    tied_output: true,
};

/// A 512-token context, greedy decoding, chat turns of up to 2 KiB.
const OPTIONS: GenOptions = GenOptions::greedy(512, 2048);

/// The arena's size, known at compile time (13.3 MB here, 11.8 MB of it
/// the KV cache).
const ARENA_BYTES: usize = OPTIONS.arena_bytes(&CONFIG);

/// The arena, 64-byte aligned so [`ARENA_BYTES`] is exact.
#[repr(C, align(64))]
struct Arena([u8; ARENA_BYTES]);

/// Every working byte of the program. In `.bss`: zeroed by the startup
/// code, never allocated.
static mut ARENA: Arena = Arena([0; ARENA_BYTES]);

/// Where the boot chain put the model image (memory-mapped flash).
const MODEL_ADDR: usize = 0x4010_0000;
/// The flash window reserved for it; the image's header says how much of
/// it the model uses.
const MODEL_WINDOW: usize = 128 << 20;
/// The UART's transmit register (QEMU virt's PL011).
const UART_DR: usize = 0x0900_0000;

/// The question this firmware asks its model.
const QUESTION: &str = "What is the capital of France?";
/// Most tokens of the answer.
const MAX_TOKENS: u32 = 64;

/// The entry point: the startup code (not shown: it sets up the stack and
/// zeroes `.bss`) jumps here once.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut uart = Uart(UART_DR as *mut u32);
    if let Err(e) = run(&mut uart) {
        let _ = writeln!(uart, "\nerror: {e}");
    }
    loop {
        core::hint::spin_loop();
    }
}

/// Answers [`QUESTION`] on `uart`.
fn run(uart: &mut Uart) -> phi_edge::Result<()> {
    // SAFETY: the boot chain mapped `MODEL_WINDOW` bytes of flash,
    // readable and never written, at `MODEL_ADDR`.
    let image: &'static [u8] =
        unsafe { core::slice::from_raw_parts(MODEL_ADDR as *const u8, MODEL_WINDOW) };
    // SAFETY: `_start` runs once, on one core, so this is the only
    // reference to the arena ever made.
    let arena: &'static mut [u8] = unsafe { &mut (*core::ptr::addr_of_mut!(ARENA)).0 };
    let model = Model::open_mapped(image)?;
    model.verify(&mut Mapped(image), &mut [])?;
    let mut g = Generator::new(&model, Portable, Mapped(image), arena, &OPTIONS)?;
    g.chat(None, QUESTION)?;
    g.generate(MAX_TOKENS, |text| {
        let _ = uart.write_str(text);
    })?;
    let _ = writeln!(uart);
    Ok(())
}

/// A transmit-only UART: each byte is stored to its data register.
struct Uart(*mut u32);

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: `self.0` is the UART's memory-mapped data register,
            // valid for 32-bit volatile stores.
            unsafe { self.0.write_volatile(u32::from(b)) };
        }
        Ok(())
    }
}

/// A panic stops the program (`panic = "abort"`): nothing in the core
/// panics on bad input, which gets a typed error instead.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

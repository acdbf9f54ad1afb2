//! What phi-edge's bare-metal board images share, with each other and with
//! the host tools that drive them.
//!
//! - [`Request`]: the blob that carries the prompt and the generation
//!   settings to a board image. The host writes it with
//!   [`Request::encode`] (see `examples/request.rs`); the boot chain puts
//!   it in the board's memory beside the model (under QEMU a second
//!   `-device loader`), and the board reads it with [`Request::decode`].
//! - [`generate::run`]: what every board runs once it has found the model,
//!   the request and its RAM: the model, opened and checked by
//!   [`generate::open_mapped`] (the image in memory) or
//!   [`generate::open_streamed`] (the image on a block device, read
//!   through staging buffers), then the core's
//!   [`Generator`](phi_edge::Generator) over the RAM as its arena, the
//!   text token by token, and the `prompt_ids:` / `ids:` / `stats:` lines,
//!   through the board's [`Console`] and [`Clock`];
//!   [`exit_status`] turns its outcome into the board's exit status.
//! - `virtio_blk` (feature `virtio-blk`): the virtio block device of
//!   QEMU's virt boards as a [`ReadAt`](phi_edge::ReadAt), for
//!   [`generate::open_streamed`].
//! - [`devicetree::DeviceTree`]: a flattened device tree reader over a
//!   byte slice (header, `/memreserve/`, every property with its path,
//!   `reg` entries as checked address ranges), for boards that read their
//!   RAM and boot arguments from the tree (raspi4).
//! - [`console::LineConsole`]: a line-buffered [`Console`] over any
//!   transmit-only [`console::Uart`] driver, such as `pl011::Pl011`
//!   (feature `pl011`).
//! - [`smp::Cores`]: the board's cores as the decoder's
//!   [`Parallel`](phi_edge::Parallel), woken by the board's
//!   inter-processor interrupt (`smp::gicv2` on aarch64, `smp::clint` on
//!   riscv64).
//! - `generic_timer` (aarch64): the Arm generic timer as the [`Clock`].
//! - `log` (feature `semihosting-log`): the boards' defmt logger over the
//!   semihosting console.
#![no_std]
#![deny(missing_docs, unsafe_code)]

pub mod console;
pub mod devicetree;
pub mod error;
pub mod generate;
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub mod generic_timer;
#[cfg(feature = "semihosting-log")]
#[allow(unsafe_code)]
pub mod log;
#[cfg(feature = "pl011")]
#[allow(unsafe_code)]
pub mod pl011;
pub mod request;
#[cfg_attr(not(feature = "virtio-blk"), allow(dead_code))]
mod sectors;
#[allow(unsafe_code)]
pub mod smp;
#[cfg(feature = "virtio-blk")]
#[allow(unsafe_code)]
pub mod virtio_blk;

use core::fmt::Display;

pub use error::RunError;
pub use generate::{Clock, Console, ImageAt, Progress, Stats};
pub use request::{CacheType, Request, RequestError};

/// Exit status of a failed run.
pub const EXIT_ERROR: i32 = 1;
/// Exit status of a panic (Rust's, as for a panicking test).
pub const EXIT_PANIC: i32 = 101;

/// The exit status for a board's run: 0 on success; on an error, which is
/// printed as one `error:` line on `out` (and logged), [`EXIT_ERROR`].
pub fn exit_status<E: Display>(out: &mut impl Console, outcome: Result<(), E>) -> i32 {
    let status = match outcome {
        Ok(()) => 0,
        Err(e) => {
            out.flush();
            let _ = writeln!(out, "\nerror: {e}");
            #[cfg(feature = "semihosting-log")]
            defmt::error!("{}", defmt::Display2Format(&e));
            EXIT_ERROR
        }
    };
    out.flush();
    status
}

//! Why a run failed: one line on the UART, exit status 1.

use core::fmt;

use phi_edge_board::{RequestError, RunError};

use crate::memory::{BootError, REQUEST_ALIGN};

/// A failed run.
#[derive(Debug)]
pub enum BoardError {
    /// The device tree does not say where the RAM or the initramfs is.
    Boot(BootError),
    /// No model image header at the start of the initramfs, or one that
    /// does not fit in it.
    Model(phi_edge::Error),
    /// Nothing follows the model in the initramfs.
    NoRequest,
    /// The request blob is malformed.
    Request(RequestError),
    /// The generation loop failed (a corrupted model, an arena larger
    /// than the free RAM, a prompt too long for the context, among
    /// others).
    Run(RunError),
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardError::Boot(BootError::BadDeviceTree { addr, err }) => {
                write!(f, "no device tree at {addr:#x} (x0 at entry): {err}")
            }
            BoardError::Boot(BootError::DeviceTreeTooBig { size }) => {
                write!(f, "the device tree is {size} bytes, more than the board's copy holds")
            }
            BoardError::Boot(BootError::NoInitrd) => f.write_str(
                "the device tree's /chosen has no initramfs (config.txt: initramfs FILE followkernel; QEMU: -initrd FILE with the raw kernel8.img)",
            ),
            BoardError::Boot(BootError::InitrdOverlapsImage { initrd, image_end }) => write!(
                f,
                "the initramfs at {initrd:#x} overlaps the image, which ends at {image_end:#x} (make kernel8.img with .bss included, see README.md)"
            ),
            BoardError::Boot(BootError::BadInitrd { start, end }) => write!(
                f,
                "the device tree's /chosen initramfs ends at {end:#x}, before its start {start:#x}"
            ),
            BoardError::Boot(BootError::BadMemory(e)) => {
                write!(f, "cannot read the RAM banks from the device tree: {e}")
            }
            BoardError::Boot(BootError::NoMemory { initrd }) => {
                write!(f, "no RAM bank in the device tree holds the initramfs at {:#x}..{:#x}", initrd.start, initrd.end)
            }
            BoardError::Boot(BootError::TooManyEntries) => {
                f.write_str("the device tree lists too many RAM banks, cores or reserved memory areas")
            }
            BoardError::Model(e) => write!(f, "model image (start of the initramfs): {e}"),
            BoardError::NoRequest => write!(
                f,
                "no request blob in the initramfs: append one at the {REQUEST_ALIGN}-byte boundary after the model (see README.md)"
            ),
            BoardError::Request(e) => write!(f, "request blob: {e}"),
            BoardError::Run(e) => write!(f, "{e}"),
        }
    }
}

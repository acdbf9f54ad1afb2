//! Why a run failed: one line on the UART, exit status 1.

use core::fmt;

use phi_edge_board::virtio_blk::DiskError;
use phi_edge_board::{RequestError, RunError};

use crate::isa::NoVector;
use crate::memory::{RamError, MODEL_ADDR, RAM_BASE, REQUEST_ADDR};

/// A failed run.
#[derive(Debug)]
pub enum BoardError {
    /// Hart 0 has no V extension, which the RVV kernels need.
    NoVector(NoVector),
    /// The RAM size could not be read from the device tree.
    Ram(RamError),
    /// The request blob is missing or malformed.
    Request(RequestError),
    /// The virtio block device the device tree lists did not start.
    Disk(DiskError),
    /// No model image header at [`MODEL_ADDR`], or one that does not fit
    /// in RAM (no block device).
    Model(phi_edge::Error),
    /// The generation loop failed (a corrupted model, an arena larger
    /// than the free RAM, a prompt too long for the context, among
    /// others).
    Run(RunError),
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardError::NoVector(e) => write!(f, "hart 0: {e}"),
            BoardError::Ram(RamError::BadDeviceTree { addr, err }) => {
                write!(f, "cannot read the device tree at {addr:#x}: {err:?}")
            }
            BoardError::Ram(RamError::NoMemory) => {
                write!(f, "the device tree has no RAM at {RAM_BASE:#x}")
            }
            BoardError::Request(e) => write!(f, "request blob at {REQUEST_ADDR:#x}: {e}"),
            BoardError::Disk(e) => write!(f, "{e}"),
            BoardError::Model(e) => write!(f, "model image at {MODEL_ADDR:#x}: {e}"),
            BoardError::Run(e) => write!(f, "{e}"),
        }
    }
}

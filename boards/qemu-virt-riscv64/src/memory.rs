//! The memory map (board code): where QEMU puts the request blob, the
//! model and the device tree, and where the arena goes.
//!
//! | address | what | placed by |
//! |---|---|---|
//! | `0x8000_0000` | this image: code, data, `.bss`, then the stack up to the request | `-kernel` (ELF); `memory.x` |
//! | [`REQUEST_ADDR`] `0x8200_0000` | request blob (≤ 1 MiB) | `-device loader,file=request.bin,addr=0x82000000,force-raw=on` |
//! | [`MODEL_ADDR`] `0x8210_0000` | model image (`.phi`) | `-device loader,file=model.phi,addr=0x82100000,force-raw=on` |
//! | model end, 2 MiB aligned | the arena, up to the device tree | [`Ram::find`] |
//! | near the end of RAM | device tree blob | QEMU; its address arrives in `a1` |
//!
//! With the model on a virtio block device instead (`--stream`), nothing
//! is loaded at [`MODEL_ADDR`]: the free RAM starts at `0x8220_0000`
//! ([`MODEL_ADDR`] rounded up to 2 MiB) and holds the image's header and
//! manifest (1.7 MB for SmolLM2, its tokenizer tables included), then the
//! arena with the two staging buffers, up to the device tree. At `-m 64M`
//! that is about 28 MiB, of which SmolLM2 at `n_ctx` 512 uses 15 MB.
//!
//! The arena is carved from the RAM left after the model, found at boot,
//! rather than sized as a `static` for one model and context: one image
//! then serves any model and any `n_ctx` the request asks for, and `-m`
//! decides what fits.

use fdt::Fdt;
use phi_edge::image::header::{Header, HEADER_LEN};

/// Start of RAM on QEMU's riscv virt board.
pub const RAM_BASE: usize = 0x8000_0000;
/// Where the request blob is loaded (the end of the image region in
/// `memory.x`).
pub const REQUEST_ADDR: usize = 0x8200_0000;
/// Room for the request blob, up to the model.
pub const REQUEST_MAX: usize = MODEL_ADDR - REQUEST_ADDR;
/// Where the model image is loaded.
pub const MODEL_ADDR: usize = 0x8210_0000;
/// Alignment of the free RAM's start.
const FREE_ALIGN: usize = 2 << 20;

/// Why the RAM could not be found.
#[derive(Debug)]
pub enum RamError {
    /// The device tree at the address QEMU passed does not parse.
    BadDeviceTree {
        /// The address (`a1` at entry).
        addr: usize,
        /// The parser's complaint.
        err: fdt::FdtError,
    },
    /// The device tree has no `/memory` node with a region at [`RAM_BASE`]
    /// (or one with no size, a size of 0, or one past the address space).
    NoMemory,
}

/// The RAM the device tree describes, and the device tree's own place in it.
#[derive(Clone, Copy, Debug)]
pub struct Ram {
    /// End of the RAM region that starts at [`RAM_BASE`] (follows `-m`).
    pub end: usize,
    /// Where the device tree is.
    pub dtb: usize,
}

impl Ram {
    /// Reads the device tree at `dtb` (the address QEMU passes in `a1`).
    pub fn find(dtb: usize) -> Result<Ram, RamError> {
        // SAFETY: QEMU wrote a device tree at `dtb` before boot, in RAM
        // that nothing else writes; the header is read first, and the
        // slice covers only the size it states.
        let fdt = unsafe { Fdt::from_ptr(dtb as *const u8) }
            .map_err(|err| RamError::BadDeviceTree { addr: dtb, err })?;
        let memory = fdt.find_node("/memory").ok_or(RamError::NoMemory)?;
        let end = memory
            .reg()
            .ok_or(RamError::NoMemory)?
            .find(|r| r.starting_address as usize == RAM_BASE)
            .and_then(|r| r.size)
            .filter(|&size| size > 0)
            .and_then(|size| RAM_BASE.checked_add(size))
            .ok_or(RamError::NoMemory)?;
        Ok(Ram { end, dtb })
    }

    /// End of the RAM free for the model and the arena: the device tree
    /// if it is above the model, else the end of RAM.
    pub fn free_end(&self) -> usize {
        if (MODEL_ADDR..self.end).contains(&self.dtb) {
            self.dtb
        } else {
            self.end
        }
    }
}

/// The request blob's region.
pub fn request_region() -> &'static [u8] {
    // SAFETY: the region is RAM between the image and the model, written
    // only by QEMU's loader before boot; this image never writes it.
    unsafe { core::slice::from_raw_parts(REQUEST_ADDR as *const u8, REQUEST_MAX) }
}

/// The model image at [`MODEL_ADDR`]: its header is checked and gives its
/// length, which must fit below `end`.
pub fn model_image(end: usize) -> Result<&'static [u8], phi_edge::Error> {
    let room = end.saturating_sub(MODEL_ADDR);
    // SAFETY: at most `room` bytes from MODEL_ADDR, RAM that QEMU's loader
    // wrote before boot and that this image only reads.
    let head =
        unsafe { core::slice::from_raw_parts(MODEL_ADDR as *const u8, HEADER_LEN.min(room)) };
    let header = Header::decode(head, room as u64)?;
    // In range: the header was checked against `room`.
    let len = (header.data_offset + header.data_len) as usize;
    // SAFETY: as above; `len <= room`.
    Ok(unsafe { core::slice::from_raw_parts(MODEL_ADDR as *const u8, len) })
}

/// The free RAM, for the arena: from past the model's
/// `model_len` bytes (0: no model in RAM) to `end`.
///
/// # Safety
///
/// Call at most once: the slice is the only reference to that memory.
pub unsafe fn free_ram(model_len: usize, end: usize) -> &'static mut [u8] {
    let start = (MODEL_ADDR + model_len)
        .next_multiple_of(FREE_ALIGN)
        .min(end);
    // SAFETY: [start, end) is RAM past the model (and the stack and image
    // below it) and below the device tree; the caller promised this is its
    // only user.
    unsafe { core::slice::from_raw_parts_mut(start as *mut u8, end - start) }
}

//! The memory map (board code): where QEMU puts the device tree, the
//! request blob and the model, and where the arena goes.
//!
//! | address | what | placed by |
//! |---|---|---|
//! | `0x4000_0000` | device tree blob (virt's is 1 MiB) | QEMU, at the start of RAM when it fits below the ELF image (else nowhere) |
//! | `0x4020_0000` | this image: code, data, `.bss` (with the secondary cores' stacks, 128 KiB each), boot stack | `-kernel` (ELF); `memory.ld` |
//! | [`REQUEST_ADDR`] `0x4200_0000` | request blob (≤ 1 MiB) | `-device loader,file=request.bin,addr=0x42000000,force-raw=on` |
//! | [`MODEL_ADDR`] `0x4210_0000` | model image (`.phi`) | `-device loader,file=model.phi,addr=0x42100000,force-raw=on` |
//! | model end, 2 MiB aligned | the arena, to the end of RAM | [`ram_end`] (the device tree's `/memory`) |
//!
//! With the model on a virtio block device instead (`--stream`), nothing
//! is loaded at [`MODEL_ADDR`]: the free RAM starts at `0x4220_0000`
//! ([`MODEL_ADDR`] rounded up to 2 MiB) and holds the image's header and
//! manifest (1.7 MB for SmolLM2, its tokenizer tables included), then the
//! arena with the two staging buffers. At `-m 64M` that is 30 MiB, of
//! which SmolLM2 at `n_ctx` 512 uses 15 MB.
//!
//! The arena is carved from the RAM left after the model, found at boot,
//! rather than sized as a `static` for one model and context: one image
//! then serves any model and any `n_ctx` the request asks for, and `-m`
//! decides what fits (SmolLM2-135M at `n_ctx` 512 needs 13 MB; a
//! Phi-3-mini Q4 image needs `-m` of several GiB).

use fdt::Fdt;
use phi_edge::image::header::{Header, HEADER_LEN};

/// Start of RAM on QEMU's virt board.
pub const RAM_BASE: usize = 0x4000_0000;
/// Where QEMU puts the device tree: the start of RAM.
const DTB_ADDR: usize = RAM_BASE;
/// Room for the device tree, up to the image (`memory.ld`).
const DTB_MAX: usize = 0x20_0000;
/// Where the request blob is loaded (the end of the image region in
/// `memory.ld`).
pub const REQUEST_ADDR: usize = 0x4200_0000;
/// Room for the request blob, up to the model.
pub const REQUEST_MAX: usize = MODEL_ADDR - REQUEST_ADDR;
/// Where the model image is loaded.
pub const MODEL_ADDR: usize = 0x4210_0000;
/// Alignment of the free RAM's start.
const FREE_ALIGN: usize = 2 << 20;

/// Why the RAM could not be found.
#[derive(Debug)]
pub enum RamError {
    /// The device tree at [`DTB_ADDR`] does not parse.
    BadDeviceTree(fdt::FdtError),
    /// The device tree has no `/memory` node with a region at [`RAM_BASE`].
    NoMemory,
}

/// The device tree's area: [`DTB_MAX`] bytes at the start of RAM.
pub fn device_tree() -> &'static [u8] {
    // SAFETY: the DTB area is mapped RAM below the image, which nothing
    // writes; QEMU wrote the device tree there before boot.
    unsafe { core::slice::from_raw_parts(DTB_ADDR as *const u8, DTB_MAX) }
}

/// The end of the RAM region that starts at [`RAM_BASE`], from the device
/// tree QEMU wrote (so it follows `-m`).
pub fn ram_end() -> Result<usize, RamError> {
    let fdt = Fdt::new(device_tree()).map_err(RamError::BadDeviceTree)?;
    let memory = fdt.find_node("/memory").ok_or(RamError::NoMemory)?;
    memory
        .reg()
        .ok_or(RamError::NoMemory)?
        .find(|r| r.starting_address as usize == RAM_BASE)
        .and_then(|r| r.size)
        .map(|size| RAM_BASE + size)
        .ok_or(RamError::NoMemory)
}

/// The request blob's region.
pub fn request_region() -> &'static [u8] {
    // SAFETY: the region is mapped RAM between the image and the model,
    // written only by QEMU's loader before boot; this image never writes it.
    unsafe { core::slice::from_raw_parts(REQUEST_ADDR as *const u8, REQUEST_MAX) }
}

/// The model image at [`MODEL_ADDR`]: its header is checked and gives its
/// length, which must fit in the RAM below `ram_end`.
pub fn model_image(ram_end: usize) -> Result<&'static [u8], phi_edge::Error> {
    let room = ram_end.saturating_sub(MODEL_ADDR);
    // SAFETY: at most `room` bytes from MODEL_ADDR, mapped RAM that QEMU's
    // loader wrote before boot and that this image only reads.
    let head =
        unsafe { core::slice::from_raw_parts(MODEL_ADDR as *const u8, HEADER_LEN.min(room)) };
    let header = Header::decode(head, room as u64)?;
    // In range: the header was checked against `room`.
    let len = (header.data_offset + header.data_len) as usize;
    // SAFETY: as above; `len <= room`.
    Ok(unsafe { core::slice::from_raw_parts(MODEL_ADDR as *const u8, len) })
}

/// The free RAM, for the arena: from past the model's
/// `model_len` bytes (0: no model in RAM) to `ram_end`.
///
/// # Safety
///
/// Call at most once: the slice is the only reference to that memory.
pub unsafe fn free_ram(model_len: usize, ram_end: usize) -> &'static mut [u8] {
    let start = (MODEL_ADDR + model_len)
        .next_multiple_of(FREE_ALIGN)
        .min(ram_end);
    // SAFETY: [start, ram_end) is mapped RAM past the model (and the
    // stack and image below it); the caller promised this is its only user.
    unsafe { core::slice::from_raw_parts_mut(start as *mut u8, ram_end - start) }
}

//! The memory map (board code): what the device tree says about RAM and
//! the initramfs, where the model and the request blob are, and where the
//! arena goes.
//!
//! | address | what | placed by |
//! |---|---|---|
//! | `0x0000_0000` | firmware spin table for cores 1-3 (hardware); QEMU's device tree | firmware / QEMU |
//! | `0x0008_0000` | this image: code, data, `.bss` (a copy of the device tree), boot stack, to `image_end` | kernel8.img or ELF; `raspi4.ld` |
//! | initrd start | the initramfs file: model image, then the request blob at the next 4 KiB boundary | `config.txt` `initramfs … followkernel` (right after kernel8.img) / QEMU `-initrd` (at 128 MiB) |
//! | initrd end, 2 MiB aligned | the arena, to the end of the RAM bank (less `/memreserve/` areas) | found at boot: `/memory`, `/chosen` |
//! | `0xFC00_0000` | peripherals (UART0 at `0xFE20_1000`) | SoC |
//!
//! Both the firmware and QEMU give the device tree's address in x0 and
//! write the initramfs' bounds into `/chosen` (`linux,initrd-start`,
//! `linux,initrd-end`), so nothing here is at a fixed address but the
//! image. The tree is copied to `.bss` first: QEMU puts it at address 0,
//! where no Rust reference may point. The arena is carved from the RAM left after the initramfs rather
//! than sized as a `static`, so one image serves any model and any `n_ctx`
//! that fit in the first RAM bank (below 0x3C00_0000 on the Pi 4, less the
//! VideoCore's share): SmolLM2-135M Q4_1 at `n_ctx` 512 needs 98 MB of
//! model and 13 MB of arena.

use core::arch::asm;
use core::ops::Range;

use heapless::Vec;

use phi_edge_board::devicetree::{self, Cells, DeviceTree, RegError, TreeError};

/// Alignment of the request blob after the model in the initramfs.
pub const REQUEST_ALIGN: usize = 4096;
/// Alignment of the free RAM's start.
const FREE_ALIGN: usize = 2 << 20;
/// Most `/memreserve/` entries, RAM banks and spin-table slots.
const MAX_RESERVED: usize = 16;
/// Largest device tree accepted (the Pi 4's is 27 KiB, more with the
/// firmware's additions and overlays).
const MAX_DEVICE_TREE: usize = 128 << 10;

/// The end of the image (`raspi4.ld`): code, data, `.bss`, boot stack.
fn image_end() -> usize {
    unsafe extern "C" {
        /// Defined by `raspi4.ld`.
        static image_end: u8;
    }
    (&raw const image_end) as usize
}

/// Why the boot information could not be read.
#[derive(Debug)]
pub enum BootError {
    /// x0 does not point at a device tree.
    BadDeviceTree {
        /// The address in x0.
        addr: usize,
        /// What the reader said.
        err: TreeError,
    },
    /// The device tree is larger than the board's copy of it.
    DeviceTreeTooBig {
        /// Its size in bytes.
        size: usize,
    },
    /// `/chosen` has no `linux,initrd-start`/`-end`: no initramfs was
    /// loaded (`config.txt` `initramfs`, QEMU `-initrd`).
    NoInitrd,
    /// The initramfs starts inside the image's `.bss` or stack, which the
    /// start-up code has zeroed.
    InitrdOverlapsImage {
        /// Where the initramfs starts.
        initrd: usize,
        /// Where the image ends.
        image_end: usize,
    },
    /// `/chosen`'s initramfs ends before it starts.
    BadInitrd {
        /// `linux,initrd-start`.
        start: u64,
        /// `linux,initrd-end`.
        end: u64,
    },
    /// The RAM banks cannot be read: the root's `#address-cells` or
    /// `#size-cells` is malformed or not 1 or 2, or a `/memory` node's
    /// `reg` is not whole entries, or has an empty bank or one past the
    /// 64-bit address space.
    BadMemory(RegError),
    /// No `/memory` bank holds the initramfs.
    NoMemory {
        /// The initramfs.
        initrd: Range<usize>,
    },
    /// The device tree lists more cores or reserved areas than the board
    /// tracks.
    TooManyEntries,
}

/// What the device tree says.
pub struct BootInfo {
    /// The RAM bank that holds the initramfs.
    pub ram: Range<usize>,
    /// The initramfs.
    pub initrd: Range<usize>,
    /// Cores other than 0 that wait in the spin table: their MPIDR
    /// affinity (the `cpu@N` node's unit address) and their slot
    /// (`cpu-release-addr`).
    pub spin_table: Vec<(u64, usize), MAX_RESERVED>,
    /// The most cores the kernel command line (`/chosen/bootargs`) allows:
    /// `maxcpus=N`, as for Linux (QEMU `-append`, the Pi's `cmdline.txt`).
    pub max_cpus: Option<usize>,
    /// Areas of `ram` the arena must avoid: `/memreserve/` entries.
    reserved: Vec<Range<usize>, MAX_RESERVED>,
}

/// Reads the byte at physical address `addr`, which may be 0.
///
/// # Safety
///
/// `addr` must be mapped RAM.
unsafe fn read_phys(addr: usize) -> u8 {
    let byte: u32;
    // SAFETY: the caller vouched for `addr`. An `ldrb` rather than a Rust
    // read, because QEMU may put the device tree at address 0, which Rust
    // pointers may not point at.
    unsafe {
        asm!("ldrb {b:w}, [{a}]", a = in(reg) addr, b = out(reg) byte, options(readonly, nostack, preserves_flags));
    }
    byte as u8
}

/// A copy, in `.bss`, of the device tree at `dtb` (x0 at entry).
///
/// # Safety
///
/// Call at most once: the slice is the only reference to the copy.
unsafe fn copy_device_tree(dtb: usize) -> Result<&'static [u8], BootError> {
    static mut COPY: [u8; MAX_DEVICE_TREE] = [0; MAX_DEVICE_TREE];
    let mut head = [0u8; 8];
    for (i, b) in head.iter_mut().enumerate() {
        // SAFETY: `dtb` is in RAM, where the firmware or QEMU put the tree.
        *b = unsafe { read_phys(dtb + i) };
    }
    let size = devicetree::declared_size(head)
        .map_err(|err| BootError::BadDeviceTree { addr: dtb, err })?;
    if size > MAX_DEVICE_TREE {
        return Err(BootError::DeviceTreeTooBig { size });
    }
    // SAFETY: the caller promised this is the only reference to COPY.
    let copy = unsafe { core::slice::from_raw_parts_mut((&raw mut COPY).cast::<u8>(), size) };
    for (i, b) in copy.iter_mut().enumerate() {
        // SAFETY: the tree's header says it spans `size` bytes of RAM.
        *b = unsafe { read_phys(dtb + i) };
    }
    Ok(copy)
}

/// What a walk over the device tree collects.
struct Found {
    /// Root `#address-cells` and `#size-cells`, as read; checked by
    /// [`Cells::new`] where a `/memory` node's `reg` uses them.
    cells: (Result<u32, RegError>, Result<u32, RegError>),
    initrd_start: Option<u64>,
    initrd_end: Option<u64>,
    /// RAM banks of the `memory` nodes.
    banks: Vec<Range<usize>, MAX_RESERVED>,
    spin_table: Vec<(u64, usize), MAX_RESERVED>,
    max_cpus: Option<usize>,
    /// The first cell count or `/memory` `reg` that could not be read.
    bad_memory: Option<RegError>,
    /// Set if a list above was full.
    overflow: bool,
}

impl Found {
    /// Nothing found yet; the root's cells default to 2 and 1 (the
    /// devicetree specification's defaults).
    fn new() -> Found {
        Found {
            cells: (Ok(2), Ok(1)),
            initrd_start: None,
            initrd_end: None,
            banks: Vec::new(),
            spin_table: Vec::new(),
            max_cpus: None,
            bad_memory: None,
            overflow: false,
        }
    }

    /// Takes one property of the node at `path`.
    fn property(&mut self, path: &[&str], name: &str, value: &[u8]) {
        match (path, name) {
            ([_], "#address-cells") => self.cells.0 = devicetree::cell_count(value),
            ([_], "#size-cells") => self.cells.1 = devicetree::cell_count(value),
            ([_, "chosen"], "linux,initrd-start") => self.initrd_start = devicetree::number(value),
            ([_, "chosen"], "linux,initrd-end") => self.initrd_end = devicetree::number(value),
            ([_, node], "reg") if devicetree::is_memory_node(node) => {
                if let Err(e) = self.memory(value) {
                    self.bad_memory.get_or_insert(e);
                }
            }
            ([_, "chosen"], "bootargs") => self.max_cpus = max_cpus(value),
            ([_, "cpus", cpu], "cpu-release-addr") if cpu.starts_with("cpu@") => {
                let mpidr = u64::from_str_radix(&cpu["cpu@".len()..], 16).ok();
                if let (Some(mpidr), Some(addr)) = (mpidr, devicetree::number(value)) {
                    if mpidr != 0 {
                        self.overflow |= self.spin_table.push((mpidr, addr as usize)).is_err();
                    }
                }
            }
            _ => {}
        }
    }

    /// Takes the banks of a `memory` node's `reg` value.
    fn memory(&mut self, reg: &[u8]) -> Result<(), RegError> {
        let cells = Cells::new(self.cells.0?, self.cells.1?)?;
        for bank in devicetree::reg(reg, cells)? {
            let bank = bank?;
            // Lossless: usize is 64 bits on aarch64.
            let bank = bank.start as usize..bank.end as usize;
            self.overflow |= self.banks.push(bank).is_err();
        }
        Ok(())
    }
}

/// `N` of the last `maxcpus=N` word in a `bootargs` value (NUL-terminated
/// text).
fn max_cpus(bootargs: &[u8]) -> Option<usize> {
    let text = core::str::from_utf8(bootargs).ok()?.trim_end_matches('\0');
    text.split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("maxcpus="))
        .filter_map(|n| n.parse().ok())
        .next_back()
}

/// Reads the device tree at `dtb` (x0 at entry).
///
/// # Safety
///
/// Call at most once (it fills a static copy of the tree).
pub unsafe fn boot_info(dtb: usize) -> Result<BootInfo, BootError> {
    let bad = |err| BootError::BadDeviceTree { addr: dtb, err };
    // SAFETY: the caller calls this once.
    let tree = DeviceTree::new(unsafe { copy_device_tree(dtb) }?).map_err(bad)?;
    let mut found = Found::new();
    tree.for_each_property(|path, name, value| found.property(path, name, value))
        .map_err(bad)?;
    // The device tree was copied, so the arena may cover the original.
    let mut reserved = Vec::new();
    for r in tree.reservations() {
        let r = r.map_err(bad)?;
        found.overflow |= reserved.push(r.start as usize..r.end as usize).is_err();
    }
    if let Some(err) = found.bad_memory {
        return Err(BootError::BadMemory(err));
    }
    if found.overflow {
        return Err(BootError::TooManyEntries);
    }
    let (Some(start), Some(end)) = (found.initrd_start, found.initrd_end) else {
        return Err(BootError::NoInitrd);
    };
    if end < start {
        return Err(BootError::BadInitrd { start, end });
    }
    let initrd = start as usize..end as usize;
    if initrd.start < image_end() {
        return Err(BootError::InitrdOverlapsImage {
            initrd: initrd.start,
            image_end: image_end(),
        });
    }
    let ram = found
        .banks
        .iter()
        .find(|r| r.start <= initrd.start && initrd.end <= r.end)
        .cloned()
        .ok_or(BootError::NoMemory {
            initrd: initrd.clone(),
        })?;
    Ok(BootInfo {
        ram,
        initrd,
        spin_table: found.spin_table,
        max_cpus: found.max_cpus,
        reserved,
    })
}

impl BootInfo {
    /// The initramfs' bytes.
    pub fn initrd_bytes(&self) -> &'static [u8] {
        // SAFETY: the initramfs lies in a RAM bank past the image (checked
        // by `boot_info`); the loader wrote it before boot and this image
        // only reads it.
        unsafe { core::slice::from_raw_parts(self.initrd.start as *const u8, self.initrd.len()) }
    }

    /// The request blob: the initramfs past the model's `model_len` bytes,
    /// from the next [`REQUEST_ALIGN`] boundary (empty if nothing follows).
    pub fn request_region(&self, model_len: usize) -> &'static [u8] {
        let initrd = self.initrd_bytes();
        &initrd[model_len.next_multiple_of(REQUEST_ALIGN).min(initrd.len())..]
    }

    /// The free RAM, for the arena: the largest free stretch
    /// of the RAM bank past the initramfs (2 MiB aligned), less the
    /// `/memreserve/` areas.
    ///
    /// # Safety
    ///
    /// Call at most once: the slice is the only reference to that memory.
    pub unsafe fn free_ram(&self) -> &'static mut [u8] {
        let mut best = 0..0;
        // Up to the next FREE_ALIGN boundary, but not past the bank's end
        // (nor past 2^64, where it would wrap).
        let align_up = |addr: usize| {
            addr.checked_next_multiple_of(FREE_ALIGN)
                .map_or(self.ram.end, |a| a.min(self.ram.end))
        };
        let mut start = align_up(self.initrd.end);
        while start < self.ram.end {
            // The first reserved area that ends past `start` and begins
            // before the bank ends bounds this stretch.
            let next = self
                .reserved
                .iter()
                .filter(|r| r.end > start && r.start < self.ram.end)
                .min_by_key(|r| r.start);
            let end = next.map_or(self.ram.end, |r| r.start.max(start));
            if end - start > best.len() {
                best = start..end;
            }
            match next {
                Some(r) => start = align_up(r.end),
                None => break,
            }
        }
        // SAFETY: `best` is RAM of the bank, past the initramfs (and so the
        // image), outside the reserved areas; the caller
        // promised this is its only user.
        unsafe { core::slice::from_raw_parts_mut(best.start as *mut u8, best.len()) }
    }
}

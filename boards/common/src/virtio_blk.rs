//! A virtio block device as the core's [`ReadAt`] (feature `virtio-blk`):
//! the model image on a disk of QEMU's `virt` machine
//! (`-drive file=model.img,if=none,format=raw,id=model,readonly=on
//! -device virtio-blk-device,drive=model`), streamed through the arena's
//! staging buffers.
//!
//! The driver is the `virtio-drivers` crate without `alloc`; this module
//! gives it what a board without a heap has:
//!
//! - the device: [`VirtioBlk::find`] looks through the device tree's
//!   `virtio,mmio` nodes (32 slots on `virt`, empty ones have device id 0)
//!   for the first block device;
//! - DMA memory: the virtqueue's rings come from a static pool of pages in
//!   `.bss` ([`DMA_PAGES`]); the data buffers (the caller's, and two
//!   sector-sized bounce buffers) are handed to the device in place. That
//!   needs RAM identity-mapped (physical = virtual address), as on both
//!   virt boards: the aarch64 image's page table maps RAM 1:1 (and the
//!   first GiB, where the virtio-mmio slots are, as device memory), the
//!   riscv64 image runs in M-mode without translation. QEMU's DMA is
//!   coherent with the CPU caches, so no cache maintenance is needed.
//!
//! Reads take any byte offset and length: the whole sectors go straight
//! into the caller's buffer in one request, a partial first or last sector
//! through a 512-byte bounce buffer (so at most three requests).
//! [`ReadAt::read_at_during`] queues them, notifies the device, runs the
//! work, and only then polls the used ring (no interrupts): QEMU reads the
//! disk on its own threads while the vCPUs compute, which is the overlap
//! of streaming with the kernels. A device error, a read past the end of
//! the disk or a driver error is [`Error::Read`] at the read's offset.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use fdt::Fdt;
use phi_edge::{Error, ReadAt, Result};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use crate::sectors::{Part, Parts};

/// Pages of the static DMA pool: the virtqueue of one device (16 entries:
/// one or two pages for the descriptor table and the rings).
pub const DMA_PAGES: usize = 4;

/// Sector size, as a `u64` for offset arithmetic.
const SECTOR: u64 = SECTOR_SIZE as u64;
const _: () = assert!(SECTOR_SIZE == crate::sectors::SECTOR_SIZE);

/// Why the block device could not be started.
#[derive(Debug)]
pub struct DiskError {
    /// The virtio-mmio slot's address.
    pub addr: usize,
    /// The driver's error.
    pub err: virtio_drivers::Error,
}

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "virtio block device at {:#x}: {}", self.addr, self.err)
    }
}

/// The pool of DMA pages, handed out once each (see [`StaticHal`]).
#[repr(C, align(4096))]
struct DmaPool(UnsafeCell<[[u8; PAGE_SIZE]; DMA_PAGES]>);

// SAFETY: pages are handed out at most once (NEXT_PAGE only grows), so no
// two users share one; the pool itself is never read or written here
// except to zero a page before handing it out.
unsafe impl Sync for DmaPool {}

static POOL: DmaPool = DmaPool(UnsafeCell::new([[0; PAGE_SIZE]; DMA_PAGES]));
/// The first page of [`POOL`] not handed out yet.
static NEXT_PAGE: AtomicUsize = AtomicUsize::new(0);

/// `virtio-drivers`' view of this machine: identity-mapped RAM, DMA pages
/// from a static pool of [`DMA_PAGES`] pages, never given back (one device
/// for the image's life).
pub struct StaticHal;

// SAFETY: `dma_alloc` returns page-aligned, zeroed pages of POOL that no
// one else uses (each page once); every address is its own physical address
// (identity-mapped RAM and MMIO, see the module docs), so `share` and
// `mmio_phys_to_virt` return addresses valid for the device and the driver.
unsafe impl Hal for StaticHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let start = NEXT_PAGE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |next| {
            next.checked_add(pages).filter(|&end| end <= DMA_PAGES)
        });
        let Ok(start) = start else {
            // Physical address 0: `Dma::new` turns it into `Error::DmaError`.
            return (0, NonNull::dangling());
        };
        let ptr = POOL.0.get().cast::<u8>().wrapping_add(start * PAGE_SIZE);
        // SAFETY: pages start..start+pages of POOL are in bounds (checked
        // above) and this caller's alone from now on.
        unsafe { ptr.write_bytes(0, pages * PAGE_SIZE) };
        match NonNull::new(ptr) {
            Some(p) => (ptr as usize as PhysAddr, p),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // The pages stay allocated: the device lives as long as the image.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport calls this; identity-mapped in any case.
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The block device: a [`ReadAt`] over its sectors.
pub struct VirtioBlk {
    dev: VirtIOBlk<StaticHal, MmioTransport<'static>>,
    /// The virtio-mmio slot's address.
    addr: usize,
    /// Bytes on the disk (whole sectors).
    size: u64,
    /// Bounce buffers for a partial first and last sector.
    bounce: [[u8; SECTOR_SIZE]; 2],
    /// The requests and responses of the reads in flight (head, middle,
    /// tail), which the device uses until they complete.
    reqs: [BlkReq; 3],
    resps: [BlkResp; 3],
}

impl VirtioBlk {
    /// The first virtio block device among the device tree's `virtio,mmio`
    /// nodes, started (`None` if there is none).
    ///
    /// Call it once: the device's queue takes pages of a static pool for
    /// good, and each slot must have one driver.
    pub fn find(fdt: &Fdt<'_>) -> core::result::Result<Option<VirtioBlk>, DiskError> {
        let slots = fdt.all_nodes().filter(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
        });
        for node in slots {
            let Some(reg) = node.reg().and_then(|mut r| r.next()) else {
                continue;
            };
            let addr = reg.starting_address as usize;
            let Some(header) = NonNull::new(addr as *mut VirtIOHeader) else {
                continue;
            };
            let len = reg.size.unwrap_or(0x200);
            // SAFETY: the device tree says a virtio-mmio register block of
            // `len` bytes is at `addr`, identity-mapped as device memory by
            // the board; each node is probed once, and only this driver
            // touches the slot.
            let Ok(transport) = (unsafe { MmioTransport::new(header, len) }) else {
                continue; // an empty slot (device id 0) or another version
            };
            if transport.device_type() != DeviceType::Block {
                continue;
            }
            let dev = VirtIOBlk::new(transport).map_err(|err| DiskError { addr, err })?;
            let size = dev.capacity().saturating_mul(SECTOR);
            return Ok(Some(VirtioBlk {
                dev,
                addr,
                size,
                bounce: [[0; SECTOR_SIZE]; 2],
                reqs: [BlkReq::default(), BlkReq::default(), BlkReq::default()],
                resps: [BlkResp::default(), BlkResp::default(), BlkResp::default()],
            }));
        }
        Ok(None)
    }

    /// The virtio-mmio slot's address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Queues the reads of `parts` (see [`Parts`]) into `buf` and the
    /// bounce buffers; returns each part's token. Stops at the first
    /// refused request (`Err` with the tokens so far, still to be waited
    /// for).
    fn submit(&mut self, parts: &Parts, buf: &mut [u8]) -> core::result::Result<Tokens, Tokens> {
        let mut tokens = [None; 3];
        for (k, part) in parts.0.iter().enumerate() {
            let Some(part) = part else { continue };
            let target = part.target(k, &mut self.bounce, buf);
            // SAFETY: `target`, `reqs[k]` and `resps[k]` are not touched
            // until `wait` completes this request: they are borrowed from
            // `self` and `buf`, which `read_at_during` holds throughout,
            // and `work` never touches `buf`.
            let token = unsafe {
                self.dev.read_blocks_nb(
                    part.sector as usize,
                    &mut self.reqs[k],
                    target,
                    &mut self.resps[k],
                )
            };
            match token {
                Ok(t) => tokens[k] = Some(t),
                Err(_) => return Err(tokens),
            }
        }
        Ok(tokens)
    }

    /// Waits for every request of `tokens`, in the order the device
    /// completes them; `true` if all read their sectors.
    fn wait(&mut self, parts: &Parts, mut tokens: Tokens, buf: &mut [u8]) -> bool {
        let mut ok = true;
        while tokens.iter().any(Option::is_some) {
            let Some(used) = self.dev.peek_used() else {
                core::hint::spin_loop();
                continue;
            };
            let Some(k) = tokens.iter().position(|&t| t == Some(used)) else {
                return false; // not ours: the queue is out of step
            };
            tokens[k] = None;
            let Some(part) = &parts.0[k] else {
                return false;
            };
            let target = part.target(k, &mut self.bounce, buf);
            // SAFETY: the same buffers as `submit` queued for part `k`.
            let done = unsafe {
                self.dev
                    .complete_read_blocks(used, &self.reqs[k], target, &mut self.resps[k])
            };
            ok &= done.is_ok();
        }
        ok
    }
}

/// The queue tokens of the (head, middle, tail) requests in flight.
type Tokens = [Option<u16>; 3];

impl ReadAt for VirtioBlk {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read_at_during(offset, buf, &mut || {})
    }

    fn read_at_during(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size);
        let (Some(end), false) = (end, buf.is_empty()) else {
            work();
            return if buf.is_empty() {
                Ok(())
            } else {
                Err(Error::Read { offset })
            };
        };
        let parts = Parts::new(offset, end);
        let (tokens, submitted) = match self.submit(&parts, buf) {
            Ok(t) => (t, true),
            Err(t) => (t, false),
        };
        work();
        if !(self.wait(&parts, tokens, buf) && submitted) {
            return Err(Error::Read { offset });
        }
        for (k, part) in parts.0.iter().enumerate() {
            if let Some(Part {
                bounce: Some(from),
                at,
                ..
            }) = part
            {
                buf[at.clone()].copy_from_slice(&self.bounce[k / 2][from.clone()]);
            }
        }
        Ok(())
    }
}

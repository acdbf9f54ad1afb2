//! Weight sources: where the decoder gets tensor bytes from.
//!
//! - [`Mapped`]: the image is addressable (XIP flash, RAM, `mmap`); kernels
//!   read weights in place, zero copy.
//! - [`Streamed`]: the image is on a block device ([`ReadAt`]: SPI NOR, SD
//!   card, a file); rows are read in chunks into staging buffers in the
//!   arena. The decoder alternates two staging buffers: while the kernels
//!   work on one, the next chunk is read into the other
//!   ([`ReadAt::read_at_during`]), so a device that reads in the background
//!   (a DMA queue, a reader thread) overlaps reading with compute.
//! - `NorFlash` (feature `embedded-storage`): a [`ReadAt`] over any
//!   `embedded-storage` `ReadNorFlash` device, for [`Streamed`].

use crate::error::{Error, Result};

#[cfg(feature = "embedded-storage")]
pub mod nor_flash;
#[cfg(feature = "embedded-storage")]
pub use nor_flash::NorFlash;

/// A device that reads bytes at an offset (a flash chip, an SD card, a
/// file).
pub trait ReadAt {
    /// Total bytes on the device.
    fn size(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`. Fails with
    /// [`Error::Read`] on a device error or a read past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Fills `buf` with the bytes at `offset` while `work` runs, and
    /// returns once both are done.
    ///
    /// A device that can read in the background (a request on a DMA
    /// queue, a reader thread) starts the read, runs `work`, then waits
    /// for it: that is the overlap of streaming with compute. `work` never
    /// touches `buf`. The default runs `work`, then reads.
    fn read_at_during(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> Result<()> {
        work();
        self.read_at(offset, buf)
    }
}

impl<R: ReadAt + ?Sized> ReadAt for &mut R {
    fn size(&self) -> u64 {
        (**self).size()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }

    fn read_at_during(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> Result<()> {
        (**self).read_at_during(offset, buf, work)
    }
}

impl ReadAt for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(buf.len())?))
            .ok_or(Error::Read { offset })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Where the decoder gets tensor bytes.
pub trait WeightSource {
    /// Whether [`bytes`](Self::bytes) returns memory in place (no staging
    /// buffers needed).
    fn is_mapped(&self) -> bool;

    /// The `len` bytes at absolute image `offset`: in place for a mapped
    /// source, otherwise read into the front of `staging` (which must hold
    /// `len` bytes).
    fn bytes<'s>(&'s mut self, offset: u64, len: usize, staging: &'s mut [u8]) -> Result<&'s [u8]>;

    /// Reads `staging.len()` bytes at absolute image `offset` into
    /// `staging` while `work` runs (see [`ReadAt::read_at_during`]). Only
    /// called on streamed sources; a mapped source just runs `work`.
    fn fetch_during(
        &mut self,
        offset: u64,
        staging: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> Result<()> {
        let _ = (offset, staging);
        work();
        Ok(())
    }
}

/// An image in addressable memory.
#[derive(Clone, Copy, Debug)]
pub struct Mapped<'a>(pub &'a [u8]);

impl WeightSource for Mapped<'_> {
    fn is_mapped(&self) -> bool {
        true
    }

    fn bytes<'s>(
        &'s mut self,
        offset: u64,
        len: usize,
        _staging: &'s mut [u8],
    ) -> Result<&'s [u8]> {
        usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get(o..o.checked_add(len)?))
            .ok_or(Error::Read { offset })
    }
}

/// An image on a block device, read into staging buffers.
#[derive(Debug)]
pub struct Streamed<R>(pub R);

impl<R: ReadAt> WeightSource for Streamed<R> {
    fn is_mapped(&self) -> bool {
        false
    }

    fn bytes<'s>(&'s mut self, offset: u64, len: usize, staging: &'s mut [u8]) -> Result<&'s [u8]> {
        let got = staging.len();
        let buf = staging
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { need: len, got })?;
        self.0.read_at(offset, buf)?;
        Ok(buf)
    }

    fn fetch_during(
        &mut self,
        offset: u64,
        staging: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> Result<()> {
        self.0.read_at_during(offset, staging, work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_reads_are_errors() {
        let data = [1u8, 2, 3, 4];
        let mut m = Mapped(&data);
        let mut st = [0u8; 4];
        assert_eq!(m.bytes(1, 3, &mut st).unwrap(), &[2, 3, 4]);
        assert_eq!(m.bytes(2, 3, &mut st), Err(Error::Read { offset: 2 }));
        assert_eq!(
            m.bytes(u64::MAX, 1, &mut st),
            Err(Error::Read { offset: u64::MAX })
        );
        let mut s = Streamed(&data[..]);
        assert_eq!(s.bytes(0, 2, &mut st).unwrap(), &[1, 2]);
        assert!(s.bytes(3, 2, &mut st).is_err());
        assert!(s.bytes(0, 8, &mut st).is_err());
    }
}

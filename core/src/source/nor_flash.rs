//! [`NorFlash`]: a [`ReadAt`] over any `embedded-storage`
//! [`ReadNorFlash`] (feature `embedded-storage`), so an image on SPI / QSPI
//! NOR or on-chip flash streams through [`Streamed`](super::Streamed):
//!
//! ```ignore
//! let source = phi_edge::Streamed(phi_edge::NorFlash(flash));
//! ```
//!
//! `ReadNorFlash::read` wants an offset and a length that are multiples of
//! the device's `READ_SIZE`; the decoder's reads are not (a tensor row
//! starts anywhere). [`NorFlash`] reads the aligned middle of a request
//! straight into the caller's buffer and the unaligned head and tail, one
//! `READ_SIZE` unit each, through a bounce buffer of [`MAX_READ_SIZE`]
//! bytes on the stack: at most three device reads per call, no alignment
//! demand on the caller. A device whose `READ_SIZE` is 0 or above
//! [`MAX_READ_SIZE`] does not compile.
//!
//! Errors are the core's [`Error::Read`] with the requested offset, as the
//! [`ReadAt`] contract says: a read past the device's capacity, past the
//! 4 GiB that `ReadNorFlash`'s `u32` offsets address, or that the device
//! reports failed. A device whose capacity is not a multiple of
//! `READ_SIZE` cannot give its last partial unit; a read of it fails the
//! same way.

use embedded_storage::nor_flash::ReadNorFlash;

use super::ReadAt;
use crate::error::{Error, Result};

/// The largest `READ_SIZE` [`NorFlash`] supports: the size of its bounce
/// buffer on the stack.
pub const MAX_READ_SIZE: usize = 256;

/// An image on a NOR flash device, read through `embedded-storage`'s
/// [`ReadNorFlash`]; offsets are the device's (the image starts at 0).
#[derive(Debug)]
pub struct NorFlash<F>(pub F);

impl<F: ReadNorFlash> NorFlash<F> {
    /// `READ_SIZE`, checked at compile time against the bounce buffer.
    const UNIT: usize = {
        assert!(
            F::READ_SIZE >= 1 && F::READ_SIZE <= MAX_READ_SIZE,
            "phi_edge::NorFlash supports READ_SIZE 1..=MAX_READ_SIZE"
        );
        F::READ_SIZE
    };

    /// Reads the `READ_SIZE` unit at `start` (aligned) into the bounce
    /// buffer and copies its bytes from `skip` on into `out`, as many as
    /// fit; returns how many. A device error is `err`.
    fn read_unit(&mut self, start: u32, skip: usize, out: &mut [u8], err: Error) -> Result<usize> {
        let mut bounce = [0u8; MAX_READ_SIZE];
        let unit = &mut bounce[..Self::UNIT];
        self.0.read(start, unit).map_err(|_| err)?;
        let n = out.len().min(Self::UNIT - skip);
        out[..n].copy_from_slice(&unit[skip..skip + n]);
        Ok(n)
    }
}

impl<F: ReadNorFlash> ReadAt for NorFlash<F> {
    fn size(&self) -> u64 {
        self.0.capacity() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let err = Error::Read { offset };
        let unit = Self::UNIT;
        let end = offset.checked_add(buf.len() as u64).ok_or(err)?;
        if end > self.size() || end > 1 << 32 {
            return Err(err);
        }
        // Every position below `end` fits in a u32 from here on.
        let mut pos = offset as u32;
        let mut out = buf;
        while !out.is_empty() {
            let skip = pos as usize % unit;
            let n = if skip == 0 && out.len() >= unit {
                // The aligned middle: straight into the caller's buffer.
                let n = out.len() - out.len() % unit;
                self.0.read(pos, &mut out[..n]).map_err(|_| err)?;
                n
            } else {
                // An unaligned head, or a tail shorter than a unit.
                self.read_unit(pos - skip as u32, skip, out, err)?
            };
            out = &mut out[n..];
            // At most `end`, which is at most 2^32: wraps only to 0 at the
            // very end, after the last byte.
            pos = pos.wrapping_add(n as u32);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, NorFlashError, NorFlashErrorKind};

    /// A flash of `N` bytes (byte `i` is `i * 7 + 3`) with read size `R`
    /// that rejects misaligned and out-of-range reads, as real drivers do,
    /// and fails every read that touches `bad`.
    struct Mock<const R: usize, const N: usize> {
        data: [u8; N],
        reads: usize,
        bad: Option<u32>,
    }

    impl<const R: usize, const N: usize> Mock<R, N> {
        fn new() -> Self {
            Mock {
                data: core::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3)),
                reads: 0,
                bad: None,
            }
        }
    }

    #[derive(Debug)]
    struct MockError(NorFlashErrorKind);

    impl NorFlashError for MockError {
        fn kind(&self) -> NorFlashErrorKind {
            self.0
        }
    }

    impl<const R: usize, const N: usize> ErrorType for Mock<R, N> {
        type Error = MockError;
    }

    impl<const R: usize, const N: usize> ReadNorFlash for Mock<R, N> {
        const READ_SIZE: usize = R;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> core::result::Result<(), MockError> {
            let o = offset as usize;
            if o % R != 0 || bytes.len() % R != 0 {
                return Err(MockError(NorFlashErrorKind::NotAligned));
            }
            if o + bytes.len() > N {
                return Err(MockError(NorFlashErrorKind::OutOfBounds));
            }
            if self
                .bad
                .is_some_and(|b| (o..o + bytes.len()).contains(&(b as usize)))
            {
                return Err(MockError(NorFlashErrorKind::Other));
            }
            self.reads += 1;
            bytes.copy_from_slice(&self.data[o..o + bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            N
        }
    }

    /// Every (offset, length) inside the device reads the right bytes, in
    /// at most three device reads.
    fn every_window<const R: usize>() {
        let mut f = NorFlash(Mock::<R, 40>::new());
        assert_eq!(f.size(), 40);
        let want = f.0.data;
        for offset in 0..=40 {
            for len in 0..=40 - offset {
                let mut buf = [0u8; 40];
                f.0.reads = 0;
                f.read_at(offset as u64, &mut buf[..len]).unwrap();
                assert_eq!(
                    &buf[..len],
                    &want[offset..offset + len],
                    "offset {offset} len {len}"
                );
                assert!(
                    f.0.reads <= 3,
                    "offset {offset} len {len}: {} reads",
                    f.0.reads
                );
            }
        }
    }

    #[test]
    fn reads_any_window_at_read_size_1() {
        every_window::<1>();
    }

    #[test]
    fn reads_any_window_at_read_size_4() {
        every_window::<4>();
    }

    #[test]
    fn aligned_reads_go_straight_to_the_buffer() {
        let mut f = NorFlash(Mock::<4, 40>::new());
        let mut buf = [0u8; 32];
        f.read_at(8, &mut buf).unwrap();
        assert_eq!(f.0.reads, 1);
        assert_eq!(buf[..], f.0.data[8..40]);
    }

    #[test]
    fn out_of_range_reads_are_errors() {
        let mut one = NorFlash(Mock::<1, 40>::new());
        let mut four = NorFlash(Mock::<4, 40>::new());
        let mut buf = [0u8; 8];
        for (offset, len) in [
            (33, 8),
            (40, 1),
            (41, 0),
            (u32::MAX as u64, 1),
            (1 << 32, 0),
            (u64::MAX, 8),
        ] {
            let want = Err(Error::Read { offset });
            assert_eq!(
                one.read_at(offset, &mut buf[..len]),
                want,
                "offset {offset} len {len}"
            );
            assert_eq!(
                four.read_at(offset, &mut buf[..len]),
                want,
                "offset {offset} len {len}"
            );
        }
        assert_eq!(one.0.reads + four.0.reads, 0);
        // Up to the last byte is fine.
        assert!(four.read_at(39, &mut buf[..1]).is_ok());
        assert!(four.read_at(40, &mut buf[..0]).is_ok());
    }

    #[test]
    fn device_errors_are_read_errors_at_the_requested_offset() {
        let mut f = NorFlash(Mock::<4, 40>::new());
        f.0.bad = Some(21);
        let mut buf = [0u8; 16];
        // Head (unit 16..20), middle (20..24) and tail (24..28): the middle fails.
        assert_eq!(
            f.read_at(17, &mut buf[..10]),
            Err(Error::Read { offset: 17 })
        );
        assert!(f.read_at(0, &mut buf[..16]).is_ok());
        // A tail shorter than a unit, in the unit that holds the bad byte.
        assert_eq!(
            f.read_at(12, &mut buf[..10]),
            Err(Error::Read { offset: 12 })
        );
    }

    #[test]
    fn streams_through_streamed() {
        use crate::source::{Streamed, WeightSource};
        let mut s = Streamed(NorFlash(Mock::<4, 40>::new()));
        let mut staging = [0u8; 16];
        let want = s.0 .0.data;
        assert_eq!(s.bytes(5, 11, &mut staging).unwrap(), &want[5..16]);
    }
}

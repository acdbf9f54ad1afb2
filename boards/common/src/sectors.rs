//! A byte range of a block device as whole-sector reads: the arithmetic
//! of `virtio_blk` (feature `virtio-blk`), kept apart so that the host
//! tests check it without the feature.

use core::ops::Range;

/// Bytes per sector.
pub(crate) const SECTOR_SIZE: usize = 512;
/// [`SECTOR_SIZE`] as a `u64`, for offsets.
const SECTOR: u64 = SECTOR_SIZE as u64;

/// One request of a read: whole sectors from `sector`, into `buf[at]` or
/// (a partial sector) into a bounce buffer, whose bytes `bounce` go to
/// `buf[at]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) sector: u64,
    pub(crate) at: Range<usize>,
    pub(crate) bounce: Option<Range<usize>>,
}

impl Part {
    /// Where the device writes part `k`: bounce buffer 0 (head) or 1
    /// (tail), or the caller's buffer.
    pub(crate) fn target<'b>(
        &self,
        k: usize,
        bounce: &'b mut [[u8; SECTOR_SIZE]; 2],
        buf: &'b mut [u8],
    ) -> &'b mut [u8] {
        match self.bounce {
            Some(_) => &mut bounce[k / 2],
            None => &mut buf[self.at.clone()],
        }
    }
}

/// A byte range of the disk as up to three requests: the partial first
/// sector, the whole sectors, the partial last sector.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parts(pub(crate) [Option<Part>; 3]);

impl Parts {
    /// The requests for bytes `offset..end` (`offset < end`).
    pub(crate) fn new(offset: u64, end: u64) -> Parts {
        let idx = |b: u64| (b - offset) as usize;
        let mut lo = offset.div_ceil(SECTOR);
        let mut hi = end / SECTOR;
        let head = (offset % SECTOR != 0).then(|| {
            let s = offset / SECTOR;
            let stop = end.min((s + 1) * SECTOR);
            lo = lo.max(s + 1);
            Part {
                sector: s,
                at: 0..idx(stop),
                bounce: Some((offset - s * SECTOR) as usize..(stop - s * SECTOR) as usize),
            }
        });
        let tail = (end % SECTOR != 0 && end / SECTOR >= lo).then(|| {
            let s = end / SECTOR;
            hi = hi.min(s);
            Part {
                sector: s,
                at: idx(s * SECTOR)..idx(end),
                bounce: Some(0..(end - s * SECTOR) as usize),
            }
        });
        let middle = (hi > lo).then(|| Part {
            sector: lo,
            at: idx(lo * SECTOR)..idx(hi * SECTOR),
            bounce: None,
        });
        Parts([head, middle, tail])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::{Part, Parts, SECTOR};

    /// Reassembles the bytes `offset..end` of a disk whose byte `i` is
    /// `i as u8` from the parts, as the reads and bounce copies would.
    fn read(offset: u64, end: u64) -> Vec<u8> {
        let parts = Parts::new(offset, end);
        let mut buf = std::vec![0xEEu8; (end - offset) as usize];
        let mut covered = 0;
        for part in parts.0.iter().flatten() {
            let sector: Vec<u8> = (0..SECTOR * 8)
                .map(|i| (part.sector * SECTOR + i) as u8)
                .collect();
            let src = match &part.bounce {
                Some(r) => {
                    assert!(r.end <= SECTOR as usize);
                    &sector[r.clone()]
                }
                None => &sector[..part.at.len()],
            };
            buf[part.at.clone()].copy_from_slice(src);
            covered += part.at.len();
        }
        assert_eq!(
            covered,
            buf.len(),
            "{offset}..{end}: parts overlap or leave gaps"
        );
        buf
    }

    #[test]
    fn any_offset_and_length_reads_the_right_bytes() {
        for offset in [0, 1, 63, 511, 512, 513, 1000, 1024] {
            for len in [1, 2, 64, 511, 512, 513, 1023, 1024, 1536, 2047] {
                let want: Vec<u8> = (offset..offset + len).map(|i| i as u8).collect();
                assert_eq!(
                    read(offset, offset + len),
                    want,
                    "offset {offset}, len {len}"
                );
            }
        }
    }

    #[test]
    fn aligned_reads_need_no_bounce() {
        let parts = Parts::new(1024, 4096);
        assert_eq!(
            parts.0,
            [
                None,
                Some(Part {
                    sector: 2,
                    at: 0..3072,
                    bounce: None
                }),
                None
            ]
        );
        let inside = Parts::new(10, 20);
        assert_eq!(
            inside.0[0],
            Some(Part {
                sector: 0,
                at: 0..10,
                bounce: Some(10..20)
            })
        );
        assert!(inside.0[1].is_none() && inside.0[2].is_none());
    }
}

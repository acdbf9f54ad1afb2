//! A flattened device tree reader (portable code, no MMIO): the header,
//! the memory reservation block, a walk over every property with its
//! node's path, and the decoding of `reg` values into address ranges.
//!
//! Written for the boards rather than taken from the `fdt` crate, whose
//! 0.1 parser panics on the NOP tokens QEMU leaves where its `raspi4b`
//! machine removed nodes from the tree it was given. Every function takes
//! the blob as a `&[u8]` and checks offsets, lengths and sums: a malformed
//! tree is an error, never a panic, a wrapped address or an endless loop.

use core::fmt;
use core::ops::Range;
use core::slice::ChunksExact;

use heapless::Vec;

/// The device tree magic.
const MAGIC: u32 = 0xd00d_feed;
/// Bytes of the header this reader uses (the first seven fields).
const HEADER_BYTES: usize = 28;
/// Structure block tokens.
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Deepest node path the walk tracks (the root is level 1).
const MAX_DEPTH: usize = 16;
/// Most cells an address or a size may take here: two, 64 bits.
const MAX_CELLS: u32 = 2;

/// Why a device tree was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// The blob does not start with the device tree magic.
    BadMagic,
    /// An offset or length points past the blob.
    Truncated,
    /// An unknown token, or one where it does not belong.
    BadStructure,
    /// Nodes nest deeper than the reader tracks.
    TooDeep,
    /// A memory reservation whose end is past the 64-bit address space.
    BadReservation {
        /// Its address.
        addr: u64,
        /// Its size.
        size: u64,
    },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::BadMagic => f.write_str("no device tree magic (0xd00dfeed)"),
            TreeError::Truncated => f.write_str("an offset or a length points past the blob"),
            TreeError::BadStructure => f.write_str("the structure block is malformed"),
            TreeError::TooDeep => write!(f, "nodes nest deeper than {MAX_DEPTH} levels"),
            TreeError::BadReservation { addr, size } => write!(
                f,
                "the /memreserve/ area at {addr:#x} of {size:#x} bytes ends past the 64-bit address space"
            ),
        }
    }
}

/// Why a `reg` value, or the cell counts that say how to read it, was
/// rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// A `#address-cells` or `#size-cells` value that is not one 32-bit
    /// cell.
    BadCellCount {
        /// The value's length in bytes.
        len: usize,
    },
    /// `#address-cells` or `#size-cells` of 0 or more than 2: an address
    /// or size this reader cannot hold in 64 bits, or none at all.
    UnsupportedCells {
        /// `#address-cells`.
        address: u32,
        /// `#size-cells`.
        size: u32,
    },
    /// A `reg` value whose length is not a whole number of entries.
    Ragged {
        /// The value's length in bytes.
        len: usize,
        /// Bytes of one entry (address and size).
        entry: usize,
    },
    /// An entry whose end is past the 64-bit address space.
    Overflow {
        /// Its address.
        start: u64,
        /// Its size.
        size: u64,
    },
    /// An entry of size 0.
    Empty {
        /// Its address.
        start: u64,
    },
}

impl fmt::Display for RegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegError::BadCellCount { len } => write!(
                f,
                "a #address-cells or #size-cells value of {len} bytes (one 4-byte cell expected)"
            ),
            RegError::UnsupportedCells { address, size } => write!(
                f,
                "#address-cells {address} and #size-cells {size}: each must be 1 or 2"
            ),
            RegError::Ragged { len, entry } => write!(
                f,
                "a reg value of {len} bytes, not a whole number of {entry}-byte entries"
            ),
            RegError::Overflow { start, size } => write!(
                f,
                "the reg entry at {start:#x} of {size:#x} bytes ends past the 64-bit address space"
            ),
            RegError::Empty { start } => write!(f, "the reg entry at {start:#x} has size 0"),
        }
    }
}

/// A device tree blob.
pub struct DeviceTree<'a> {
    blob: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
    reservations: usize,
}

/// The `len` bytes of `bytes` at `off`.
fn bytes_at(bytes: &[u8], off: usize, len: usize) -> Result<&[u8], TreeError> {
    let end = off.checked_add(len).ok_or(TreeError::Truncated)?;
    bytes.get(off..end).ok_or(TreeError::Truncated)
}

/// The big-endian u32 at `off`.
fn be32(bytes: &[u8], off: usize) -> Result<u32, TreeError> {
    let b = bytes_at(bytes, off, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The big-endian u64 at `off`.
fn be64(bytes: &[u8], off: usize) -> Result<u64, TreeError> {
    let low = off.checked_add(4).ok_or(TreeError::Truncated)?;
    Ok(u64::from(be32(bytes, off)?) << 32 | u64::from(be32(bytes, low)?))
}

/// The NUL-terminated string at the start of `bytes` (not UTF-8: empty).
fn c_str(bytes: &[u8]) -> Result<&str, TreeError> {
    let len = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or(TreeError::Truncated)?;
    Ok(core::str::from_utf8(&bytes[..len]).unwrap_or(""))
}

/// A value of one or two big-endian cells, e.g. `linux,initrd-start` or
/// one half of a `reg` entry; `None` for any other length.
pub fn number(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => be32(value, 0).ok().map(u64::from),
        8 => be64(value, 0).ok(),
        _ => None,
    }
}

/// The value of a `#address-cells` or `#size-cells` property: one cell.
pub fn cell_count(value: &[u8]) -> Result<u32, RegError> {
    match value {
        &[a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(RegError::BadCellCount { len: value.len() }),
    }
}

/// Whether a node named `name` (a child of the root) describes RAM:
/// `memory` or `memory@<unit address>`.
pub fn is_memory_node(name: &str) -> bool {
    name == "memory" || name.starts_with("memory@")
}

/// How a `reg` value is laid out: the cells (32-bit words) of an entry's
/// address and of its size, the parent node's `#address-cells` and
/// `#size-cells`. Both are 1 or 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cells {
    address: u32,
    size: u32,
}

impl Cells {
    /// The layout `#address-cells` = `address`, `#size-cells` = `size`;
    /// refused unless both are 1 or 2.
    pub fn new(address: u32, size: u32) -> Result<Cells, RegError> {
        let ok = |n| (1..=MAX_CELLS).contains(&n);
        if ok(address) && ok(size) {
            Ok(Cells { address, size })
        } else {
            Err(RegError::UnsupportedCells { address, size })
        }
    }

    /// Bytes of an entry's address.
    fn address_len(self) -> usize {
        4 * self.address as usize
    }

    /// Bytes of one entry: address and size.
    pub fn entry_len(self) -> usize {
        4 * (self.address + self.size) as usize
    }
}

/// The entries of a `reg` value, as address ranges: each is checked when
/// it is reached (its end must not pass 2^64, its size must not be 0).
pub struct Reg<'a> {
    entries: ChunksExact<'a, u8>,
    cells: Cells,
}

/// The entries of the `reg` value `value`, laid out as `cells` says;
/// refused if its length is not a whole number of entries.
pub fn reg(value: &[u8], cells: Cells) -> Result<Reg<'_>, RegError> {
    let entry = cells.entry_len();
    if value.len() % entry != 0 {
        return Err(RegError::Ragged {
            len: value.len(),
            entry,
        });
    }
    Ok(Reg {
        entries: value.chunks_exact(entry),
        cells,
    })
}

impl Iterator for Reg<'_> {
    type Item = Result<Range<u64>, RegError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.entries.next()?;
        let (address, size) = entry.split_at(self.cells.address_len());
        // Each half is 4 or 8 bytes: `Cells` holds 1 or 2 cells each.
        let (start, size) = (number(address)?, number(size)?);
        Some(if size == 0 {
            Err(RegError::Empty { start })
        } else {
            start
                .checked_add(size)
                .map(|end| start..end)
                .ok_or(RegError::Overflow { start, size })
        })
    }
}

/// The total size a device tree's header declares, from its first eight
/// bytes (magic, size).
pub fn declared_size(head: [u8; 8]) -> Result<usize, TreeError> {
    if be32(&head, 0)? != MAGIC {
        return Err(TreeError::BadMagic);
    }
    Ok(be32(&head, 4)? as usize)
}

impl<'a> DeviceTree<'a> {
    /// Checks the header of the tree in `blob`.
    pub fn new(blob: &'a [u8]) -> Result<DeviceTree<'a>, TreeError> {
        if be32(blob, 0)? != MAGIC {
            return Err(TreeError::BadMagic);
        }
        let field = |i: usize| be32(blob, 4 * i).map(|v| v as usize);
        if blob.len() < HEADER_BYTES || field(1)? > blob.len() {
            return Err(TreeError::Truncated);
        }
        let block = |off: usize| blob.get(off..).ok_or(TreeError::Truncated);
        // Header fields: 2 structure offset, 3 strings offset, 4 memory
        // reservation offset; each block is read up to the end of the
        // blob (older trees have no block sizes).
        Ok(DeviceTree {
            blob,
            structs: block(field(2)?)?,
            strings: block(field(3)?)?,
            reservations: field(4)?,
        })
    }

    /// The memory reservation block's areas (`/memreserve/`), up to the
    /// terminating entry (size 0) or the first error.
    pub fn reservations(&self) -> impl Iterator<Item = Result<Range<u64>, TreeError>> + '_ {
        let mut next = Some(self.reservations);
        core::iter::from_fn(move || {
            let off = next?;
            let entry = self.reservation(off);
            next = match entry {
                Ok(Some(_)) => off.checked_add(16),
                _ => None,
            };
            entry.transpose()
        })
    }

    /// The reservation entry at `off`: `None` for the terminating one.
    fn reservation(&self, off: usize) -> Result<Option<Range<u64>>, TreeError> {
        let size_off = off.checked_add(8).ok_or(TreeError::Truncated)?;
        let (addr, size) = (be64(self.blob, off)?, be64(self.blob, size_off)?);
        if size == 0 {
            return Ok(None);
        }
        addr.checked_add(size)
            .map(|end| Some(addr..end))
            .ok_or(TreeError::BadReservation { addr, size })
    }

    /// Calls `f(path, name, value)` for every property, in order; `path`
    /// holds the node names from the root (whose name is empty) down.
    pub fn for_each_property(
        &self,
        mut f: impl FnMut(&[&'a str], &'a str, &'a [u8]),
    ) -> Result<(), TreeError> {
        let s = self.structs;
        let mut path: Vec<&'a str, MAX_DEPTH> = Vec::new();
        let mut off = 0;
        loop {
            let token = be32(s, off)?;
            off += 4;
            match token {
                BEGIN_NODE => {
                    let name = c_str(s.get(off..).ok_or(TreeError::Truncated)?)?;
                    path.push(name).map_err(|_| TreeError::TooDeep)?;
                    off = (off + name.len() + 1).next_multiple_of(4);
                }
                END_NODE => {
                    path.pop().ok_or(TreeError::BadStructure)?;
                }
                PROP => {
                    let len = be32(s, off)? as usize;
                    let name_off = be32(s, off + 4)? as usize;
                    let value = bytes_at(s, off + 8, len)?;
                    let name = c_str(self.strings.get(name_off..).ok_or(TreeError::Truncated)?)?;
                    if path.is_empty() {
                        return Err(TreeError::BadStructure);
                    }
                    f(&path, name, value);
                    off = (off + 8 + len).next_multiple_of(4);
                }
                NOP => {}
                END if path.is_empty() => return Ok(()),
                _ => return Err(TreeError::BadStructure),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    /// Big-endian cells.
    fn be(cells: &[u32]) -> Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    /// The root's default layout: `#address-cells` 2, `#size-cells` 1.
    const CELLS_2_1: Cells = Cells {
        address: 2,
        size: 1,
    };

    /// The decoded entries of `value`, or the first error.
    fn ranges(value: &[u8], cells: Cells) -> Result<Vec<Range<u64>>, RegError> {
        reg(value, cells)?.collect()
    }

    /// A device tree blob (version 17), built token by token.
    #[derive(Default)]
    struct Builder {
        reservations: Vec<(u64, u64)>,
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn token(&mut self, t: u32) -> &mut Self {
            self.structs.extend(t.to_be_bytes());
            self
        }

        fn pad(&mut self) {
            self.structs
                .resize(self.structs.len().next_multiple_of(4), 0);
        }

        fn begin(&mut self, name: &str) -> &mut Self {
            self.token(BEGIN_NODE);
            self.structs.extend(name.as_bytes());
            self.structs.push(0);
            self.pad();
            self
        }

        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_off = self.strings.len() as u32;
            self.strings.extend(name.as_bytes());
            self.strings.push(0);
            self.token(PROP).token(value.len() as u32).token(name_off);
            self.structs.extend(value);
            self.pad();
            self
        }

        fn blob(&self) -> Vec<u8> {
            let rsv_off = 40;
            let rsv_len = 16 * (self.reservations.len() + 1);
            let struct_off = rsv_off + rsv_len;
            let strings_off = struct_off + self.structs.len();
            let total = strings_off + self.strings.len();
            let mut b = be(&[
                MAGIC,
                total as u32,
                struct_off as u32,
                strings_off as u32,
                rsv_off as u32,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ]);
            for &(addr, size) in self.reservations.iter().chain([&(0, 0)]) {
                b.extend(addr.to_be_bytes());
                b.extend(size.to_be_bytes());
            }
            b.extend(&self.structs);
            b.extend(&self.strings);
            b
        }
    }

    /// A tree like the Pi's: root cells 2 and 1, a NOP where QEMU removed
    /// a node, two RAM banks, `/chosen`.
    fn pi_like() -> Builder {
        let mut t = Builder {
            reservations: std::vec![(0, 0x1000)],
            ..Builder::default()
        };
        t.begin("")
            .prop("#address-cells", &be(&[2]))
            .prop("#size-cells", &be(&[1]))
            .token(NOP)
            .begin("memory@0")
            .prop("device_type", b"memory\0")
            .prop(
                "reg",
                &be(&[0, 0, 0x3c00_0000, 0, 0x4000_0000, 0x4000_0000]),
            )
            .token(END_NODE)
            .begin("chosen")
            .prop("linux,initrd-start", &be(&[0x0800_0000]))
            .token(END_NODE)
            .token(END_NODE)
            .token(END);
        t
    }

    #[test]
    fn cells_are_one_or_two() {
        assert_eq!(Cells::new(2, 1), Ok(CELLS_2_1));
        assert_eq!(CELLS_2_1.entry_len(), 12);
        assert_eq!(Cells::new(1, 1).map(Cells::entry_len), Ok(8));
        assert_eq!(Cells::new(2, 2).map(Cells::entry_len), Ok(16));
        for (address, size) in [(0, 1), (2, 0), (0, 0), (3, 1), (1, 3), (u32::MAX, 1)] {
            assert_eq!(
                Cells::new(address, size),
                Err(RegError::UnsupportedCells { address, size })
            );
        }
    }

    #[test]
    fn a_cell_count_is_one_cell() {
        assert_eq!(cell_count(&be(&[2])), Ok(2));
        assert_eq!(cell_count(&[]), Err(RegError::BadCellCount { len: 0 }));
        assert_eq!(
            cell_count(&be(&[0, 2])),
            Err(RegError::BadCellCount { len: 8 })
        );
    }

    #[test]
    fn reg_reads_entries_of_the_given_cells() {
        let value = be(&[0, 0, 0x3c00_0000, 1, 0, 0x1000]);
        assert_eq!(
            ranges(&value, CELLS_2_1),
            Ok(std::vec![0..0x3c00_0000, 0x1_0000_0000..0x1_0000_1000])
        );
        let one = Cells::new(1, 1).unwrap();
        assert_eq!(
            ranges(&be(&[0x8000_0000, 0x4000_0000]), one),
            Ok(std::vec![0x8000_0000..0xc000_0000])
        );
        let two = Cells::new(2, 2).unwrap();
        assert_eq!(
            ranges(&be(&[1, 0, 1, 0]), two),
            Ok(std::vec![0x1_0000_0000..0x2_0000_0000])
        );
        assert_eq!(ranges(&[], CELLS_2_1), Ok(std::vec![]));
    }

    #[test]
    fn reg_refuses_a_partial_entry() {
        // Cells 2 and 1: 12-byte entries; 16 bytes is one and a third.
        assert_eq!(
            ranges(&be(&[0, 0, 0x1000, 0]), CELLS_2_1).err(),
            Some(RegError::Ragged { len: 16, entry: 12 })
        );
        assert_eq!(
            ranges(&[0; 7], Cells::new(1, 1).unwrap()).err(),
            Some(RegError::Ragged { len: 7, entry: 8 })
        );
    }

    #[test]
    fn reg_refuses_a_range_past_the_address_space() {
        let value = be(&[
            0xffff_ffff,
            0xffff_f000,
            0x1000,
            0xffff_ffff,
            0xffff_f000,
            0x1001,
        ]);
        let mut entries = reg(&value, CELLS_2_1).unwrap();
        // Ends at 2^64 exactly: the end does not fit in a u64 either.
        assert_eq!(
            entries.next(),
            Some(Err(RegError::Overflow {
                start: 0xffff_ffff_ffff_f000,
                size: 0x1000
            }))
        );
        assert_eq!(
            entries.next(),
            Some(Err(RegError::Overflow {
                start: 0xffff_ffff_ffff_f000,
                size: 0x1001
            }))
        );
        let two = Cells::new(2, 2).unwrap();
        assert_eq!(
            ranges(&be(&[0, 1, u32::MAX, u32::MAX]), two),
            Err(RegError::Overflow {
                start: 1,
                size: u64::MAX
            })
        );
    }

    #[test]
    fn reg_refuses_an_empty_range() {
        assert_eq!(
            ranges(&be(&[0, 0x8000_0000, 0]), CELLS_2_1),
            Err(RegError::Empty { start: 0x8000_0000 })
        );
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            RegError::UnsupportedCells {
                address: 0,
                size: 1
            }
            .to_string(),
            "#address-cells 0 and #size-cells 1: each must be 1 or 2"
        );
        assert_eq!(
            RegError::Ragged { len: 16, entry: 12 }.to_string(),
            "a reg value of 16 bytes, not a whole number of 12-byte entries"
        );
    }

    #[test]
    fn the_walk_finds_the_memory_banks() {
        let blob = pi_like().blob();
        let tree = DeviceTree::new(&blob).unwrap();
        let (mut cells, mut banks, mut initrd) = ((2, 1), Vec::new(), None);
        tree.for_each_property(|path, name, value| match (path, name) {
            ([_], "#address-cells") => cells.0 = cell_count(value).unwrap(),
            ([_], "#size-cells") => cells.1 = cell_count(value).unwrap(),
            ([_, node], "reg") if is_memory_node(node) => {
                let cells = Cells::new(cells.0, cells.1).unwrap();
                banks.extend(reg(value, cells).unwrap().map(Result::unwrap));
            }
            ([_, "chosen"], "linux,initrd-start") => initrd = number(value),
            _ => {}
        })
        .unwrap();
        assert_eq!(banks, [0..0x3c00_0000, 0x4000_0000..0x8000_0000]);
        assert_eq!(initrd, Some(0x0800_0000));
        assert_eq!(tree.reservations().collect::<Vec<_>>(), [Ok(0..0x1000)]);
        assert_eq!(declared_size(blob[..8].try_into().unwrap()), Ok(blob.len()));
    }

    #[test]
    fn a_reservation_past_the_address_space_is_refused() {
        let mut t = pi_like();
        t.reservations = std::vec![(0x1000, 0x1000), (u64::MAX, 2), (0, 0x1000)];
        let blob = t.blob();
        let tree = DeviceTree::new(&blob).unwrap();
        assert_eq!(
            tree.reservations().collect::<Vec<_>>(),
            [
                Ok(0x1000..0x2000),
                Err(TreeError::BadReservation {
                    addr: u64::MAX,
                    size: 2
                })
            ]
        );
    }

    #[test]
    fn malformed_trees_are_refused() {
        let blob = pi_like().blob();
        let mut bad = blob.clone();
        bad[0] ^= 1;
        assert_eq!(DeviceTree::new(&bad).err(), Some(TreeError::BadMagic));
        assert_eq!(
            DeviceTree::new(&blob[..blob.len() - 1]).err(),
            Some(TreeError::Truncated)
        );
        assert_eq!(
            DeviceTree::new(&blob[..3]).err(),
            Some(TreeError::Truncated)
        );
        // A property longer than the structure block.
        let mut t = Builder::default();
        t.begin("").token(PROP).token(u32::MAX).token(0).token(END);
        let blob = t.blob();
        let tree = DeviceTree::new(&blob).unwrap();
        assert_eq!(
            tree.for_each_property(|_, _, _| {}),
            Err(TreeError::Truncated)
        );
        // An END with a node still open.
        let mut t = Builder::default();
        t.begin("").token(END);
        let blob = t.blob();
        assert_eq!(
            DeviceTree::new(&blob)
                .unwrap()
                .for_each_property(|_, _, _| {}),
            Err(TreeError::BadStructure)
        );
    }
}

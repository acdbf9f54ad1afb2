//! A flattened device tree reader (portable code): the header, the memory
//! reservation block, and a walk over every property with its node's path.
//!
//! Written for this board rather than taken from the `fdt` crate, whose
//! 0.1 parser panics on the NOP tokens QEMU leaves where its `raspi4b`
//! machine removed nodes from the tree it was given.

use core::ops::Range;

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
}

/// A device tree blob.
pub struct DeviceTree<'a> {
    blob: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
    reservations: usize,
}

/// The big-endian u32 at `off`.
fn be32(bytes: &[u8], off: usize) -> Result<u32, TreeError> {
    let b = bytes.get(off..off + 4).ok_or(TreeError::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The big-endian u64 at `off`.
fn be64(bytes: &[u8], off: usize) -> Result<u64, TreeError> {
    Ok(u64::from(be32(bytes, off)?) << 32 | u64::from(be32(bytes, off + 4)?))
}

/// The NUL-terminated string at the start of `bytes` (not UTF-8: empty).
fn c_str(bytes: &[u8]) -> Result<&str, TreeError> {
    let len = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or(TreeError::Truncated)?;
    Ok(core::str::from_utf8(&bytes[..len]).unwrap_or(""))
}

/// A value of one or two big-endian cells (as `#address-cells` and
/// `#size-cells` say), e.g. an address in `reg` or `linux,initrd-start`.
pub fn cells(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => be32(value, 0).ok().map(u64::from),
        8 => be64(value, 0).ok(),
        _ => None,
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
        let block = |off: usize, len: usize| blob.get(off..off + len).ok_or(TreeError::Truncated);
        // Header fields: 2 structure offset, 3 strings offset, 4 memory
        // reservation offset; the block sizes are fields 9 and 8 (version
        // 17), or, for older trees, up to the end of the blob.
        let (structs_off, strings_off) = (field(2)?, field(3)?);
        let structs = block(structs_off, blob.len().saturating_sub(structs_off))?;
        let strings = block(strings_off, blob.len().saturating_sub(strings_off))?;
        Ok(DeviceTree {
            blob,
            structs,
            strings,
            reservations: field(4)?,
        })
    }

    /// The memory reservation block's areas (`/memreserve/`).
    pub fn reservations(&self) -> impl Iterator<Item = Result<Range<u64>, TreeError>> + '_ {
        (0..)
            .map(move |i| {
                let off = self.reservations + 16 * i;
                Ok((be64(self.blob, off)?, be64(self.blob, off + 8)?))
            })
            .take_while(|entry: &Result<(u64, u64), TreeError>| !matches!(entry, Ok((_, 0))))
            .map(|entry| entry.map(|(addr, size)| addr..addr + size))
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
                    let value = s.get(off + 8..off + 8 + len).ok_or(TreeError::Truncated)?;
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

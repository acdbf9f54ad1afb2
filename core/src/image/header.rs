//! The fixed 64-byte header at the start of every image.

use crate::crc::crc32;
use crate::error::{Error, Result, Section};

/// The image magic.
pub const MAGIC: [u8; 8] = *b"PHIEDGE\0";
/// The format version this core reads and writes (2: tokenizer attributes
/// and lookup indexes in the manifest; 3: the RoPE table, `rope_cache`;
/// 4: the special-token automaton).
pub const VERSION: u32 = 4;
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 64;
/// Alignment of the data section and of every tensor in it.
pub const TENSOR_ALIGN: u64 = 64;

/// The image header, as laid out on flash (all fields little-endian).
///
/// | offset | field |
/// |---|---|
/// | 0 | magic `PHIEDGE\0` |
/// | 8 | format version |
/// | 12 | CRC-32 of the header with this field zeroed |
/// | 16 | manifest offset (64) |
/// | 24 | manifest length |
/// | 32 | manifest CRC-32 |
/// | 36 | data CRC-32 (the whole data section) |
/// | 40 | data offset (a multiple of 64) |
/// | 48 | data length |
/// | 56 | reserved, zero |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `PHIEDGE\0`.
    pub magic: [u8; 8],
    /// Format version.
    pub version: u32,
    /// CRC-32 of the encoded header with this field zeroed.
    pub header_crc: u32,
    /// Byte offset of the manifest.
    pub manifest_offset: u64,
    /// Byte length of the manifest.
    pub manifest_len: u64,
    /// CRC-32 of the manifest bytes.
    pub manifest_crc: u32,
    /// CRC-32 of the whole data section.
    pub data_crc: u32,
    /// Byte offset of the tensor data (a multiple of [`TENSOR_ALIGN`]).
    pub data_offset: u64,
    /// Byte length of the tensor data.
    pub data_len: u64,
    /// Zero.
    pub reserved: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_LEN);

fn u32_at(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

impl Header {
    /// Encodes the header, computing `header_crc`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[16..24].copy_from_slice(&self.manifest_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.manifest_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.manifest_crc.to_le_bytes());
        b[36..40].copy_from_slice(&self.data_crc.to_le_bytes());
        b[40..48].copy_from_slice(&self.data_offset.to_le_bytes());
        b[48..56].copy_from_slice(&self.data_len.to_le_bytes());
        b[56..64].copy_from_slice(&self.reserved);
        let crc = crc32(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header read from an image of `image_len` bytes:
    /// magic, version, CRC, and that the manifest and data lie inside the
    /// image without overlapping.
    pub fn decode(bytes: &[u8], image_len: u64) -> Result<Header> {
        if bytes.len() >= 8 && bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Truncated {
                section: Section::Header,
            })?;
        let mut zeroed = *b;
        zeroed[12..16].fill(0);
        let h = Header {
            magic: MAGIC,
            version: u32_at(b, 8),
            header_crc: u32_at(b, 12),
            manifest_offset: u64_at(b, 16),
            manifest_len: u64_at(b, 24),
            manifest_crc: u32_at(b, 32),
            data_crc: u32_at(b, 36),
            data_offset: u64_at(b, 40),
            data_len: u64_at(b, 48),
            reserved: [0; 8],
        };
        if h.version != VERSION {
            return Err(Error::UnsupportedVersion { found: h.version });
        }
        if crc32(&zeroed) != h.header_crc {
            return Err(Error::ChecksumMismatch {
                section: Section::Header,
            });
        }
        let malformed = |what| {
            Err(Error::Malformed {
                section: Section::Header,
                what,
            })
        };
        if b[56..64] != [0; 8] {
            return malformed("reserved bytes are not zero");
        }
        if h.manifest_offset != HEADER_LEN as u64 {
            return malformed("manifest does not follow the header");
        }
        let manifest_end =
            h.manifest_offset
                .checked_add(h.manifest_len)
                .ok_or(Error::Malformed {
                    section: Section::Header,
                    what: "manifest length overflows",
                })?;
        if h.data_offset % TENSOR_ALIGN != 0 {
            return malformed("data offset is not 64-byte aligned");
        }
        if h.data_offset < manifest_end {
            return malformed("data overlaps the manifest");
        }
        let data_end = h
            .data_offset
            .checked_add(h.data_len)
            .ok_or(Error::Malformed {
                section: Section::Header,
                what: "data length overflows",
            })?;
        if manifest_end > image_len {
            return Err(Error::Truncated {
                section: Section::Manifest,
            });
        }
        if data_end > image_len {
            return Err(Error::Truncated {
                section: Section::Data,
            });
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            magic: MAGIC,
            version: VERSION,
            header_crc: 0,
            manifest_offset: 64,
            manifest_len: 100,
            manifest_crc: 7,
            data_crc: 9,
            data_offset: 192,
            data_len: 1000,
            reserved: [0; 8],
        }
    }

    #[test]
    fn round_trips_and_rejects_every_flipped_byte() {
        let b = sample().encode();
        let h = Header::decode(&b, 1192).unwrap();
        assert_eq!(h.data_len, 1000);
        for i in 0..HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(Header::decode(&bad, 1192).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn rejects_truncation_and_out_of_range_sections() {
        let b = sample().encode();
        assert_eq!(
            Header::decode(&b[..40], 40),
            Err(Error::Truncated {
                section: Section::Header
            })
        );
        assert_eq!(
            Header::decode(&b, 1191),
            Err(Error::Truncated {
                section: Section::Data
            })
        );
        let mut h = sample();
        h.data_len = u64::MAX;
        assert!(matches!(
            Header::decode(&h.encode(), u64::MAX),
            Err(Error::Malformed { .. })
        ));
        assert_eq!(Header::decode(b"GGUF\x03\0\0\0", 8), Err(Error::BadMagic));
    }
}

//! The phi-edge image ("flash image"): the one model format the core reads.
//!
//! ```text
//! [0, 64)               Header (fixed, little-endian)
//! [64, 64 + m)          Manifest (postcard): config, tokenizer, tensor table
//! [data_offset, ...)    tensor data, each tensor 64-byte aligned, in the
//!                       order the forward pass reads it
//! ```
//!
//! Opening checks the header, the manifest CRC and every tensor record
//! against the hyperparameters; [`Model::verify`] checks each tensor's CRC.

pub mod header;
pub mod manifest;
pub mod tensor;

use crate::config::Config;
use crate::crc::Crc32;
use crate::error::{Error, Result, Section};
use crate::limits::Limits;
use crate::source::{ReadAt, WeightSource};
use header::{Header, HEADER_LEN};
use manifest::{Manifest, TokenizerKind, TokenizerTables, NO_TOKEN};
use tensor::{Role, TensorEntry, TensorLayout, RECORD_LEN};

/// An opened, checked image: its header and manifest. Tensor data stays in
/// the weight source.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    header: Header,
    manifest: Manifest<'a>,
    layout: TensorLayout,
}

impl<'a> Model<'a> {
    /// Opens an image that is entirely in addressable memory (memory-mapped
    /// flash, RAM, `mmap`), within [`Limits::DEFAULT`].
    pub fn open_mapped(image: &'a [u8]) -> Result<Model<'a>> {
        Self::open_mapped_with(image, &Limits::DEFAULT)
    }

    /// [`open_mapped`](Self::open_mapped) within `limits`.
    pub fn open_mapped_with(image: &'a [u8], limits: &Limits) -> Result<Model<'a>> {
        let header = Header::decode(image, image.len() as u64)?;
        let start = HEADER_LEN;
        // In range: Header::decode checked the manifest against the image length.
        let manifest = image
            .get(start..start + header.manifest_len as usize)
            .ok_or(Error::Truncated {
                section: Section::Manifest,
            })?;
        Self::from_parts_with(header, manifest, limits)
    }

    /// Opens an image on a block device: reads the header, then the
    /// manifest into `buf`, which the model borrows from then on; within
    /// [`Limits::DEFAULT`].
    pub fn open_streamed<R: ReadAt>(src: &mut R, buf: &'a mut [u8]) -> Result<Model<'a>> {
        Self::open_streamed_with(src, buf, &Limits::DEFAULT)
    }

    /// [`open_streamed`](Self::open_streamed) within `limits`.
    pub fn open_streamed_with<R: ReadAt>(
        src: &mut R,
        buf: &'a mut [u8],
        limits: &Limits,
    ) -> Result<Model<'a>> {
        let mut hb = [0u8; HEADER_LEN];
        if src.size() < HEADER_LEN as u64 {
            return Err(Error::Truncated {
                section: Section::Header,
            });
        }
        src.read_at(0, &mut hb)?;
        let header = Header::decode(&hb, src.size())?;
        limits.check_manifest_bytes(&header)?;
        let len = usize::try_from(header.manifest_len).map_err(|_| Error::Malformed {
            section: Section::Header,
            what: "manifest too large",
        })?;
        let got = buf.len();
        let m = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { need: len, got })?;
        src.read_at(HEADER_LEN as u64, m)?;
        Self::from_parts_with(header, m, limits)
    }

    /// Checks a decoded header and its manifest bytes, within
    /// [`Limits::DEFAULT`].
    pub fn from_parts(header: Header, manifest_bytes: &'a [u8]) -> Result<Model<'a>> {
        Self::from_parts_with(header, manifest_bytes, &Limits::DEFAULT)
    }

    /// [`from_parts`](Self::from_parts) within `limits`.
    pub fn from_parts_with(
        header: Header,
        manifest_bytes: &'a [u8],
        limits: &Limits,
    ) -> Result<Model<'a>> {
        limits.check_manifest_bytes(&header)?;
        let mut crc = Crc32::new();
        crc.update(manifest_bytes);
        if manifest_bytes.len() as u64 != header.manifest_len {
            return Err(Error::Truncated {
                section: Section::Manifest,
            });
        }
        if crc.finish() != header.manifest_crc {
            return Err(Error::ChecksumMismatch {
                section: Section::Manifest,
            });
        }
        let manifest = Manifest::decode(manifest_bytes)?;
        limits.check_manifest(&manifest)?;
        manifest.config.validate()?;
        check_tokenizer(&manifest.tokenizer, manifest.config.n_vocab)?;
        let layout = TensorLayout::new(manifest.config);
        let table = manifest.tensors;
        if table.len() % RECORD_LEN != 0 || table.len() / RECORD_LEN != layout.count() {
            return Err(Error::Malformed {
                section: Section::TensorTable,
                what: "tensor count does not match the architecture",
            });
        }
        let mut end = 0u64;
        for (i, rec) in table.chunks_exact(RECORD_LEN).enumerate() {
            let rec: &[u8; RECORD_LEN] = rec.try_into().map_err(|_| Error::Truncated {
                section: Section::TensorTable,
            })?;
            let e = TensorEntry::decode(rec, i as u32)?;
            layout.check(i, &e, end, header.data_len)?;
            end = e.offset + e.len;
        }
        Ok(Model {
            header,
            manifest,
            layout,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Config {
        &self.manifest.config
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest<'a> {
        &self.manifest
    }

    /// The tensor of `role` in `layer` (0 outside the layers).
    pub fn tensor(&self, role: Role, layer: u16) -> Result<TensorEntry> {
        let missing = Error::MissingTensor {
            name: role.gguf_name(),
            layer: if role.per_layer() { Some(layer) } else { None },
        };
        let i = self.layout.index(role, layer).ok_or(missing)?;
        self.entry(i)
    }

    /// Table entry `index` (checked when the model was opened).
    fn entry(&self, index: usize) -> Result<TensorEntry> {
        let rec = self
            .manifest
            .tensors
            .get(index * RECORD_LEN..(index + 1) * RECORD_LEN)
            .and_then(|r| <&[u8; RECORD_LEN]>::try_from(r).ok())
            .ok_or(Error::Truncated {
                section: Section::TensorTable,
            })?;
        TensorEntry::decode(rec, index as u32)
    }

    /// The matrix the forward pass multiplies with after the one of
    /// `(role, layer)`: the next projection (norm vectors skipped), after
    /// the last layer the output head (`token_embd` when tied), after the
    /// head none.
    pub fn next_matrix(&self, role: Role, layer: u16) -> Option<TensorEntry> {
        if matches!(role, Role::Output | Role::TokenEmbd) {
            return None;
        }
        let i = self.layout.index(role, layer)?;
        let next = (i + 1..self.layout.count())
            .filter_map(|j| self.entry(j).ok())
            .find(|e| !matches!(e.role, Role::AttnNorm | Role::FfnNorm | Role::OutputNorm));
        match next {
            Some(e) => Some(e),
            None => self.tensor(Role::TokenEmbd, 0).ok(),
        }
    }

    /// All tensors, in table (forward) order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorEntry> + '_ {
        (0..self.layout.count()).filter_map(|i| self.entry(i).ok())
    }

    /// Absolute offset of a tensor's first byte in the image.
    pub fn tensor_offset(&self, e: &TensorEntry) -> u64 {
        self.header.data_offset + e.offset
    }

    /// Checks every tensor's CRC-32, reading through `staging` in pieces
    /// for a streamed source. A failed read is [`Error::WeightRead`],
    /// naming the tensor.
    pub fn verify<S: WeightSource>(&self, src: &mut S, staging: &mut [u8]) -> Result<()> {
        let chunk = if src.is_mapped() {
            usize::MAX
        } else {
            staging.len()
        };
        if chunk == 0 {
            return Err(Error::BufferTooSmall { need: 1, got: 0 });
        }
        for (i, e) in self.tensors().enumerate() {
            let mut crc = Crc32::new();
            let mut done = 0u64;
            while done < e.len {
                let n = (e.len - done).min(chunk as u64) as usize;
                let at = self.tensor_offset(&e) + done;
                crc.update(src.bytes(at, n, staging).map_err(|_| e.read_error(at))?);
                done += n as u64;
            }
            if crc.finish() != e.crc {
                return Err(Error::TensorChecksum { index: i as u32 });
            }
        }
        Ok(())
    }
}

fn check_tokenizer(t: &TokenizerTables<'_>, n_vocab: u32) -> Result<()> {
    let bad = |what| {
        Err(Error::Malformed {
            section: Section::Manifest,
            what,
        })
    };
    let n = n_vocab as usize;
    let s = &t.special;
    for id in [s.bos, s.eos, s.eot, s.unk, s.pad] {
        if id != NO_TOKEN && id >= n_vocab {
            return bad("special token id outside the vocabulary");
        }
    }
    if t.kind == TokenizerKind::None {
        return Ok(());
    }
    check_string_table(t.tokens, n).or(bad("token table is inconsistent"))?;
    if !t.types.is_empty() && t.types.len() != n {
        return bad("token types do not match the vocabulary");
    }
    crate::tokenizer::check_tables(t).map_err(|e| match e {
        Error::BadTokenizer { what } => Error::Malformed {
            section: Section::Manifest,
            what,
        },
        e => e,
    })
}

/// Checks a table of `count + 1` u32 offsets followed by text: offsets
/// non-decreasing and within the text.
fn check_string_table(table: &[u8], count: usize) -> core::result::Result<(), ()> {
    let first = table.get(..4).ok_or(())?;
    let text_start = u32::from_le_bytes([first[0], first[1], first[2], first[3]]) as usize;
    if text_start % 4 != 0 || text_start < 4 || text_start > table.len() {
        return Err(());
    }
    let n = text_start / 4 - 1;
    if count != n {
        return Err(());
    }
    let mut prev = text_start;
    for o in table[..text_start].chunks_exact(4) {
        let o = u32::from_le_bytes([o[0], o[1], o[2], o[3]]) as usize;
        if o < prev || o > table.len() {
            return Err(());
        }
        prev = o;
    }
    Ok(())
}

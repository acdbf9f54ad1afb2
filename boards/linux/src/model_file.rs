//! Opening a model file: a `.phi` image (memory-mapped or streamed) or a
//! GGUF file (packed into an image in memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use memmap2::Mmap;
use phi_edge::{Error, ReadAt};

/// The bytes of an image.
pub enum ImageBytes {
    /// A `.phi` file, memory-mapped.
    Mapped(Mmap),
    /// A GGUF file packed in memory.
    Packed(Vec<u8>),
}

impl ImageBytes {
    /// Opens `path`: GGUF files (by their magic) are packed in memory,
    /// anything else is mapped as an image.
    pub fn open(path: &Path) -> Result<ImageBytes> {
        let map = map(path)?;
        if map.starts_with(b"GGUF") {
            let image = phi_edge::pack::pack_to_vec(&map)
                .with_context(|| format!("cannot use {}", path.display()))?;
            Ok(ImageBytes::Packed(image))
        } else {
            Ok(ImageBytes::Mapped(map))
        }
    }

    /// The image.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ImageBytes::Mapped(m) => m,
            ImageBytes::Packed(v) => v,
        }
    }
}

/// Maps `path` read-only.
pub fn map(path: &Path) -> Result<Mmap> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: the mapping is read-only and private to this process; the CLI
    // does not modify model files while it runs, and a file changed
    // underneath by another process can at worst give wrong numbers, which
    // every bounds check downstream still contains.
    unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))
}

/// A file read with positional reads: the streamed weight source on Linux.
pub struct FileSource {
    file: File,
    size: u64,
}

impl FileSource {
    /// Opens `path` for streaming.
    pub fn open(path: &Path) -> Result<FileSource> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata()?.len();
        Ok(FileSource { file, size })
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|_| Error::Read { offset })
    }
}

//! Opening a model file: a `.phi` image (memory-mapped or streamed) or a
//! GGUF file (packed into an image in memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use phi_edge::image::header::{Header, HEADER_LEN};
use phi_edge::{Error, Limits, Model, ReadAt, Streamed};

/// The bytes of an image: the tensor data mapped (or packed in memory),
/// the header decoded and the manifest copied out, so that what opening checks (the
/// manifest's tables and the strings borrowed from it) cannot change
/// afterwards even if the file does.
pub struct ImageBytes {
    data: Data,
    /// The decoded header.
    header: Header,
    /// The manifest, copied.
    manifest: Vec<u8>,
}

/// Where an image's bytes are.
enum Data {
    /// A `.phi` file, memory-mapped.
    Mapped(Mmap),
    /// A GGUF file packed in memory.
    Packed(Vec<u8>),
}

impl ImageBytes {
    /// Opens `path`: GGUF files (by their magic) are packed in memory,
    /// anything else is mapped as an image. The manifest must be within
    /// `limits`.
    pub fn open(path: &Path, limits: &Limits) -> Result<ImageBytes> {
        let map = map(path)?;
        let cannot = || format!("cannot open {}", path.display());
        let data = if map.starts_with(b"GGUF") {
            let image = phi_edge::pack::pack_to_vec(&map)
                .with_context(|| format!("cannot use {}", path.display()))?;
            Data::Packed(image)
        } else {
            Data::Mapped(map)
        };
        let image = match &data {
            Data::Mapped(m) => &m[..],
            Data::Packed(v) => &v[..],
        };
        let header = Header::decode(&image[..image.len().min(HEADER_LEN)], image.len() as u64)
            .with_context(cannot)?;
        limits.check_manifest_bytes(&header).with_context(cannot)?;
        // In range: Header::decode checked the manifest against the length.
        let manifest = owned(&image[HEADER_LEN..HEADER_LEN + header.manifest_len as usize])
            .with_context(cannot)?;
        Ok(ImageBytes {
            data,
            header,
            manifest,
        })
    }

    /// The whole image, the tensor data's source.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Mapped(m) => m,
            Data::Packed(v) => v,
        }
    }

    /// The model, from the copied header and manifest, within `limits`.
    pub fn model(&self, limits: &Limits) -> phi_edge::Result<Model<'_>> {
        Model::from_parts_with(self.header, &self.manifest, limits)
    }
}

/// `bytes` copied into memory allocated with `try_reserve`.
fn owned(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len())
        .with_context(|| format!("cannot allocate {} bytes", bytes.len()))?;
    v.extend_from_slice(bytes);
    Ok(v)
}

/// Maps `path` read-only.
pub fn map(path: &Path) -> Result<Mmap> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: memmap2 maps the file read-only and shared (MAP_SHARED), so
    // another process writing the file changes what this one reads, and
    // truncating it turns reads past the new end into SIGBUS. Nothing here
    // relies on mapped bytes staying the same: the header and manifest are
    // copied before they are checked (`ImageBytes`), tensor data is only
    // ever numbers, and every offset into the mapping comes from the copied
    // tables, checked against the mapping's length when it was made. A
    // file changed underneath gives wrong numbers or a SIGBUS, never a read
    // outside the mapping.
    unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))
}

/// An image opened for streaming: its header and manifest in memory, the
/// tensor data left on the file.
pub struct StreamedImage {
    header: Header,
    manifest: Vec<u8>,
}

/// Bytes of the staging buffer [`StreamedImage::verified`] checks tensors
/// through.
const VERIFY_CHUNK: usize = 1 << 20;

impl StreamedImage {
    /// Opens the `.phi` image at `path` for streaming: reads its header and
    /// manifest (within `limits`); returns the file to stream the tensors
    /// from.
    pub fn open(path: &Path, limits: &Limits) -> Result<(FileSource, StreamedImage)> {
        let mut file = FileSource::open(path)?;
        let mut head = [0u8; HEADER_LEN];
        let n = head
            .len()
            .min(usize::try_from(file.size()).unwrap_or(usize::MAX));
        file.read_at(0, &mut head[..n])
            .with_context(|| format!("cannot read {}", path.display()))?;
        if head.starts_with(b"GGUF") {
            bail!(
                "--stream needs a .phi image, and {} is a GGUF file (pack it first: phi-edge pack)",
                path.display()
            );
        }
        let cannot = || format!("cannot open {}", path.display());
        let header = Header::decode(&head[..n], file.size()).with_context(cannot)?;
        limits.check_manifest_bytes(&header).with_context(cannot)?;
        let len = usize::try_from(header.manifest_len).with_context(cannot)?;
        let mut manifest = Vec::new();
        manifest
            .try_reserve_exact(len)
            .with_context(|| format!("cannot allocate {len} bytes for the manifest"))?;
        manifest.resize(len, 0);
        file.read_at(HEADER_LEN as u64, &mut manifest)
            .with_context(cannot)?;
        Ok((file, StreamedImage { header, manifest }))
    }

    /// The model, its manifest checked within `limits`.
    pub fn model(&self, limits: &Limits) -> phi_edge::Result<Model<'_>> {
        Model::from_parts_with(self.header, &self.manifest, limits)
    }

    /// The model, its manifest (within `limits`) and every tensor's CRC
    /// checked (the tensors read from `file` once, in pieces).
    pub fn verified(
        &self,
        path: &Path,
        file: &mut FileSource,
        limits: &Limits,
    ) -> Result<Model<'_>> {
        let model = self
            .model(limits)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut staging = vec![0u8; VERIFY_CHUNK];
        model
            .verify(&mut Streamed(file), &mut staging)
            .with_context(|| format!("{} is corrupted", path.display()))?;
        Ok(model)
    }
}

/// A file read with positional reads: the streamed weight source on Linux.
///
/// [`read_at`](ReadAt::read_at) is a plain `pread` on the caller's thread.
/// [`read_at_during`](ReadAt::read_at_during) hands the read to one
/// reader thread (started on first use, kept for the file's lifetime) and
/// runs the caller's work meanwhile: the next weight chunk comes in while
/// the kernels consume the current one.
pub struct FileSource {
    file: Arc<File>,
    size: u64,
    /// The reader thread, once a background read was asked for.
    reader: Option<Reader>,
}

impl FileSource {
    /// Opens `path` for streaming.
    pub fn open(path: &Path) -> Result<FileSource> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata()?.len();
        Ok(FileSource {
            file: Arc::new(file),
            size,
            reader: None,
        })
    }

    /// The reader thread, started if it is not yet (`None` if it cannot
    /// be: reads then happen on the caller's thread).
    fn reader(&mut self) -> Option<&Reader> {
        if self.reader.is_none() {
            self.reader = Reader::start(Arc::clone(&self.file));
        }
        self.reader.as_ref()
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|_| Error::Read { offset })
    }

    fn read_at_during(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> phi_edge::Result<()> {
        let Some(reader) = self.reader() else {
            work();
            return self.read_at(offset, buf);
        };
        let job = Job {
            offset,
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        };
        if reader.jobs.send(job).is_err() {
            // The thread is gone (it never is while `self` lives); nothing
            // reads into `buf`, so read it here.
            self.reader = None;
            work();
            return self.read_at(offset, buf);
        }
        // From here until the reply, the reader thread writes `buf`. The
        // guard waits for the reply even if `work` unwinds, so `buf` (which
        // this call borrows mutably) is never written after it returns.
        let pending = Pending {
            done: &reader.done,
            waited: false,
        };
        work();
        if pending.wait() {
            Ok(())
        } else {
            Err(Error::Read { offset })
        }
    }
}

/// A read for the reader thread: fill `len` bytes at `ptr` from `offset`.
struct Job {
    offset: u64,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a `Job` is a pointer to a buffer that the submitting thread
// borrows mutably and does not touch until the reader thread replies
// (`FileSource::read_at_during` waits for the reply before it returns or
// unwinds), so the reader thread has exclusive access to it meanwhile.
unsafe impl Send for Job {}

/// The reader thread's ends of the channels.
struct Reader {
    jobs: Sender<Job>,
    /// One reply per job: whether the whole buffer was read.
    done: Receiver<bool>,
}

impl Reader {
    /// Starts a thread that serves jobs on `file` until the sender is
    /// dropped.
    fn start(file: Arc<File>) -> Option<Reader> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel::<bool>();
        let serve = move || {
            for job in inbox {
                // SAFETY: the submitter lent `job.ptr..job.ptr + job.len`,
                // a live `&mut [u8]`, to this thread until it receives the
                // reply below (see `impl Send for Job`); nothing else reads
                // or writes it meanwhile, and the slice does not outlive
                // this iteration.
                let buf = unsafe { std::slice::from_raw_parts_mut(job.ptr, job.len) };
                let ok = file.read_exact_at(buf, job.offset).is_ok();
                if outbox.send(ok).is_err() {
                    break;
                }
            }
        };
        std::thread::Builder::new()
            .name("phi-edge-reader".into())
            .spawn(serve)
            .ok()?;
        Some(Reader { jobs, done })
    }
}

/// A submitted job not yet answered; dropping it waits for the answer.
struct Pending<'r> {
    done: &'r Receiver<bool>,
    waited: bool,
}

impl Pending<'_> {
    /// Waits for the reply: whether the read filled the buffer.
    fn wait(mut self) -> bool {
        self.waited = true;
        // An error means the thread ended, and with it any write to the
        // buffer: the read did not complete.
        self.done.recv().unwrap_or(false)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.waited {
            let _ = self.done.recv();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;

    /// Threads of this process named like the reader thread.
    fn reader_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end() == "phi-edge-reader")
            .count()
    }

    // One test, so that no other test's reader threads are counted.
    #[test]
    fn background_reads_fill_the_buffer_and_are_waited_for() {
        let path = std::env::temp_dir().join(format!("phi-edge-filesource-{}", std::process::id()));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut src = FileSource::open(&path).unwrap();
        assert_eq!(src.size(), data.len() as u64);

        // The read and the work both happen, on one persistent thread.
        let before = reader_threads();
        let mut buf = vec![0u8; 4096];
        for round in 0..50u64 {
            let offset = round * 1000;
            let mut ran = false;
            src.read_at_during(offset, &mut buf, &mut || ran = true)
                .unwrap();
            assert!(ran);
            assert_eq!(buf[..], data[offset as usize..offset as usize + 4096]);
        }
        assert_eq!(
            reader_threads(),
            before + 1,
            "one reader thread for all the reads"
        );

        // A read past the end is a typed error, in the background or not.
        let end = data.len() as u64 - 100;
        assert_eq!(
            src.read_at_during(end, &mut buf, &mut || ()),
            Err(Error::Read { offset: end })
        );
        assert_eq!(src.read_at(end, &mut buf), Err(Error::Read { offset: end }));

        // Work that panics: the read is still waited for (the buffer holds
        // the file's bytes when the panic reaches the caller), and the
        // source keeps working.
        buf.fill(0);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            let _ = src.read_at_during(5000, &mut buf, &mut || panic!("work failed"));
        }));
        assert!(panicked.is_err());
        assert_eq!(buf[..], data[5000..5000 + 4096]);
        src.read_at_during(0, &mut buf, &mut || ()).unwrap();
        assert_eq!(buf[..], data[..4096]);

        // Dropping the source ends its thread.
        drop(src);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while reader_threads() > before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(reader_threads(), before);
        std::fs::remove_file(&path).unwrap();
    }
}

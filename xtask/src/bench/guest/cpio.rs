//! A Linux initramfs: an uncompressed cpio archive in the "newc" format
//! (the one the kernel unpacks), written entry by entry, so large files
//! stream from disk and device nodes need no root.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// File type bits of `st_mode`.
const DIR: u32 = 0o040_000;
const REGULAR: u32 = 0o100_000;
const SYMLINK: u32 = 0o120_000;
const CHAR_DEVICE: u32 = 0o020_000;

/// An archive being written.
pub struct Cpio {
    out: BufWriter<File>,
    /// Inode number of the next entry (each entry its own).
    ino: u32,
}

impl Cpio {
    /// Starts an archive at `path`.
    pub fn create(path: &Path) -> io::Result<Cpio> {
        Ok(Cpio {
            out: BufWriter::new(File::create(path)?),
            ino: 1,
        })
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) -> io::Result<()> {
        self.header(name, DIR | 0o755, 0, (0, 0))
    }

    /// A regular file with `data`, executable or not.
    pub fn file(&mut self, name: &str, data: &[u8], executable: bool) -> io::Result<()> {
        self.header(
            name,
            REGULAR | if executable { 0o755 } else { 0o644 },
            data.len(),
            (0, 0),
        )?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    /// A regular file copied from `source`.
    pub fn copy(&mut self, name: &str, source: &Path, executable: bool) -> io::Result<()> {
        let mut f = File::open(source)?;
        let len = usize::try_from(f.metadata()?.len())
            .ok()
            .filter(|&l| u32::try_from(l).is_ok())
            .ok_or_else(|| {
                io::Error::other(format!("{} is too large for cpio", source.display()))
            })?;
        self.header(
            name,
            REGULAR | if executable { 0o755 } else { 0o644 },
            len,
            (0, 0),
        )?;
        let copied = io::copy(&mut f, &mut self.out)?;
        if copied != len as u64 {
            return Err(io::Error::other(format!(
                "{} changed while being archived",
                source.display()
            )));
        }
        self.pad(len)
    }

    /// A symbolic link `name` -> `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.header(name, SYMLINK | 0o777, target.len(), (0, 0))?;
        self.out.write_all(target.as_bytes())?;
        self.pad(target.len())
    }

    /// A character device node.
    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) -> io::Result<()> {
        self.header(name, CHAR_DEVICE | 0o600, 0, (major, minor))
    }

    /// Writes the trailer and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        self.out.flush()
    }

    /// A newc header and the entry's name, padded to 4 bytes.
    fn header(&mut self, name: &str, mode: u32, size: usize, rdev: (u32, u32)) -> io::Result<()> {
        let nlink = if mode & DIR != 0 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            size as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        let mut h = String::from("070701");
        for f in fields {
            h.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(h.len() + name.len() + 1)
    }

    /// Zeros up to the next multiple of 4 after `len` bytes.
    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_the_archive_ends_with_the_trailer() {
        let path = std::env::temp_dir().join(format!("phi-edge-cpio-{}.cpio", std::process::id()));
        let mut c = Cpio::create(&path).unwrap();
        c.dir("bin").unwrap();
        c.file("init", b"#!/bin/sh\n", true).unwrap();
        c.symlink("bin/sh", "busybox").unwrap();
        c.char_device("dev/console", 5, 1).unwrap();
        c.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();

        // Walk the entries as the kernel does.
        let mut at = 0;
        let mut names = vec![];
        loop {
            assert_eq!(at % 4, 0, "entry not 4-aligned");
            let h = std::str::from_utf8(&bytes[at..at + 110]).unwrap();
            assert_eq!(&h[..6], "070701");
            let field =
                |i: usize| u32::from_str_radix(&h[6 + 8 * i..14 + 8 * i], 16).unwrap() as usize;
            let (mode, size, rdev, namesize) =
                (field(1), field(6), (field(9), field(10)), field(11));
            let name = std::str::from_utf8(&bytes[at + 110..at + 110 + namesize - 1])
                .unwrap()
                .to_string();
            let data = (at + 110 + namesize).next_multiple_of(4);
            at = (data + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                break;
            }
            if name == "init" {
                assert_eq!(&bytes[data..data + size], b"#!/bin/sh\n");
                assert_eq!(mode & 0o777, 0o755);
            }
            if name == "dev/console" {
                assert_eq!((mode & 0o170_000) as u32, CHAR_DEVICE);
                assert_eq!(rdev, (5, 1));
            }
            names.push(name);
        }
        assert_eq!(at, bytes.len());
        assert_eq!(names, ["bin", "init", "bin/sh", "dev/console"]);
    }
}

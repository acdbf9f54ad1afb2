//! The guest's kernel and userland: Debian's `linux-image-<arch>` (the
//! kernel that package depends on) and `busybox-static`, from the
//! [`SUITE`] archive, verified against the archive's index and unpacked in
//! the machine-wide cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run;
use crate::reference::sha256_hex;
use crate::{Failure, Result};

/// The Debian release the guest comes from: the first whose main archive
/// has both arm64 and riscv64.
pub const SUITE: &str = "trixie";
/// The archive.
const MIRROR: &str = "http://deb.debian.org/debian";

/// The guest's files, unpacked.
pub struct GuestFiles {
    /// The kernel image QEMU boots (`-kernel`).
    pub kernel: PathBuf,
    /// The kernel package's version, for the report.
    pub kernel_version: String,
    /// The static busybox: the guest's shell and tools.
    pub busybox: PathBuf,
}

/// One package's entry in the archive's index.
struct Entry {
    version: String,
    filename: String,
    sha256: String,
    depends: String,
}

/// Fetches (once) and unpacks the kernel and busybox of Debian `arch`
/// (`arm64`, `riscv64`) under `cache`.
pub fn fetch(cache: &Path, arch: &str) -> Result<GuestFiles> {
    let dir = cache.join("debian").join(format!("{SUITE}-{arch}"));
    fs::create_dir_all(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let kernel_pkg = format!("linux-image-{arch}");
    // A cached index may name packages the archive has since replaced:
    // on a failed download, fetch the index again, once.
    for fresh in [false, true] {
        let index = index(&dir, arch, fresh)?;
        let kernel_meta = lookup(&index, &kernel_pkg)?;
        // `linux-image-arm64` is a metapackage: its first dependency is the
        // versioned kernel package.
        let kernel_name = kernel_meta
            .depends
            .split([',', ' ', '('])
            .next()
            .unwrap_or("")
            .to_string();
        let kernel = lookup(&index, &kernel_name)?;
        let busybox = lookup(&index, "busybox-static")?;
        let (Ok(kernel_dir), Ok(busybox_dir)) =
            (unpack(&dir, &kernel, fresh), unpack(&dir, &busybox, fresh))
        else {
            continue;
        };
        let kernel_image = fs::read_dir(kernel_dir.join("boot"))
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vmlinu"))
            })
            .ok_or_else(|| Failure::new(format!("{kernel_name} has no boot/vmlinu* image")))?;
        return Ok(GuestFiles {
            kernel: kernel_image,
            kernel_version: format!("{kernel_name} {}", kernel.version),
            busybox: busybox_dir.join("usr").join("bin").join("busybox"),
        });
    }
    Err(Failure::new(format!(
        "cannot download the guest packages of Debian {SUITE} {arch} from {MIRROR}"
    ))
    .retry("check that deb.debian.org is reachable, then run the bench again"))
}

/// The text of the archive's `Packages` index for `arch`, downloaded when
/// missing or when `fresh`.
fn index(dir: &Path, arch: &str, fresh: bool) -> Result<String> {
    let path = dir.join("Packages");
    if fresh || !path.is_file() {
        let xz = dir.join("Packages.xz");
        download(
            &format!("{MIRROR}/dists/{SUITE}/main/binary-{arch}/Packages.xz"),
            &xz,
        )?;
        let out = Command::new("xz")
            .args(["-dc"])
            .arg(&xz)
            .output()
            .map_err(|e| {
                Failure::new(format!("cannot run xz: {e}")).retry("apt-get install xz-utils")
            })?;
        if !out.status.success() {
            return Err(Failure::new(format!(
                "xz cannot decompress {}",
                xz.display()
            )));
        }
        fs::write(&path, &out.stdout)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    }
    fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// The index entry of `package`.
fn lookup(index: &str, package: &str) -> Result<Entry> {
    let stanza = index
        .split("\n\n")
        .find(|s| s.lines().next() == Some(&format!("Package: {package}")))
        .ok_or_else(|| Failure::new(format!("Debian {SUITE} has no package {package}")))?;
    let field = |key: &str| {
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(": ")))
            .map(str::to_string)
    };
    let missing = |key: &str| Failure::new(format!("{package}'s index entry has no {key}"));
    Ok(Entry {
        version: field("Version").ok_or_else(|| missing("Version"))?,
        filename: field("Filename").ok_or_else(|| missing("Filename"))?,
        sha256: field("SHA256").ok_or_else(|| missing("SHA256"))?,
        depends: field("Depends").unwrap_or_default(),
    })
}

/// Downloads `entry`'s .deb (unless cached and intact) and unpacks it;
/// returns where. With `fresh`, a cached copy is checked again too.
fn unpack(dir: &Path, entry: &Entry, fresh: bool) -> Result<PathBuf> {
    let name = entry.filename.rsplit('/').next().unwrap_or(&entry.filename);
    let deb = dir.join(name);
    let unpacked = dir.join(name.trim_end_matches(".deb"));
    if unpacked.is_dir() && !fresh {
        return Ok(unpacked);
    }
    let intact = |p: &Path| fs::read(p).is_ok_and(|b| sha256_hex(&b) == entry.sha256);
    if !intact(&deb) {
        download(&format!("{MIRROR}/{}", entry.filename), &deb)?;
        if !intact(&deb) {
            let _ = fs::remove_file(&deb);
            return Err(Failure::new(format!(
                "{name}: SHA-256 differs from the archive's index"
            )));
        }
    }
    let partial = unpacked.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
    let _ = fs::remove_dir_all(&unpacked);
    fs::rename(&partial, &unpacked)
        .map_err(|e| Failure::new(format!("cannot rename {}: {e}", partial.display())))?;
    Ok(unpacked)
}

/// `curl` of `url` into `path`.
fn download(url: &str, path: &Path) -> Result<()> {
    eprintln!("bench: downloading {url}");
    run(Command::new("curl")
        .args(["-fsSL", "--retry", "3", "-o"])
        .arg(path)
        .arg(url))
}

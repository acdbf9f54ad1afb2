//! The Debian packages the cross tests need: qemu-user (from
//! bookworm-backports: bookworm's own qemu 7.2 conflicts with the
//! installed qemu-utils and lacks what the boards need), the aarch64 and
//! riscv64 cross compilers and their C libraries (the linkers of the Linux
//! test binaries, and the sysroots qemu-user loads them from), and
//! qemu-system for the board images; and for `cargo xtask bench arm` /
//! `riscv`, the cross C++ compilers that build llama.cpp for the guests.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::cmd::{available, capture, run};
use crate::{Failure, Result};

/// (a file or command that shows the package is there, the package, from
/// backports).
const PACKAGES: [(&str, &str, bool); 7] = [
    ("qemu-aarch64", "qemu-user", true),
    ("qemu-system-aarch64", "qemu-system-arm", true),
    ("qemu-system-riscv64", "qemu-system-misc", true),
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu", false),
    ("riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu", false),
    (
        "/usr/aarch64-linux-gnu/lib/libc.so.6",
        "libc6-dev-arm64-cross",
        false,
    ),
    (
        "/usr/riscv64-linux-gnu/lib/libc.so.6",
        "libc6-dev-riscv64-cross",
        false,
    ),
];

/// What `cargo xtask bench arm` / `riscv` need besides [`PACKAGES`].
const BENCH_PACKAGES: [(&str, &str, bool); 2] = [
    ("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu", false),
    ("riscv64-linux-gnu-g++", "g++-riscv64-linux-gnu", false),
];

const SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// Installs whatever of [`PACKAGES`] is missing, saying so first.
pub fn ensure() -> Result<()> {
    install(PACKAGES.iter())
}

/// [`ensure`], and whatever of [`BENCH_PACKAGES`] is missing.
pub fn ensure_bench() -> Result<()> {
    install(PACKAGES.iter().chain(&BENCH_PACKAGES))
}

/// Installs whatever of `packages` is missing, saying so first.
fn install<'a>(packages: impl Iterator<Item = &'a (&'a str, &'a str, bool)>) -> Result<()> {
    let missing: Vec<(&str, bool)> = packages
        .filter(|(probe, _, _)| {
            if probe.starts_with('/') {
                !Path::new(probe).exists()
            } else {
                !available(probe)
            }
        })
        .map(|&(_, pkg, backports)| (pkg, backports))
        .collect();
    if missing.is_empty() {
        eprintln!("setup: qemu-user, qemu-system and the aarch64/riscv64 cross compilers present");
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|m| m.0).collect();
    let plain: Vec<&str> = missing.iter().filter(|m| !m.1).map(|m| m.0).collect();
    let how = format!(
        "as root on Debian bookworm: add bookworm-backports to {SOURCES}, `apt-get update`, \
         `apt-get install -y -t bookworm-backports qemu-user qemu-system-arm qemu-system-misc` and \
         `apt-get install -y {}`",
        plain.join(" ")
    );
    let root = capture(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() == "0");
    if !available("apt-get") || !root {
        return Err(
            Failure::new(format!("missing Debian packages {}", names.join(", "))).retry(how),
        );
    }
    eprintln!(
        "setup: installing Debian packages {} with apt-get",
        names.join(", ")
    );
    let mut backports_added = false;
    if missing.iter().any(|m| m.1) {
        backports_added = add_backports()?;
    }
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c).map_err(|f| f.retry(how.clone()))
    };
    apt(&["update", "-qq"])?;
    let from_backports: Vec<&str> = missing.iter().filter(|m| m.1).map(|m| m.0).collect();
    if !from_backports.is_empty() {
        let mut args = vec!["install", "-y", "-qq", "-t", "bookworm-backports"];
        args.extend(&from_backports);
        apt(&args)?;
    }
    if !plain.is_empty() {
        let mut args = vec!["install", "-y", "-qq"];
        args.extend(&plain);
        apt(&args)?;
    }
    if backports_added {
        eprintln!("setup: (bookworm-backports stays in {SOURCES})");
    }
    Ok(())
}

/// Appends bookworm-backports to the `Suites: bookworm bookworm-updates`
/// line of the Debian sources; returns whether it changed the file.
fn add_backports() -> Result<bool> {
    let text = fs::read_to_string(SOURCES).map_err(|e| {
        Failure::new(format!(
            "cannot read {SOURCES} ({e}); qemu 10 comes from bookworm-backports"
        ))
    })?;
    if text.contains("bookworm-backports") {
        return Ok(false);
    }
    let line = "Suites: bookworm bookworm-updates";
    if !text.lines().any(|l| l.trim() == line) {
        return Err(Failure::new(format!(
            "{SOURCES} has no `{line}` line to add bookworm-backports to (is this Debian bookworm?)"
        )));
    }
    eprintln!("setup: adding bookworm-backports to {SOURCES}");
    let new: String = text
        .lines()
        .map(|l| {
            if l.trim() == line {
                format!("{line} bookworm-backports\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(SOURCES, new).map_err(|e| Failure::new(format!("cannot write {SOURCES}: {e}")))?;
    Ok(true)
}

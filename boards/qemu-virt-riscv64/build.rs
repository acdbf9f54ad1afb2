//! Link arguments for the image: riscv-rt's `link.x` (sections, entry
//! point, stack), which includes our `memory.x` (where the image lives),
//! and defmt's `defmt.x` (the log string table). Here rather than in
//! `.cargo/config.toml`, so that a build from the repository root with
//! `--manifest-path` links the same way. Also checks for the large code
//! model, which the defmt log ids need.

use std::env;

fn main() {
    // defmt's ids are addresses in a section at 0, out of reach of the
    // default code model's pc-relative addressing from 0x8000_0000.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.split('\x1f').any(|f| f.ends_with("code-model=large")) {
        panic!(
            "build with `-C code-model=large` (boards/qemu-virt-riscv64/.cargo/config.toml sets it; \
             from elsewhere use RUSTFLAGS or --config, see README.md)"
        );
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::rustc-link-search={dir}");
    println!("cargo::rustc-link-arg-bins=-Tmemory.x");
    println!("cargo::rustc-link-arg-bins=-Tlink.x");
    println!("cargo::rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo::rerun-if-changed=memory.x");
    // defmt filters log levels at compile time; without DEFMT_LOG it keeps
    // errors only. Default to info unless the builder chose a level.
    println!("cargo::rerun-if-env-changed=DEFMT_LOG");
    if env::var_os("DEFMT_LOG").is_none() {
        println!("cargo::rustc-env=DEFMT_LOG=info");
    }
}

//! Link arguments for the image: aarch64-rt's `image.ld` (sections, entry
//! point, boot stack), our `memory.ld` (where the image lives) and defmt's
//! `defmt.x` (the log string table). Here rather than in
//! `.cargo/config.toml`, so that a build from the repository root with
//! `--manifest-path` links the same way.

use std::env;

fn main() {
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::rustc-link-search={dir}");
    println!("cargo::rustc-link-arg-bins=-Timage.ld");
    println!("cargo::rustc-link-arg-bins=-Tmemory.ld");
    println!("cargo::rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo::rerun-if-changed=memory.ld");
    // defmt filters log levels at compile time; without DEFMT_LOG it keeps
    // errors only. Default to info unless the builder chose a level.
    println!("cargo::rerun-if-env-changed=DEFMT_LOG");
    if env::var_os("DEFMT_LOG").is_none() {
        println!("cargo::rustc-env=DEFMT_LOG=info");
    }
}

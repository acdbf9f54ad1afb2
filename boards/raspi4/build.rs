//! Link arguments for the image: our `raspi4.ld` (aarch64-rt's sections
//! with the board's start-up code first, at 0x80000) and defmt's `defmt.x`
//! (the log string table). Here rather than in `.cargo/config.toml`, so
//! that a build from the repository root with `--manifest-path` links the
//! same way.

use std::env;

fn main() {
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::rustc-link-search={dir}");
    println!("cargo::rustc-link-arg-bins=-Traspi4.ld");
    println!("cargo::rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo::rerun-if-changed=raspi4.ld");
    // defmt filters log levels at compile time; without DEFMT_LOG it keeps
    // errors only. Default to info unless the builder chose a level.
    println!("cargo::rerun-if-env-changed=DEFMT_LOG");
    if env::var_os("DEFMT_LOG").is_none() {
        println!("cargo::rustc-env=DEFMT_LOG=info");
    }
}

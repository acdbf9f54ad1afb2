//! Shared pieces of the phi-edge host test harness: synthetic GGUF models,
//! the malformed-input corpus, the llama.cpp goldens, `.npy` reading and
//! parity metrics.

pub mod corpus;
pub mod goldens;
pub mod metrics;
pub mod npy;
pub mod synth;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// Where `cargo xtask ref` writes models and llama.cpp goldens.
pub fn ref_dir() -> PathBuf {
    std::env::var_os("PHI_EDGE_REF_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/ref"))
}

//! Shared pieces of the phi-edge host test harness: synthetic GGUF models,
//! the malformed-input corpus, crafted (valid but hostile) inputs, the
//! llama.cpp goldens, `.npy` reading and parity metrics.

pub mod corpus;
pub mod crafted;
pub mod goldens;
pub mod metrics;
pub mod npy;
pub mod synth;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `name` in this test process's own temporary directory,
/// `phi-edge-{test}-{pid}` (created if it is not there yet).
pub fn tmp_path(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phi-edge-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.join(name)
}

/// Where `cargo xtask ref` writes models and llama.cpp goldens.
pub fn ref_dir() -> PathBuf {
    std::env::var_os("PHI_EDGE_REF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/ref"))
}

/// Bytes a decode step at position `pos` reads from a streamed source:
/// every tensor once, except the rope factors (read when the session
/// starts), the rope table (one row, the position's, while it has it) and
/// the embedding (one row; all of it again as a tied output head).
pub fn decode_read_bytes(model: &phi_edge::Model<'_>, pos: usize) -> u64 {
    use phi_edge::image::tensor::Role;
    model
        .tensors()
        .map(|t| match t.role {
            Role::RopeFactorsShort | Role::RopeFactorsLong => 0,
            Role::RopeCache if pos < t.rows as usize => t.row_bytes() as u64,
            Role::RopeCache => 0,
            Role::TokenEmbd if model.config().tied_output => t.len + t.row_bytes() as u64,
            Role::TokenEmbd => t.row_bytes() as u64,
            _ => t.len,
        })
        .sum()
}

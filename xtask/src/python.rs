//! The oracle's Python: a virtual environment at `target/venv` holding the
//! packages pinned in `tests/oracle/requirements.txt`.
//!
//! A stamp file (`target/venv/phi-edge-stamp.txt`) records the digest of
//! the requirements file and the interpreter version it was installed for,
//! followed by `pip freeze`. When both still match, setup does nothing;
//! otherwise it (re)runs `pip install -r`.

use std::ffi::OsString;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{capture, run};
use crate::reference::sha256_hex;
use crate::{Failure, Result, Workspace};

/// Oldest Python the oracle supports (llama-cpp-python's own minimum).
const MIN_PYTHON: (u32, u32) = (3, 9);

const PRINT_VERSION: &str = "import sys; print('%d.%d.%d' % sys.version_info[:3])";

/// `target/venv/bin/python`.
pub fn venv_python(ws: &Workspace) -> PathBuf {
    ws.venv().join("bin").join("python")
}

fn requirements(ws: &Workspace) -> PathBuf {
    ws.oracle().join("requirements.txt")
}

fn stamp(ws: &Workspace) -> PathBuf {
    ws.venv().join("phi-edge-stamp.txt")
}

/// The version pinned for `package` (`package==X`) in requirements.txt.
pub fn pinned_version(ws: &Workspace, package: &str) -> Result<String> {
    let path = requirements(ws);
    let text = read(&path)?;
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find_map(|l| {
            let (name, version) = l.split_once("==")?;
            (name.trim().eq_ignore_ascii_case(package)).then(|| version.trim().to_string())
        })
        .ok_or_else(|| Failure::new(format!("{} pins no `{package}==VERSION`", path.display())))
}

/// Makes sure the venv exists and holds the pinned packages; returns its
/// interpreter.
pub fn ensure(ws: &Workspace) -> Result<PathBuf> {
    let py = venv_python(ws);
    let venv = ws.venv();
    let version = match interpreter_version(py.as_os_str()) {
        Ok(v) => v,
        Err(_) => {
            if venv.exists() {
                eprintln!(
                    "setup: {} is not a working venv; removing it",
                    venv.display()
                );
                fs::remove_dir_all(&venv)
                    .map_err(|e| Failure::new(format!("removing {}: {e}", venv.display())))?;
            }
            let base = base_python()?;
            eprintln!(
                "setup: creating the oracle's Python venv at {} (with {})",
                venv.display(),
                base.to_string_lossy()
            );
            run(Command::new(&base).arg("-m").arg("venv").arg(&venv)).map_err(|f| {
                f.retry(
                    "install Python's venv module (Debian: apt-get install python3-venv), \
                     then `cargo xtask setup`",
                )
            })?;
            interpreter_version(py.as_os_str())?
        }
    };

    let req_path = requirements(ws);
    let req = read(&req_path)?;
    let header = format!(
        "requirements-sha256: {}\npython: {version}\n",
        sha256_hex(req.as_bytes())
    );
    let stamp_path = stamp(ws);
    if fs::read_to_string(&stamp_path).is_ok_and(|s| s.starts_with(&header)) {
        eprintln!(
            "setup: venv up to date (Python {version}, {})",
            pins_summary(&req)
        );
        return Ok(py);
    }

    if capture(Command::new(&py).args(["-m", "pip", "--version"])).is_err() {
        eprintln!("setup: bootstrapping pip in the venv (python -m ensurepip)");
        run(Command::new(&py).args(["-m", "ensurepip", "--upgrade"])).map_err(|f| {
            f.retry("install pip for Python (Debian: apt-get install python3-pip), then `cargo xtask setup`")
        })?;
    }
    eprintln!(
        "setup: installing the oracle's Python packages into {}: {} \
         (the first build of llama-cpp-python from source takes 10-15 minutes on 2 cores; \
         pip's wheel cache makes later installs fast)",
        venv.display(),
        pins_summary(&req)
    );
    let mut pip = Command::new(&py);
    pip.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
    ])
    .env("PIP_NO_INPUT", "1");
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        pip.args(["--progress-bar", "off"]);
    }
    pip.arg("-r").arg(&req_path);
    run(&mut pip).map_err(|f| {
        f.retry(
            "check the pip output above (llama-cpp-python needs a C/C++ compiler: \
             Debian `apt-get install build-essential`), then `cargo xtask setup`",
        )
    })?;
    let freeze = capture(Command::new(&py).args(["-m", "pip", "freeze", "--all"]))?;
    fs::write(&stamp_path, format!("{header}---\n{freeze}"))
        .map_err(|e| Failure::new(format!("writing {}: {e}", stamp_path.display())))?;
    Ok(py)
}

/// The first Python 3.9+ among $PHI_EDGE_PYTHON, `python3`, `python`.
fn base_python() -> Result<OsString> {
    let mut candidates: Vec<OsString> = Vec::new();
    if let Some(p) = std::env::var_os("PHI_EDGE_PYTHON") {
        candidates.push(p);
    }
    candidates.push("python3".into());
    candidates.push("python".into());
    let mut tried = Vec::new();
    for c in candidates {
        match interpreter_version(&c) {
            Ok(v) if at_least(&v, MIN_PYTHON) => return Ok(c),
            Ok(v) => tried.push(format!("{} is Python {v}", c.to_string_lossy())),
            Err(_) => tried.push(format!("{} not found", c.to_string_lossy())),
        }
    }
    Err(Failure::new(format!(
        "no Python {}.{}+ to build the oracle's venv with ({})",
        MIN_PYTHON.0,
        MIN_PYTHON.1,
        tried.join("; ")
    ))
    .retry(
        "install Python 3 with venv and pip (Debian: apt-get install python3 python3-venv \
         python3-pip) or point PHI_EDGE_PYTHON at one, then `cargo xtask setup`",
    ))
}

fn interpreter_version(python: &std::ffi::OsStr) -> Result<String> {
    Ok(capture(Command::new(python).args(["-c", PRINT_VERSION]))?
        .trim()
        .to_string())
}

fn at_least(version: &str, min: (u32, u32)) -> bool {
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = it.next().unwrap_or(0);
    let minor = it.next().unwrap_or(0);
    (major, minor) >= min
}

fn pins_summary(req: &str) -> String {
    req.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Failure::new(format!("reading {}: {e}", path.display())))
}

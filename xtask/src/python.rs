//! The oracle's Python: a virtual environment at `target/venv` holding the
//! packages pinned in `tests/oracle/requirements.txt`.
//!
//! llama-cpp-python is built from source with the CMake options of
//! `tests/oracle/llama-cpp-build.txt` (a fixed instruction set, so goldens
//! do not depend on the machine's CPU). The wheel is kept in
//! `$PHI_EDGE_CACHE` (default `$XDG_CACHE_HOME/phi-edge`, else
//! `~/.cache/phi-edge`) under a digest of version, options and Python
//! version, so a fresh checkout on the same machine does not rebuild it.
//!
//! `cargo xtask bench model` also compares against a second build,
//! [`LlamaBuild::Native`] in `target/venv-native`: `-DGGML_NATIVE=ON` alone,
//! what a plain `pip install llama-cpp-python` gives on this CPU. It is made
//! the same way, only when the benchmark asks for it, and cached under a
//! digest that also covers the CPU it was built for.
//!
//! A stamp file (`<venv>/phi-edge-stamp.txt`) records the digests of the
//! requirements and build options and the interpreter version it was
//! installed for, followed by `pip freeze`. When all still match, setup does
//! nothing; otherwise it installs the wheel and runs `pip install -r`.

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

/// Which llama.cpp a venv holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlamaBuild {
    /// The parity oracle, in `target/venv`: the pinned options of
    /// `tests/oracle/llama-cpp-build.txt`.
    Pinned,
    /// `-DGGML_NATIVE=ON` and nothing else, in `target/venv-native`: what
    /// `pip install llama-cpp-python` builds on this CPU (AVX-512 and VNNI
    /// where it has them). Only `cargo xtask bench model` uses it.
    Native,
}

/// The CMake options of [`LlamaBuild::Native`].
const NATIVE_CMAKE_ARGS: &str = "-DGGML_NATIVE=ON";

impl LlamaBuild {
    /// Its virtual environment.
    fn venv(self, ws: &Workspace) -> PathBuf {
        match self {
            LlamaBuild::Pinned => ws.venv(),
            LlamaBuild::Native => ws.target().join("venv-native"),
        }
    }

    /// Its interpreter, `<venv>/bin/python`.
    fn python(self, ws: &Workspace) -> PathBuf {
        self.venv(ws).join("bin").join("python")
    }

    /// The xtask command that sets it up, which starts its messages.
    fn step(self) -> &'static str {
        match self {
            LlamaBuild::Pinned => "setup",
            LlamaBuild::Native => "bench",
        }
    }

    /// What to run again after fixing a failure.
    fn retry(self) -> &'static str {
        match self {
            LlamaBuild::Pinned => "cargo xtask setup",
            LlamaBuild::Native => "cargo xtask bench model",
        }
    }

    /// What the venv is, for messages.
    fn what(self) -> &'static str {
        match self {
            LlamaBuild::Pinned => "the oracle's",
            LlamaBuild::Native => "the native llama.cpp's",
        }
    }

    /// The CMAKE_ARGS it is built with, and the stamp line that names them
    /// (the pinned build's is the digest of llama-cpp-build.txt, as stamps
    /// have always recorded it).
    fn options(self, ws: &Workspace) -> Result<(String, String)> {
        Ok(match self {
            LlamaBuild::Pinned => {
                let text = read(&ws.oracle().join("llama-cpp-build.txt"))?;
                let args = text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    args,
                    format!("llama-cpp-build-sha256: {}", sha256_hex(text.as_bytes())),
                )
            }
            LlamaBuild::Native => (
                NATIVE_CMAKE_ARGS.to_string(),
                format!(
                    "llama-cpp-build: {NATIVE_CMAKE_ARGS} for cpu {}",
                    cpu_digest()
                ),
            ),
        })
    }
}

/// `target/venv/bin/python`.
pub fn venv_python(ws: &Workspace) -> PathBuf {
    LlamaBuild::Pinned.python(ws)
}

fn requirements(ws: &Workspace) -> PathBuf {
    ws.oracle().join("requirements.txt")
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

/// Makes sure the oracle's venv exists and holds the pinned packages;
/// returns its interpreter.
pub fn ensure(ws: &Workspace) -> Result<PathBuf> {
    ensure_build(ws, LlamaBuild::Pinned)
}

/// Makes sure `build`'s venv exists and holds the pinned packages, with
/// that build of llama-cpp-python; returns its interpreter.
pub fn ensure_build(ws: &Workspace, build: LlamaBuild) -> Result<PathBuf> {
    let (step, retry, what) = (build.step(), build.retry(), build.what());
    let venv = build.venv(ws);
    let py = build.python(ws);
    let version = match interpreter_version(py.as_os_str()) {
        Ok(v) => v,
        Err(_) => {
            if venv.exists() {
                eprintln!(
                    "{step}: {} is not a working venv; removing it",
                    venv.display()
                );
                fs::remove_dir_all(&venv)
                    .map_err(|e| Failure::new(format!("removing {}: {e}", venv.display())))?;
            }
            let base = base_python()?;
            eprintln!(
                "{step}: creating {what} Python venv at {} (with {})",
                venv.display(),
                base.to_string_lossy()
            );
            run(Command::new(&base).arg("-m").arg("venv").arg(&venv)).map_err(|f| {
                f.retry(format!(
                    "install Python's venv module (Debian: apt-get install python3-venv), \
                     then `{retry}`"
                ))
            })?;
            interpreter_version(py.as_os_str())?
        }
    };

    let req_path = requirements(ws);
    let req = read(&req_path)?;
    let (cmake_args, build_line) = build.options(ws)?;
    let header = format!(
        "requirements-sha256: {}\n{build_line}\npython: {version}\n",
        sha256_hex(req.as_bytes())
    );
    let stamp_path = venv.join("phi-edge-stamp.txt");
    if fs::read_to_string(&stamp_path).is_ok_and(|s| s.starts_with(&header)) {
        eprintln!(
            "{step}: {} up to date (Python {version}, {})",
            venv.display(),
            pins_summary(&req)
        );
        return Ok(py);
    }

    if capture(Command::new(&py).args(["-m", "pip", "--version"])).is_err() {
        eprintln!("{step}: bootstrapping pip in the venv (python -m ensurepip)");
        run(Command::new(&py).args(["-m", "ensurepip", "--upgrade"])).map_err(|f| {
            f.retry(format!(
                "install pip for Python (Debian: apt-get install python3-pip), then `{retry}`"
            ))
        })?;
    }
    let llama_version = pinned_version(ws, "llama-cpp-python")?;
    let wheel = llama_cpp_wheel(build, &py, &llama_version, &cmake_args, &version)?;
    eprintln!(
        "{step}: installing {what} Python packages into {}: {} (llama-cpp-python from {})",
        venv.display(),
        pins_summary(&req),
        wheel.display()
    );
    run(pip(&py, "install")
        .args(["--no-deps", "--force-reinstall"])
        .arg(&wheel))?;
    let mut pip = pip(&py, "install");
    pip.arg("-r").arg(&req_path);
    run(&mut pip).map_err(|f| {
        f.retry(format!(
            "check the pip output above (llama-cpp-python needs a C/C++ compiler: \
             Debian `apt-get install build-essential`), then `{retry}`"
        ))
    })?;
    let freeze = capture(Command::new(&py).args(["-m", "pip", "freeze", "--all"]))?;
    fs::write(&stamp_path, format!("{header}---\n{freeze}"))
        .map_err(|e| Failure::new(format!("writing {}: {e}", stamp_path.display())))?;
    Ok(py)
}

/// `python -m pip <verb>`, quiet about upgrades, never prompting.
fn pip(py: &Path, verb: &str) -> Command {
    let mut pip = Command::new(py);
    pip.args([
        "-m",
        "pip",
        verb,
        "--no-input",
        "--disable-pip-version-check",
    ])
    .env("PIP_NO_INPUT", "1");
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        pip.args(["--progress-bar", "off"]);
    }
    pip
}

/// The llama-cpp-python wheel of `build`, built with `cmake_args`, from the
/// machine-wide cache or built now.
fn llama_cpp_wheel(
    build: LlamaBuild,
    py: &Path,
    version: &str,
    cmake_args: &str,
    python: &str,
) -> Result<PathBuf> {
    let (step, retry) = (build.step(), build.retry());
    // The pinned build's key and directory name are what they have always
    // been, so its cached wheels stay valid; the native build's key also
    // covers the CPU it was made for.
    let (key, name, purpose) = match build {
        LlamaBuild::Pinned => (
            sha256_hex(format!("{version}\n{cmake_args}\n{python}\n").as_bytes()),
            format!("llama-cpp-python-{version}"),
            "llama.cpp, the parity oracle",
        ),
        LlamaBuild::Native => (
            sha256_hex(format!("{version}\n{cmake_args}\n{python}\n{}\n", cpu_digest()).as_bytes()),
            format!("llama-cpp-python-{version}-native"),
            "llama.cpp as `pip install llama-cpp-python` builds it on this CPU, for the benchmark",
        ),
    };
    let dir = cache_dir()?
        .join("wheels")
        .join(format!("{name}-{}", &key[..16]));
    if let Some(wheel) = find_wheel(&dir) {
        eprintln!(
            "{step}: llama-cpp-python {version} wheel cached at {}",
            wheel.display()
        );
        return Ok(wheel);
    }
    let part = dir.with_file_name(format!("{name}-{}.part", &key[..16]));
    let _ = fs::remove_dir_all(&part);
    fs::create_dir_all(&part)
        .map_err(|e| Failure::new(format!("creating {}: {e}", part.display())))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!(
        "{step}: building llama-cpp-python {version} ({purpose}) from source \
         with CMAKE_ARGS=\"{cmake_args}\": 10-15 minutes on 2 cores, once per machine; \
         the wheel is cached in {}",
        dir.display()
    );
    run(pip(py, "wheel")
        .args([
            "--no-deps",
            "--no-cache-dir",
            "--no-binary",
            "llama-cpp-python",
            "-w",
        ])
        .arg(&part)
        .arg(format!("llama-cpp-python=={version}"))
        .env("CMAKE_ARGS", cmake_args)
        .env("CMAKE_BUILD_PARALLEL_LEVEL", jobs.to_string()))
    .map_err(|f| {
        f.retry(format!(
            "check the build output above (llama.cpp needs a C/C++ compiler and an x86-64 CPU \
             with AVX2: Debian `apt-get install build-essential`), then `{retry}`"
        ))
    })?;
    fs::rename(&part, &dir).map_err(|e| {
        Failure::new(format!(
            "moving {} to {}: {e}",
            part.display(),
            dir.display()
        ))
    })?;
    find_wheel(&dir)
        .ok_or_else(|| Failure::new(format!("pip wheel left no .whl in {}", dir.display())))
}

/// The /proc/cpuinfo fields that name a CPU and its features (x86, Arm,
/// RISC-V).
const CPU_KEYS: [&str; 7] = [
    "vendor_id",
    "model name",
    "flags",
    "Features",
    "CPU implementer",
    "CPU part",
    "isa",
];

/// The first 16 hex digits of a digest of what `-march=native` sees on this
/// machine: the first CPU's [`CPU_KEYS`] fields in /proc/cpuinfo (none where
/// there is no such file).
fn cpu_digest() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let first: Vec<&str> = info
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| {
            let key = l.split(':').next().unwrap_or("").trim();
            CPU_KEYS.contains(&key)
        })
        .collect();
    sha256_hex(first.join("\n").as_bytes())[..16].to_string()
}

/// The machine-wide cache: `$PHI_EDGE_CACHE`, `$XDG_CACHE_HOME/phi-edge`
/// or `~/.cache/phi-edge`.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PHI_EDGE_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("phi-edge")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("phi-edge")))
        .ok_or_else(|| Failure::new("no cache directory: set PHI_EDGE_CACHE or HOME"))
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
}

/// The first Python 3.9+ among $PHI_EDGE_PYTHON, `python3`, `python`.
pub fn base_python() -> Result<OsString> {
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

//! llama.cpp for the guest: the pinned llama-cpp-python's vendored
//! llama.cpp (the oracle's source), cross-compiled as static libraries for
//! the guest's ISA with the oracle's settings otherwise, and linked with
//! `tests/bench/llama_speed.c` into one static program.
//!
//! The program is cached like the oracle's wheel, under a digest of the
//! version, the CMake options, the compiler and the driver's source.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{capture, run};
use crate::python;
use crate::reference::sha256_hex;
use crate::{Failure, Result, Workspace};

/// How to cross-build llama.cpp for one guest.
pub struct CrossBuild {
    /// CMake's `CMAKE_SYSTEM_PROCESSOR`.
    pub processor: &'static str,
    /// The cross C and C++ compilers.
    pub cc: &'static str,
    /// The C++ compiler (also the linker).
    pub cxx: &'static str,
    /// The options that choose the ISA.
    pub isa_options: &'static [&'static str],
}

/// CMake options of every guest build: static libraries, the library
/// alone, no OpenMP (the guest runs one thread), no downloads.
const COMMON_OPTIONS: [&str; 10] = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_OPENMP=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_COMMON=OFF",
    "-DLLAMA_CURL=OFF",
];

/// The static `llama_speed` program for `build`, built now unless cached.
pub fn program(ws: &Workspace, name: &str, build: &CrossBuild) -> Result<PathBuf> {
    let version = python::pinned_version(ws, "llama-cpp-python")?;
    let driver = ws.root.join("tests").join("bench").join("llama_speed.c");
    let source = fs::read(&driver)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", driver.display())))?;
    let options = options(ws, build)?;
    let compiler = capture(Command::new(build.cc).arg("--version")).map_err(|f| {
        f.retry("cargo xtask bench installs the cross compilers: run it as root on Debian")
    })?;
    let key = sha256_hex(
        format!(
            "{version}\n{}\n{}\n{}",
            options.join(" "),
            compiler.lines().next().unwrap_or(""),
            sha256_hex(&source)
        )
        .as_bytes(),
    );
    let cache = python::cache_dir()?;
    let dir = cache
        .join("llama-guest")
        .join(format!("{name}-{version}-{}", &key[..16]));
    let program = dir.join("llama_speed");
    if program.is_file() {
        eprintln!(
            "bench: llama.cpp {version} for {name} cached at {}",
            program.display()
        );
        return Ok(program);
    }
    eprintln!("bench: cross-building llama.cpp {version} for {name} ({}); about 10 minutes on 2 cores, once", build.isa_options.join(" "));
    let src = sources(&cache, &version)?;
    let tools = cmake(&cache)?;
    let work = dir.join("build");
    let _ = fs::remove_dir_all(&work);
    let mut configure = Command::new(tools.join("cmake"));
    configure
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&work)
        .args(["-G", "Ninja"])
        .arg(format!(
            "-DCMAKE_MAKE_PROGRAM={}",
            tools.join("ninja").display()
        ))
        .args([
            "-DCMAKE_SYSTEM_NAME=Linux",
            &format!("-DCMAKE_SYSTEM_PROCESSOR={}", build.processor),
        ])
        .args([
            format!("-DCMAKE_C_COMPILER={}", build.cc),
            format!("-DCMAKE_CXX_COMPILER={}", build.cxx),
        ])
        .args(&options);
    // Build logs go to stderr: stdout is the report.
    run(configure.stdout(std::io::stderr()))?;
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    run(Command::new(tools.join("ninja"))
        .arg("-C")
        .arg(&work)
        .args(["-j", &jobs, "llama"])
        .stdout(std::io::stderr()))?;
    let object = work.join("llama_speed.o");
    run(Command::new(build.cc)
        .args(["-O2", "-c"])
        .arg(&driver)
        .arg("-I")
        .arg(src.join("include"))
        .arg("-I")
        .arg(src.join("ggml").join("include"))
        .arg("-o")
        .arg(&object))?;
    let partial = dir.join("llama_speed.partial");
    let lib = |p: &str| work.join(p);
    run(Command::new(build.cxx)
        .arg("-static")
        .arg("-o")
        .arg(&partial)
        .arg(&object)
        .args([
            lib("src/libllama.a"),
            lib("ggml/src/libggml.a"),
            lib("ggml/src/libggml-cpu.a"),
            lib("ggml/src/libggml-base.a"),
        ])
        .args(["-lpthread", "-lm"]))?;
    fs::rename(&partial, &program)
        .map_err(|e| Failure::new(format!("cannot rename {}: {e}", partial.display())))?;
    let _ = fs::remove_dir_all(&work);
    Ok(program)
}

/// The CMake options: [`COMMON_OPTIONS`], the oracle's compiler flags
/// (`-DCMAKE_C_FLAGS` / `-DCMAKE_CXX_FLAGS` lines of
/// `tests/oracle/llama-cpp-build.txt`; its x86 ISA options do not apply),
/// then the guest's ISA.
fn options(ws: &Workspace, build: &CrossBuild) -> Result<Vec<String>> {
    let path = ws.oracle().join("llama-cpp-build.txt");
    let text = fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    let mut options: Vec<String> = COMMON_OPTIONS.iter().map(|s| s.to_string()).collect();
    options.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("-DCMAKE_C_FLAGS=") || l.starts_with("-DCMAKE_CXX_FLAGS="))
            .map(str::to_string),
    );
    options.extend(build.isa_options.iter().map(|s| s.to_string()));
    Ok(options)
}

/// The vendored llama.cpp of llama-cpp-python `version`'s source
/// distribution, downloaded from PyPI (checked against the index's
/// SHA-256) and unpacked under `cache`.
fn sources(cache: &Path, version: &str) -> Result<PathBuf> {
    let name = format!("llama_cpp_python-{version}");
    let dir = cache.join("sdist");
    let tree = dir.join(&name).join("vendor").join("llama.cpp");
    if tree.join("CMakeLists.txt").is_file() {
        return Ok(tree);
    }
    fs::create_dir_all(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let index =
        capture(Command::new("curl").args(["-fsSL", "https://pypi.org/simple/llama-cpp-python/"]))?;
    let file = format!("{name}.tar.gz");
    let (url, sha256) = index
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .filter_map(|h| h.split_once("#sha256="))
        .find(|(u, _)| u.ends_with(&format!("/{file}")))
        .ok_or_else(|| Failure::new(format!("PyPI's index of llama-cpp-python lists no {file}")))?;
    let archive = dir.join(&file);
    eprintln!("bench: downloading {url}");
    run(Command::new("curl")
        .args(["-fsSL", "--retry", "3", "-o"])
        .arg(&archive)
        .arg(url))?;
    let bytes = fs::read(&archive)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", archive.display())))?;
    if sha256_hex(&bytes) != sha256 {
        let _ = fs::remove_file(&archive);
        return Err(Failure::new(format!(
            "{file}: SHA-256 differs from PyPI's index"
        )));
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir))?;
    let _ = fs::remove_file(&archive);
    Ok(tree)
}

/// A virtual environment holding CMake and Ninja from PyPI (the machine
/// need not have them); returns its `bin` directory.
fn cmake(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join("cmake-venv");
    let bin = venv.join("bin");
    if bin.join("cmake").is_file() && bin.join("ninja").is_file() {
        return Ok(bin);
    }
    run(Command::new(python::base_python()?)
        .args(["-m", "venv"])
        .arg(&venv))?;
    run(Command::new(bin.join("python"))
        .args(["-m", "pip", "install", "--quiet", "cmake", "ninja"]))?;
    Ok(bin)
}

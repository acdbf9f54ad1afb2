//! `cargo xtask fuzz [--time S] [TARGET]`: the cargo-fuzz targets in
//! `fuzz/` (their own workspace), built once, seeded (by a target binary,
//! see `SEEDS_ENV`), and run for S seconds each with the acceptance limits (1 s per input, 2 GB per
//! allocation, 2.5 GB resident); one line per target with executions,
//! libFuzzer's `cov:` / `ft:` and crashes. Fails if any target crashed.
//!
//! Needs a nightly toolchain (libFuzzer's instrumentation flags are
//! unstable); cargo-fuzz is installed into `target/tools/` when it is not
//! on `PATH`. Targets are built with `--sanitizer none`: the core is safe
//! Rust apart from a few audited casts, and without AddressSanitizer the
//! targets run several times faster (libFuzzer's comparison tracing stays
//! on). Logs go to `fuzz/logs/<target>.log`, crashing inputs to
//! `fuzz/artifacts/<target>/`; builds to `fuzz/target/`, or to
//! `$PHI_EDGE_FUZZ_TARGET_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cmd::{self, cargo};
use crate::steps::Step;
use crate::{Failure, Result, Workspace};

/// Seconds per target when `--time` is not given.
const DEFAULT_SECS: u64 = 60;

/// Seconds per target in `cargo xtask test` (7 targets: about 30 s).
pub const SMOKE_SECS: u64 = 4;

/// libFuzzer's limits, the acceptance's: no input over 1 s, no allocation
/// over 2 GB (and the process under 2.5 GB).
const LIMITS: [&str; 3] = ["-timeout=1", "-rss_limit_mb=2560", "-malloc_limit_mb=2048"];

/// One target's outcome.
struct Outcome {
    target: String,
    execs: u64,
    cov: String,
    ft: String,
    secs: f64,
    crash: Option<String>,
}

/// `cargo xtask fuzz [--time S] [TARGET]`.
pub fn run_fuzz(ws: &Workspace, args: &[String]) -> Result<()> {
    let usage = "cargo xtask fuzz [--time S] [TARGET]";
    let mut secs = DEFAULT_SECS;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" | "-t" => {
                secs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or_else(|| Failure::new("--time needs a number of seconds").retry(usage))?;
            }
            t if !t.starts_with('-') && only.is_none() => only = Some(t.to_string()),
            other => {
                return Err(Failure::new(format!("unexpected argument `{other}`")).retry(usage))
            }
        }
    }
    fuzz(ws, secs, only.as_deref())
}

/// The `cargo xtask test` step: every target for [`SMOKE_SECS`].
pub fn smoke() -> Step {
    Step {
        name: "fuzz smoke",
        required: false,
        retry: "cargo xtask fuzz --time 4",
        run: Box::new(|ws| fuzz(ws, SMOKE_SECS, None)),
    }
}

fn fuzz_dir(ws: &Workspace) -> PathBuf {
    ws.root.join("fuzz")
}

/// Environment variable naming another target directory for the fuzz
/// builds (the default is `fuzz/target`).
pub const TARGET_DIR_ENV: &str = "PHI_EDGE_FUZZ_TARGET_DIR";

fn target_dir(ws: &Workspace) -> PathBuf {
    std::env::var_os(TARGET_DIR_ENV).map_or_else(|| fuzz_dir(ws).join("target"), PathBuf::from)
}

/// Builds, seeds and runs the targets (or `only`) for `secs` each.
fn fuzz(ws: &Workspace, secs: u64, only: Option<&str>) -> Result<()> {
    let dir = fuzz_dir(ws);
    check_nightly()?;
    // `tokenize` and `chat_template` load the real vocabularies.
    crate::setup::vocabularies(ws)?;
    let cargo_fuzz = cargo_fuzz(ws)?;
    let target = target_dir(ws);

    // One build for all targets (or the one named): release with debug
    // assertions, as cargo-fuzz builds by default.
    let mut build = Command::new(&cargo_fuzz);
    build
        .current_dir(&dir)
        .args(["fuzz", "build", "--sanitizer", "none", "--target-dir"])
        .arg(&target)
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env_remove("CARGO")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    if let Some(t) = only {
        build.arg(t);
    }
    cmd::run(&mut build)?;
    let bin_dir = target.join(host_triple()?).join("release");

    // Any target binary writes the seeds of all and lists them with their
    // -max_len (PHI_EDGE_FUZZ_SEEDS, in its libFuzzer init).
    let first = match only {
        Some(t) => t.to_string(),
        None => first_target(&dir)?,
    };
    let mut seeds = Command::new(bin_dir.join(&first));
    seeds.env(SEEDS_ENV, dir.join("corpus"));
    eprintln!(
        "$ {SEEDS_ENV}={} {}",
        dir.join("corpus").display(),
        cmd::show(&seeds)
    );
    let list = cmd::capture(&mut seeds)?;
    let targets: Vec<(String, String)> = list
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, m)| (t.to_string(), m.to_string()))
        .filter(|(t, _)| only.is_none_or(|o| o == t))
        .collect();
    if targets.is_empty() {
        return Err(Failure::new(format!(
            "no fuzz target `{}` (targets: {})",
            only.unwrap_or(""),
            list.lines()
                .filter_map(|l| l.split(' ').next())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    let mut outcomes = vec![];
    for (target, max_len) in &targets {
        outcomes.push(run_target(&dir, &bin_dir, target, max_len, secs)?);
    }

    eprintln!(
        "\n{:<14} {:>12} {:>8} {:>8} {:>8} {:>9}  crash",
        "target", "executions", "exec/s", "cov", "ft", "seconds"
    );
    for o in &outcomes {
        eprintln!(
            "{:<14} {:>12} {:>8.0} {:>8} {:>8} {:>9.1}  {}",
            o.target,
            o.execs,
            o.execs as f64 / o.secs.max(1e-3),
            o.cov,
            o.ft,
            o.secs,
            o.crash.as_deref().unwrap_or("none")
        );
    }
    let crashed: Vec<&Outcome> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        let first = crashed[0];
        Err(Failure::new(format!(
            "{} target(s) crashed: {}",
            crashed.len(),
            crashed.iter().map(|o| o.target.as_str()).collect::<Vec<_>>().join(", ")
        ))
        .retry(format!(
            "cd fuzz && cargo +nightly fuzz run -s none {} {}   (minimize: cargo +nightly fuzz tmin -s none ...)",
            first.target,
            first.crash.as_deref().unwrap_or("")
        )))
    }
}

/// Runs one target binary for `secs` on its corpus; parses its log.
fn run_target(
    dir: &Path,
    bin_dir: &Path,
    target: &str,
    max_len: &str,
    secs: u64,
) -> Result<Outcome> {
    let artifacts = dir.join("artifacts").join(target);
    let logs = dir.join("logs");
    for d in [&artifacts, &logs] {
        std::fs::create_dir_all(d).map_err(|e| Failure::new(format!("{}: {e}", d.display())))?;
    }
    let before = listing(&artifacts);
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Failure::new(format!("{}: {e}", log_path.display())))?;
    let mut c = Command::new(bin_dir.join(target));
    c.current_dir(dir)
        .arg(dir.join("corpus").join(target))
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-max_len={max_len}"))
        .args(LIMITS)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    eprintln!("$ {}   (log: {})", cmd::show(&c), log_path.display());
    let t = Instant::now();
    let status = c.status().map_err(|e| {
        Failure::new(format!(
            "could not start {}: {e}",
            bin_dir.join(target).display()
        ))
    })?;
    let secs = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let (execs, cov, ft) = stats(&text);
    let new: Vec<String> = listing(&artifacts)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    // A timeout on a loaded machine (2 cores, QEMU beside) may be the
    // machine's: the input is run again alone and counts only if it
    // times out again.
    let real: Vec<&String> = new
        .iter()
        .filter(|f| {
            !f.starts_with("timeout-") || !passes_alone(&bin_dir.join(target), &artifacts.join(f))
        })
        .collect();
    for f in new.iter().filter(|f| !real.contains(f)) {
        eprintln!(
            "    {target}: {} ran within 1 s alone: a timeout of the loaded machine, not counted",
            artifacts.join(f).display()
        );
    }
    let spurious = !new.is_empty() && real.is_empty();
    let crash = if let Some(f) = real.first() {
        Some(artifacts.join(f).display().to_string())
    } else if spurious {
        None
    } else if !status.success() {
        Some(format!("exit {status} (see {})", log_path.display()))
    } else {
        None
    };
    if crash.is_some() {
        // The panic message and the input's path, from the end of the log.
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        for l in tail.into_iter().rev() {
            eprintln!("    {l}");
        }
    }
    Ok(Outcome {
        target: target.to_string(),
        execs,
        cov,
        ft,
        secs,
        crash,
    })
}

/// Whether the target runs `input` alone within the limits.
fn passes_alone(bin: &Path, input: &Path) -> bool {
    Command::new(bin)
        .args(LIMITS)
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Executions (`stat::number_of_executed_units`, else the last `#N`) and
/// the last `cov:` / `ft:` of a libFuzzer log.
fn stats(log: &str) -> (u64, String, String) {
    let mut execs = 0;
    let (mut cov, mut ft) = ("?".to_string(), "?".to_string());
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            execs = n.trim().parse().unwrap_or(execs);
            continue;
        }
        if !line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if let Some(n) = words.next().and_then(|w| w[1..].parse().ok()) {
            execs = execs.max(n);
        }
        while let Some(w) = words.next() {
            match w {
                "cov:" => cov = words.next().unwrap_or("?").to_string(),
                "ft:" => ft = words.next().unwrap_or("?").to_string(),
                _ => {}
            }
        }
    }
    (execs, cov, ft)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The variable that makes a target binary write the seeds (see
/// `fuzz/common/src/lib.rs`).
const SEEDS_ENV: &str = "PHI_EDGE_FUZZ_SEEDS";

/// The first `[[bin]]` of `fuzz/Cargo.toml`.
fn first_target(dir: &Path) -> Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| Failure::new(format!("{}: {e}", manifest.display())))?;
    text.split("[[bin]]")
        .nth(1)
        .and_then(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = ")))
        .map(|n| n.trim_matches('"').to_string())
        .ok_or_else(|| Failure::new(format!("{}: no [[bin]]", manifest.display())))
}

fn check_nightly() -> Result<()> {
    let mut c = Command::new("rustc");
    c.env("RUSTUP_TOOLCHAIN", "nightly").arg("--version");
    match cmd::capture(&mut c) {
        Ok(v) if v.contains("nightly") => Ok(()),
        _ => Err(Failure::new(
            "fuzzing needs a nightly toolchain (libFuzzer's instrumentation flags are unstable)",
        )
        .retry("rustup toolchain install nightly")),
    }
}

/// The host's target triple (cargo-fuzz builds for it, into
/// `fuzz/target/<triple>/release`).
fn host_triple() -> Result<String> {
    let v = cmd::capture(
        Command::new("rustc")
            .env("RUSTUP_TOOLCHAIN", "nightly")
            .arg("-vV"),
    )?;
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| Failure::new("`rustc -vV` names no host triple"))
}

/// `cargo-fuzz` from `PATH`, else from `target/tools/bin`, installed
/// there on first use.
fn cargo_fuzz(ws: &Workspace) -> Result<PathBuf> {
    if cmd::available("cargo-fuzz") {
        return Ok(PathBuf::from("cargo-fuzz"));
    }
    let tools = ws.target().join("tools");
    let local = tools.join("bin").join("cargo-fuzz");
    if !local.exists() {
        let mut c = cargo();
        c.args(["install", "--locked", "--root"])
            .arg(&tools)
            .arg("cargo-fuzz");
        cmd::run(&mut c).map_err(|f| f.retry("cargo install --root target/tools cargo-fuzz"))?;
    }
    Ok(local)
}

//! `cargo xtask bench arm` and `cargo xtask bench riscv`: phi-edge against
//! llama.cpp on the same emulated CPU, counted in instructions.
//!
//! One Linux guest boots under `qemu-system-* -icount shift=0`, where the
//! guest clock advances one nanosecond per executed instruction: the
//! nanoseconds each engine measures around its own evaluation calls are
//! the instructions they executed (repeatable to within the few timer
//! interrupts that land in a run; no timing noise from the host).
//!
//! - Kernel and userland (busybox) are Debian's packages for the guest's
//!   architecture ([`packages`]); the initramfs ([`cpio`]) holds them, the
//!   model (SmolLM2-135M-Instruct Q4_1: phi-edge's packed image and the
//!   GGUF file), both programs and an `/init` that runs them one after the
//!   other on one core and powers off.
//! - phi-edge is the aarch64 / riscv64 Linux build of `phi-edge run`,
//!   statically linked, with `--timings`. llama.cpp is the oracle's pinned
//!   source cross-built for the guest's ISA ([`llama`]) and driven by
//!   `tests/bench/llama_speed.c`, the C twin of `llama_speed.py`.
//! - Both read the same prompt (the host bench's, checked to be the same
//!   tokens), prefill it in one call (phi-edge in its default chunks, which
//!   are bit-identical to its decode path; llama.cpp in one batch) and
//!   generate [`N_GEN`] greedy tokens, each timed around its evaluation
//!   calls only: instructions per prefill token are the prefill's over the
//!   prompt's tokens, per decode token the single-token evaluations' over
//!   their number.
//!
//! Instruction counts are not time: a real core retires NEON and scalar
//! instructions at different rates, and a board's memory bandwidth bounds
//! decode. They compare the work each engine asks of the same ISA.

mod cpio;
mod llama;
mod packages;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::model::Summary;
use crate::cmd::{cargo, run, show};
use crate::{debian, demo, python, setup, Failure, Result, Workspace};
use cpio::Cpio;
use llama::CrossBuild;

/// The prompt both engines prefill: [`N_PROMPT`] SmolLM2 tokens (BOS
/// included, if the model asks for one), the start of the host bench's.
const PROMPT: &str = "The history of the printing press begins in the fifteenth century, when \
                      Johannes Gutenberg combined movable metal type, oil-based inks and a wooden \
                      screw press into a system that could produce books quickly and cheaply. \
                      Within fifty years, printing shops had spread to more than two hundred \
                      cities across the whole of Europe.";
/// The prompt's length in tokens, checked.
const N_PROMPT: u64 = 60;
/// Tokens generated after the prompt.
const N_GEN: u32 = 32;
/// Context of both engines, in tokens.
const N_CTX: u32 = 512;
/// Longest a guest may run before it is stopped.
const TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// One emulated machine.
pub struct Guest {
    /// Its name in the report (`arm64`, `riscv64`).
    name: &'static str,
    /// Debian's name of the architecture.
    debian_arch: &'static str,
    /// The QEMU program.
    qemu: &'static str,
    /// The CPU as QEMU's `-cpu` names it, and as the report does.
    cpu: &'static str,
    /// QEMU options besides machine, CPU, memory, kernel and initramfs.
    qemu_options: &'static [&'static str],
    /// The serial console's device name in the guest.
    console: &'static str,
    /// phi-edge's Rust target and extra target features.
    rust_target: &'static str,
    rust_features: &'static str,
    /// The kernel set phi-edge must report.
    kernels: &'static str,
    /// llama.cpp's cross build, and the ISA it targets, for the report.
    llama: CrossBuild,
    llama_isa: &'static str,
    /// What the final line names before its ratios.
    line_label: &'static str,
}

/// A Cortex-A76 (Armv8.2-A with dotprod, the oldest core this QEMU has
/// with it): phi-edge's `neon+dotprod` set against llama.cpp built for
/// `armv8.2-a+dotprod`.
pub const ARM64: Guest = Guest {
    name: "arm64",
    debian_arch: "arm64",
    qemu: "qemu-system-aarch64",
    cpu: "cortex-a76",
    qemu_options: &["-M", "virt"],
    console: "ttyAMA0",
    rust_target: "aarch64-unknown-linux-gnu",
    rust_features: "+dotprod",
    kernels: "neon+dotprod",
    llama: CrossBuild {
        processor: "aarch64",
        cc: "aarch64-linux-gnu-gcc",
        cxx: "aarch64-linux-gnu-g++",
        isa_options: &["-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod"],
    },
    llama_isa: "armv8.2-a+dotprod",
    line_label: "arm64 cortex-a76",
};

/// RV64GCV at VLEN 256 (QEMU's `rv64` with V): phi-edge's RVV set against
/// the best llama.cpp Debian's cross compiler builds. GCC 12 has no RVV
/// intrinsics, so that is llama.cpp's scalar RV64GC code.
pub const RISCV64: Guest = Guest {
    name: "riscv64",
    debian_arch: "riscv64",
    qemu: "qemu-system-riscv64",
    cpu: "rv64,v=true,vlen=256",
    qemu_options: &["-M", "virt", "-bios", "default"],
    console: "ttyS0",
    rust_target: "riscv64gc-unknown-linux-gnu",
    rust_features: "",
    kernels: "rvv (VLEN 256)",
    llama: CrossBuild {
        processor: "riscv64",
        cc: "riscv64-linux-gnu-gcc",
        cxx: "riscv64-linux-gnu-g++",
        isa_options: &[
            "-DGGML_RVV=OFF",
            "-DGGML_RV_ZFH=OFF",
            "-DGGML_RV_ZVFH=OFF",
            "-DGGML_RV_ZICBOP=OFF",
            "-DGGML_RV_ZIHINTPAUSE=OFF",
        ],
    },
    llama_isa: "rv64gc (scalar: GCC 12 has no RVV intrinsics)",
    line_label: "riscv64 rv64 (V, VLEN 256) vs llama.cpp rv64gc",
};

/// Builds what `guest` needs, boots it, and prints the report and its
/// final line.
pub fn run_bench(ws: &Workspace, guest: &Guest) -> Result<()> {
    debian::ensure_bench()?;
    let py = python::ensure(ws)?;
    let gguf = setup::smollm2_path(ws);
    if !gguf.is_file() {
        setup::smollm2(ws, &py)?;
    }
    let image = demo::image(ws)?;
    let files = packages::fetch(&python::cache_dir()?, guest.debian_arch)?;
    let llama = llama::program(ws, guest.name, &guest.llama)?;
    let phi_edge = build_phi_edge(ws, guest)?;
    let dir = ws.target().join("guest").join(guest.name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let initramfs = dir.join("initramfs.cpio");
    write_initramfs(&initramfs, &files.busybox, &phi_edge, &llama, &image, &gguf)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", initramfs.display())))?;
    let console = boot(guest, &files.kernel, &initramfs)?;
    let results = Results::parse(&console, guest)?;
    results.print(guest, &files.kernel_version);
    Ok(())
}

/// `phi-edge` for the guest: a static release build (the guest has no C
/// library) in a target directory of its own.
fn build_phi_edge(ws: &Workspace, guest: &Guest) -> Result<PathBuf> {
    let dir = ws
        .target()
        .join("guest")
        .join(format!("{}-build", guest.name));
    let mut features = String::from("+crt-static");
    if !guest.rust_features.is_empty() {
        features.push(',');
        features.push_str(guest.rust_features);
    }
    run(cargo()
        .current_dir(&ws.root)
        .args([
            "build",
            "--release",
            "-p",
            "phi-edge-cli",
            "--target",
            guest.rust_target,
        ])
        .env("RUSTFLAGS", format!("-C target-feature={features}"))
        .env("CARGO_TARGET_DIR", &dir))?;
    Ok(dir.join(guest.rust_target).join("release").join("phi-edge"))
}

/// The guest's `/init`: mounts, runs phi-edge then llama.cpp on the
/// prompt, each between markers, and powers off.
fn init_script() -> String {
    let prompt = PROMPT.replace('\'', r"'\''");
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         echo \"=== cpu: $(grep -m1 -i -E '^(Features|isa)' /proc/cpuinfo)\"\n\
         echo '=== phi-edge'\n\
         /phi-edge run --model /model.phi --prompt '{prompt}' --temp 0 --max-tokens {N_GEN} \
         --threads 1 --ctx {N_CTX} --timings --ids-out /ids.json 2>&1\n\
         echo \"=== exit $?\"\n\
         cat /ids.json\n\
         echo '=== llama.cpp'\n\
         /llama_speed /model.gguf '{prompt}' {N_GEN} 1 {N_CTX} 2>&1\n\
         echo \"=== exit $?\"\n\
         poweroff -f\n"
    )
}

/// The initramfs: busybox, the two programs, the model in both formats,
/// `/init` and the device node of the console.
fn write_initramfs(
    path: &Path,
    busybox: &Path,
    phi_edge: &Path,
    llama: &Path,
    image: &Path,
    gguf: &Path,
) -> std::io::Result<()> {
    let mut c = Cpio::create(path)?;
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        c.dir(d)?;
    }
    c.char_device("dev/console", 5, 1)?;
    c.copy("bin/busybox", busybox, true)?;
    c.symlink("bin/sh", "busybox")?;
    c.copy("phi-edge", phi_edge, true)?;
    c.copy("llama_speed", llama, true)?;
    c.copy("model.phi", image, false)?;
    c.copy("model.gguf", gguf, false)?;
    c.file("init", init_script().as_bytes(), true)?;
    c.finish()
}

/// Boots `guest` on one core with `-icount shift=0`, echoes its console to
/// stderr as it comes, and returns it once the guest powers off.
fn boot(guest: &Guest, kernel: &Path, initramfs: &Path) -> Result<String> {
    let mut cmd = Command::new(guest.qemu);
    cmd.args(guest.qemu_options)
        .args([
            "-cpu", guest.cpu, "-smp", "1", "-m", "2G", "-icount", "shift=0",
        ])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(format!(
            "console={} quiet panic=-1 rdinit=/init",
            guest.console
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let line = show(&cmd);
    eprintln!("$ {line}");
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(format!("cannot start {}: {e}", guest.qemu)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut console = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => {
                eprintln!("guest| {l}");
                console.push_str(&l);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                return Err(Failure::new(format!(
                    "the {} guest ran over {} minutes; stopped",
                    guest.name,
                    TIMEOUT.as_secs() / 60
                )));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("{}: {e}", guest.qemu)))?;
    eprintln!(
        "bench: the {} guest ran {:.0} s",
        guest.name,
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        return Err(Failure::new(format!("`{line}` failed ({status})")));
    }
    Ok(console.replace('\r', ""))
}

/// One engine's figures.
struct Figures {
    /// Prompt tokens.
    n_prompt: u64,
    /// Instructions of the prefill.
    prefill: u64,
    /// Single-token evaluations after the prefill, and their instructions.
    n_decode: u64,
    decode: u64,
    /// The generated token ids.
    tokens: Vec<u64>,
}

impl Figures {
    /// Instructions per prefill token.
    fn per_prefill_token(&self) -> f64 {
        self.prefill as f64 / self.n_prompt as f64
    }

    /// Instructions per decode token.
    fn per_decode_token(&self) -> f64 {
        self.decode as f64 / self.n_decode as f64
    }
}

/// What the guest printed, read.
struct Results {
    /// The guest's CPU features line.
    features: String,
    /// The kernel set phi-edge used.
    kernels: String,
    phi_edge: Figures,
    llama: Figures,
}

impl Results {
    /// Reads both engines' sections of the console; fails if either did
    /// not finish, ran on other kernels than asked, or read the prompt as
    /// other tokens.
    fn parse(console: &str, guest: &Guest) -> Result<Results> {
        let section = |name: &str| -> Result<&str> {
            let start = console
                .find(&format!("=== {name}\n"))
                .ok_or_else(|| Failure::new(format!("the guest never ran {name}:\n{console}")))?;
            let body = &console[start + name.len() + 5..];
            let end = body.find("=== exit ").unwrap_or(body.len());
            let status = body[end..].lines().next().unwrap_or("");
            if status != "=== exit 0" {
                return Err(Failure::new(format!(
                    "{name} failed in the guest ({status}):\n{}",
                    &body[..end]
                )));
            }
            Ok(&body[..end])
        };
        let phi = section("phi-edge")?;
        let after_phi = &console[console.find("=== phi-edge\n").unwrap_or(0)..];
        let features = console
            .lines()
            .find_map(|l| l.strip_prefix("=== cpu: "))
            .unwrap_or("?")
            .to_string();
        let kernels = phi
            .lines()
            .find_map(Summary::parse)
            .and_then(|s| s.field("kernels"))
            .unwrap_or("?")
            .to_string();
        if kernels != guest.kernels {
            return Err(Failure::new(format!(
                "phi-edge ran on kernels `{kernels}`, not {}",
                guest.kernels
            )));
        }
        let timings = phi
            .lines()
            .find_map(|l| l.strip_prefix("timings: "))
            .ok_or_else(|| Failure::new(format!("phi-edge printed no timings line:\n{phi}")))?;
        let words: Vec<&str> = timings
            .split([' ', ';'])
            .filter(|w| !w.is_empty())
            .collect();
        // "prefill N tokens T ns decode M evaluations T ns"
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        let ids_line = after_phi
            .lines()
            .find(|l| l.starts_with("{\"prompt\""))
            .ok_or_else(|| Failure::new("phi-edge's --ids-out file was not printed"))?;
        let ids: serde_json::Value = serde_json::from_str(ids_line)
            .map_err(|e| Failure::new(format!("phi-edge's ids: {e}: {ids_line}")))?;
        let bad = || Failure::new(format!("cannot read phi-edge's timings line: {timings}"));
        let phi_edge = Figures {
            n_prompt: number(1).ok_or_else(bad)?,
            prefill: number(3).ok_or_else(bad)?,
            n_decode: number(6).ok_or_else(bad)?,
            decode: number(8).ok_or_else(bad)?,
            tokens: id_list(&ids["generated"]),
        };
        let json_line = section("llama.cpp")?
            .lines()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| Failure::new("llama_speed printed no JSON line"))?;
        let json: serde_json::Value = serde_json::from_str(json_line)
            .map_err(|e| Failure::new(format!("llama_speed's JSON: {e}: {json_line}")))?;
        let field = |k: &str| {
            json[k].as_u64().ok_or_else(|| {
                Failure::new(format!("llama_speed's JSON has no `{k}`: {json_line}"))
            })
        };
        let llama = Figures {
            n_prompt: field("n_prompt")?,
            prefill: field("prefill_ns")?,
            n_decode: field("n_decode")?,
            decode: field("decode_ns")?,
            tokens: id_list(&json["tokens"]),
        };
        if phi_edge.n_prompt != llama.n_prompt {
            return Err(Failure::new(format!(
                "the prompt is {} tokens to phi-edge but {} to llama.cpp",
                phi_edge.n_prompt, llama.n_prompt
            )));
        }
        if phi_edge.n_prompt != N_PROMPT {
            return Err(Failure::new(format!(
                "the prompt is {} tokens, not {N_PROMPT}",
                phi_edge.n_prompt
            )));
        }
        if phi_edge.n_decode == 0 || llama.n_decode == 0 {
            return Err(Failure::new("an engine ran no single-token evaluation"));
        }
        Ok(Results {
            features,
            kernels,
            phi_edge,
            llama,
        })
    }

    /// The table, the generated tokens' agreement and the final line.
    fn print(&self, guest: &Guest, kernel_version: &str) {
        let m = |x: f64| format!("{:.3} M", x / 1e6);
        println!();
        println!("{} guest: {} -cpu {} -icount shift=0 (1 ns = 1 instruction), one core; {kernel_version} (Debian {})",
            guest.name, guest.qemu, guest.cpu, packages::SUITE);
        println!("guest CPU: {}", self.features);
        println!("llama.cpp built for {}", guest.llama_isa);
        println!(
            "SmolLM2-135M-Instruct Q4_1, {} prompt tokens, {N_GEN} greedy tokens",
            self.phi_edge.n_prompt
        );
        println!(
            "{:<44}{:>26}{:>26}",
            "", "instructions/prefill token", "instructions/decode token"
        );
        for (name, f) in [
            (format!("phi-edge ({})", self.kernels), &self.phi_edge),
            (
                format!(
                    "llama.cpp ({})",
                    guest.llama_isa.split(' ').next().unwrap_or(guest.llama_isa)
                ),
                &self.llama,
            ),
        ] {
            println!(
                "{name:<44}{:>26}{:>26}",
                m(f.per_prefill_token()),
                m(f.per_decode_token())
            );
        }
        let same = self
            .phi_edge
            .tokens
            .iter()
            .zip(&self.llama.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        println!(
            "generated tokens: {same} of {} the same as llama.cpp's (its prompt is one batch, whose logits may differ from the decode path's)",
            self.llama.tokens.len()
        );
        let prefill = self.phi_edge.per_prefill_token() / self.llama.per_prefill_token();
        let decode = self.phi_edge.per_decode_token() / self.llama.per_decode_token();
        println!(
            "{}: phi-edge/llama.cpp instructions per token: prefill {prefill:.2}x, decode {decode:.2}x",
            guest.line_label
        );
    }
}

/// A JSON array of token ids.
fn id_list(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default()
}

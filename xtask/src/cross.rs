//! The `cargo xtask test` steps that run under qemu-user: the NEON and RVV
//! kernel sets against the portable oracle (every ISA and VLEN, none may be
//! skipped), and `phi-edge logits` cross-built for aarch64 and riscv64,
//! run on two threads, against llama.cpp's goldens (bit for bit) on real
//! and synthetic models.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, capture, cargo};
use crate::steps::Step;
use crate::{Failure, Result, Workspace};

const AARCH64: &str = "aarch64-unknown-linux-gnu";
const RISCV64: &str = "riscv64gc-unknown-linux-gnu";

/// One emulated CPU the kernels or the CLI run on.
struct Cpu {
    /// Shown in logs, e.g. `neon+dotprod (-cpu max)`.
    label: &'static str,
    /// The Rust target.
    target: &'static str,
    /// The qemu-user command line (program and CPU model).
    runner: &'static str,
    /// Extra RUSTFLAGS of this build.
    rustflags: &'static str,
    /// The kernel set name the run must report, e.g. `neon+dotprod`.
    kernels: &'static str,
}

impl Cpu {
    /// `cargo` for this CPU's target, with its runner and flags, in a
    /// target directory of its own (RUSTFLAGS would otherwise rebuild the
    /// others' artifacts on every switch).
    fn cargo(&self, ws: &Workspace) -> Command {
        let mut c = cargo();
        let var = format!(
            "CARGO_TARGET_{}_RUNNER",
            self.target.to_uppercase().replace('-', "_")
        );
        c.current_dir(&ws.root).env(var, self.runner);
        if !self.rustflags.is_empty() {
            c.env("RUSTFLAGS", self.rustflags).env(
                "CARGO_TARGET_DIR",
                ws.target()
                    .join(format!("cross-{}", self.kernels.replace('+', "-"))),
            );
        }
        c
    }

    /// Where this CPU's release `phi-edge` lands.
    fn cli_binary(&self, ws: &Workspace) -> PathBuf {
        let dir = if self.rustflags.is_empty() {
            ws.target()
        } else {
            ws.target()
                .join(format!("cross-{}", self.kernels.replace('+', "-")))
        };
        dir.join(self.target).join("release").join("phi-edge")
    }
}

/// The CPUs of the kernel suite: both NEON sets and RVV at three VLENs.
const KERNEL_CPUS: [Cpu; 5] = [
    Cpu {
        label: "neon (-cpu cortex-a53)",
        target: AARCH64,
        runner: "qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a53",
        rustflags: "",
        kernels: "neon",
    },
    Cpu {
        label: "neon+dotprod (-cpu max)",
        target: AARCH64,
        runner: "qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max",
        rustflags: "-C target-feature=+dotprod",
        kernels: "neon+dotprod",
    },
    Cpu {
        label: "rvv VLEN 128",
        target: RISCV64,
        runner: "qemu-riscv64 -L /usr/riscv64-linux-gnu -cpu rv64,v=true,vlen=128",
        rustflags: "",
        kernels: "rvv (VLEN 128)",
    },
    Cpu {
        label: "rvv VLEN 256",
        target: RISCV64,
        runner: "qemu-riscv64 -L /usr/riscv64-linux-gnu -cpu rv64,v=true,vlen=256",
        rustflags: "",
        kernels: "rvv (VLEN 256)",
    },
    Cpu {
        label: "rvv VLEN 512",
        target: RISCV64,
        runner: "qemu-riscv64 -L /usr/riscv64-linux-gnu -cpu rv64,v=true,vlen=512",
        rustflags: "",
        kernels: "rvv (VLEN 512)",
    },
];

/// The kernel crate a CPU's suite lives in.
fn kernel_package(cpu: &Cpu) -> &'static str {
    if cpu.target == AARCH64 {
        "phi-edge-neon"
    } else {
        "phi-edge-rvv"
    }
}

/// `cargo test -p <kernel crate> --target T` under each CPU; fails unless
/// every run reports its kernel set with a positive case count.
pub fn kernels() -> Step {
    Step {
        name: "kernels under qemu-user",
        required: false,
        retry: "cargo test -p phi-edge-neon --target aarch64-unknown-linux-gnu (see xtask/src/cross.rs for the others)",
        run: Box::new(|ws| {
            let counts = run_suites(ws)?;
            eprintln!("kernel suite: {}", counts.join("; "));
            Ok(())
        }),
    }
}

/// Runs the conformance suite of every emulated CPU; returns
/// `"<cpu>: N cases"` for each, or the first that failed or ran nothing.
pub fn run_suites(ws: &Workspace) -> Result<Vec<String>> {
    let mut counts = vec![];
    for cpu in &KERNEL_CPUS {
        eprintln!("--- {}", cpu.label);
        let out = capture(cpu.cargo(ws).args([
            "test",
            "--release",
            "-p",
            kernel_package(cpu),
            "--target",
            cpu.target,
            "--",
            "--nocapture",
        ]))?;
        let n = cases(&out, cpu.kernels).ok_or_else(|| {
            Failure::new(format!(
                "{}: the suite did not report `{}: N cases`:\n{out}",
                cpu.label, cpu.kernels
            ))
        })?;
        if n == 0 {
            return Err(Failure::new(format!(
                "{}: the suite ran no cases (skipped?)",
                cpu.label
            )));
        }
        counts.push(format!("{}: {n} cases", cpu.label));
    }
    Ok(counts)
}

/// The case count in a suite summary line `<set>: N cases`. The line may
/// come after the harness's `test NAME ... ` of a test running beside it
/// (`--nocapture` output interleaves), so the summary is looked for
/// anywhere in a line, to the line's end.
fn cases(out: &str, set: &str) -> Option<usize> {
    let key = format!("{set}: ");
    out.lines().find_map(|l| {
        let at = l
            .match_indices(&key)
            .map(|(i, _)| i)
            .find(|&i| i == 0 || l[..i].ends_with(' '))?;
        l[at + key.len()..]
            .trim_end()
            .strip_suffix(" cases")?
            .parse()
            .ok()
    })
}

/// The CPUs the cross-built CLI runs on end to end.
///
/// RVV runs at VLEN 128 here: the board step runs the riscv64 image at
/// VLEN 256, so the real model is checked at both.
fn cli_cpus() -> [&'static Cpu; 3] {
    [&KERNEL_CPUS[0], &KERNEL_CPUS[1], &KERNEL_CPUS[2]]
}

/// Tokens of SmolLM2's parity prompt the emulated CLI evaluates (RVV under
/// emulation is slow; the synthetic models take their whole sequences).
const SMOLLM2_TOKENS: usize = 16;

/// `phi-edge logits` cross-built for aarch64 and riscv64 and run under
/// qemu-user with two threads on SmolLM2 and the synthetic models: every
/// logit must equal llama.cpp's golden to the bit, at every position.
pub fn cli() -> Step {
    Step {
        name: "phi-edge under qemu-user",
        required: false,
        retry: "cargo xtask test qemu-user",
        run: Box::new(|ws| {
            let cases = parity_cases(ws)?;
            let tmp = ws.target().join("cross-logits");
            std::fs::create_dir_all(&tmp)
                .map_err(|e| Failure::new(format!("{}: {e}", tmp.display())))?;
            for cpu in cli_cpus() {
                cmd::run(cpu.cargo(ws).args([
                    "build",
                    "--release",
                    "-p",
                    "phi-edge-cli",
                    "--target",
                    cpu.target,
                ]))?;
                // The binary must pick the set this CPU is meant to exercise.
                let info = capture(emulated(cpu, ws).arg("inspect").arg(&cases[0].model))?;
                if !info
                    .lines()
                    .any(|l| l.strip_prefix("kernels").map(str::trim) == Some(cpu.kernels))
                {
                    return Err(Failure::new(format!(
                        "{}: phi-edge picked another kernel set:\n{info}",
                        cpu.label
                    )));
                }
            }
            for case in &cases {
                for cpu in cli_cpus() {
                    check_logits(ws, cpu, case, None, &tmp)?;
                }
            }
            for case in cases
                .iter()
                .filter(|c| CHUNK_CASES.contains(&c.name.as_str()))
            {
                for cpu in [&KERNEL_CPUS[1], &KERNEL_CPUS[2]] {
                    for chunk in CHUNKS {
                        check_logits(ws, cpu, case, Some(chunk), &tmp)?;
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }),
    }
}

/// One model and token sequence from the parity goldens.
struct Case {
    name: String,
    model: PathBuf,
    n_ctx: u32,
    tokens: Vec<u32>,
    n_vocab: usize,
    /// llama.cpp's logits for `tokens`, row after row.
    golden: (Vec<f32>, usize),
}

/// The synthetic phi3 cases of one storage type each, and SmolLM2's first
/// [`SMOLLM2_TOKENS`] tokens, from `target/ref/cases.json`.
fn parity_cases(ws: &Workspace) -> Result<Vec<Case>> {
    let dir = ws.reference();
    let path = dir.join("cases.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: {e} (run `cargo xtask ref`)", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let wanted = [
        "phi3-f32",
        "phi3-f16",
        "phi3-bf16",
        "phi3-q8_0",
        "phi3-q4_0",
        "phi3-q4_k_m",
        "llama-gqa-tied-q4_1",
        "smollm2",
    ];
    let mut out = vec![];
    for c in json
        .get("cases")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(|v| v.as_str()).unwrap_or("");
        if !wanted.contains(&name) {
            continue;
        }
        let mut tokens: Vec<u32> = c
            .get("tokens")
            .and_then(|t| t.as_array())
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_u64().map(|x| x as u32))
                    .collect()
            })
            .unwrap_or_default();
        if name == "smollm2" {
            tokens.truncate(SMOLLM2_TOKENS);
        }
        let model = dir.join(c.get("model").and_then(|v| v.as_str()).unwrap_or(""));
        let (mut golden, n_vocab) =
            read_npy(&dir.join(c.get("logits").and_then(|v| v.as_str()).unwrap_or("")))?;
        golden.truncate(tokens.len() * n_vocab);
        let n_ctx = c.get("n_ctx").and_then(|v| v.as_u64()).unwrap_or(512) as u32;
        out.push(Case {
            name: name.to_string(),
            model,
            n_ctx,
            tokens,
            n_vocab,
            golden: (golden, n_vocab),
        });
    }
    if out.len() != wanted.len() {
        return Err(Failure::new(format!(
            "{} lacks some of the cases {wanted:?}",
            path.display()
        )));
    }
    Ok(out)
}

/// The cross-built `phi-edge` of `cpu` under its qemu-user command.
fn emulated(cpu: &Cpu, ws: &Workspace) -> Command {
    let mut words = cpu.runner.split_whitespace();
    let mut c = Command::new(words.next().unwrap_or("qemu"));
    c.args(words).arg(cpu.cli_binary(ws));
    c
}

/// The cases whose logits are also checked with other prefill chunks than
/// the default (the models of `tests/tests/chunks.rs`).
const CHUNK_CASES: [&str; 3] = ["phi3-q4_k_m", "llama-gqa-tied-q4_1", "smollm2"];
/// Those chunks: one token, ragged chunks and tiles, more than the prompt.
const CHUNKS: [u32; 3] = [1, 7, 64];

/// `phi-edge logits` of `case` on `cpu` with two threads (and `--chunk`,
/// if given) must equal llama.cpp's golden to the bit at every position.
fn check_logits(
    ws: &Workspace,
    cpu: &Cpu,
    case: &Case,
    chunk: Option<u32>,
    tmp: &Path,
) -> Result<()> {
    let got_path = tmp.join(format!(
        "{}-{}.npy",
        case.name,
        cpu.kernels.replace(['+', ' ', '(', ')'], "_")
    ));
    logits(&mut emulated(cpu, ws), case, chunk, &got_path)?;
    let got = read_npy(&got_path)?;
    let cmp = compare(&case.golden, &got, case.n_vocab);
    let chunk = chunk.map_or(String::new(), |c| format!(", chunk {c}"));
    let line = format!(
        "{:<22} {:<24} 2 threads{chunk}: bit-identical to llama.cpp at {}/{} positions (max nrmse {:.2e}, argmax {}/{})",
        case.name, cpu.label, cmp.identical, cmp.positions, cmp.max_nrmse, cmp.argmax_equal, cmp.positions
    );
    eprintln!("{line}");
    if cmp.identical != cmp.positions || cmp.positions != case.tokens.len() {
        return Err(Failure::new(format!(
            "{line}: every logit must equal llama.cpp's"
        )));
    }
    Ok(())
}

/// Runs `cmd logits` for a case, on two threads, with prefill chunks of
/// `chunk` tokens (default: the CLI's).
fn logits(cmd: &mut Command, case: &Case, chunk: Option<u32>, out: &Path) -> Result<()> {
    let tokens: Vec<String> = case.tokens.iter().map(u32::to_string).collect();
    cmd.arg("logits").args(["--threads", "2"]);
    if let Some(c) = chunk {
        cmd.args(["--chunk", &c.to_string()]);
    }
    cmd.arg("--model")
        .arg(&case.model)
        .arg("--tokens")
        .arg(tokens.join(","))
        .arg("--ctx")
        .arg(case.n_ctx.to_string())
        .arg("--out")
        .arg(out);
    let o = cmd
        .output()
        .map_err(|e| Failure::new(format!("cannot run {}: {e}", cmd::show(cmd))))?;
    if !o.status.success() {
        return Err(Failure::new(format!(
            "`{}` failed: {}",
            cmd::show(cmd),
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    Ok(())
}

/// A float32 2-D `.npy` file: (data, columns).
pub(crate) fn read_npy(path: &Path) -> Result<(Vec<f32>, usize)> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let bad = || {
        Failure::new(format!(
            "{}: not a little-endian float32 2-D .npy file",
            path.display()
        ))
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| bad())?) as usize,
            12,
        ),
    };
    let header =
        std::str::from_utf8(bytes.get(start..start + hlen).ok_or_else(bad)?).map_err(|_| bad())?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(bad)?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let [rows, cols] = dims[..] else {
        return Err(bad());
    };
    let data: Vec<f32> = bytes[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if data.len() != rows * cols {
        return Err(bad());
    }
    Ok((data, cols))
}

/// How two logit matrices compare.
pub(crate) struct Comparison {
    /// Positions (rows) compared.
    pub(crate) positions: usize,
    /// The largest per-position rms(got - reference) / std(reference).
    pub(crate) max_nrmse: f64,
    /// Positions whose argmax is the same.
    pub(crate) argmax_equal: usize,
    /// Positions whose logits are all the same bits.
    pub(crate) identical: usize,
}

pub(crate) fn compare(
    reference: &(Vec<f32>, usize),
    got: &(Vec<f32>, usize),
    n_vocab: usize,
) -> Comparison {
    let rows = reference
        .0
        .chunks_exact(n_vocab)
        .zip(got.0.chunks_exact(n_vocab));
    let mut c = Comparison {
        positions: 0,
        max_nrmse: 0.0,
        argmax_equal: 0,
        identical: 0,
    };
    if got.1 != n_vocab || got.0.len() != reference.0.len() {
        c.max_nrmse = f64::INFINITY;
        return c;
    }
    for (r, g) in rows {
        c.positions += 1;
        let n = r.len() as f64;
        let mean = r.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = r
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let err = r
            .iter()
            .zip(g)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum::<f64>()
            / n;
        c.max_nrmse = c.max_nrmse.max(err.sqrt() / var.sqrt());
        let argmax = |v: &[f32]| {
            v.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |m, (i, &x)| if x > m.1 { (i, x) } else { m },
                )
                .0
        };
        c.argmax_equal += usize::from(argmax(r) == argmax(g));
        c.identical += usize::from(r.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::cases;

    #[test]
    fn finds_the_summary_after_a_test_name() {
        let out = "test a ... neon: 2042 cases, 0 failed\ntest b ... neon: 2042 cases\nok\n";
        assert_eq!(cases(out, "neon"), Some(2042));
        assert_eq!(cases("neon+dotprod: 7 cases\n", "neon"), None);
        assert_eq!(cases("neon+dotprod: 7 cases\n", "neon+dotprod"), Some(7));
        assert_eq!(cases("neon: 2042 cases, 0 failed\n", "neon"), None);
    }
}

//! `cargo xtask bench model [--threads N] [--pairs K] [--no-callgrind]`:
//! phi-edge against llama.cpp on SmolLM2-135M-Instruct Q4_1, measured so
//! that a reader can trust the ratio.
//!
//! - Every run is a fresh process: `phi-edge run` (release build, on the
//!   packed image) or `tests/bench/llama_speed.py` (llama-cpp-python's
//!   low-level API, on the GGUF file), with the same prompt ([`PROMPT`],
//!   which both must read as the same tokens), the same context
//!   ([`N_CTX`]), `N` threads and [`N_GEN`] greedy tokens.
//! - Each engine is timed around its own evaluation calls only: phi-edge by
//!   its summary line, llama.cpp around its `llama_decode` calls. Both count
//!   decode tokens/s as `phi-edge run` does: M generated tokens over the
//!   time of the M - 1 single-token evaluations after the prefill (the
//!   first token comes from the prefill's logits).
//! - llama.cpp runs in two builds ([`LlamaBuild`]): the pinned oracle (AVX2,
//!   the arithmetic phi-edge reproduces) and a native one (what `pip install
//!   llama-cpp-python` builds on this CPU).
//! - Each engine runs once untimed first (it warms the page cache and
//!   checks the settings), then `K` pairs: pair `i` runs phi-edge, native,
//!   pinned for even `i` and the reverse for odd `i` (ABBA), so that drift
//!   (clock, heat, other load) falls on both sides alike.
//! - Every pair's figures are printed, then the median over the pairs of
//!   the per-pair ratio phi-edge / llama.cpp, with its range, and the share
//!   of the CPU time other processes took meanwhile (see [`super::load`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::load::CpuTimes;
use super::{batch, callgrind};
use crate::cmd::show;
use crate::python::{self, LlamaBuild};
use crate::{demo, setup, Failure, Result, Workspace};

/// The prompt both engines prefill: 60-odd SmolLM2 tokens, a continuation
/// that greedy decoding does not end within [`N_GEN`] tokens.
pub(super) const PROMPT: &str =
    "The history of the printing press begins in the fifteenth century, when \
                      Johannes Gutenberg combined movable metal type, oil-based inks and a wooden \
                      screw press into a system that could produce books quickly and cheaply. \
                      Within fifty years, printing shops had spread to more than two hundred \
                      cities across Europe, and the number of books in circulation grew from \
                      thousands to millions.";
/// Tokens generated after the prompt.
pub(super) const N_GEN: u32 = 64;
/// Context of both engines, in tokens: the prompt and the generated
/// tokens fit, and llama.cpp prefills the prompt in one batch of this size.
const N_CTX: u32 = 512;
/// Pairs run when `--pairs` is not given.
const DEFAULT_PAIRS: usize = 5;

/// Share of the CPU time taken by other processes during the timed runs
/// above which the figures are flagged as unreliable.
pub(super) const BUSY: f64 = 0.05;

/// How to call `bench model`, for messages.
const MODEL_USAGE: &str =
    "cargo xtask bench model [--threads N] [--pairs K] [--no-callgrind | --stream [--stage KIB]]";

/// What `bench model` was asked for.
pub struct Options {
    /// Threads of both engines (default: the online CPUs).
    pub(super) threads: usize,
    /// Pairs of timed runs.
    pub(super) pairs: usize,
    /// Whether to count instructions under callgrind too.
    callgrind: bool,
    /// `--stream`: phi-edge streamed against phi-edge mapped instead (see
    /// [`super::stream`]), with staging buffers of this many KiB.
    pub(super) stream: Option<u32>,
}

impl Options {
    /// The options after `bench model`.
    pub fn parse(args: &[&str]) -> Result<Options> {
        let mut options = Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pairs: DEFAULT_PAIRS,
            callgrind: true,
            stream: None,
        };
        let mut stage = None;
        let mut args = args.iter();
        while let Some(&arg) = args.next() {
            match arg {
                "--threads" => options.threads = positive(arg, args.next())?,
                "--pairs" => options.pairs = positive(arg, args.next())?,
                "--no-callgrind" => options.callgrind = false,
                "--stream" => options.stream = Some(super::stream::DEFAULT_STAGE_KIB),
                "--stage" => stage = Some(positive(arg, args.next())?),
                other => {
                    let what = format!(
                        "`bench model` takes --threads N, --pairs K, --no-callgrind and --stream [--stage KIB] (got `{other}`)"
                    );
                    return Err(Failure::new(what).retry(MODEL_USAGE));
                }
            }
        }
        if let Some(kib) = stage {
            let kib = u32::try_from(kib)
                .map_err(|_| Failure::new("--stage is too large").retry(MODEL_USAGE))?;
            match options.stream {
                Some(_) => options.stream = Some(kib),
                None => return Err(Failure::new("--stage is for --stream").retry(MODEL_USAGE)),
            }
        }
        Ok(options)
    }
}

/// The value of `flag`: a whole number of at least 1.
fn positive(flag: &str, value: Option<&&str>) -> Result<usize> {
    value
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .ok_or_else(|| {
            Failure::new(format!("{flag} needs a whole number of at least 1")).retry(MODEL_USAGE)
        })
}

/// One of the programs measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `phi-edge run`.
    PhiEdge,
    /// llama.cpp, through `tests/bench/llama_speed.py`.
    Llama(LlamaBuild),
}

/// The engines of a pair, in the order of an even pair.
const ENGINES: [Engine; 3] = [
    Engine::PhiEdge,
    Engine::Llama(LlamaBuild::Native),
    Engine::Llama(LlamaBuild::Pinned),
];

impl Engine {
    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Engine::PhiEdge => "phi-edge",
            Engine::Llama(LlamaBuild::Native) => "native",
            Engine::Llama(LlamaBuild::Pinned) => "pinned",
        }
    }
}

/// The programs and files the runs use.
pub struct Subjects {
    /// The `phi-edge` release binary.
    pub(super) cli: PathBuf,
    /// SmolLM2's packed image, which phi-edge runs.
    pub(super) image: PathBuf,
    /// SmolLM2's GGUF file, which llama.cpp runs.
    pub(super) gguf: PathBuf,
    /// `tests/bench/llama_speed.py`.
    script: PathBuf,
    /// The interpreter of the pinned build's venv.
    pinned: PathBuf,
    /// The interpreter of the native build's venv.
    native: PathBuf,
}

impl Subjects {
    /// Sets up what is missing: the oracle's venv, SmolLM2, the native
    /// build's venv, the release `phi-edge` and SmolLM2's image.
    fn prepare(ws: &Workspace) -> Result<Subjects> {
        let pinned = python::ensure(ws)?;
        let gguf = setup::smollm2_path(ws);
        if !gguf.is_file() {
            setup::smollm2(ws, &pinned)?;
        }
        let native = python::ensure_build(ws, LlamaBuild::Native)?;
        let image = demo::image(ws)?;
        Ok(Subjects {
            cli: release_cli(ws),
            image,
            gguf,
            script: ws.root.join("tests").join("bench").join("llama_speed.py"),
            pinned,
            native,
        })
    }

    /// The interpreter of `build`'s venv.
    pub(super) fn python(&self, build: LlamaBuild) -> &PathBuf {
        match build {
            LlamaBuild::Pinned => &self.pinned,
            LlamaBuild::Native => &self.native,
        }
    }

    /// The command of one run of `engine`.
    pub fn command(&self, engine: Engine, prompt: &str, n_gen: u32, threads: usize) -> Command {
        match engine {
            Engine::PhiEdge => phi_edge_run(&self.cli, &self.image, prompt, n_gen, threads),
            Engine::Llama(build) => {
                let (n_gen, threads, n_ctx) =
                    (n_gen.to_string(), threads.to_string(), N_CTX.to_string());
                let mut c = Command::new(self.python(build));
                c.arg(&self.script)
                    .arg(&self.gguf)
                    .args([prompt, &n_gen, &threads, &n_ctx]);
                c
            }
        }
    }
}

/// The `phi-edge run` command of a benchmark run: `prompt`, greedy,
/// `n_gen` tokens, `threads` threads, context [`N_CTX`].
pub(super) fn phi_edge_run(
    cli: &Path,
    image: &Path,
    prompt: &str,
    n_gen: u32,
    threads: usize,
) -> Command {
    let (n_gen, threads, n_ctx) = (n_gen.to_string(), threads.to_string(), N_CTX.to_string());
    let mut c = Command::new(cli);
    c.arg("run").arg("--model").arg(image);
    c.args(["--prompt", prompt, "--temp", "0", "--max-tokens", &n_gen]);
    c.args(["--threads", &threads, "--ctx", &n_ctx]);
    c
}

/// The `phi-edge` release binary `cargo run --release` builds: under
/// CARGO_TARGET_DIR when that is set.
pub(super) fn release_cli(ws: &Workspace) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws.target(), |d| ws.root.join(d));
    target.join("release").join("phi-edge")
}

/// Runs `cmd` with stdin closed and its output captured; fails with its
/// stderr unless it exits 0.
pub fn execute(cmd: &mut Command) -> Result<Output> {
    let line = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::new(format!("cannot start `{line}`: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "`{line}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    Ok(out)
}

/// What one run reports.
pub struct Report {
    /// Prompt tokens.
    pub n_prompt: u64,
    /// Generated tokens.
    pub n_gen: u64,
    /// Prefill tokens/s.
    pub prefill: f64,
    /// Decode tokens/s.
    pub decode: f64,
    /// How the engine computed: phi-edge's kernel set, llama.cpp's CPU
    /// features.
    pub detail: String,
}

/// Reads the figures of a run of `engine` out of its output (and checks
/// phi-edge ran on `threads` threads, when it says).
pub fn report(engine: Engine, out: &Output, threads: usize) -> Result<Report> {
    match engine {
        Engine::PhiEdge => phi_edge_report(&String::from_utf8_lossy(&out.stderr), threads),
        Engine::Llama(_) => llama_report(&String::from_utf8_lossy(&out.stdout)),
    }
}

/// The figures of `phi-edge run`'s summary line, the last one in `stderr`.
pub(super) fn phi_edge_report(stderr: &str, threads: usize) -> Result<Report> {
    let summary = stderr
        .lines()
        .rev()
        .find_map(Summary::parse)
        .ok_or_else(|| {
            Failure::new(format!(
                "no summary line in phi-edge's stderr:\n{}",
                stderr.trim_end()
            ))
        })?;
    let number = |key: &str| {
        summary.number(key).ok_or_else(|| {
            Failure::new(format!(
                "phi-edge's summary has no number `{key}`: {}",
                summary.line
            ))
        })
    };
    if summary
        .number("threads")
        .is_some_and(|t| t != threads as f64)
    {
        return Err(Failure::new(format!(
            "phi-edge did not run on the {threads} threads asked for: {}",
            summary.line
        )));
    }
    Ok(Report {
        n_prompt: number("prompt")? as u64,
        n_gen: number("generated")? as u64,
        prefill: number("prefill")?,
        decode: number("decode")?,
        detail: format!("kernels {}", summary.field("kernels").unwrap_or("?")),
    })
}

/// The figures of llama_speed.py's JSON line, the last one in `stdout`.
fn llama_report(stdout: &str) -> Result<Report> {
    let json: serde_json::Value = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            Failure::new(format!(
                "no JSON line in llama_speed.py's output:\n{}",
                stdout.trim_end()
            ))
        })?;
    let number = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| {
                Failure::new(format!(
                    "llama_speed.py's JSON has no number `{key}`: {json}"
                ))
            })
    };
    // "CPU : SSE3 = 1 | AVX = 1 | ... |": the features the build uses.
    let features: Vec<&str> = json
        .get("system_info")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .split('|')
        .filter_map(|f| f.trim().strip_suffix("= 1"))
        .map(|f| f.rsplit(':').next().unwrap_or(f).trim())
        .collect();
    Ok(Report {
        n_prompt: number("n_prompt")? as u64,
        n_gen: number("n_gen")? as u64,
        prefill: number("prefill_tok_s")?,
        decode: number("decode_tok_s")?,
        detail: format!("CPU features {}", features.join(" ")),
    })
}

/// `phi-edge run`'s summary line: fields separated by `;` or `,`, each a
/// key and a value ("prompt 71 tokens", "decode 180.2 tok/s", "kernels
/// avx2", ...), looked up by key in any order.
pub(super) struct Summary<'a> {
    /// The whole line, for messages.
    line: &'a str,
    /// (key, the rest of the field).
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Summary<'a> {
    /// The line's fields, if it is the summary (it has prefill and decode).
    pub(super) fn parse(line: &'a str) -> Option<Summary<'a>> {
        let fields: Vec<(&str, &str)> = line
            .split([';', ','])
            .filter_map(|f| f.trim().split_once(' '))
            .map(|(k, v)| (k, v.trim()))
            .collect();
        let summary = Summary { line, fields };
        (summary.number("prefill").is_some() && summary.number("decode").is_some())
            .then_some(summary)
    }

    /// The value of field `key`.
    pub(super) fn field(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// The number that starts field `key`.
    pub(super) fn number(&self, key: &str) -> Option<f64> {
        self.field(key)?.split_whitespace().next()?.parse().ok()
    }
}

/// tok/s of one phase (prefill or decode) per engine (as in [`ENGINES`]),
/// one figure per pair.
type Phase = [Vec<f64>; 3];

/// Runs `bench model`.
pub fn run(ws: &Workspace, options: &Options) -> Result<()> {
    if let Some(kib) = options.stream {
        return super::stream::run(ws, options, kib);
    }
    let s = Subjects::prepare(ws)?;
    let threads = options.threads;
    let (n_prompt, details) = warm_up(&s, threads)?;
    println!(
        "SmolLM2-135M-Instruct Q4_1: a {n_prompt}-token prompt, then {N_GEN} greedy tokens; \
         context {N_CTX}; {threads} thread{}",
        plural(threads)
    );
    println!("  phi-edge          {}: {}", s.cli.display(), details[0]);
    println!("  llama.cpp native  -DGGML_NATIVE=ON: {}", details[1]);
    println!(
        "  llama.cpp pinned  tests/oracle/llama-cpp-build.txt: {}",
        details[2]
    );
    println!(
        "{} pair{} of fresh processes: phi-edge, native, pinned, then the reverse (ABBA); \
         each timed around its eval calls",
        options.pairs,
        plural(options.pairs)
    );
    let (prefill, decode) = time_pairs(&s, threads, options.pairs, n_prompt)?;

    println!("phi-edge/llama.cpp, median over the pairs (range):");
    for (what, phase) in [("prefill", &prefill), ("decode", &decode)] {
        let [native, pinned] = [1, 2].map(|e| {
            let r = ratios(phase, e);
            let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.2}x ({lo:.2}-{hi:.2})", median(&r))
        });
        println!("  {what:<8} native {native}, pinned {pinned}");
    }
    let counted = options
        .callgrind
        .then(|| callgrind::count(&s))
        .transpose()?;
    let ratio = |phase: &Phase, e: usize| median(&ratios(phase, e));
    println!(
        "threads {threads}: decode phi-edge/llama.cpp native {:.2}x, pinned {:.2}x; \
         prefill native {:.2}x, pinned {:.2}x",
        ratio(&decode, 1),
        ratio(&decode, 2),
        ratio(&prefill, 1),
        ratio(&prefill, 2)
    );
    if let Some(line) = counted {
        println!("{line}");
    }
    for line in batch::invariance(ws, &s, PROMPT, N_CTX, threads)? {
        println!("{line}");
    }
    Ok(())
}

/// Runs each engine once, untimed: it warms the page cache and checks the
/// settings. Returns the prompt's length in tokens and how each engine
/// computes.
fn warm_up(s: &Subjects, threads: usize) -> Result<(u64, [String; 3])> {
    eprintln!("bench: one untimed run of each engine (warms the page cache, checks the settings)");
    let mut n_prompt = None;
    let mut details = [const { String::new() }; 3];
    for (e, engine) in ENGINES.into_iter().enumerate() {
        let r = measure(s, engine, threads, n_prompt)?;
        n_prompt = Some(r.n_prompt);
        details[e] = r.detail;
    }
    Ok((n_prompt.unwrap_or(0), details))
}

/// Runs the `pairs` timed pairs, printing each pair's figures, their
/// medians and the other processes' share of the CPU time meanwhile;
/// returns the prefill and decode figures.
fn time_pairs(s: &Subjects, threads: usize, pairs: usize, n_prompt: u64) -> Result<(Phase, Phase)> {
    let names = ENGINES.map(Engine::name);
    println!("{:<16}{:^30}   {:^30}", "", "prefill tok/s", "decode tok/s");
    println!("{}", row("pair", names, names));
    let (mut prefill, mut decode) = (Phase::default(), Phase::default());
    let start = CpuTimes::now();
    for pair in 0..pairs {
        let mut order = [0, 1, 2];
        if pair % 2 == 1 {
            order.reverse();
        }
        for e in order {
            let r = measure(s, ENGINES[e], threads, Some(n_prompt))?;
            prefill[e].push(r.prefill);
            decode[e].push(r.decode);
        }
        let first = if pair % 2 == 0 {
            "phi first"
        } else {
            "phi last"
        };
        let at = |phase: &Phase| [0, 1, 2].map(|e| format!("{:.1}", phase[e][pair]));
        println!(
            "{}",
            row(
                &format!("{} ({first})", pair + 1),
                at(&prefill),
                at(&decode)
            )
        );
    }
    let others = start
        .zip(CpuTimes::now())
        .map(|(start, end)| end.others_since(&start));
    let medians = |phase: &Phase| [0, 1, 2].map(|e| format!("{:.1}", median(&phase[e])));
    println!("{}", row("median", medians(&prefill), medians(&decode)));
    if let Some(others) = others {
        let verdict = if others > BUSY {
            ": a busy machine, the figures are unreliable"
        } else {
            ""
        };
        println!(
            "other processes took {:.1}% of the CPU time meanwhile{verdict}",
            others * 100.0
        );
    }
    Ok((prefill, decode))
}

/// A table row: a label, then the three engines' prefill and decode cells.
fn row<S: std::fmt::Display>(label: &str, prefill: [S; 3], decode: [S; 3]) -> String {
    let [a, b, c] = prefill;
    let [d, e, f] = decode;
    format!("{label:<16}{a:>10}{b:>10}{c:>10}   {d:>10}{e:>10}{f:>10}")
}

/// "s" unless `n` is 1.
pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// phi-edge's figure over engine `e`'s, pair by pair.
fn ratios(phase: &Phase, e: usize) -> Vec<f64> {
    phase[0].iter().zip(&phase[e]).map(|(p, l)| p / l).collect()
}

/// One run of `engine` on [`PROMPT`]; checks it generated [`N_GEN`] tokens
/// and, when `n_prompt` is known, read the prompt as that many tokens.
fn measure(s: &Subjects, engine: Engine, threads: usize, n_prompt: Option<u64>) -> Result<Report> {
    let out = execute(&mut s.command(engine, PROMPT, N_GEN, threads))?;
    let r = report(engine, &out, threads)?;
    if r.n_gen != u64::from(N_GEN) {
        return Err(Failure::new(format!(
            "{} generated {} tokens, not {N_GEN} (the end of the text?): the figures would not compare; \
             lengthen or change PROMPT in xtask/src/bench/model.rs",
            engine.name(),
            r.n_gen
        )));
    }
    match n_prompt {
        Some(n) if n != r.n_prompt => Err(Failure::new(format!(
            "{} read the prompt as {} tokens, phi-edge as {n}: the engines tokenize it differently",
            engine.name(),
            r.n_prompt
        ))),
        _ => Ok(r),
    }
}

/// The median of `v` (the mean of the middle two when their number is even).
pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_fields_are_found_by_key() {
        let line =
            "prompt 70 tokens, prefill 812.5 tok/s; generated 64 tokens, decode 190.2 tok/s; \
                    perplexity 2.4237; arena 12960451 bytes; kernels avx2; threads 2";
        let r = phi_edge_report(&format!("some text\n{line}\n"), 2).unwrap();
        assert_eq!(
            (r.n_prompt, r.n_gen, r.prefill, r.decode),
            (70, 64, 812.5, 190.2)
        );
        assert_eq!(r.detail, "kernels avx2");
        assert!(
            phi_edge_report(line, 1).is_err(),
            "a thread count other than asked for"
        );
        let old = "prompt 8 tokens, prefill 5.8 tok/s; generated 24 tokens, decode 5.2 tok/s; kernels portable";
        assert_eq!(phi_edge_report(old, 3).unwrap().detail, "kernels portable");
        assert!(phi_edge_report("no summary here", 1).is_err());
    }

    #[test]
    fn llama_features_are_the_ones_on() {
        let json = r#"{"n_prompt": 70, "n_gen": 64, "prefill_tok_s": 1.5, "decode_tok_s": 2.5,
                       "system_info": "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | OPENMP = 1 |"}"#;
        let r = llama_report(&json.replace('\n', "")).unwrap();
        assert_eq!(r.detail, "CPU features SSE3 AVX OPENMP");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}

//! `cargo xtask bench model --stream [--stage KIB] [--threads N] [--pairs K]`:
//! decode with the weights streamed from the image file against decode on
//! the mapped image, the same `phi-edge` binary both ways.
//!
//! - Streamed is `phi-edge run --stream KIB` (default
//!   [`DEFAULT_STAGE_KIB`]): each weight matrix is read with `pread` into
//!   one of two staging buffers of KIB KiB by a reader thread while the
//!   kernels work on the other. Mapped is the same command without
//!   `--stream`. Both run [`PROMPT`], [`N_GEN`] greedy tokens, the same
//!   context and threads as `bench model`, in fresh processes, timed by
//!   their summary lines.
//! - One untimed run of each first: it puts the image in the page cache
//!   (so what is measured is the cost of copying the weights and handing
//!   the buffers over, not a disk) and checks both generate the same text.
//! - Then `K` pairs, mapped then streamed for even pairs and the reverse
//!   for odd ones (ABBA); every pair's figures, the medians, and the median
//!   over the pairs of streamed / mapped with its range; the bytes read per
//!   decoded token and the read rate they take at the streamed decode
//!   speed; the share of the CPU other processes took meanwhile.

use std::process::Command;

use super::load::CpuTimes;
use super::model::{
    execute, median, phi_edge_report, phi_edge_run, plural, release_cli, Options, Report, Summary,
    BUSY, N_GEN, PROMPT,
};
use crate::{demo, Failure, Result, Workspace};

/// Staging buffer size of `--stream` without `--stage`, in KiB: what the
/// issue's acceptance runs (`phi-edge run --stream 256`).
pub const DEFAULT_STAGE_KIB: u32 = 256;

/// The two ways of reading the weights, in the order of an even pair.
const WAYS: [&str; 2] = ["mapped", "streamed"];

/// Runs `bench model --stream` with staging buffers of `kib` KiB.
pub fn run(ws: &Workspace, options: &Options, kib: u32) -> Result<()> {
    // Packs the image if needed and builds the release binary.
    let image = demo::image(ws)?;
    let cli = release_cli(ws);
    let threads = options.threads;
    let stage = kib.to_string();
    let command = |way: usize| {
        let mut c = phi_edge_run(&cli, &image, PROMPT, N_GEN, threads);
        if way == 1 {
            c.args(["--stream", &stage]);
        }
        c
    };

    eprintln!(
        "bench: one untimed run of each (warms the page cache, checks both generate the same text)"
    );
    let mapped = execute(&mut command(0))?;
    let streamed = execute(&mut command(1))?;
    if mapped.stdout != streamed.stdout {
        return Err(Failure::new(format!(
            "streamed and mapped runs generated different text:\n  mapped:   {:?}\n  streamed: {:?}",
            String::from_utf8_lossy(&mapped.stdout),
            String::from_utf8_lossy(&streamed.stdout)
        )));
    }
    let per_token = bytes_per_token(&String::from_utf8_lossy(&streamed.stderr))?;
    let n_prompt = phi_edge_report(&String::from_utf8_lossy(&mapped.stderr), threads)?.n_prompt;
    println!(
        "SmolLM2-135M-Instruct Q4_1 ({}): a {n_prompt}-token prompt, then {N_GEN} greedy tokens; \
         {threads} thread{}; streamed through 2 x {kib} KiB staging buffers, {:.1} MB read per decoded token",
        image.display(),
        plural(threads),
        per_token / 1e6
    );
    println!(
        "{} pair{} of fresh processes of {}: mapped, streamed, then the reverse (ABBA); the image in the page cache",
        options.pairs,
        plural(options.pairs),
        cli.display()
    );
    println!(
        "{:<20}{:^20}   {:^20}   {:>8}",
        "", "prefill tok/s", "decode tok/s", "decode"
    );
    println!(
        "{:<20}{:>10}{:>10}   {:>10}{:>10}   {:>8}",
        "pair", WAYS[0], WAYS[1], WAYS[0], WAYS[1], "ratio"
    );
    let (mut prefill, mut decode) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let start = CpuTimes::now();
    for pair in 0..options.pairs {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for way in order {
            let r = measure(&mut command(way), threads, n_prompt)?;
            prefill[way].push(r.prefill);
            decode[way].push(r.decode);
        }
        let first = if pair % 2 == 0 {
            "mapped first"
        } else {
            "streamed first"
        };
        println!(
            "{:<20}{:>10.1}{:>10.1}   {:>10.1}{:>10.1}   {:>8.2}",
            format!("{} ({first})", pair + 1),
            prefill[0][pair],
            prefill[1][pair],
            decode[0][pair],
            decode[1][pair],
            decode[1][pair] / decode[0][pair]
        );
    }
    let others = start
        .zip(CpuTimes::now())
        .map(|(start, end)| end.others_since(&start));
    let ratio = |phase: &[Vec<f64>; 2]| {
        let r: Vec<f64> = phase[1].iter().zip(&phase[0]).map(|(s, m)| s / m).collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(&r), lo, hi)
    };
    println!(
        "{:<20}{:>10.1}{:>10.1}   {:>10.1}{:>10.1}",
        "median",
        median(&prefill[0]),
        median(&prefill[1]),
        median(&decode[0]),
        median(&decode[1])
    );
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
    let (d, dlo, dhi) = ratio(&decode);
    let (p, plo, phi) = ratio(&prefill);
    println!(
        "threads {threads}, stage {kib} KiB: streamed/mapped decode {d:.2}x ({dlo:.2}-{dhi:.2}), \
         prefill {p:.2}x ({plo:.2}-{phi:.2}); {:.1} MB/token read at {:.2} GB/s",
        per_token / 1e6,
        per_token * median(&decode[1]) / 1e9
    );
    Ok(())
}

/// One timed run; checks it generated [`N_GEN`] tokens from an
/// `n_prompt`-token prompt.
fn measure(cmd: &mut Command, threads: usize, n_prompt: u64) -> Result<Report> {
    let out = execute(cmd)?;
    let r = phi_edge_report(&String::from_utf8_lossy(&out.stderr), threads)?;
    if r.n_gen != u64::from(N_GEN) || r.n_prompt != n_prompt {
        return Err(Failure::new(format!(
            "phi-edge read {} prompt tokens and generated {}, not {n_prompt} and {N_GEN}",
            r.n_prompt, r.n_gen
        )));
    }
    Ok(r)
}

/// The bytes per decoded token of a streamed run's summary line (its
/// `streamed N bytes/token` field).
fn bytes_per_token(stderr: &str) -> Result<f64> {
    stderr
        .lines()
        .rev()
        .find_map(Summary::parse)
        .and_then(|s| s.number("streamed"))
        .ok_or_else(|| {
            Failure::new(format!(
                "no `streamed N bytes/token` in phi-edge's summary:\n{}",
                stderr.trim_end()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_summary_gives_the_bytes_per_token() {
        let line = "prompt 70 tokens, prefill 300.5 tok/s; generated 64 tokens, decode 40.2 tok/s; perplexity 2.4237; \
                    streamed 96577636 bytes/token, 96581108 bytes/prefill chunk; arena 13985328 bytes; kernels avx2; threads 2";
        assert_eq!(
            bytes_per_token(&format!("text\n{line}\n")).unwrap(),
            96577636.0
        );
        assert!(bytes_per_token(
            "prompt 1 tokens, prefill 1 tok/s; generated 1 tokens, decode 1 tok/s"
        )
        .is_err());
    }
}

//! Steps: named units of work with a header, a wall-time footer and a
//! summary, run in order by [`run_all`].
//!
//! A *required* step's failure stops the run (nothing after it can work:
//! no venv, no goldens); a non-required step's failure is recorded and the
//! run goes on, so e.g. a failing host test does not hide the result of a
//! later QEMU step. The run fails if any step failed.

use std::time::{Duration, Instant};

use crate::{reference, setup, Failure, Result, Workspace};

/// The work of a step.
pub type StepFn = Box<dyn Fn(&Workspace) -> Result<()>>;

/// One unit of work in a run.
pub struct Step {
    /// Short name, shown in headers and the summary.
    pub name: &'static str,
    /// Whether a failure stops the steps after it.
    pub required: bool,
    /// The command that reruns just this step, for failure messages.
    pub retry: &'static str,
    /// The work itself.
    pub run: StepFn,
}

/// `setup`: the venv, SmolLM2, vocab files and rustup targets.
pub fn setup() -> Step {
    Step {
        name: "setup",
        required: true,
        retry: "cargo xtask setup",
        run: Box::new(|ws| setup::run_setup(ws).map(|_| ())),
    }
}

/// `ref`: the llama.cpp goldens (after setup has made the venv).
pub fn reference(force: bool) -> Step {
    Step {
        name: "ref",
        required: true,
        retry: if force {
            "cargo xtask ref --force"
        } else {
            "cargo xtask ref"
        },
        run: Box::new(move |ws| {
            let py = crate::python::venv_python(ws);
            reference::run_ref(ws, &py, force)
        }),
    }
}

enum Outcome {
    Passed,
    Failed(Failure),
    Skipped,
}

/// Runs `steps` in order with headers and timings; returns the first
/// failure (naming all failed steps when there are several).
pub fn run_all(ws: &Workspace, steps: &[Step]) -> Result<()> {
    let start = Instant::now();
    let n = steps.len();
    let mut results: Vec<(&Step, Outcome, Duration)> = Vec::new();
    let mut stop = false;
    for (i, step) in steps.iter().enumerate() {
        if stop {
            results.push((step, Outcome::Skipped, Duration::ZERO));
            continue;
        }
        eprintln!("\n==> [{}/{n}] {}", i + 1, step.name);
        let t = Instant::now();
        let outcome = (step.run)(ws);
        let dt = t.elapsed();
        match outcome {
            Ok(()) => {
                eprintln!("<== {}: ok ({})", step.name, secs(dt));
                results.push((step, Outcome::Passed, dt));
            }
            Err(f) => {
                let f = f.or_retry(step.retry);
                eprintln!("<== {}: FAILED ({}): {}", step.name, secs(dt), f.what);
                stop = step.required;
                results.push((step, Outcome::Failed(f), dt));
            }
        }
    }

    if n > 1 {
        eprintln!("\n==> summary");
        for (step, outcome, dt) in &results {
            let status = match outcome {
                Outcome::Passed => "ok",
                Outcome::Failed(_) => "FAILED",
                Outcome::Skipped => "skipped",
            };
            eprintln!("    {:<12} {:<8} {:>8}", step.name, status, secs(*dt));
        }
        eprintln!("    {:<12} {:<8} {:>8}", "total", "", secs(start.elapsed()));
    }

    let mut failed: Vec<(&Step, Failure)> = results
        .into_iter()
        .filter_map(|(s, o, _)| match o {
            Outcome::Failed(f) => Some((s, f)),
            _ => None,
        })
        .collect();
    match failed.len() {
        0 => Ok(()),
        1 => {
            let (step, f) = failed.remove(0);
            Err(Failure {
                what: format!("step `{}` failed: {}", step.name, f.what),
                retry: f.retry,
            })
        }
        _ => {
            let names: Vec<&str> = failed.iter().map(|(s, _)| s.name).collect();
            let retries: Vec<String> = failed.iter().filter_map(|(_, f)| f.retry.clone()).collect();
            Err(Failure::new(format!("steps failed: {}", names.join(", ")))
                .retry(retries.join("; ")))
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

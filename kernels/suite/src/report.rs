//! Per-kernel case counts, bit-identity and error statistics, and how one
//! result is compared with the oracle's.

use std::fmt;
use std::string::String;
use std::vec::Vec;

/// Relative tolerance of float results (issue #4):
/// `|got - want| <= REL_TOL * mag`, where `mag` is the magnitude of the terms that make up the
/// result (see [`Tol`]), not of the result itself, so that cancellation
/// near zero does not fail spuriously.
pub const REL_TOL: f64 = 1e-6;

/// Relative tolerance of attention outputs. Attention rounds the query and
/// every softmax probability to f16, so a score that differs in its last
/// f32 bit can move a probability by one f16 ulp (2^-11 relative); the
/// tolerance is a few such ulps of `sum_j |v_j[d]|`-weighted mass.
pub const ATTN_TOL: f64 = 2e-3;

/// How a result is compared with the oracle's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tol {
    /// Bits must be equal (NaN equals any NaN).
    Exact,
    /// `|got - want| <= rel * mag`: `mag` is the sum of the magnitudes of
    /// the terms (for a dot product, `sum |w_i * a_i|` over the dequantized
    /// operands), so the bound scales with the inputs, not with a result
    /// that cancels to near zero. Infinities and NaN must match exactly.
    Rel {
        /// The relative bound.
        rel: f64,
        /// The magnitude the bound is relative to.
        mag: f64,
    },
}

/// Statistics of one kernel (or kernel variant) over all its cases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Kernel calls checked.
    pub cases: usize,
    /// Calls whose every output was bit-identical to the oracle's.
    pub identical: usize,
    /// Largest `|got - want| / mag` seen (0 when all bit-identical).
    pub max_rel: f64,
    /// Calls with an output outside the tolerance.
    pub failed: usize,
}

/// The outcome of [`crate::run_all`] for one kernel set.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The kernel set's [`phi_edge::Kernels::name`].
    pub set: String,
    /// Statistics per kernel variant, in the order first checked.
    pub kernels: Vec<(String, Stats)>,
    /// The first failures, described (at most [`MAX_MESSAGES`]).
    pub failures: Vec<String>,
}

/// Failure messages a report keeps.
pub const MAX_MESSAGES: usize = 30;

impl Report {
    pub(crate) fn new(set: &str) -> Self {
        Report {
            set: set.into(),
            ..Report::default()
        }
    }

    /// Total kernel calls checked.
    pub fn cases(&self) -> usize {
        self.kernels.iter().map(|(_, s)| s.cases).sum()
    }

    /// Total calls outside tolerance.
    pub fn failed(&self) -> usize {
        self.kernels.iter().map(|(_, s)| s.failed).sum()
    }

    /// The statistics of kernel variant `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Stats> {
        self.kernels.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Kernel variants with at least one call that was not bit-identical.
    pub fn not_identical(&self) -> Vec<&str> {
        self.kernels
            .iter()
            .filter(|(_, s)| s.identical != s.cases)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Panics with the failures if any call was outside tolerance.
    pub fn assert_ok(&self) {
        assert!(
            self.failed() == 0,
            "{}: {} of {} cases failed:\n{}",
            self.set,
            self.failed(),
            self.cases(),
            self.failures.join("\n")
        );
    }

    /// Panics unless every call of every kernel was bit-identical.
    pub fn assert_bit_identical(&self) {
        self.assert_ok();
        let ni = self.not_identical();
        assert!(
            ni.is_empty(),
            "{}: not bit-identical to portable: {ni:?}",
            self.set
        );
    }

    fn stats(&mut self, name: &str) -> &mut Stats {
        if let Some(i) = self.kernels.iter().position(|(n, _)| n == name) {
            return &mut self.kernels[i].1;
        }
        self.kernels.push((name.into(), Stats::default()));
        &mut self.kernels.last_mut().unwrap().1
    }

    /// Starts one case of kernel `name`: returns a checker the outputs are
    /// fed to; dropping it records the case.
    pub(crate) fn case<'r>(&'r mut self, name: &str, ctx: String) -> Case<'r> {
        Case {
            report: self,
            name: name.into(),
            ctx,
            identical: true,
            failed: false,
            max_rel: 0.0,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} cases, {} failed",
            self.set,
            self.cases(),
            self.failed()
        )?;
        for (name, s) in &self.kernels {
            writeln!(
                f,
                "  {name:<28} {:>5} cases, {:>5} bit-identical, max rel err {:.3e}{}",
                s.cases,
                s.identical,
                s.max_rel,
                if s.failed > 0 { "  FAILED" } else { "" }
            )?;
        }
        for m in &self.failures {
            writeln!(f, "  failure: {m}")?;
        }
        Ok(())
    }
}

/// One kernel call being checked.
pub(crate) struct Case<'r> {
    report: &'r mut Report,
    name: String,
    ctx: String,
    identical: bool,
    failed: bool,
    max_rel: f64,
}

impl Case<'_> {
    fn fail(&mut self, msg: String) {
        if !self.failed && self.report.failures.len() < MAX_MESSAGES {
            self.report
                .failures
                .push(std::format!("{} [{}]: {msg}", self.name, self.ctx));
        }
        self.failed = true;
    }

    /// Compares output `i` of the call.
    pub(crate) fn f32(&mut self, i: usize, got: f32, want: f32, tol: Tol) {
        if got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) {
            return;
        }
        self.identical = false;
        match tol {
            Tol::Exact => self.fail(std::format!("[{i}] got {got:e}, want {want:e} (exact)")),
            Tol::Rel { rel, mag } => {
                if !got.is_finite() || !want.is_finite() {
                    self.fail(std::format!("[{i}] got {got:e}, want {want:e}"));
                    return;
                }
                let err = (f64::from(got) - f64::from(want)).abs();
                let r = if mag > 0.0 { err / mag } else { f64::INFINITY };
                if r > self.max_rel {
                    self.max_rel = r;
                }
                if r > rel {
                    self.fail(std::format!(
                        "[{i}] got {got:e}, want {want:e}: err {err:e} is {r:e} of mag {mag:e}"
                    ));
                }
            }
        }
    }

    /// Compares byte or u16 outputs, which must be identical.
    pub(crate) fn bits<T: PartialEq + fmt::Debug>(&mut self, got: &[T], want: &[T]) {
        if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
            self.identical = false;
            self.fail(std::format!("[{i}] got {:?}, want {:?}", got[i], want[i]));
        }
    }
}

impl Drop for Case<'_> {
    fn drop(&mut self) {
        let (identical, failed, max_rel) = (self.identical, self.failed, self.max_rel);
        let s = self.report.stats(&self.name);
        s.cases += 1;
        s.identical += usize::from(identical);
        s.failed += usize::from(failed);
        if max_rel > s.max_rel {
            s.max_rel = max_rel;
        }
    }
}

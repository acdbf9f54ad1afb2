//! Perplexity and KL divergence, computed as llama.cpp's `llama-perplexity`
//! computes them (`tools/perplexity/perplexity.cpp`), step for step: the
//! same single-precision `expf` terms summed in double precision, the same
//! mixes of `float` and `double` in the negative log-likelihoods and their
//! squares, the same uncertainty formulas.
//!
//! - [`Perplexity`] accumulates `-log softmax(logits)[token]` over scored
//!   positions, as `perplexity()` does, and gives the final estimate
//!   `PPL = exp(mean) +/- PPL * sqrt(var / (count - 1))`.
//! - [`base_log_probs`] stores a base model's log-probabilities in 16 bits
//!   per token, as `llama-perplexity --kl-divergence-base` writes them to
//!   its logits file (one row: the scale and the least log-probability as
//!   two `f32`, then one `u16` per token); [`KlDivergence`] compares another
//!   model's logits with such rows, as `--kl-divergence` does. Keeping the
//!   16-bit step makes the figures llama.cpp's, quantization noise of the
//!   base included (about 1e-4 in each log-probability).
//!
//! Nothing here allocates: the caller keeps the rows, and sorts the
//! per-token values for [`percentile`] and [`median`] itself.

use crate::error::{Error, Result};
use crate::math;
use crate::quant::nearest_int;

/// `u16` values in one row of base log-probabilities for `n_vocab` tokens
/// (llama.cpp's `nv`): four for the two `f32` header values, then one per
/// token, rounded up to an even count.
pub const fn log_prob_row_len(n_vocab: usize) -> usize {
    2 * n_vocab.div_ceil(2) + 4
}

/// `token` as an index into `logits`, or [`Error::BadToken`].
fn index(logits: &[f32], token: u32) -> Result<usize> {
    let t = token as usize;
    if t >= logits.len() {
        return Err(Error::BadToken {
            id: token,
            n_vocab: logits.len() as u32,
        });
    }
    Ok(t)
}

/// The largest logit, as `std::max` folds it (`logits` is not empty).
fn max_logit(logits: &[f32]) -> f32 {
    logits[1..]
        .iter()
        .fold(logits[0], |m, &l| if m < l { l } else { m })
}

/// `sum(expf(l - max))` over `logits`, each term in single precision,
/// summed in double precision in order.
fn sum_exp(logits: &[f32], max: f32) -> f64 {
    logits
        .iter()
        .fold(0.0f64, |s, &l| s + f64::from(math::expf(l - max)))
}

/// A value and its standard uncertainty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// Its uncertainty (one standard error).
    pub uncertainty: f64,
}

/// The negative log-likelihood of scored tokens, summed as
/// `llama-perplexity` sums it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Perplexity {
    nll: f64,
    nll2: f64,
    count: u64,
}

impl Perplexity {
    /// Nothing scored yet.
    pub const fn new() -> Perplexity {
        Perplexity {
            nll: 0.0,
            nll2: 0.0,
            count: 0,
        }
    }

    /// Scores `token` under `logits` (one row of `n_vocab` values, the
    /// logits after the token before it): adds `-log softmax(logits)[token]`.
    pub fn add(&mut self, logits: &[f32], token: u32) -> Result<()> {
        let t = index(logits, token)?;
        let max = max_logit(logits);
        let log_softmax = f64::from(logits[t] - max) - math::ln(sum_exp(logits, max));
        let v = -log_softmax;
        self.nll += v;
        self.nll2 += v * v;
        self.count += 1;
        Ok(())
    }

    /// Tokens scored.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The perplexity so far, `exp(mean negative log-likelihood)` (what
    /// llama.cpp prints after each chunk); NaN before any token.
    pub fn value(&self) -> f64 {
        math::exp(self.nll / self.count as f64)
    }

    /// The final estimate: the perplexity and its uncertainty, `PPL *
    /// sqrt(var / (count - 1))` of the negative log-likelihoods. `None`
    /// when their variance is not positive (fewer than two tokens, or all
    /// alike), where llama.cpp reports an unexpected standard deviation.
    pub fn estimate(&self) -> Option<Estimate> {
        if self.count < 2 {
            return None;
        }
        let n = self.count as f64;
        let nll = self.nll / n;
        let ppl = math::exp(nll);
        let var = self.nll2 / n - nll * nll;
        // NaN (from infinite log-likelihoods) fails this too.
        if var.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater) {
            return None;
        }
        Some(Estimate {
            value: ppl,
            uncertainty: math::sqrt(var / (n - 1.0)) * ppl,
        })
    }
}

/// Stores the log-probabilities of `logits` in `out` in llama.cpp's 16-bit
/// row format ([`log_prob_row_len`] values): the scale and the least
/// log-probability kept (at most 16 below the largest) as two `f32`, then
/// for each token `round((logit - least) / scale)`, 0 for the tokens below
/// the least. `out` is left as it was on an error.
pub fn base_log_probs(logits: &[f32], out: &mut [u16]) -> Result<()> {
    let n = logits.len();
    if n == 0 {
        return Err(Error::BadOptions {
            what: "no logits to store",
        });
    }
    let need = log_prob_row_len(n);
    if out.len() < need {
        return Err(Error::BufferTooSmall {
            need,
            got: out.len(),
        });
    }
    let max = max_logit(logits);
    let min = logits[1..]
        .iter()
        .fold(logits[0], |m, &l| if l < m { l } else { m });
    let min = if min < max - 16.0 { max - 16.0 } else { min };
    let log_sum_exp = math::ln(sum_exp(logits, max)) as f32;
    let min_log_prob = min - max - log_sum_exp;
    let scale = (max - min) / 65535.0;
    let (head, q) = out[..need].split_at_mut(4);
    for (h, v) in head.chunks_exact_mut(2).zip([scale, min_log_prob]) {
        let bits = v.to_bits();
        h[0] = bits as u16;
        h[1] = (bits >> 16) as u16;
    }
    q.fill(0);
    if scale != 0.0 {
        let inv_scale = 1.0 / scale;
        for (o, &l) in q.iter_mut().zip(logits) {
            if l > min {
                *o = nearest_int(inv_scale * (l - min)) as u16;
            }
        }
    }
    Ok(())
}

/// What one scored token contributed to a [`KlDivergence`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlToken {
    /// KL(base ‖ model) at this position.
    pub kld: f32,
    /// The model's probability of the token minus the base's.
    pub p_diff: f32,
}

/// A model compared with a base model, token by token, as
/// `llama-perplexity --kl-divergence` compares them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KlDivergence {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    n_same_top: u64,
    count: u64,
}

/// The statistics llama.cpp prints after a KL-divergence run (and, the
/// running ones, after each chunk). "Q" is the model, "base" the base.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlSummary {
    /// Tokens compared.
    pub count: u64,
    /// PPL(Q), from single-precision negative log-likelihoods.
    pub ppl: Estimate,
    /// PPL(base), from the 16-bit log-probabilities.
    pub ppl_base: Estimate,
    /// Correlation of ln PPL(Q) and ln PPL(base).
    pub log_ppl_cor: f64,
    /// ln(PPL(Q) / PPL(base)).
    pub log_ppl_ratio: Estimate,
    /// PPL(Q) / PPL(base).
    pub ppl_ratio: Estimate,
    /// PPL(Q) - PPL(base).
    pub ppl_diff: Estimate,
    /// Mean KL(base ‖ Q) per token.
    pub kld: Estimate,
    /// Mean of the token's probability under Q minus under base.
    pub p_diff: Estimate,
    /// Root mean square of that difference.
    pub p_diff_rms: Estimate,
    /// Share of positions where both models rank the same token first.
    pub same_top: Estimate,
}

/// Mean and uncertainty of a value from its sum and sum of squares over
/// `count` samples (no uncertainty for 10 samples or fewer).
fn mean_and_uncertainty(sum: f64, sum2: f64, count: u64) -> Estimate {
    if count < 1 {
        return Estimate {
            value: 0.0,
            uncertainty: 0.0,
        };
    }
    let n = count as f64;
    let f = sum / n;
    let df = sum2 / n - f * f;
    let df = if df > 0.0 && count > 10 {
        math::sqrt(df / (n - 1.0))
    } else {
        0.0
    };
    Estimate {
        value: f,
        uncertainty: df,
    }
}

/// Covariance of the means of a and b (0 below 10 samples).
fn covariance(sum_a: f64, sum_b: f64, sum_ab: f64, count: u64) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1.0)
}

impl KlDivergence {
    /// Nothing compared yet.
    pub const fn new() -> KlDivergence {
        KlDivergence {
            sum_nll: 0.0,
            sum_nll2: 0.0,
            sum_nll_base: 0.0,
            sum_nll_base2: 0.0,
            sum_nll_nll_base: 0.0,
            sum_kld: 0.0,
            sum_kld2: 0.0,
            sum_p_diff: 0.0,
            sum_p_diff2: 0.0,
            sum_p_diff4: 0.0,
            n_same_top: 0,
            count: 0,
        }
    }

    /// Compares the model's `logits` at one position with the base's row
    /// `base` there (from [`base_log_probs`], same vocabulary) and scores
    /// `token`, the token that follows.
    pub fn add(&mut self, logits: &[f32], base: &[u16], token: u32) -> Result<KlToken> {
        let t = index(logits, token)?;
        let n = logits.len();
        let need = log_prob_row_len(n);
        if base.len() < need {
            return Err(Error::BufferTooSmall {
                need,
                got: base.len(),
            });
        }
        let mut max = logits[0];
        let mut imax = 0;
        for (i, &l) in logits.iter().enumerate().skip(1) {
            if l > max {
                max = l;
                imax = i;
            }
        }
        let log_sum_exp = math::ln(sum_exp(logits, max)) as f32;
        let word = |i: usize| f32::from_bits(u32::from(base[i]) | (u32::from(base[i + 1]) << 16));
        let (scale, min_log_prob) = (word(0), word(2));
        let q = &base[4..4 + n];

        let nll = max + log_sum_exp - logits[t];
        self.sum_nll += f64::from(nll);
        self.sum_nll2 += f64::from(nll * nll);
        let nll_base = -(scale * f32::from(q[t]) + min_log_prob);
        self.sum_nll_base += f64::from(nll_base);
        self.sum_nll_base2 += f64::from(nll_base * nll_base);
        self.sum_nll_nll_base += f64::from(nll * nll_base);

        let log_norm = max + log_sum_exp;
        let mut sum = 0.0f64;
        let mut imax_base = 0;
        let mut p_log_base_max = 0.0f32;
        for (i, (&qi, &l)) in q.iter().zip(logits).enumerate() {
            let p_log_base = scale * f32::from(qi) + min_log_prob;
            if i == 0 || p_log_base > p_log_base_max {
                p_log_base_max = p_log_base;
                imax_base = i;
            }
            if p_log_base > -16.0 {
                let p_base = math::expf(p_log_base);
                sum += f64::from(p_base * (p_log_base - l + log_norm));
            }
        }
        self.sum_kld += sum;
        self.sum_kld2 += sum * sum;
        self.count += 1;
        if imax == imax_base {
            self.n_same_top += 1;
        }

        let p_diff = math::expf(-nll) - math::expf(-nll_base);
        self.sum_p_diff += f64::from(p_diff);
        let p_diff2 = f64::from(p_diff * p_diff);
        self.sum_p_diff2 += p_diff2;
        self.sum_p_diff4 += p_diff2 * p_diff2;
        Ok(KlToken {
            kld: sum as f32,
            p_diff,
        })
    }

    /// Tokens compared.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The statistics so far.
    pub fn summary(&self) -> KlSummary {
        let n = self.count;
        let log_ppl = mean_and_uncertainty(self.sum_nll, self.sum_nll2, n);
        let log_base = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, n);
        let ppl = exp_estimate(log_ppl);
        let ppl_base = exp_estimate(log_base);
        let cov = covariance(self.sum_nll, self.sum_nll_base, self.sum_nll_nll_base, n);
        let ratio = Estimate {
            value: log_ppl.value - log_base.value,
            uncertainty: math::sqrt(
                log_ppl.uncertainty * log_ppl.uncertainty
                    + log_base.uncertainty * log_base.uncertainty
                    - 2.0 * cov,
            ),
        };
        let ppl_cov = ppl.value * ppl_base.value * cov;
        let mse = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, n);
        let rms = math::sqrt(mse.value);
        let same = self.n_same_top as f64 / n as f64;
        KlSummary {
            count: n,
            ppl,
            ppl_base,
            log_ppl_cor: cov / (log_ppl.uncertainty * log_base.uncertainty),
            log_ppl_ratio: ratio,
            ppl_ratio: exp_estimate(ratio),
            ppl_diff: Estimate {
                value: ppl.value - ppl_base.value,
                uncertainty: math::sqrt(
                    ppl.uncertainty * ppl.uncertainty + ppl_base.uncertainty * ppl_base.uncertainty
                        - 2.0 * ppl_cov,
                ),
            },
            kld: mean_and_uncertainty(self.sum_kld, self.sum_kld2, n),
            p_diff: mean_and_uncertainty(self.sum_p_diff, self.sum_p_diff2, n),
            p_diff_rms: Estimate {
                value: rms,
                uncertainty: 0.5 / rms * mse.uncertainty,
            },
            same_top: Estimate {
                value: same,
                uncertainty: math::sqrt(same * (1.0 - same) / (n as f64 - 1.0)),
            },
        }
    }
}

/// `exp` of a logarithm with its uncertainty: `(exp(v), exp(v) * u)`.
fn exp_estimate(log: Estimate) -> Estimate {
    let value = math::exp(log.value);
    Estimate {
        value,
        uncertainty: value * log.uncertainty,
    }
}

/// The value at `fraction` (0 to 1) of ascending `sorted`, interpolated
/// linearly between neighbours in single precision as llama.cpp does;
/// `None` if `sorted` is empty.
pub fn percentile(sorted: &[f32], fraction: f32) -> Option<f32> {
    let (&first, &last) = (sorted.first()?, sorted.last()?);
    if fraction <= 0.0 {
        return Some(first);
    }
    if fraction >= 1.0 {
        return Some(last);
    }
    let p = fraction * (sorted.len() - 1) as f32;
    let ip = p as usize;
    let p = p - ip as f32;
    Some((1.0 - p) * sorted[ip] + p * sorted[(ip + 1).min(sorted.len() - 1)])
}

/// The median of ascending `sorted` (the mean of the middle two for an
/// even count); `None` if it is empty.
pub fn median(sorted: &[f32]) -> Option<f32> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 0 => Some(0.5 * (sorted[n / 2] + sorted[n / 2 - 1])),
        _ => Some(sorted[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_the_vocabulary_size() {
        let logits = [0.5f32; 8];
        let mut p = Perplexity::new();
        p.add(&logits, 3).unwrap();
        p.add(&logits, 7).unwrap();
        assert!((p.value() - 8.0).abs() < 1e-12, "{}", p.value());
        // Every token equally likely: no variance, no estimate.
        assert_eq!(p.estimate(), None);
        assert_eq!(
            p.add(&logits, 8),
            Err(Error::BadToken { id: 8, n_vocab: 8 })
        );
    }

    #[test]
    fn estimate_follows_the_formula() {
        // Two tokens of probability 1/2 and 1/4 under two-way and
        // four-way uniform logits: nll ln 2 and ln 4.
        let mut p = Perplexity::new();
        p.add(&[1.0; 2], 0).unwrap();
        p.add(&[1.0; 4], 0).unwrap();
        let (a, b) = (2f64.ln(), 4f64.ln());
        let mean = (a + b) / 2.0;
        let var = (a * a + b * b) / 2.0 - mean * mean;
        let e = p.estimate().unwrap();
        assert!((e.value - mean.exp()).abs() < 1e-12);
        assert!((e.uncertainty - var.sqrt() * mean.exp()).abs() < 1e-12);
    }

    #[test]
    fn base_rows_round_trip_the_log_probabilities() {
        let logits = [2.0f32, -1.0, 0.5, 3.0, -30.0];
        let mut row = [0u16; 10];
        assert_eq!(log_prob_row_len(5), 10);
        base_log_probs(&logits, &mut row).unwrap();
        let lse = logits.iter().map(|&l| f64::from(l).exp()).sum::<f64>().ln();
        let word = |i: usize| f32::from_bits(u32::from(row[i]) | (u32::from(row[i + 1]) << 16));
        let (scale, min) = (word(0), word(2));
        for (i, &l) in logits.iter().enumerate().take(4) {
            let got = f64::from(scale * f32::from(row[4 + i]) + min);
            assert!((got - (f64::from(l) - lse)).abs() < 2e-4, "token {i}");
        }
        // Below the largest logit - 16: clamped to the least kept.
        assert_eq!(row[8], 0);
        assert_eq!(
            base_log_probs(&logits, &mut [0u16; 9]),
            Err(Error::BufferTooSmall { need: 10, got: 9 })
        );
    }

    #[test]
    fn a_model_against_itself_diverges_by_the_rounding_only() {
        let logits = [2.0f32, -1.0, 0.5, 3.0, -3.0, 1.5];
        let mut row = [0u16; 10];
        base_log_probs(&logits, &mut row).unwrap();
        let mut kl = KlDivergence::new();
        let t = kl.add(&logits, &row, 2).unwrap();
        assert!(t.kld.abs() < 1e-4 && t.p_diff.abs() < 1e-4, "{t:?}");
        let s = kl.summary();
        assert_eq!((s.count, s.same_top.value), (1, 1.0));
        assert!((s.ppl.value / s.ppl_base.value - 1.0).abs() < 1e-4);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(5.0));
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.125), Some(1.5));
        assert_eq!(median(&v), Some(3.0));
        assert_eq!(median(&v[..4]), Some(2.5));
        assert_eq!((percentile(&[], 0.5), median(&[])), (None, None));
    }
}

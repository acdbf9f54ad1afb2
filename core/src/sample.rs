//! Sampling the next token from the logits.
//!
//! The chain is llama.cpp's common default, in its order (`common_params`
//! `samplers`, without the ones that are off by default there: DRY,
//! top-n-sigma, typical-p, XTC):
//!
//! 1. **repetition penalty**: every distinct token among the last
//!    `repeat_last_n` accepted ones has its logit divided by
//!    `repeat_penalty` if positive, multiplied if zero or negative;
//! 2. **top-k**: keep the `top_k` highest logits (0: off);
//! 3. **top-p**: sort by logit, keep the shortest prefix whose softmax
//!    probabilities (of the logits as they are now, before temperature)
//!    sum to at least `top_p` (1.0: off);
//! 4. **min-p**: keep logits `>= max + ln(min_p)`, i.e. probability at
//!    least `min_p` times the top one's (0.0: off);
//! 5. **temperature**: divide the logits by `temperature`;
//! 6. **distribution**: draw from the softmax of what is left.
//!
//! With `temperature <= 0` the result is the first (lowest id) maximum of
//! the penalized logits, as in llama.cpp (its temperature step keeps only
//! that token, and the earlier steps never drop it); no random number is
//! drawn.
//!
//! **Reproducibility.** A seed gives the same tokens on every target: ties
//! are broken by the lower token id (llama.cpp leaves the order of equal
//! logits to its sort); the random numbers come from xoshiro256** (Blackman
//! and Vigna, 2018) seeded through SplitMix64, as its authors recommend;
//! softmax weights are `exp(l - max)` in `f64` with the `libm` crate's `exp`
//! (a software port of musl, the same bits everywhere, unlike a platform
//! libm), summed in descending-logit order. A NaN logit counts as minus
//! infinity; a logit equal to the maximum has weight 1, so infinite logits
//! share the probability evenly.
//!
//! Memory: the candidate list and the repetition history live in a
//! caller-provided byte buffer of [`Sampler::work_bytes`] bytes.

use core::cmp::Ordering;

mod exp;

use crate::error::{Error, Result};

/// Sampler settings. [`Default`] gives llama.cpp's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` samples greedily.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 keeps all.
    pub top_k: u32,
    /// Nucleus sampling mass, in (0, 1]; 1 keeps all.
    pub top_p: f32,
    /// Minimum probability relative to the most likely token, in [0, 1];
    /// 0 keeps all.
    pub min_p: f32,
    /// Repetition penalty, > 0; 1 is off.
    pub repeat_penalty: f32,
    /// How many of the last accepted tokens the penalty looks at; 0 is off.
    pub repeat_last_n: u32,
    /// Seed of the random number generator.
    pub seed: u64,
}

impl SamplerConfig {
    /// The default seed: the value of llama.cpp's `LLAMA_DEFAULT_SEED`.
    /// llama.cpp reads it as "pick a random seed"; the core has no entropy
    /// source and uses it as an ordinary seed, so runs are reproducible by
    /// default. A CLI that wants variety passes its own.
    pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

    fn check(&self) -> Result<()> {
        let bad = |what| Err(Error::BadSamplerConfig { what });
        if !self.temperature.is_finite() {
            return bad("temperature must be finite");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return bad("min_p must be in [0, 1]");
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad("repeat_penalty must be finite and > 0");
        }
        Ok(())
    }
}

impl SamplerConfig {
    /// llama.cpp's `common_params_sampling` defaults: temperature 0.8,
    /// top-k 40, top-p 0.95, min-p 0.05, repetition penalty 1.0 (off) over
    /// the last 64 tokens, seed [`SamplerConfig::DEFAULT_SEED`].
    pub const DEFAULT: SamplerConfig = SamplerConfig {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed: Self::DEFAULT_SEED,
    };

    /// Greedy decoding: the most likely token every time (temperature 0,
    /// the other settings as [`SamplerConfig::DEFAULT`]).
    pub const GREEDY: SamplerConfig = SamplerConfig {
        temperature: 0.0,
        ..Self::DEFAULT
    };
}

impl Default for SamplerConfig {
    /// [`SamplerConfig::DEFAULT`]: llama.cpp's defaults.
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A token that can still be drawn, and its logit at the end of the chain.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Logit after penalties and temperature.
    pub logit: f32,
}

/// A candidate's id while [`Sampler::penalize`] runs, once penalized (no
/// vocabulary has `u32::MAX` tokens).
const PENALIZED: u32 = u32::MAX;

const _: () =
    assert!(core::mem::size_of::<Candidate>() == 8 && core::mem::align_of::<Candidate>() == 4);
// SAFETY: `Candidate` is `repr(C)` with two 4-byte fields and no padding
// (asserted above); all-zero bytes are a valid value.
unsafe impl bytemuck::Zeroable for Candidate {}
// SAFETY: as above; every bit pattern of a u32 and an f32 is valid, and the
// type is `Copy` and `'static`.
unsafe impl bytemuck::Pod for Candidate {}

/// Alignment slack [`Sampler::work_bytes`] includes, so any byte buffer works.
const ALIGN_SLACK: usize = core::mem::align_of::<Candidate>() - 1;

/// Samples tokens with a [`SamplerConfig`], in a caller's work buffer.
pub struct Sampler<'a> {
    cfg: SamplerConfig,
    /// One slot per vocabulary entry; the first `n` hold the current
    /// candidates.
    cands: &'a mut [Candidate],
    /// Ring buffer of the last `repeat_last_n` accepted tokens.
    history: &'a mut [u32],
    /// Filled entries of `history`.
    hist_len: usize,
    /// Where the next accepted token goes.
    hist_next: usize,
    rng: Xoshiro256,
}

impl<'a> Sampler<'a> {
    /// Bytes of work buffer [`Sampler::new`] needs for this vocabulary size
    /// and configuration (any alignment). `usize::MAX` if not addressable.
    pub const fn work_bytes(n_vocab: usize, cfg: &SamplerConfig) -> usize {
        let cands = match n_vocab.checked_mul(core::mem::size_of::<Candidate>()) {
            Some(b) => b,
            None => return usize::MAX,
        };
        let hist = match (cfg.repeat_last_n as usize).checked_mul(4) {
            Some(b) => b,
            None => return usize::MAX,
        };
        match cands.checked_add(hist) {
            Some(b) if b <= usize::MAX - ALIGN_SLACK => b + ALIGN_SLACK,
            _ => usize::MAX,
        }
    }

    /// A sampler for `n_vocab` tokens using `work` (at least
    /// [`Sampler::work_bytes`] bytes). Errors: [`Error::BadSamplerConfig`]
    /// for an out-of-range setting or `n_vocab` outside `1..=u32::MAX`,
    /// [`Error::WorkTooSmall`] for a short buffer.
    pub fn new(cfg: SamplerConfig, n_vocab: usize, work: &'a mut [u8]) -> Result<Sampler<'a>> {
        cfg.check()?;
        if n_vocab == 0 || n_vocab > u32::MAX as usize {
            return Err(Error::BadSamplerConfig {
                what: "n_vocab must be in 1..=u32::MAX",
            });
        }
        let need = Self::work_bytes(n_vocab, &cfg);
        if work.len() < need {
            return Err(Error::WorkTooSmall {
                need,
                got: work.len(),
            });
        }
        let skip = work
            .as_ptr()
            .align_offset(core::mem::align_of::<Candidate>());
        let (cand_bytes, rest) =
            work[skip..].split_at_mut(n_vocab * core::mem::size_of::<Candidate>());
        let hist_bytes = &mut rest[..cfg.repeat_last_n as usize * 4];
        Ok(Sampler {
            cfg,
            cands: bytemuck::cast_slice_mut(cand_bytes),
            history: bytemuck::cast_slice_mut(hist_bytes),
            hist_len: 0,
            hist_next: 0,
            rng: Xoshiro256::new(cfg.seed),
        })
    }

    /// Draws the next token from `logits` (the first `n_vocab` of them are
    /// used). Records nothing: call [`Sampler::accept`] with the token that
    /// is kept. An empty `logits` gives token 0.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let n = self.filter(logits);
        let Some(first) = self.cands[..n].first() else {
            return 0;
        };
        if n == 1 {
            return first.id;
        }
        let kept = &self.cands[..n];
        let max = first.logit;
        let sum: f64 = kept.iter().map(|c| weight(c.logit, max)).sum();
        let r = self.rng.next_f64() * sum;
        let mut cum = 0.0;
        for c in kept {
            cum += weight(c.logit, max);
            if r < cum {
                return c.id;
            }
        }
        kept[n - 1].id
    }

    /// The tokens [`Sampler::sample`] would draw from for `logits`, most
    /// likely first, with their final logits (after penalties and
    /// temperature); their softmax is the distribution drawn from. With
    /// `temperature <= 0`, the one greedy token. Draws no random number.
    pub fn candidates(&mut self, logits: &[f32]) -> &[Candidate] {
        let n = self.filter(logits);
        &self.cands[..n]
    }

    /// Adds `token` to the repetition history (the last `repeat_last_n`).
    pub fn accept(&mut self, token: u32) {
        if self.history.is_empty() {
            return;
        }
        self.history[self.hist_next] = token;
        self.hist_next = (self.hist_next + 1) % self.history.len();
        self.hist_len = (self.hist_len + 1).min(self.history.len());
    }

    /// Forgets the history and restarts the random numbers from the seed:
    /// the same prompt then gives the same tokens again.
    pub fn reset(&mut self) {
        self.hist_len = 0;
        self.hist_next = 0;
        self.rng = Xoshiro256::new(self.cfg.seed);
    }

    /// Runs steps 1-5 of the chain; the survivors are `cands[..n]`, sorted
    /// by [`by_logit`]. Returns `n`.
    fn filter(&mut self, logits: &[f32]) -> usize {
        let mut n = logits.len().min(self.cands.len());
        let cfg = self.cfg;
        for (i, (c, &l)) in self.cands.iter_mut().zip(&logits[..n]).enumerate() {
            *c = Candidate {
                id: i as u32,
                logit: if l.is_nan() { f32::NEG_INFINITY } else { l },
            };
        }
        self.penalize(n);
        if n == 0 {
            return 0;
        }

        if cfg.temperature <= 0.0 {
            let mut best = 0;
            for i in 1..n {
                if self.cands[i].logit > self.cands[best].logit {
                    best = i;
                }
            }
            self.cands[0] = self.cands[best];
            return 1;
        }

        let k = cfg.top_k as usize;
        if k > 0 && k < n {
            self.cands[..n].select_nth_unstable_by(k - 1, by_logit);
            n = k;
        }

        let mut sorted = false;
        if cfg.top_p < 1.0 {
            let kept = &mut self.cands[..n];
            kept.sort_unstable_by(by_logit);
            sorted = true;
            let max = kept[0].logit;
            let sum: f64 = kept.iter().map(|c| weight(c.logit, max)).sum();
            let mut cum = 0.0;
            for (i, c) in kept.iter().enumerate() {
                cum += weight(c.logit, max) / sum;
                if cum >= f64::from(cfg.top_p) {
                    n = i + 1;
                    break;
                }
            }
        }

        if cfg.min_p > 0.0 {
            let kept = &mut self.cands[..n];
            let max = kept.iter().fold(f32::NEG_INFINITY, |m, c| m.max(c.logit));
            // llama.cpp's f32 formula.
            let min_logit = max + libm::logf(cfg.min_p);
            let mut w = 0;
            for i in 0..n {
                if kept[i].logit >= min_logit {
                    kept[w] = kept[i];
                    w += 1;
                }
            }
            n = w;
        }

        if !sorted {
            self.cands[..n].sort_unstable_by(by_logit);
        }
        for c in &mut self.cands[..n] {
            c.logit /= cfg.temperature;
        }
        n
    }

    /// Step 1 on `cands[..n]`, which are still in id order: each distinct
    /// token of the history once, in time linear in the history (a
    /// penalized candidate's id is set to [`PENALIZED`] until all are
    /// done, then put back).
    fn penalize(&mut self, n: usize) {
        let penalty = self.cfg.repeat_penalty;
        if penalty == 1.0 {
            return;
        }
        let seen = &self.history[..self.hist_len];
        for &t in seen {
            let Some(c) = self.cands[..n].get_mut(t as usize) else {
                continue;
            };
            if c.id == PENALIZED {
                continue;
            }
            c.id = PENALIZED;
            if c.logit <= 0.0 {
                c.logit *= penalty;
            } else {
                c.logit /= penalty;
            }
        }
        for &t in seen {
            if let Some(c) = self.cands[..n].get_mut(t as usize) {
                c.id = t;
            }
        }
    }
}

/// The natural log of `token`'s probability under the softmax of `logits`
/// (raw logits, before any sampling step), in f64:
/// `logit - max - ln Σ exp(l - max)`. `None` if `token` is out of range.
pub fn log_prob(logits: &[f32], token: u32) -> Option<f64> {
    let logit = *logits.get(token as usize)?;
    let max = max_logit(logits);
    // Σ weight(l, max) in index order, the bits of the plain loop, faster
    // (see `exp`).
    let mut sum = WeightSum::new();
    sum.add_softmax(logits, max);
    Some(sum.log_prob(logit, max))
}

/// The largest of `logits` as [`log_prob`] takes it (NaNs are skipped;
/// minus infinity if there is nothing else).
pub fn max_logit(logits: &[f32]) -> f32 {
    logits.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `out[i] = exp(logits[i] - max)` in f64 (1 for the maximum itself): the
/// softmax weights [`log_prob`] sums, with the same bits. For spreading
/// [`log_prob`] over cores: each computes the weights of a run of logits
/// (the first run's can go straight into a [`WeightSum`] with
/// [`WeightSum::add_softmax`]), then one `WeightSum` adds the runs in
/// order. Panics if `out` is shorter than `logits`.
pub fn softmax_weights(logits: &[f32], max: f32, out: &mut [f64]) {
    exp::weights(logits, max, out)
}

/// The sum of softmax weights, added left to right as [`log_prob`] adds
/// them: fed every weight of a vocabulary in index order (in runs of any
/// length), [`WeightSum::log_prob`] equals [`log_prob`] bit for bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightSum(f64);

impl WeightSum {
    /// An empty sum.
    pub const fn new() -> Self {
        WeightSum(0.0)
    }

    /// Adds `weights`, one after another.
    pub fn add(&mut self, weights: &[f64]) {
        for &w in weights {
            self.0 += w;
        }
    }

    /// Adds the softmax weights of `logits` (as [`softmax_weights`] gives
    /// them), one after another, without storing them: the loop
    /// [`log_prob`] runs.
    pub fn add_softmax(&mut self, logits: &[f32], max: f32) {
        self.0 = exp::weight_sum(self.0, logits, max);
    }

    /// The sum so far.
    pub const fn value(&self) -> f64 {
        self.0
    }

    /// A sum that starts at `value`.
    pub const fn from_value(value: f64) -> Self {
        WeightSum(value)
    }

    /// The natural log of the probability of a token whose logit is
    /// `logit` when the largest logit is `max`: `logit - max - ln sum`.
    pub fn log_prob(&self, logit: f32, max: f32) -> f64 {
        f64::from(logit) - f64::from(max) - libm::log(self.0)
    }
}

/// Descending logit, then ascending id: a total order, so every sort gives
/// the same sequence on every target.
fn by_logit(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// Unnormalized softmax weight of `logit` when the largest is `max`.
fn weight(logit: f32, max: f32) -> f64 {
    if logit == max {
        1.0
    } else {
        libm::exp(f64::from(logit) - f64::from(max))
    }
}

/// xoshiro256** 1.0 (David Blackman and Sebastiano Vigna, "Scrambled linear
/// pseudorandom number generators", 2018; reference C at
/// prng.di.unimi.it), its state filled from the seed by SplitMix64.
#[derive(Clone, Copy)]
struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Xoshiro256 {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1): the top 53 bits, as the authors suggest.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::Xoshiro256;

    /// SplitMix64 from seed 1234567 and xoshiro256** from state [1, 2, 3,
    /// 4]: the first outputs of the authors' reference C code.
    #[test]
    fn reference_outputs() {
        let mut r = Xoshiro256 { s: [1, 2, 3, 4] };
        let got: [u64; 4] = core::array::from_fn(|_| r.next_u64());
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
        let s = Xoshiro256::new(1234567).s;
        assert_eq!(
            s,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431
            ]
        );
    }
}

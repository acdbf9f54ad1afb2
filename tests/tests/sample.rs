//! The sampler against a plain f64 reference of llama.cpp's chain
//! (penalties -> top-k -> top-p -> min-p -> temperature -> softmax): the
//! set of tokens that can be drawn, their probabilities, and the empirical
//! frequencies of many draws; greedy, seeding, and the typed errors.

use phi_edge::{Error, Sampler, SamplerConfig};

/// SplitMix64: random test inputs, independent of the sampler's generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    fn logit(&mut self, scale: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    fn logits(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.logit(scale)).collect()
    }
}

/// Off: every filter disabled, temperature 1.
fn plain() -> SamplerConfig {
    SamplerConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed: 7,
    }
}

/// The reference: (token, probability) pairs that can be drawn, written
/// from the llama.cpp definitions in f64 with a full sort.
fn reference(logits: &[f32], cfg: &SamplerConfig, history: &[u32]) -> Vec<(u32, f64)> {
    let mut l: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x as f64))
        .collect();
    let last_n = cfg.repeat_last_n as usize;
    let recent = &history[history.len().saturating_sub(last_n)..];
    for (id, x) in l.iter_mut() {
        if cfg.repeat_penalty != 1.0 && recent.contains(id) {
            let p = cfg.repeat_penalty as f64;
            *x = if *x <= 0.0 { *x * p } else { *x / p };
        }
    }
    l.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    if cfg.top_k > 0 {
        l.truncate(cfg.top_k as usize);
    }
    let softmax = |l: &[(u32, f64)], t: f64| -> Vec<f64> {
        let e: Vec<f64> = l.iter().map(|x| ((x.1 - l[0].1) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    };
    if cfg.top_p < 1.0 {
        let p = softmax(&l, 1.0);
        let mut cum = 0.0;
        let keep = p.iter().position(|&x| {
            cum += x;
            cum >= cfg.top_p as f64
        });
        l.truncate(keep.map_or(l.len(), |i| i + 1));
    }
    if cfg.min_p > 0.0 {
        let p = softmax(&l, 1.0);
        let keep = p.iter().filter(|&&x| x >= cfg.min_p as f64 * p[0]).count();
        l.truncate(keep);
    }
    let p = softmax(&l, cfg.temperature as f64);
    l.iter().zip(p).map(|(&(id, _), p)| (id, p)).collect()
}

fn work_for(n_vocab: usize, cfg: &SamplerConfig) -> Vec<u8> {
    vec![0; Sampler::work_bytes(n_vocab, cfg)]
}

/// Compares the sampler with the reference on `logits`: same drawable set,
/// same probabilities, and the counts of `draws` samples within 5 sigma
/// (plus 5 draws of slack for the many tokens with an expected count near
/// zero, where the normal approximation is poor).
fn check(name: &str, logits: &[f32], cfg: SamplerConfig, history: &[u32], draws: usize) {
    let want = reference(logits, &cfg, history);
    let mut work = work_for(logits.len(), &cfg);
    let mut s = Sampler::new(cfg, logits.len(), &mut work).unwrap();
    for &t in history {
        s.accept(t);
    }
    let got = s.candidates(logits).to_vec();
    let got_ids: Vec<u32> = got.iter().map(|c| c.id).collect();
    let want_ids: Vec<u32> = want.iter().map(|w| w.0).collect();
    assert_eq!(got_ids, want_ids, "{name}: drawable tokens");
    let max = got[0].logit as f64;
    let e: Vec<f64> = got.iter().map(|c| (c.logit as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    for ((&(id, p), ours), c) in want.iter().zip(&e).zip(&got) {
        assert!(
            (ours / sum - p).abs() < 1e-5,
            "{name}: token {id} p {} vs {p} (logit {})",
            ours / sum,
            c.logit
        );
    }

    let mut counts = vec![0usize; logits.len()];
    for _ in 0..draws {
        counts[s.sample(logits) as usize] += 1;
    }
    for (id, &n) in counts.iter().enumerate() {
        let p = want.iter().find(|w| w.0 == id as u32).map_or(0.0, |w| w.1);
        if p == 0.0 {
            assert_eq!(n, 0, "{name}: drew token {id}, which is filtered out");
            continue;
        }
        let expect = p * draws as f64;
        let sigma = (expect * (1.0 - p)).sqrt();
        assert!(
            (n as f64 - expect).abs() <= 5.0 * sigma + 5.0,
            "{name}: token {id} drawn {n} times, expected {expect:.2} (p {p:.3e})"
        );
    }
}

const DRAWS: usize = 20_000;

#[test]
fn temperature_only() {
    let mut r = Rng(1);
    for (i, t) in [1.0f32, 0.5, 2.0].into_iter().enumerate() {
        let logits = r.logits(24, 3.0);
        check(
            &format!("temp {t} #{i}"),
            &logits,
            SamplerConfig {
                temperature: t,
                ..plain()
            },
            &[],
            DRAWS,
        );
    }
}

#[test]
fn top_k() {
    let mut r = Rng(2);
    for k in [1, 5, 17, 64, 1000] {
        let logits = r.logits(64, 4.0);
        check(
            &format!("top_k {k}"),
            &logits,
            SamplerConfig {
                top_k: k,
                ..plain()
            },
            &[],
            DRAWS,
        );
    }
}

#[test]
fn top_p() {
    let mut r = Rng(3);
    for p in [0.05f32, 0.3, 0.6, 0.9, 0.999] {
        let logits = r.logits(64, 4.0);
        check(
            &format!("top_p {p}"),
            &logits,
            SamplerConfig {
                top_p: p,
                ..plain()
            },
            &[],
            DRAWS,
        );
    }
}

#[test]
fn min_p() {
    let mut r = Rng(4);
    for p in [0.01f32, 0.05, 0.2, 0.5, 1.0] {
        let logits = r.logits(64, 4.0);
        check(
            &format!("min_p {p}"),
            &logits,
            SamplerConfig {
                min_p: p,
                ..plain()
            },
            &[],
            DRAWS,
        );
    }
}

#[test]
fn repetition_penalty() {
    let mut r = Rng(5);
    let logits: Vec<f32> = r.logits(32, 3.0);
    // Tokens with positive and negative logits, repeated, and more history
    // than the window (the oldest ones must not be penalised).
    let pos: Vec<u32> = (0..32)
        .filter(|&i| logits[i as usize] > 0.5)
        .take(3)
        .collect();
    let neg: Vec<u32> = (0..32)
        .filter(|&i| logits[i as usize] < -0.5)
        .take(3)
        .collect();
    let mut history = vec![pos[2], neg[2]];
    history.extend([pos[0], neg[0], pos[1], neg[1], pos[0], neg[0]]);
    for penalty in [1.3f32, 0.8, 2.0] {
        let cfg = SamplerConfig {
            repeat_penalty: penalty,
            repeat_last_n: 6,
            ..plain()
        };
        check(&format!("penalty {penalty}"), &logits, cfg, &history, DRAWS);
    }
    // The window really is the last 6: pos[2]/neg[2] are out of it.
    let cfg = SamplerConfig {
        repeat_penalty: 2.0,
        repeat_last_n: 6,
        ..plain()
    };
    let mut work = work_for(32, &cfg);
    let mut s = Sampler::new(cfg, 32, &mut work).unwrap();
    for &t in &history {
        s.accept(t);
    }
    let c = s.candidates(&logits).to_vec();
    let logit = |id: u32| c.iter().find(|c| c.id == id).unwrap().logit;
    assert_eq!(logit(pos[2]), logits[pos[2] as usize]);
    assert_eq!(logit(neg[2]), logits[neg[2] as usize]);
    assert_eq!(
        logit(pos[0]),
        logits[pos[0] as usize] / 2.0,
        "penalised once, not per occurrence"
    );
    assert_eq!(logit(neg[0]), logits[neg[0] as usize] * 2.0);
    s.reset();
    assert_eq!(
        s.candidates(&logits)
            .iter()
            .find(|c| c.id == pos[0])
            .unwrap()
            .logit,
        logits[pos[0] as usize]
    );
}

/// llama.cpp's defaults (all filters at once) on a vocabulary-sized input.
#[test]
fn default_chain() {
    let mut r = Rng(6);
    let logits = r.logits(32064, 8.0);
    let history: Vec<u32> = (0..100).map(|_| (r.next() % 32064) as u32).collect();
    // (config, draws): without top-k every draw sorts the whole
    // vocabulary, so fewer draws there.
    for (cfg, draws) in [
        (SamplerConfig::default(), DRAWS),
        (
            SamplerConfig {
                repeat_penalty: 1.1,
                top_k: 0,
                ..SamplerConfig::default()
            },
            2000,
        ),
        (
            SamplerConfig {
                top_k: 200,
                top_p: 0.5,
                min_p: 0.0,
                temperature: 1.5,
                ..SamplerConfig::default()
            },
            DRAWS,
        ),
    ] {
        check(&format!("{cfg:?}"), &logits, cfg, &history, draws);
    }
}

#[test]
fn greedy_is_first_argmax() {
    let mut r = Rng(7);
    for t in [0.0f32, -1.0] {
        let cfg = SamplerConfig {
            temperature: t,
            ..SamplerConfig::default()
        };
        let mut work = work_for(1000, &cfg);
        let mut s = Sampler::new(cfg, 1000, &mut work).unwrap();
        for _ in 0..50 {
            let mut logits = r.logits(1000, 5.0);
            let m = logits.iter().cloned().fold(f32::MIN, f32::max);
            let first = logits.iter().position(|&x| x == m).unwrap();
            // A tie later in the vocabulary must not win.
            logits[999] = m;
            logits[first.saturating_sub(1)] = if first > 0 { m - 1e-3 } else { m };
            assert_eq!(s.sample(&logits), first as u32);
            assert_eq!(s.candidates(&logits).len(), 1);
        }
    }
    // Greedy sees the penalised logits, as llama.cpp's chain does.
    let cfg = SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 2.0,
        ..SamplerConfig::default()
    };
    let mut work = work_for(3, &cfg);
    let mut s = Sampler::new(cfg, 3, &mut work).unwrap();
    s.accept(0);
    assert_eq!(s.sample(&[3.0, 2.0, 1.0]), 1);
}

#[test]
fn seeds_reproduce_and_differ() {
    let mut r = Rng(8);
    let steps: Vec<Vec<f32>> = (0..200).map(|_| r.logits(500, 3.0)).collect();
    let run = |seed: u64| -> Vec<u32> {
        let cfg = SamplerConfig {
            seed,
            top_k: 0,
            min_p: 0.0,
            repeat_penalty: 1.1,
            ..SamplerConfig::default()
        };
        let mut work = work_for(500, &cfg);
        let mut s = Sampler::new(cfg, 500, &mut work).unwrap();
        let mut out = vec![];
        for round in 0..2 {
            for l in &steps {
                let t = s.sample(l);
                s.accept(t);
                out.push(t);
            }
            if round == 0 {
                s.reset();
            }
        }
        let (a, b) = out.split_at(steps.len());
        assert_eq!(a, b, "reset must restart the sequence");
        out
    };
    let a = run(1);
    assert_eq!(a, run(1));
    let b = run(2);
    assert_ne!(a, b);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(
        same < a.len() / 2,
        "seeds 1 and 2 agree on {same} of {} tokens",
        a.len()
    );
}

#[test]
fn nan_logits_are_never_drawn() {
    let mut logits = vec![f32::NAN; 16];
    logits[3] = -1.0;
    logits[9] = -2.0;
    let cfg = SamplerConfig {
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplerConfig::default()
    };
    let mut work = work_for(16, &cfg);
    let mut s = Sampler::new(cfg, 16, &mut work).unwrap();
    for _ in 0..1000 {
        let t = s.sample(&logits);
        assert!(t == 3 || t == 9, "drew {t}");
    }
}

#[test]
fn bad_config_is_a_typed_error() {
    let d = SamplerConfig::default();
    for (what, cfg) in [
        (
            "temperature NaN",
            SamplerConfig {
                temperature: f32::NAN,
                ..d
            },
        ),
        (
            "temperature inf",
            SamplerConfig {
                temperature: f32::INFINITY,
                ..d
            },
        ),
        ("top_p 0", SamplerConfig { top_p: 0.0, ..d }),
        ("top_p 1.5", SamplerConfig { top_p: 1.5, ..d }),
        (
            "top_p NaN",
            SamplerConfig {
                top_p: f32::NAN,
                ..d
            },
        ),
        ("min_p -0.1", SamplerConfig { min_p: -0.1, ..d }),
        ("min_p 1.1", SamplerConfig { min_p: 1.1, ..d }),
        (
            "min_p NaN",
            SamplerConfig {
                min_p: f32::NAN,
                ..d
            },
        ),
        (
            "penalty 0",
            SamplerConfig {
                repeat_penalty: 0.0,
                ..d
            },
        ),
        (
            "penalty NaN",
            SamplerConfig {
                repeat_penalty: f32::NAN,
                ..d
            },
        ),
    ] {
        let mut work = vec![0u8; 1 << 16];
        match Sampler::new(cfg, 100, &mut work) {
            Err(Error::BadSamplerConfig { .. }) => {}
            Err(e) => panic!("{what}: wrong error {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    let mut work = vec![0u8; 1 << 16];
    assert!(matches!(
        Sampler::new(d, 0, &mut work),
        Err(Error::BadSamplerConfig { .. })
    ));
}

#[test]
fn small_work_is_a_typed_error_and_any_alignment_works() {
    let cfg = SamplerConfig::default();
    let need = Sampler::work_bytes(1000, &cfg);
    assert!(need >= 1000 * 8 + 64 * 4);
    let mut work = vec![0u8; need + 8];
    match Sampler::new(cfg, 1000, &mut work[..need - 1]) {
        Err(Error::WorkTooSmall { need: n, got }) => assert_eq!((n, got), (need, need - 1)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted a short buffer"),
    }
    let logits = Rng(9).logits(1000, 3.0);
    let mut tokens = vec![];
    for offset in 0..4 {
        let mut s = Sampler::new(cfg, 1000, &mut work[offset..offset + need]).unwrap();
        tokens.push((0..20).map(|_| s.sample(&logits)).collect::<Vec<_>>());
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "result depends on buffer alignment"
    );
    assert_eq!(Sampler::work_bytes(usize::MAX, &cfg), usize::MAX);
}

#[test]
fn log_prob_in_runs_of_weights_is_log_prob_bit_for_bit() {
    use phi_edge::sample::{log_prob, max_logit, softmax_weights, WeightSum};
    let mut rng = Rng(11);
    for (n, scale) in [
        (49152, 12.0),
        (1000, 400.0),
        (300, 3.0),
        (17, 1.0),
        (1, 5.0),
    ] {
        let mut logits = rng.logits(n, scale);
        if n > 100 {
            logits[50] = f32::NAN;
        }
        // A plain f64 reference for the value (not the bits).
        let max = max_logit(&logits);
        let lse = logits
            .iter()
            .filter(|l| !l.is_nan())
            .map(|&l| (l as f64 - max as f64).exp())
            .sum::<f64>()
            .ln();
        for token in [0, n as u32 / 2, n as u32 - 1] {
            let want = log_prob(&logits, token).unwrap();
            if n <= 100 {
                let plain = logits[token as usize] as f64 - max as f64 - lse;
                assert!(
                    (want - plain).abs() < 1e-9 * plain.abs().max(1.0),
                    "{want} vs {plain}"
                );
            }
            for runs in [1, 2, 3, 7] {
                let len = n.div_ceil(runs);
                // Weights stored, or added as they are computed, or both.
                for fused in [0, 1, 2] {
                    let mut sum = WeightSum::new();
                    for (i, piece) in logits.chunks(len).enumerate() {
                        if (fused == 1 && i == 0) || fused == 2 {
                            sum.add_softmax(piece, max);
                        } else {
                            let mut w = vec![0f64; piece.len()];
                            softmax_weights(piece, max, &mut w);
                            sum.add(&w);
                        }
                    }
                    let got = sum.log_prob(logits[token as usize], max);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{n} logits in {runs} runs ({fused}), token {token}"
                    );
                }
            }
        }
    }
    assert_eq!(log_prob(&[1.0, 2.0], 2), None);
}

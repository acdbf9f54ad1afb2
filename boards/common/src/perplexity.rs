//! Perplexity of the generated tokens, for the `stats:` line: beside the
//! ids, a number that moves when the logits do, so a board whose logits
//! drift from the host's shows it even when the argmax holds.
//!
//! It is display only: computed from the raw logits after the token was
//! chosen, it never feeds back into generation. So it uses micromath's
//! approximate `exp` and `ln` (each good to about 1e-3), a few multiply-adds
//! per vocabulary entry and token. On the same logits the result is within
//! 0.5% of the exact value ([`phi_edge::sample::log_prob`], in f64) that the
//! host's `phi-edge run` reports and that equals llama.cpp's; on SmolLM2's
//! 16-token CI answer, whose logits the boards reproduce to the bit, it is
//! 2.7474 against the exact 2.7473.

use micromath::F32Ext;

/// A running perplexity over generated tokens.
#[derive(Clone, Copy, Debug, Default)]
pub struct Perplexity {
    /// Sum of the tokens' negative log probabilities.
    nll: f64,
    /// Tokens added.
    tokens: usize,
}

impl Perplexity {
    /// Adds `token`, drawn after `logits` (ignored if out of range).
    pub fn add(&mut self, logits: &[f32], token: u32) {
        let Some(&logit) = logits.get(token as usize) else {
            return;
        };
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = logits.iter().map(|&l| F32Ext::exp(l - max)).sum();
        self.nll -= f64::from(logit - max - F32Ext::ln(sum));
        self.tokens += 1;
    }

    /// `exp(mean negative log probability)`; 1 before any token.
    pub fn value(&self) -> f32 {
        if self.tokens == 0 {
            return 1.0;
        }
        F32Ext::exp((self.nll / self.tokens as f64) as f32)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use phi_edge::sample::log_prob;

    use super::Perplexity;

    /// A small xorshift, for test logits.
    fn next(state: &mut u64) -> f32 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 40) as f32 / (1u64 << 24) as f32
    }

    #[test]
    fn within_half_a_percent_of_the_exact_value() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for (n_vocab, spread) in [(49_152, 8.0), (32_064, 20.0), (1000, 2.0), (2, 40.0)] {
            let mut ppl = Perplexity::default();
            let mut nll = 0.0;
            for _ in 0..16 {
                let logits: Vec<f32> = (0..n_vocab)
                    .map(|_| spread * (next(&mut state) - 0.5))
                    .collect();
                let token = (next(&mut state) * n_vocab as f32) as u32 % n_vocab as u32;
                ppl.add(&logits, token);
                nll -= log_prob(&logits, token).unwrap();
            }
            let exact = (nll / 16.0).exp();
            let got = f64::from(ppl.value());
            assert!(
                (got / exact - 1.0).abs() < 5e-3,
                "n_vocab {n_vocab}: {got} vs exact {exact}"
            );
        }
    }

    #[test]
    fn a_certain_token_has_perplexity_one() {
        let mut logits = [0.0f32; 100];
        logits[7] = 100.0;
        let mut ppl = Perplexity::default();
        ppl.add(&logits, 7);
        ppl.add(&logits, 1000);
        assert!((ppl.value() - 1.0).abs() < 1e-3, "{}", ppl.value());
    }
}

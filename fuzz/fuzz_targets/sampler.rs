//! The sampler with arbitrary settings and logits (NaN and infinities
//! included): an invalid setting is a typed error, otherwise every
//! candidate and every draw is a token of the vocabulary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phi_edge::Sampler;
use phi_edge_fuzz_common::inputs::SamplerInput;

fuzz_target!(
    init: phi_edge_fuzz_common::init(),
    |data: &[u8]| {
    let input = SamplerInput::decode(data);
    let need = Sampler::work_bytes(input.n_vocab, &input.cfg);
    let mut work = vec![0u8; need];
    let Ok(mut s) = Sampler::new(input.cfg, input.n_vocab, &mut work) else {
        return;
    };
    for logits in input.logits.chunks_exact(input.n_vocab) {
        let n_vocab = input.n_vocab;
        let cands = s.candidates(logits);
        assert!(cands.len() <= n_vocab);
        for c in cands {
            assert!((c.id as usize) < n_vocab, "candidate {} of {n_vocab}", c.id);
        }
        let id = s.sample(logits);
        assert!((id as usize) < n_vocab, "sampled {id} of {n_vocab}");
        s.accept(id);
    }
    s.reset();
    if let Some(logits) = input.logits.chunks_exact(input.n_vocab).next() {
        // Fewer logits than the vocabulary, and none.
        let _ = s.sample(&logits[..logits.len() / 2]);
        let _ = s.sample(&[]);
    }
});

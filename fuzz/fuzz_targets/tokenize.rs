//! Arbitrary text tokenized with the real SmolLM2 (byte-level BPE) and
//! Phi-3 (SentencePiece) vocabularies and llama.cpp's BPE vocabularies of
//! every other pre-tokenizer scanner, special-token parsing on and off:
//! every id is in the vocabulary, the buffer sizes the tokenizer asks for
//! suffice, and every id has a piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phi_edge_fuzz_common::{pretok_vocabs, real_vocabs, tokenize_checked};

fuzz_target!(
    // Loaded before the first input, outside its 1 s timeout.
    init: {
        phi_edge_fuzz_common::init();
        real_vocabs();
        pretok_vocabs();
    },
    |data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let (real, pretok) = (real_vocabs(), pretok_vocabs());
    // Bit 0 and the bits from 3 pick the vocabulary.
    let k = usize::from(flags & 1 | (flags >> 3) << 1) % (real.len() + pretok.len());
    let t = real.get(k).unwrap_or_else(|| &pretok[k - real.len()]);
    let add_special = flags & 2 != 0;
    for parse_special in [false, true] {
        let ids = tokenize_checked(t, text, add_special, parse_special);
        let mut piece = [0u8; 256];
        for &id in ids.iter().take(64) {
            let _ = t.piece(id, flags & 4 != 0, &mut piece);
        }
    }
});

//! Opening and running an image the way a board does, with the checks a
//! fuzz target makes on the way.

use phi_edge::{Error, Mapped, Model, Plan, RunOptions, Session, Tokenizer};
use phi_edge_portable::Portable;

use crate::{aligned_copy, tokenize_checked, ARENA_CAP};

/// Context of the fuzzed sessions.
pub const N_CTX: u32 = 8;

/// Opens `image` mapped (from 64-byte-aligned memory), verifies it, builds
/// its tokenizer and tokenizes a short text, then evaluates two tokens
/// with the portable kernels unless the arena would exceed
/// [`ARENA_CAP`]. Errors are fine; panics are not.
pub fn exercise(image: &[u8]) {
    let (buf, range) = aligned_copy(image);
    let image = &buf[range];
    let Ok(model) = Model::open_mapped(image) else {
        return;
    };
    if model.verify(&mut Mapped(image), &mut []).is_err() {
        return;
    }
    if let Ok(t) = Tokenizer::from_model(&model) {
        let ids = tokenize_checked(
            &t,
            "Hello <|end|> world<|im_end|>\n 12".as_bytes(),
            true,
            true,
        );
        let mut piece = [0u8; 64];
        for id in ids {
            let _ = t.piece(id, true, &mut piece);
        }
        for id in [0, t.n_vocab().saturating_sub(1), t.n_vocab()] {
            let _ = t.piece(id, false, &mut piece);
            let _ = t.is_eog(id);
        }
    }
    let cfg = *model.config();
    let opts = RunOptions::mapped(N_CTX);
    let Ok(plan) = Plan::new(&cfg, &opts) else {
        return;
    };
    if plan.bytes() > ARENA_CAP {
        return;
    }
    let mut arena = vec![0u8; plan.bytes() + phi_edge::plan::ARENA_ALIGN];
    let mut s = match Session::new(&model, Portable, Mapped(image), &mut arena, &opts) {
        Ok(s) => s,
        Err(Error::ArenaTooSmall { need, got }) => {
            panic!(
                "Plan::bytes() is {} but the session needs {need} (got {got})",
                plan.bytes()
            )
        }
        Err(_) => return,
    };
    let n = cfg.n_vocab;
    let tokens = [1 % n, (n - 1).min(7)];
    match s.eval(&tokens, None) {
        Ok(logits) => assert_eq!(logits.len(), n as usize),
        Err(_) => assert_eq!(s.n_past(), 0, "a failed eval advanced the session"),
    }
}

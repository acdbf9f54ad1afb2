//! Opening and running an image the way a board does, with the checks a
//! fuzz target makes on the way.

use phi_edge::{Error, Mapped, Model, Plan, RunOptions, Session, Tokenizer};
use phi_edge_portable::Portable;

use crate::{aligned_copy, tokenize_checked, ARENA_CAP};

/// Context of the fuzzed sessions.
pub const N_CTX: u32 = 8;

/// How far [`exercise`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// The image did not open.
    Nothing,
    /// Opened, but a tensor's CRC differs.
    Opened,
    /// Verified; no session (options, arena cap or a session error).
    Verified,
    /// Two tokens evaluated (or refused with a typed error).
    Evaluated,
}

/// Opens `image` mapped (from 64-byte-aligned memory), verifies it, builds
/// its tokenizer and tokenizes a short text, then evaluates two tokens
/// with the portable kernels unless the arena would exceed
/// [`ARENA_CAP`]. Errors are fine; panics are not.
pub fn exercise(image: &[u8]) -> Reached {
    let (buf, range) = aligned_copy(image);
    let image = &buf[range];
    let Ok(model) = Model::open_mapped(image) else {
        return Reached::Nothing;
    };
    if model.verify(&mut Mapped(image), &mut []).is_err() {
        return Reached::Opened;
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
        return Reached::Verified;
    };
    if plan.bytes() > ARENA_CAP {
        return Reached::Verified;
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
        Err(_) => return Reached::Verified,
    };
    let n = cfg.n_vocab;
    let tokens = [1 % n, (n - 1).min(7)];
    match s.eval(&tokens, None) {
        Ok(logits) => assert_eq!(logits.len(), n as usize),
        Err(_) => assert_eq!(s.n_past(), 0, "a failed eval advanced the session"),
    }
    Reached::Evaluated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds::seeds;

    /// The seed images reach the evaluation, and repairing the CRCs of an
    /// intact image changes nothing.
    #[test]
    fn seed_images_evaluate() {
        let mut evaluated = 0;
        for (name, image) in seeds("image") {
            let mut fixed = image.clone();
            crate::fix_crcs(&mut fixed);
            if !name.starts_with("corpus-") {
                assert_eq!(fixed, image, "{name}");
                assert_eq!(exercise(&fixed), Reached::Evaluated, "{name}");
                evaluated += 1;
            } else {
                exercise(&fixed);
            }
        }
        assert!(evaluated >= 6, "{evaluated} seed images evaluated");
    }

    /// The tiny GGUF seeds pack, and their images evaluate.
    #[test]
    fn seed_models_pack_and_evaluate() {
        let models = seeds("gguf_pack")
            .into_iter()
            .filter(|(n, _)| n.starts_with("Phi3-") || n.starts_with("Llama-"));
        for (name, gguf) in models {
            let image =
                phi_edge::pack::pack_to_vec(&gguf).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(exercise(&image), Reached::Evaluated, "{name}");
        }
    }
}

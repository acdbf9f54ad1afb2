//! One request: tokenize the prompt, prefill, then sample token by token,
//! writing the text as it comes. The same steps as `phi-edge run`
//! (boards/linux/src/generate.rs), so greedy runs give the same ids.
//!
//! The session and the sampler share the arena; the token lists and the
//! tokenizer's working memory come from the board's heap.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use heapless::String;
use phi_edge::chat::ChatTemplate;
use phi_edge::sample::{Sampler, SamplerConfig};
use phi_edge::tokenizer::{Tokenizer, Utf8Decoder};
use phi_edge::{Error, Kernels, Mapped, Model, Plan, RunOptions, Session};
use phi_edge_board::Request;

use crate::error::BoardError;
use crate::pl011::Console;
use crate::timer;

/// Capacity of the rendered chat prompt, in bytes.
const CHAT_PROMPT_BYTES: usize = 8192;

/// What a run produced.
pub struct Outcome {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The generated ids (an end-of-generation token included).
    pub ids: Vec<u32>,
    /// Timer ticks of the prefill.
    pub prefill_ticks: u64,
    /// Timer ticks of sampling and decoding.
    pub decode_ticks: u64,
    /// Arena bytes used: session and sampler.
    pub arena_bytes: usize,
    /// Set if the context filled up before generation ended.
    pub context_full: Option<u32>,
}

/// Wraps a core error with what the board was doing.
fn core(what: &'static str) -> impl FnOnce(Error) -> BoardError {
    move |err| BoardError::Core { what, err }
}

/// Runs `req` on `model` (mapped from `image`) with `kernels`, in `arena`,
/// streaming the generated text to `out`.
pub fn run<K: Kernels>(
    model: &Model<'_>,
    image: &[u8],
    kernels: K,
    req: &Request<'_>,
    arena: &mut [u8],
    out: &mut Console,
) -> Result<Outcome, BoardError> {
    let tokenizer = Tokenizer::from_model(model).map_err(core("the model has no usable tokenizer"))?;
    let mut chat_text = String::<CHAT_PROMPT_BYTES>::new();
    let text = if req.chat {
        let template = ChatTemplate::detect(model.manifest().tokenizer.chat_template).unwrap_or_else(|e| {
            let _ = writeln!(out, "warning: {e}; using ChatML without a system message");
            ChatTemplate::FALLBACK
        });
        template
            .render_first(req.system, req.prompt, &mut chat_text)
            .map_err(|_| BoardError::PromptTooLong { max: CHAT_PROMPT_BYTES })?;
        chat_text.as_str()
    } else {
        req.prompt
    };
    let prompt_ids = tokenize(&tokenizer, text, req.chat)?;
    if prompt_ids.len() > req.n_ctx as usize {
        return Err(BoardError::PromptTooManyTokens { tokens: prompt_ids.len(), n_ctx: req.n_ctx });
    }

    let opts = RunOptions::mapped(req.n_ctx);
    let sampling = SamplerConfig { temperature: req.temperature, seed: req.seed, ..SamplerConfig::default() };
    let n_vocab = model.config().n_vocab as usize;
    // The arena is 64-byte aligned (memory::arena_region), so the plan's
    // byte count is exact.
    let session_bytes = Plan::new(model.config(), &opts).map_err(core("bad request settings"))?.bytes();
    let arena_bytes = session_bytes + Sampler::work_bytes(n_vocab, &sampling);
    if arena.len() < arena_bytes {
        return Err(BoardError::ArenaTooSmall { need: arena_bytes, got: arena.len() });
    }
    let (s_arena, k_arena) = arena[..arena_bytes].split_at_mut(session_bytes);
    let mut session =
        Session::new(model, kernels, Mapped(image), s_arena, &opts).map_err(core("cannot start the session"))?;
    let mut sampler = Sampler::new(sampling, n_vocab, k_arena).map_err(core("bad sampler settings"))?;
    defmt::info!("prompt: {=usize} tokens, arena {=usize} bytes", prompt_ids.len(), arena_bytes);

    let t0 = timer::ticks();
    let mut logits = session.eval(&prompt_ids, None).map_err(core("prefill failed"))?;
    let prefill_ticks = timer::ticks() - t0;
    for &t in &prompt_ids {
        sampler.accept(t);
    }
    defmt::info!("prefill done");

    let t1 = timer::ticks();
    let mut ids = Vec::new();
    let mut utf8 = Utf8Decoder::new();
    let mut piece = [0u8; 256];
    let mut text_buf = [0u8; 260];
    let mut context_full = None;
    while ids.len() < req.max_tokens as usize {
        let tok = sampler.sample(logits);
        ids.push(tok);
        if tokenizer.is_eog(tok) {
            break;
        }
        sampler.accept(tok);
        let n = tokenizer.piece(tok, false, &mut piece).map_err(core("cannot print a token"))?;
        let _ = out.write_str(utf8.push(&piece[..n], &mut text_buf).map_err(core("cannot print a token"))?);
        out.flush();
        if ids.len() == req.max_tokens as usize {
            break;
        }
        logits = match session.eval(&[tok], None) {
            Ok(l) => l,
            Err(Error::ContextFull { n_ctx }) => {
                context_full = Some(n_ctx);
                break;
            }
            Err(e) => return Err(core("decode failed")(e)),
        };
    }
    let _ = out.write_str(utf8.finish(&mut text_buf).map_err(core("cannot print a token"))?);
    Ok(Outcome { prompt_ids, ids, prefill_ticks, decode_ticks: timer::ticks() - t1, arena_bytes, context_full })
}

/// Token ids of `text`: BOS as the model says; special-token text parsed
/// only for chat prompts (as `phi-edge run`).
fn tokenize(tokenizer: &Tokenizer<'_>, text: &str, parse_special: bool) -> Result<Vec<u32>, BoardError> {
    let mut work = vec![0u8; tokenizer.work_bytes(text.len())];
    let mut ids = vec![0u32; text.len() + 2];
    let n = loop {
        match tokenizer.tokenize(text.as_bytes(), true, parse_special, &mut ids, &mut work) {
            Ok(n) => break n,
            // The count is known now: make room and tokenize again.
            Err(Error::BufferTooSmall { need, .. }) if need > ids.len() => ids.resize(need, 0),
            Err(e) => return Err(core("cannot tokenize the prompt")(e)),
        }
    };
    ids.truncate(n);
    if ids.is_empty() {
        return Err(BoardError::EmptyPrompt);
    }
    Ok(ids)
}

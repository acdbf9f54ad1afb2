//! One request on a board: check the model, tokenize the prompt, prefill,
//! then sample token by token, streaming the text; the same steps as
//! `phi-edge run` (boards/linux/src/generate.rs), so a greedy run gives the
//! host's ids.
//!
//! The board supplies the model image, a kernel set, the request, one
//! arena (typically the RAM past the model), a [`Console`] for the text and
//! a [`Clock`] for the rates. Nothing is allocated: the arena holds, in
//! order,
//!
//! | part | bytes |
//! |---|---|
//! | padding to 64 bytes | 0 when the arena is 64-byte aligned |
//! | session (KV cache, activations, staging) | [`Plan::bytes`] |
//! | sampler | [`Sampler::work_bytes`] |
//! | prompt and generated token ids | `4 × (2 × prompt bytes + 4 + min(max_tokens, n_ctx))` |
//! | tokenizer working memory | [`Tokenizer::work_bytes`] |
//!
//! The `stats:` line's "arena" counts the session and the sampler, as the
//! host's summary does.
//!
//! Output on the console, after the text:
//!
//! ```text
//! prompt_ids: 1 9690 198 ...
//! ids: 60 23 39614 ...
//! stats: prompt 37 tokens, prefill 0.98 tok/s; generated 16 tokens, decode 0.75 tok/s (emulated); arena 12960387 bytes; kernels neon
//! ```

use core::fmt::{self, Write};

use heapless::String;
use phi_edge::chat::ChatTemplate;
use phi_edge::sample::{Sampler, SamplerConfig};
use phi_edge::tokenizer::{Tokenizer, Utf8Decoder};
use phi_edge::{Error, Kernels, Mapped, Model, Plan, RunOptions, Session};

use crate::{Request, RunError};

/// Capacity of the rendered chat prompt, in bytes.
pub const CHAT_PROMPT_BYTES: usize = 8192;
/// Alignment the session wants for its part of the arena.
const SESSION_ALIGN: usize = 64;

/// Where the text goes: a UART, usually.
pub trait Console: Write {
    /// Pushes out what was written (the text is flushed after every
    /// token). The default does nothing.
    fn flush(&mut self) {}

    /// A milestone of the run, for the board's log. The default ignores
    /// it.
    fn progress(&mut self, _event: Progress) {}
}

/// Milestones reported through [`Console::progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The model's header, manifest and tensor CRCs are good.
    Verified {
        /// Timer ticks the check took.
        ticks: u64,
    },
    /// The prompt is tokenized and the session is ready.
    Prompt {
        /// Prompt tokens.
        tokens: usize,
        /// Arena bytes of the session and the sampler.
        arena_bytes: usize,
    },
    /// The prompt has been evaluated.
    Prefilled,
}

/// A monotonic tick counter, for the rates on the `stats:` line.
pub trait Clock {
    /// Ticks since some fixed point (boot).
    fn ticks(&self) -> u64;
    /// Ticks per second.
    fn frequency(&self) -> u64;
    /// Whether the clock measures an emulator rather than the hardware
    /// (the rates are then marked "(emulated)").
    fn emulated(&self) -> bool {
        false
    }

    /// `ticks` in seconds.
    fn seconds(&self, ticks: u64) -> f64 {
        ticks as f64 / self.frequency().max(1) as f64
    }
}

/// What a successful run did (also printed on the `stats:` line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens (an end-of-generation token included).
    pub generated: usize,
    /// Timer ticks of the model check.
    pub verify_ticks: u64,
    /// Timer ticks of the prefill.
    pub prefill_ticks: u64,
    /// Timer ticks of sampling and decoding.
    pub decode_ticks: u64,
    /// Arena bytes of the session and the sampler.
    pub arena_bytes: usize,
}

/// Wraps a core error with what the loop was doing.
fn core(what: &'static str) -> impl FnOnce(Error) -> RunError {
    move |err| RunError::Core { what, err }
}

/// Runs `req` on the model in `image` with `kernels`, in `arena`, streaming
/// the text and the `prompt_ids:`, `ids:` and `stats:` lines to `out`.
///
/// First opens the image and checks its header, manifest and every
/// tensor's CRC-32 (a `model:` line reports it). Errors are returned, not
/// printed; a context that fills up is reported after the three lines, as
/// [`RunError::ContextFull`].
pub fn run<K: Kernels>(
    image: &[u8],
    kernels: K,
    req: &Request<'_>,
    arena: &mut [u8],
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<Stats, RunError> {
    let model_err = |err| RunError::Model { addr: image.as_ptr() as usize, err };
    let t0 = clock.ticks();
    let model = Model::open_mapped(image).map_err(model_err)?;
    model.verify(&mut Mapped(image), &mut []).map_err(model_err)?;
    let verify_ticks = clock.ticks() - t0;
    out.progress(Progress::Verified { ticks: verify_ticks });
    let name = model.manifest().name;
    let _ = writeln!(
        out,
        "model: {} ({} bytes at {:#x}), header, manifest and {} tensor CRCs verified in {:.2} s{}",
        if name.is_empty() { "unnamed" } else { name },
        image.len(),
        image.as_ptr() as usize,
        model.tensors().count(),
        clock.seconds(verify_ticks),
        emulated(clock)
    );

    let tokenizer = Tokenizer::from_model(&model).map_err(core("the model has no usable tokenizer"))?;
    let mut chat_text = String::<CHAT_PROMPT_BYTES>::new();
    let text = if req.chat {
        let template = ChatTemplate::detect(model.manifest().tokenizer.chat_template).unwrap_or_else(|e| {
            let _ = writeln!(out, "warning: {e}; using ChatML without a system message");
            ChatTemplate::FALLBACK
        });
        template
            .render_first(req.system, req.prompt, &mut chat_text)
            .map_err(|_| RunError::PromptTooLong { max: CHAT_PROMPT_BYTES })?;
        chat_text.as_str()
    } else {
        req.prompt
    };

    // The arena's parts (see the module docs).
    let opts = RunOptions::mapped(req.n_ctx);
    let sampling = SamplerConfig { temperature: req.temperature, seed: req.seed, ..SamplerConfig::default() };
    let n_vocab = model.config().n_vocab as usize;
    let pad = (arena.as_ptr() as usize).wrapping_neg() % SESSION_ALIGN;
    let session_bytes = Plan::new(model.config(), &opts).map_err(core("bad request settings"))?.bytes();
    let sampler_bytes = Sampler::work_bytes(n_vocab, &sampling);
    // A token covers at least one byte of text, or is BOS, EOS or a space
    // prefix: twice the bytes plus four is room to spare.
    let prompt_cap = 2 * text.len() + 4;
    // At most one token per context position (the prompt has at least one).
    let gen_cap = req.max_tokens.min(req.n_ctx) as usize;
    let ids_bytes = 4 * (prompt_cap + gen_cap) + 3;
    let work_bytes = tokenizer.work_bytes(text.len());
    let need = pad + session_bytes + sampler_bytes + ids_bytes + work_bytes;
    if arena.len() < need {
        return Err(RunError::ArenaTooSmall { need, got: arena.len() });
    }
    let (s_arena, rest) = arena.split_at_mut(pad + session_bytes);
    let (k_arena, rest) = rest.split_at_mut(sampler_bytes);
    let (ids_arena, work) = rest.split_at_mut(ids_bytes);
    let (_, words, _) = bytemuck::pod_align_to_mut::<u8, u32>(ids_arena);
    let (prompt_buf, gen_buf) = words.split_at_mut(prompt_cap);

    let n = tokenizer
        .tokenize(text.as_bytes(), true, req.chat, prompt_buf, &mut work[..work_bytes])
        .map_err(core("cannot tokenize the prompt"))?;
    let prompt_ids = &prompt_buf[..n];
    if prompt_ids.is_empty() {
        return Err(RunError::EmptyPrompt);
    }
    if prompt_ids.len() > req.n_ctx as usize {
        return Err(RunError::PromptTooManyTokens { tokens: prompt_ids.len(), n_ctx: req.n_ctx });
    }

    let kernels_name = kernels.name();
    let mut session =
        Session::new(&model, kernels, Mapped(image), s_arena, &opts).map_err(core("cannot start the session"))?;
    let mut sampler = Sampler::new(sampling, n_vocab, k_arena).map_err(core("bad sampler settings"))?;
    let arena_bytes = session_bytes + sampler_bytes;
    out.progress(Progress::Prompt { tokens: prompt_ids.len(), arena_bytes });

    let t0 = clock.ticks();
    let mut logits = session.eval(prompt_ids, None).map_err(core("prefill failed"))?;
    let prefill_ticks = clock.ticks() - t0;
    for &t in prompt_ids {
        sampler.accept(t);
    }
    out.progress(Progress::Prefilled);

    let t1 = clock.ticks();
    let max_tokens = req.max_tokens as usize;
    let mut n_ids = 0;
    let mut utf8 = Utf8Decoder::new();
    let mut piece = [0u8; 256];
    let mut text_buf = [0u8; 260];
    let mut context_full = None;
    while n_ids < max_tokens {
        let tok = sampler.sample(logits);
        gen_buf[n_ids] = tok;
        n_ids += 1;
        if tokenizer.is_eog(tok) {
            break;
        }
        sampler.accept(tok);
        let n = tokenizer.piece(tok, false, &mut piece).map_err(core("cannot print a token"))?;
        let _ = out.write_str(utf8.push(&piece[..n], &mut text_buf).map_err(core("cannot print a token"))?);
        out.flush();
        if n_ids == max_tokens {
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
    let stats = Stats {
        prompt_tokens: prompt_ids.len(),
        generated: n_ids,
        verify_ticks,
        prefill_ticks,
        decode_ticks: clock.ticks() - t1,
        arena_bytes,
    };
    report(out, prompt_ids, &gen_buf[..n_ids], &stats, clock, kernels_name);
    match context_full {
        Some(n_ctx) => Err(RunError::ContextFull { n_ctx }),
        None => Ok(stats),
    }
}

/// " (emulated)" if the clock measures an emulator.
fn emulated(clock: &impl Clock) -> &'static str {
    if clock.emulated() {
        " (emulated)"
    } else {
        ""
    }
}

/// The machine-readable lines after the generated text.
fn report(out: &mut impl Console, prompt_ids: &[u32], ids: &[u32], s: &Stats, clock: &impl Clock, kernels: &str) {
    let rate = |n: usize, ticks: u64| {
        let s = clock.seconds(ticks);
        if s > 0.0 {
            n as f64 / s
        } else {
            0.0
        }
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "prompt_ids:{}", Ids(prompt_ids));
    let _ = writeln!(out, "ids:{}", Ids(ids));
    let _ = writeln!(
        out,
        "stats: prompt {} tokens, prefill {:.2} tok/s; generated {} tokens, decode {:.2} tok/s{}; arena {} bytes; kernels {kernels}",
        s.prompt_tokens,
        rate(s.prompt_tokens, s.prefill_ticks),
        s.generated,
        rate(s.generated, s.decode_ticks),
        emulated(clock),
        s.arena_bytes
    );
    out.flush();
}

/// Token ids, each after a space.
struct Ids<'a>(&'a [u32]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|id| write!(f, " {id}"))
    }
}

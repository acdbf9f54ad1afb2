//! One request on a board: check the model, tokenize the prompt, prefill,
//! then sample token by token, streaming the text; the same steps as
//! `phi-edge run` (boards/linux/src/generate.rs), so a greedy run gives the
//! host's ids.
//!
//! The board supplies the model image, a kernel set, its cores (a
//! [`Parallel`]: [`smp::Cores`](crate::smp::Cores), or
//! [`phi_edge::Serial`] for the boot core alone), the request, one arena
//! (typically the RAM past the model), a [`Console`] for the text and a
//! [`Clock`] for the rates. The logits, and so the text, do not depend on
//! the number of cores. The arena holds, in order,
//!
//! | part | bytes |
//! |---|---|
//! | padding to 64 bytes | 0 when the arena is 64-byte aligned |
//! | session (KV cache, activations, staging) | [`Plan::bytes`] |
//! | sampler | [`Sampler::work_bytes`] |
//!
//! and the global allocator (on a board, its [`heap`](crate::heap)) the
//! request's own buffers, each reserved with `try_reserve` up front so a
//! full heap is [`RunError::HeapFull`]:
//!
//! | buffer | bytes |
//! |---|---|
//! | rendered chat prompt (chat requests) | the template's text |
//! | prompt token ids | `4 × (2 × prompt bytes + 4)` |
//! | generated token ids | `4 × min(max_tokens, n_ctx)` |
//! | tokenizer working memory | [`Tokenizer::work_bytes`] |
//!
//! Nothing is allocated once the first token is evaluated. The `stats:`
//! line's "arena" counts the session and the sampler, as the host's summary
//! does; "heap" counts the buffers above.
//!
//! Output on the console, after the text:
//!
//! ```text
//! prompt_ids: 1 9690 198 ...
//! ids: 60 23 39614 ...
//! logits_crc32: 0x032034dc
//! stats: prompt 37 tokens, prefill 0.98 tok/s; generated 16 tokens, decode 0.75 tok/s (emulated); perplexity 2.7474; arena 12960387 bytes; heap 29996 bytes; kernels neon; cores 4
//! ```
//!
//! A request with [`Request::icount`] set (the board runs under QEMU's
//! `-icount shift=0`, where the clock advances one nanosecond per guest
//! instruction) ends the `stats:` line with the clock's nanoseconds per
//! token, that is instructions per token:
//!
//! ```text
//! stats: ...; cores 1; icount prefill 51234567 instructions/token, decode 61234567 instructions/token
//! ```
//!
//! Prefill is the prompt's evaluation over its tokens; decode is what the
//! decode rate measures (sampling, text out and the forward passes) over
//! its forward passes ([`Stats::decode_steps`], one fewer than the
//! generated tokens: the first is drawn from the prefill's logits). With
//! several cores QEMU runs the vCPUs in turn and the clock counts the
//! instructions of all of them, spin-waits included. A phase is timed to
//! one tick: 16 ns on the Arm boards (QEMU's generic timer runs at
//! 62.5 MHz on virt and raspi4b alike), 100 ns on RISC-V (`mtime` at
//! 10 MHz).
//!
//! The perplexity is that of the generated tokens under the raw logits
//! (see [`Perplexity`]); `logits_crc32` is the CRC-32 of those logits
//! (see [`Stats::logits_crc`]), which the host's `phi-edge run --ids-out`
//! writes too.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use phi_edge::chat::ChatTemplate;
use phi_edge::crc::Crc32;
use phi_edge::sample::{Sampler, SamplerConfig};
use phi_edge::tokenizer::{Tokenizer, Utf8Decoder};
use phi_edge::{Error, Kernels, Mapped, Model, Parallel, Plan, RunOptions, Session};

use crate::error::HeapBuffer;
use crate::perplexity::Perplexity;
use crate::{Request, RunError};

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
    /// Forward passes of the decode loop: one per generated token but the
    /// last (the first is drawn from the prefill's logits, and the loop
    /// ends after drawing the last one).
    pub decode_steps: usize,
    /// Arena bytes of the session and the sampler.
    pub arena_bytes: usize,
    /// Heap bytes of the request's buffers.
    pub heap_bytes: usize,
    /// Perplexity of the generated tokens.
    pub perplexity: f32,
    /// Cores the session's work was spread over.
    pub cores: usize,
    /// CRC-32 of the logits every generated token was drawn from (f32,
    /// little-endian, one vector after another): equal to the host's only
    /// if every logit is bit-identical.
    pub logits_crc: u32,
}

/// Wraps a core error with what the loop was doing.
fn core(what: &'static str) -> impl FnOnce(Error) -> RunError {
    move |err| RunError::Core { what, err }
}

/// Runs `req` on the model in `image` with `kernels` on the cores of `par`
/// (the session's attention scratch is planned for `par.threads()`), in
/// `arena`, streaming
/// the text and the `prompt_ids:`, `ids:`, `logits_crc32:` and `stats:` lines
/// to `out`.
///
/// First opens the image and checks its header, manifest and every
/// tensor's CRC-32 (a `model:` line reports it). Errors are returned, not
/// printed; a context that fills up is reported after the three lines, as
/// [`RunError::ContextFull`].
pub fn run<K: Kernels, P: Parallel>(
    image: &[u8],
    kernels: K,
    par: P,
    req: &Request<'_>,
    arena: &mut [u8],
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<Stats, RunError> {
    let model_err = |err| RunError::Model {
        addr: image.as_ptr() as usize,
        err,
    };
    let t0 = clock.ticks();
    let model = Model::open_mapped(image).map_err(model_err)?;
    model
        .verify(&mut Mapped(image), &mut [])
        .map_err(model_err)?;
    let verify_ticks = clock.ticks() - t0;
    out.progress(Progress::Verified {
        ticks: verify_ticks,
    });
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

    let tokenizer =
        Tokenizer::from_model(&model).map_err(core("the model has no usable tokenizer"))?;
    let mut heap_bytes = 0;
    let chat_text;
    let text = if req.chat {
        let template = ChatTemplate::detect(model.manifest().tokenizer.chat_template)
            .unwrap_or_else(|e| {
                let _ = writeln!(out, "warning: {e}; using ChatML without a system message");
                ChatTemplate::FALLBACK
            });
        let mut rendered = HeapText::default();
        if template
            .render_first(req.system, req.prompt, &mut rendered)
            .is_err()
        {
            return Err(RunError::HeapFull {
                what: HeapBuffer::ChatPrompt,
                bytes: rendered.wanted,
            });
        }
        heap_bytes += rendered.text.capacity();
        chat_text = rendered.text;
        chat_text.as_str()
    } else {
        req.prompt
    };

    // The arena's parts (see the module docs).
    let cores = par.threads().max(1);
    let opts = RunOptions {
        threads: u32::try_from(cores).unwrap_or(u32::MAX),
        ..RunOptions::mapped(req.n_ctx)
    };
    let sampling = SamplerConfig {
        temperature: req.temperature,
        seed: req.seed,
        ..SamplerConfig::default()
    };
    let n_vocab = model.config().n_vocab as usize;
    let pad = (arena.as_ptr() as usize).wrapping_neg() % SESSION_ALIGN;
    let session_bytes = Plan::new(model.config(), &opts)
        .map_err(core("bad request settings"))?
        .bytes();
    let sampler_bytes = Sampler::work_bytes(n_vocab, &sampling);
    let need = pad + session_bytes + sampler_bytes;
    if arena.len() < need {
        return Err(RunError::ArenaTooSmall {
            need,
            got: arena.len(),
        });
    }
    let (s_arena, rest) = arena.split_at_mut(pad + session_bytes);
    let k_arena = &mut rest[..sampler_bytes];

    // The request's buffers (see the module docs). A token covers at least
    // one byte of text, or is BOS, EOS or a space prefix: twice the bytes
    // plus four is room to spare. At most one token is generated per
    // context position.
    let mut prompt_buf = buffer::<u32>(2 * text.len() + 4, HeapBuffer::PromptIds)?;
    let mut gen_buf = buffer::<u32>(
        req.max_tokens.min(req.n_ctx) as usize,
        HeapBuffer::GeneratedIds,
    )?;
    let mut work = buffer::<u8>(
        tokenizer.work_bytes(text.len()),
        HeapBuffer::TokenizerWork,
    )?;
    heap_bytes += 4 * (prompt_buf.capacity() + gen_buf.capacity()) + work.capacity();

    let n = tokenizer
        .tokenize(text.as_bytes(), true, req.chat, &mut prompt_buf, &mut work)
        .map_err(core("cannot tokenize the prompt"))?;
    drop(work);
    let prompt_ids = &prompt_buf[..n];
    if prompt_ids.is_empty() {
        return Err(RunError::EmptyPrompt);
    }
    if prompt_ids.len() > req.n_ctx as usize {
        return Err(RunError::PromptTooManyTokens {
            tokens: prompt_ids.len(),
            n_ctx: req.n_ctx,
        });
    }

    let kernels_name = kernels.name();
    let mut session = Session::new(&model, kernels, Mapped(image), s_arena, &opts)
        .map_err(core("cannot start the session"))?
        .with_parallel(par);
    let mut sampler =
        Sampler::new(sampling, n_vocab, k_arena).map_err(core("bad sampler settings"))?;
    let arena_bytes = session_bytes + sampler_bytes;
    out.progress(Progress::Prompt {
        tokens: prompt_ids.len(),
        arena_bytes,
    });

    let t0 = clock.ticks();
    let mut logits = session
        .eval(prompt_ids, None)
        .map_err(core("prefill failed"))?;
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
    let mut perplexity = Perplexity::default();
    let mut logits_crc = Crc32::new();
    let mut decode_steps = 0;
    while n_ids < max_tokens {
        let tok = sampler.sample(logits);
        perplexity.add(logits, tok);
        logits_crc.update_f32s(logits);
        gen_buf[n_ids] = tok;
        n_ids += 1;
        if tokenizer.is_eog(tok) {
            break;
        }
        sampler.accept(tok);
        let n = tokenizer
            .piece(tok, false, &mut piece)
            .map_err(core("cannot print a token"))?;
        let _ = out.write_str(
            utf8.push(&piece[..n], &mut text_buf)
                .map_err(core("cannot print a token"))?,
        );
        out.flush();
        if n_ids == max_tokens {
            break;
        }
        logits = match session.eval(&[tok], None) {
            Ok(l) => {
                decode_steps += 1;
                l
            }
            Err(Error::ContextFull { n_ctx }) => {
                context_full = Some(n_ctx);
                break;
            }
            Err(e) => return Err(core("decode failed")(e)),
        };
    }
    let _ = out.write_str(
        utf8.finish(&mut text_buf)
            .map_err(core("cannot print a token"))?,
    );
    let stats = Stats {
        prompt_tokens: prompt_ids.len(),
        generated: n_ids,
        verify_ticks,
        prefill_ticks,
        decode_ticks: clock.ticks() - t1,
        decode_steps,
        arena_bytes,
        heap_bytes,
        perplexity: perplexity.value(),
        cores,
        logits_crc: logits_crc.finish(),
    };
    report(
        out,
        prompt_ids,
        &gen_buf[..n_ids],
        &stats,
        clock,
        kernels_name,
        req.icount,
    );
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

/// `ticks` of `clock` in nanoseconds over `n` tokens: under `-icount
/// shift=0`, guest instructions per token.
fn nanos_per_token(clock: &impl Clock, ticks: u64, n: usize) -> u128 {
    u128::from(ticks) * 1_000_000_000 / u128::from(clock.frequency().max(1)) / n.max(1) as u128
}

/// The machine-readable lines after the generated text; `icount` adds the
/// instructions per token to the `stats:` line.
fn report(
    out: &mut impl Console,
    prompt_ids: &[u32],
    ids: &[u32],
    s: &Stats,
    clock: &impl Clock,
    kernels: &str,
    icount: bool,
) {
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
    let _ = writeln!(out, "logits_crc32: {:#010x}", s.logits_crc);
    let _ = write!(
        out,
        "stats: prompt {} tokens, prefill {:.2} tok/s; generated {} tokens, decode {:.2} tok/s{}; perplexity {:.4}; arena {} bytes; heap {} bytes; kernels {kernels}; cores {}",
        s.prompt_tokens,
        rate(s.prompt_tokens, s.prefill_ticks),
        s.generated,
        rate(s.generated, s.decode_ticks),
        emulated(clock),
        s.perplexity,
        s.arena_bytes,
        s.heap_bytes,
        s.cores
    );
    if icount {
        let _ = write!(
            out,
            "; icount prefill {} instructions/token, decode {} instructions/token",
            nanos_per_token(clock, s.prefill_ticks, s.prompt_tokens),
            nanos_per_token(clock, s.decode_ticks, s.decode_steps)
        );
    }
    let _ = writeln!(out);
    out.flush();
}

/// Token ids, each after a space.
struct Ids<'a>(&'a [u32]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|id| write!(f, " {id}"))
    }
}

/// A zeroed buffer of `len` values on the heap, or [`RunError::HeapFull`].
fn buffer<T: Copy + Default>(len: usize, what: HeapBuffer) -> Result<Vec<T>, RunError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| RunError::HeapFull {
        what,
        bytes: len.saturating_mul(size_of::<T>()),
    })?;
    v.resize(len, T::default());
    Ok(v)
}

/// Text on the heap that grows with `try_reserve`: a write the heap cannot
/// hold fails (and `wanted` says how long the text would have been).
#[derive(Default)]
struct HeapText {
    text: String,
    wanted: usize,
}

impl Write for HeapText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.wanted = self.wanted.saturating_add(s.len());
        self.text.try_reserve(s.len()).map_err(|_| fmt::Error)?;
        self.text.push_str(s);
        Ok(())
    }
}

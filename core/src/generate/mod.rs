//! Text generation: one allocation-free [`Generator`] that the CLI, the
//! boards and the C API share.
//!
//! A generator owns a [`Session`], the model's [`Tokenizer`] and
//! [`ChatTemplate`], a [`Sampler`], the streaming [`Utf8Decoder`] and the
//! turn's statistics. Give it a prompt ([`Generator::prompt`]) or a chat
//! turn ([`Generator::chat`]), then call [`Generator::next_token`] for one piece
//! of text at a time (or [`Generator::generate`] with a callback). All its
//! buffers live in one caller-provided arena of
//! [`GenOptions::arena_bytes`] bytes, a `const fn` of the model's
//! [`Config`] and the [`GenOptions`], laid out as:
//!
//! | part | bytes |
//! |---|---|
//! | padding to 64 bytes | 0 when the arena is 64-byte aligned |
//! | session (KV cache, activations, staging) | [`Plan::arena_bytes`] |
//! | sampler | [`Sampler::work_bytes`] |
//! | softmax weights for the perplexity, with several cores | 8 × `n_vocab` |
//! | the context's token ids | 4 × (`n_ctx` + 1) |
//! | the rendered prompt | `max_prompt_bytes` |
//! | tokenizer working memory | [`Tokenizer::max_work_bytes`]`(max_prompt_bytes, n_vocab)` |
//!
//! each rounded up to 64 bytes. Nothing is allocated.
//!
//! Chat turns are tokenized with their template's markers as special
//! tokens and the messages with special-token parsing off
//! ([`Tokenizer::tokenize_marked`]); raw prompts with it off too. BOS is
//! added as the model says at the start of the context.
//!
//! A generated token is evaluated only when the next one is asked for, so
//! a caller that stops after N tokens pays for N - 1 forward passes after
//! the prompt's.

mod book;
mod prompt;

use core::sync::atomic::AtomicU64;

use crate::chat::ChatTemplate;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::Model;
use crate::kernels::Kernels;
use crate::parallel::{Parallel, Serial};
use crate::plan::{Plan, RunOptions, ARENA_ALIGN};
use crate::sample::{Sampler, SamplerConfig};
use crate::session::Session;
use crate::source::WeightSource;
use crate::tokenizer::{Tokenizer, Utf8Decoder, MAX_TEXT};
use book::Book;
use prompt::Rendered;

/// Longest token text [`Generator::next_token`] renders, in bytes.
const PIECE_BYTES: usize = 256;

/// What a [`Generator`] is planned for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenOptions {
    /// The session: context, prefill chunk, cores, staging buffers.
    pub run: RunOptions,
    /// Sampling.
    pub sampling: SamplerConfig,
    /// Longest text one [`Generator::prompt`] or [`Generator::chat`] call
    /// may tokenize, in bytes; for a chat turn that is the rendered turn:
    /// the template's markers and role names (a few dozen bytes), the
    /// system message on the first turn (the template's default, if it
    /// has one) and the user's message.
    pub max_prompt_bytes: u32,
}

impl GenOptions {
    /// A mapped weight source, context `n_ctx`, greedy sampling
    /// (temperature 0), prompts of up to `max_prompt_bytes`.
    pub const fn greedy(n_ctx: u32, max_prompt_bytes: u32) -> GenOptions {
        GenOptions {
            run: RunOptions::mapped(n_ctx),
            sampling: SamplerConfig::GREEDY,
            max_prompt_bytes,
        }
    }
}

impl GenOptions {
    /// Exact bytes of a [`Generator`]'s arena for these options on a model
    /// of `config`, for an arena aligned to [`ARENA_ALIGN`] (64) bytes; any
    /// other arena needs up to 63 more. `const`, so firmware can size a
    /// `static` arena.
    pub const fn arena_bytes(&self, config: &Config) -> usize {
        Parts::new(config, self).total()
    }
}

/// Bytes of a chat template's own text in one rendered turn, beyond its
/// default system message: markers, role names and newlines (under 100
/// for the templates the core renders).
const TEMPLATE_BYTES: usize = 256;

/// The `max_prompt_bytes` for chat turns whose messages (system and user
/// text) take `messages` bytes on `model`: the messages, the template's
/// own text and its default system message (which is part of the
/// template's Jinja text). Raw prompts need just their length.
pub fn turn_bytes(model: &Model<'_>, messages: usize) -> usize {
    let template = model.manifest().tokenizer.chat_template.len();
    messages
        .saturating_add(template)
        .saturating_add(TEMPLATE_BYTES)
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An end-of-generation token was drawn (it counts as generated; its
    /// text is not shown).
    EndOfGeneration,
    /// The context has no room for the last token drawn.
    ContextFull,
    /// [`Generator::generate`] produced the tokens it was asked for.
    MaxTokens,
}

/// What one [`Generator::next_token`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'g> {
    /// A token; `text` is its text as far as it completes UTF-8 (empty
    /// while a character is still incomplete).
    Token {
        /// The token id.
        id: u32,
        /// Its text.
        text: &'g str,
    },
    /// Generation stopped; `text` is what the UTF-8 decoder still held
    /// (usually nothing). Later calls stop again, with no text.
    Stopped {
        /// Why.
        stop: Stop,
        /// Held-back text.
        text: &'g str,
    },
}

/// What the current turn did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Tokens of the turn's prompt.
    pub prompt_tokens: usize,
    /// Tokens drawn (an end-of-generation token included).
    pub generated: usize,
    /// Forward passes after the prompt's: one per generated token that
    /// was followed by another.
    pub decode_evals: usize,
    /// Perplexity of the generated tokens under the raw logits (1 before
    /// any), in f64 as [`log_prob`](crate::sample::log_prob) computes it.
    pub perplexity: f64,
    /// CRC-32 of the logits every generated token was drawn from (f32,
    /// little-endian, one vector after another): equal on two machines
    /// only if every logit is bit-identical.
    pub logits_crc: u32,
    /// Chunks the prompt was evaluated in
    /// ([`RunOptions::prefill_chunk`] tokens each).
    pub prefill_chunks: usize,
    /// Bytes read from a streamed weight source by the prompt's
    /// evaluation (0 for a mapped source): the weights once per chunk.
    pub prefill_read: u64,
    /// Bytes read from a streamed weight source by the decode evaluations:
    /// the weights once per evaluation.
    pub decode_read: u64,
}

/// The turn's counters (all zero at a new turn).
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    decode_evals: usize,
    prefill_chunks: usize,
    prefill_read: u64,
    decode_read: u64,
}

/// Where the turn is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No prompt.
    Idle,
    /// A prompt is tokenized, not yet evaluated.
    Prompted,
    /// The prompt is evaluated; `pending` is the token drawn last, not yet
    /// evaluated (none right after the prompt).
    Generating { pending: Option<u32> },
    /// Generation stopped.
    Stopped(Stop),
}

/// Bytes of each part of a generator's arena (see the module docs).
struct Parts {
    session: usize,
    sampler: usize,
    weights: usize,
    ids: usize,
    text: usize,
    work: usize,
}

/// `n` rounded up to [`ARENA_ALIGN`].
const fn aligned(n: usize) -> usize {
    n.saturating_add(ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN
}

impl Parts {
    const fn new(config: &Config, opts: &GenOptions) -> Parts {
        let n_vocab = config.n_vocab as usize;
        let prompt = opts.max_prompt_bytes as usize;
        Parts {
            session: aligned(Plan::arena_bytes(config, &opts.run)),
            sampler: aligned(Sampler::work_bytes(n_vocab, &opts.sampling)),
            weights: aligned(book::weight_bytes(n_vocab, opts.run.threads as usize)),
            ids: aligned(4 * (opts.run.n_ctx as usize + 1)),
            text: aligned(prompt),
            work: aligned(Tokenizer::max_work_bytes(prompt, n_vocab)),
        }
    }

    const fn total(&self) -> usize {
        self.session
            .saturating_add(self.sampler)
            .saturating_add(self.weights)
            .saturating_add(self.ids)
            .saturating_add(self.text)
            .saturating_add(self.work)
    }
}

/// Splits `n` bytes off the front of `arena`.
fn take<'a>(arena: &mut &'a mut [u8], n: usize) -> &'a mut [u8] {
    let (head, rest) = core::mem::take(arena).split_at_mut(n);
    *arena = rest;
    head
}

/// A session, its tokenizer, chat template and sampler, generating text
/// from prompts and chat turns in one arena. See the [module
/// docs](self).
pub struct Generator<'m, 'a, K, S, P = Serial> {
    session: Session<'m, 'a, K, S, P>,
    /// Everything else, which does not depend on the cores.
    t: Text<'m, 'a>,
}

/// A generator's text side: tokenizer, template, sampler, buffers, and
/// where the turn is.
struct Text<'m, 'a> {
    tokenizer: Tokenizer<'m>,
    template: ChatTemplate<'m>,
    /// Why the model's own template was not recognised, if it was not.
    template_error: Option<Error>,
    sampler: Sampler<'a>,
    book: Book<'a>,
    /// The context's token ids: evaluated ones, then the pending one.
    ids: &'a mut [u32],
    text: &'a mut [u8],
    work: &'a mut [u8],
    max_prompt_bytes: usize,
    /// Bytes of the arena it uses.
    arena_bytes: usize,
    state: State,
    /// Where this turn's prompt starts in `ids`, and its length.
    turn_start: usize,
    prompt_len: usize,
    generated: usize,
    counts: Counts,
    utf8: Utf8Decoder,
    piece: [u8; PIECE_BYTES],
    out: [u8; PIECE_BYTES + 4],
}

impl<'m, 'a, K: Kernels, S: WeightSource> Generator<'m, 'a, K, S, Serial> {
    /// A generator over `model` in `arena`, with the model's chat template
    /// (or [`ChatTemplate::FALLBACK`] if it is not recognised: see
    /// [`template_error`](Generator::template_error)). Fails with
    /// [`Error::ArenaTooSmall`] if `arena` is smaller than
    /// [`GenOptions::arena_bytes`] (plus the padding to 64 bytes),
    /// [`Error::BadOptions`] for options the model cannot run with, and
    /// the tokenizer's error if the model has none.
    pub fn new(
        model: &Model<'m>,
        kernels: K,
        src: S,
        arena: &'a mut [u8],
        opts: &GenOptions,
    ) -> Result<Self> {
        let config = model.config();
        Plan::new(config, &opts.run)?;
        let max_prompt_bytes = opts.max_prompt_bytes as usize;
        if max_prompt_bytes == 0 || max_prompt_bytes > MAX_TEXT {
            return Err(Error::BadOptions {
                what: "max_prompt_bytes must be 1..=2^28",
            });
        }
        let tokenizer = Tokenizer::from_model(model)?;
        let (template, template_error) =
            match ChatTemplate::detect(model.manifest().tokenizer.chat_template) {
                Ok(t) => (t, None),
                Err(e) => (ChatTemplate::FALLBACK, Some(e)),
            };
        let parts = Parts::new(config, opts);
        let pad = arena.as_ptr().align_offset(ARENA_ALIGN);
        let need = parts.total().saturating_add(pad);
        if arena.len() < need {
            return Err(Error::ArenaTooSmall {
                need,
                got: arena.len(),
            });
        }
        let mut rest = &mut arena[pad..];
        let session_arena = take(&mut rest, parts.session);
        let sampler_arena = take(&mut rest, parts.sampler);
        let weights: &mut [u64] = bytemuck::cast_slice_mut(take(&mut rest, parts.weights));
        // SAFETY: `AtomicU64` has the size and bit validity of `u64`, and
        // the slice is 64-byte aligned (every part is a multiple of 64
        // bytes from an aligned start), more than either type needs. The
        // exclusive borrow is given up for the shared one.
        let weights: &'a [AtomicU64] = unsafe { &*(weights as *mut [u64] as *const [AtomicU64]) };
        let ids: &mut [u32] = bytemuck::cast_slice_mut(take(&mut rest, parts.ids));
        let text = take(&mut rest, parts.text);
        let work = take(&mut rest, parts.work);
        let session = Session::new(model, kernels, src, session_arena, &opts.run)?;
        let sampler = Sampler::new(opts.sampling, config.n_vocab as usize, sampler_arena)?;
        Ok(Generator {
            session,
            t: Text {
                tokenizer,
                template,
                template_error,
                sampler,
                book: Book::new(weights),
                ids,
                text,
                work,
                max_prompt_bytes,
                arena_bytes: need,
                state: State::Idle,
                turn_start: 0,
                prompt_len: 0,
                generated: 0,
                counts: Counts::default(),
                utf8: Utf8Decoder::new(),
                piece: [0; PIECE_BYTES],
                out: [0; PIECE_BYTES + 4],
            },
        })
    }

    /// The same generator with the session's work spread over the cores
    /// of `par` (see [`Session::with_parallel`]); the perplexity's work
    /// too, on as many cores as the arena was planned for. The output
    /// does not depend on the number of cores.
    pub fn with_parallel<P: Parallel>(self, par: P) -> Generator<'m, 'a, K, S, P> {
        Generator {
            session: self.session.with_parallel(par),
            t: self.t,
        }
    }
}

impl<'m, 'a, K: Kernels, S: WeightSource, P: Parallel> Generator<'m, 'a, K, S, P> {
    /// Sets a raw prompt (no chat template; special-token text is not
    /// parsed), continuing the context: BOS as the model says if the
    /// context is empty. Replaces a prompt not yet evaluated and ends the
    /// previous turn (a token drawn but not evaluated is dropped). Fails
    /// with [`Error::PromptTooLong`], [`Error::EmptyPrompt`] or
    /// [`Error::PromptTooManyTokens`], leaving the context as it was.
    pub fn prompt(&mut self, text: &str) -> Result<()> {
        if text.len() > self.t.max_prompt_bytes {
            return Err(Error::PromptTooLong {
                bytes: text.len(),
                max: self.t.max_prompt_bytes,
            });
        }
        let (past, ctx) = (self.session.n_past(), self.session.n_ctx());
        let n = self
            .t
            .tokenizer
            .tokenize(
                text.as_bytes(),
                past == 0,
                false,
                &mut self.t.ids[past..ctx],
                self.t.work,
            )
            .map_err(|e| too_many(e, ctx - past, ctx))?;
        self.start_turn(n)
    }

    /// Sets one chat turn, continuing the conversation: on an empty
    /// context the template's start with `system` (`None`: the template's
    /// default, if any) and `user`; otherwise the close of the previous
    /// reply and the next user turn (`system` is ignored). The template's
    /// markers go in as their special tokens; the messages are tokenized
    /// with special-token parsing off. Errors as [`prompt`](Self::prompt).
    pub fn chat(&mut self, system: Option<&str>, user: &str) -> Result<()> {
        let first = self.session.n_past() == 0;
        let mut r = Rendered::new(self.t.text);
        let rendered = if first {
            self.t.template.render_first(system, user, &mut r)
        } else {
            self.t.template.render_next(user, &mut r)
        };
        rendered.map_err(|_| Error::BadOptions {
            what: "the chat template wrote more markers than a turn holds",
        })?;
        let Some((text, markers)) = r.parts() else {
            return Err(Error::PromptTooLong {
                bytes: r.len(),
                max: self.t.max_prompt_bytes,
            });
        };
        let (past, ctx) = (self.session.n_past(), self.session.n_ctx());
        let n = self
            .t
            .tokenizer
            .tokenize_marked(
                text,
                markers,
                first,
                &mut self.t.ids[past..ctx],
                self.t.work,
            )
            .map_err(|e| too_many(e, ctx - past, ctx))?;
        self.start_turn(n)
    }

    /// Starts a turn on the `n` prompt ids just written.
    fn start_turn(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::EmptyPrompt);
        }
        self.t.turn_start = self.session.n_past();
        self.t.prompt_len = n;
        self.t.generated = 0;
        self.t.counts = Counts::default();
        self.t.book.clear();
        self.t.utf8 = Utf8Decoder::new();
        self.t.state = State::Prompted;
        Ok(())
    }

    /// Evaluates the prompt, if one is waiting ([`next_token`](Self::next_token) does
    /// it first; call it alone to time the prefill).
    pub fn prefill(&mut self) -> Result<()> {
        match self.t.state {
            State::Idle => Err(Error::NoPrompt),
            State::Prompted => {
                let prompt = &self.t.ids[self.t.turn_start..self.t.turn_start + self.t.prompt_len];
                let read = self.session.bytes_read();
                self.session.eval(prompt, None)?;
                self.t.counts.prefill_read = self.session.bytes_read() - read;
                self.t.counts.prefill_chunks = prompt.len().div_ceil(self.session.prefill_chunk());
                for &t in prompt {
                    self.t.sampler.accept(t);
                }
                self.t.state = State::Generating { pending: None };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Evaluates the token drawn last, if it is waiting
    /// ([`next_token`](Self::next_token) does it first; call it alone to time the
    /// forward pass). A full context stops generation.
    pub fn advance(&mut self) -> Result<()> {
        self.prefill()?;
        let State::Generating { pending: Some(tok) } = self.t.state else {
            return Ok(());
        };
        let read = self.session.bytes_read();
        match self.session.eval(&[tok], None) {
            Ok(_) => {
                self.t.counts.decode_evals += 1;
                self.t.counts.decode_read += self.session.bytes_read() - read;
                self.t.state = State::Generating { pending: None };
                Ok(())
            }
            Err(Error::ContextFull { .. }) => {
                self.t.state = State::Stopped(Stop::ContextFull);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Draws the next token and returns its text (see [`Step`]): evaluates
    /// the prompt or the token drawn last first. Fails with
    /// [`Error::NoPrompt`] before any prompt.
    pub fn next_token(&mut self) -> Result<Step<'_>> {
        self.advance()?;
        if let State::Stopped(stop) = self.t.state {
            let text = self.t.utf8.finish(&mut self.t.out)?;
            return Ok(Step::Stopped { stop, text });
        }
        let logits = self.session.logits();
        self.t.book.weigh(self.session.parallel(), logits);
        let tok = self.t.sampler.sample(logits);
        self.t.book.take(logits, tok);
        self.t.ids[self.t.turn_start + self.t.prompt_len + self.t.generated] = tok;
        self.t.generated += 1;
        if self.t.tokenizer.is_eog(tok) {
            self.t.state = State::Stopped(Stop::EndOfGeneration);
            let text = self.t.utf8.finish(&mut self.t.out)?;
            return Ok(Step::Stopped {
                stop: Stop::EndOfGeneration,
                text,
            });
        }
        self.t.sampler.accept(tok);
        self.t.state = State::Generating { pending: Some(tok) };
        let n = self.t.tokenizer.piece(tok, false, &mut self.t.piece)?;
        let text = self.t.utf8.push(&self.t.piece[..n], &mut self.t.out)?;
        Ok(Step::Token { id: tok, text })
    }

    /// The text the UTF-8 decoder still holds, for a caller that stops on
    /// its own limit (incomplete characters come out as U+FFFD).
    pub fn finish(&mut self) -> Result<&str> {
        self.t.utf8.finish(&mut self.t.out)
    }

    /// Draws up to `max_tokens` tokens, handing their text to `on_text` as
    /// it comes, and says why it stopped.
    pub fn generate(&mut self, max_tokens: u32, mut on_text: impl FnMut(&str)) -> Result<Stop> {
        for _ in 0..max_tokens {
            match self.next_token()? {
                Step::Token { text, .. } => on_text(text),
                Step::Stopped { stop, text } => {
                    on_text(text);
                    return Ok(stop);
                }
            }
        }
        on_text(self.finish()?);
        Ok(Stop::MaxTokens)
    }

    /// Starts a new conversation: an empty context and sampler history.
    pub fn reset(&mut self) {
        self.session.reset();
        self.t.sampler.reset();
        self.t.state = State::Idle;
        self.t.turn_start = 0;
        self.t.prompt_len = 0;
        self.t.generated = 0;
        self.t.counts = Counts::default();
        self.t.book.clear();
    }

    /// The token ids of this turn's prompt.
    pub fn prompt_ids(&self) -> &[u32] {
        &self.t.ids[self.t.turn_start..self.t.turn_start + self.t.prompt_len]
    }

    /// The tokens drawn this turn.
    pub fn generated_ids(&self) -> &[u32] {
        let start = self.t.turn_start + self.t.prompt_len;
        &self.t.ids[start..start + self.t.generated]
    }

    /// What this turn did.
    pub fn stats(&self) -> Stats {
        Stats {
            prompt_tokens: self.t.prompt_len,
            generated: self.t.generated,
            decode_evals: self.t.counts.decode_evals,
            perplexity: if self.t.generated == 0 {
                1.0
            } else {
                libm::exp(self.t.book.nll() / self.t.generated as f64)
            },
            logits_crc: self.t.book.crc(),
            prefill_chunks: self.t.counts.prefill_chunks,
            prefill_read: self.t.counts.prefill_read,
            decode_read: self.t.counts.decode_read,
        }
    }

    /// Bytes of the arena it uses: [`GenOptions::arena_bytes`] and the
    /// padding that aligned the arena to 64 bytes.
    pub fn arena_bytes(&self) -> usize {
        self.t.arena_bytes
    }

    /// The context length.
    pub fn n_ctx(&self) -> usize {
        self.session.n_ctx()
    }

    /// Tokens the context still has room for.
    pub fn room(&self) -> usize {
        self.session.n_ctx() - self.session.n_past()
    }

    /// The session (kernels, cores, position).
    pub fn session(&self) -> &Session<'m, 'a, K, S, P> {
        &self.session
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer<'m> {
        &self.t.tokenizer
    }

    /// The chat template [`chat`](Self::chat) renders.
    pub fn template(&self) -> ChatTemplate<'m> {
        self.t.template
    }

    /// Why the model's chat template was not recognised (the generator
    /// then uses [`ChatTemplate::FALLBACK`]), if it was not.
    pub fn template_error(&self) -> Option<Error> {
        self.t.template_error
    }
}

/// The tokenizer's "output too small" as the prompt's own error.
fn too_many(e: Error, room: usize, n_ctx: usize) -> Error {
    match e {
        Error::BufferTooSmall { need, .. } => Error::PromptTooManyTokens {
            tokens: need,
            room,
            n_ctx: n_ctx as u32,
        },
        e => e,
    }
}

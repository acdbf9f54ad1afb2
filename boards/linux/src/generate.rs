//! `phi-edge run` and `phi-edge chat`: text generation.
//!
//! One arena holds the session (KV cache, activations, staging buffers) and
//! the sampler's working memory; nothing is allocated per token. Generated
//! text goes to stdout as it is produced (incomplete UTF-8 sequences are
//! held back until the next token completes them); everything else goes to
//! stderr.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use phi_edge::chat::ChatTemplate;
use phi_edge::crc::Crc32;
use phi_edge::parallel::ThreadPool;
use phi_edge::sample::{max_logit, softmax_weights, Sampler, SamplerConfig, WeightSum};
use phi_edge::tokenizer::{Tokenizer, Utf8Decoder};
use phi_edge::{Error, Kernels, Mapped, Model, Parallel, Plan, RunOptions, Session};

use crate::cli::{GenArgs, SamplingArgs};
use crate::commands::{open_checked, run_options, thread_pool};
use phi_edge_auto::AutoKernels as HostKernels;
use crate::model_file::ImageBytes;

/// The name of [`ChatTemplate::FALLBACK`], for the warning.
const FALLBACK_TEMPLATE: &str = "ChatML without a system message";

/// `phi-edge run`: one prompt, one answer.
pub fn run(
    args: &GenArgs,
    prompt: &str,
    chat: bool,
    system: Option<&str>,
    ids_out: Option<&Path>,
    timings: bool,
) -> Result<()> {
    let bytes = ImageBytes::open(&args.model)?;
    let model = open_checked(&args.model, &bytes)?;
    let setup = Setup::new(&model, args)?;
    let mut arena = vec![0u8; setup.arena_bytes()];
    let mut g = Generator::new(&model, bytes.bytes(), &setup, &mut arena)?;
    let text = if chat {
        let template = template(&model);
        let mut s = String::new();
        template
            .render_first(system, prompt, &mut s)
            .context("cannot render the chat prompt")?;
        s
    } else {
        if system.is_some() {
            bail!("--system needs --chat");
        }
        prompt.to_owned()
    };
    let prompt_ids = g.tokenize(&text, chat)?;
    if prompt_ids.len() > g.room() {
        return Err(g.too_long(prompt_ids.len()));
    }
    let mut out = std::io::stdout().lock();
    let turn = g.turn(&prompt_ids, args.max_tokens, &mut out)?;
    writeln!(out)?;
    out.flush()?;
    eprintln!("{}", g.summary(&turn));
    if timings {
        eprintln!("{}", turn.timings());
    }
    if let Some(path) = ids_out {
        let json = format!(
            "{{\"prompt\": {:?}, \"generated\": {:?}, \"perplexity\": {}, \"logits_crc32\": {}}}\n",
            prompt_ids,
            turn.ids,
            turn.perplexity(),
            turn.logits_crc
        );
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(reason) = turn.context_full {
        bail!("{reason}");
    }
    Ok(())
}

/// `phi-edge chat`: an interactive conversation that keeps the KV cache
/// across turns.
pub fn chat(args: &GenArgs, system: Option<&str>) -> Result<()> {
    let bytes = ImageBytes::open(&args.model)?;
    let model = open_checked(&args.model, &bytes)?;
    let template = template(&model);
    let setup = Setup::new(&model, args)?;
    let mut arena = vec![0u8; setup.arena_bytes()];
    let mut g = Generator::new(&model, bytes.bytes(), &setup, &mut arena)?;
    eprintln!(
        "chatting with {} (context {} tokens); an empty line or end of input quits",
        if model.manifest().name.is_empty() {
            "the model"
        } else {
            model.manifest().name
        },
        g.n_ctx
    );
    let stdin = std::io::stdin();
    let mut first = true;
    let mut line = String::new();
    loop {
        eprint!("> ");
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let user = line.trim_end_matches(['\n', '\r']);
        if user.is_empty() {
            break;
        }
        let mut ids = g.tokenize(&turn_text(&template, first, system, user)?, true)?;
        if ids.len() > g.room() && !first {
            eprintln!(
                "the context is full ({} tokens); the conversation starts over",
                g.n_ctx
            );
            g.reset();
            first = true;
            ids = g.tokenize(&turn_text(&template, first, system, user)?, true)?;
        }
        if ids.len() > g.room() {
            eprintln!("error: {}", g.too_long(ids.len()));
            continue;
        }
        let mut out = std::io::stdout().lock();
        let turn = g.turn(&ids, args.max_tokens, &mut out)?;
        writeln!(out)?;
        out.flush()?;
        eprintln!("{}", g.summary(&turn));
        first = false;
        if let Some(reason) = turn.context_full {
            eprintln!("{reason}; the conversation starts over");
            g.reset();
            first = true;
        }
    }
    Ok(())
}

/// The text of one chat turn: the conversation's start (system message and
/// first user turn) or a later user turn.
fn turn_text(
    template: &ChatTemplate<'_>,
    first: bool,
    system: Option<&str>,
    user: &str,
) -> Result<String> {
    let mut text = String::new();
    if first {
        template.render_first(system, user, &mut text)
    } else {
        template.render_next(user, &mut text)
    }
    .context("cannot render the chat turn")?;
    Ok(text)
}

/// The model's chat template, or the fallback with a warning.
fn template<'m>(model: &Model<'m>) -> ChatTemplate<'m> {
    let jinja = model.manifest().tokenizer.chat_template;
    match ChatTemplate::detect(jinja) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("warning: {e}; using {FALLBACK_TEMPLATE}");
            ChatTemplate::FALLBACK
        }
    }
}

/// What one turn produced.
struct Turn {
    prompt_tokens: usize,
    prefill: Duration,
    ids: Vec<u32>,
    decode: Duration,
    /// The single-token evaluations after the prefill: how many, and their
    /// time alone (`decode` also counts sampling and bookkeeping).
    decode_evals: (usize, Duration),
    /// Sum of the generated tokens' negative log probabilities under the
    /// raw logits.
    nll: f64,
    /// CRC-32 of the logits every generated token was drawn from (f32,
    /// little-endian, one vector after another), as the boards print it.
    logits_crc: u32,
    /// Why generation stopped early, if the context filled up.
    context_full: Option<String>,
}

impl Turn {
    /// The `--timings` line: the prefill's and the single-token
    /// evaluations' time in nanoseconds, evaluation calls alone (under
    /// `qemu-system -icount shift=0` a guest nanosecond is an instruction).
    fn timings(&self) -> String {
        format!(
            "timings: prefill {} tokens {} ns; decode {} evaluations {} ns",
            self.prompt_tokens,
            self.prefill.as_nanos(),
            self.decode_evals.0,
            self.decode_evals.1.as_nanos()
        )
    }

    /// Perplexity of the generated tokens (1 if there are none).
    fn perplexity(&self) -> f64 {
        if self.ids.is_empty() {
            1.0
        } else {
            (self.nll / self.ids.len() as f64).exp()
        }
    }
}

/// Session options, sampler settings and the arena they need.
struct Setup {
    opts: RunOptions,
    sampling: SamplerConfig,
    session_bytes: usize,
    sampler_bytes: usize,
}

impl Setup {
    fn new(model: &Model<'_>, args: &GenArgs) -> Result<Setup> {
        if args.session.stream.is_some() {
            bail!("run and chat map the model; --stream is for `logits`");
        }
        let opts = run_options(model, args.session);
        let sampling = sampler_config(&args.sampling);
        // Session::new aligns its part of the arena to 64 bytes.
        let session_bytes = Plan::new(model.config(), &opts)?.bytes() + 64;
        let sampler_bytes = Sampler::work_bytes(model.config().n_vocab as usize, &sampling);
        Ok(Setup {
            opts,
            sampling,
            session_bytes,
            sampler_bytes,
        })
    }

    /// Bytes of the one arena: the session's part, then the sampler's.
    fn arena_bytes(&self) -> usize {
        self.session_bytes + self.sampler_bytes
    }
}

/// A session (its work spread over a thread pool), a tokenizer and a
/// sampler over one arena.
struct Generator<'m, 'a> {
    session: Session<'m, 'a, HostKernels, Mapped<'m>, ThreadPool>,
    tokenizer: Tokenizer<'m>,
    sampler: Sampler<'a>,
    n_ctx: usize,
    arena_bytes: usize,
    /// The tokenizer's working memory, sized per prompt.
    work: Vec<u8>,
}

impl<'m, 'a> Generator<'m, 'a> {
    fn new(
        model: &Model<'m>,
        image: &'m [u8],
        setup: &Setup,
        arena: &'a mut [u8],
    ) -> Result<Generator<'m, 'a>> {
        let tokenizer =
            Tokenizer::from_model(model).context("the model has no usable tokenizer")?;
        let arena_bytes = arena.len();
        let (s_arena, k_arena) = arena.split_at_mut(setup.session_bytes);
        let session = Session::new(
            model,
            HostKernels::detect(),
            Mapped(image),
            s_arena,
            &setup.opts,
        )?
        .with_parallel(thread_pool(setup.opts.threads)?);
        let n_vocab = model.config().n_vocab as usize;
        let sampler = Sampler::new(setup.sampling, n_vocab, k_arena)?;
        Ok(Generator {
            session,
            tokenizer,
            sampler,
            n_ctx: setup.opts.n_ctx as usize,
            arena_bytes,
            work: Vec::new(),
        })
    }

    /// Token ids of `text` (BOS as the model's metadata says at the start of
    /// a conversation; special-token text parsed only in chat turns).
    fn tokenize(&mut self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let add_special = self.session.n_past() == 0;
        self.work.resize(self.tokenizer.work_bytes(text.len()), 0);
        let mut ids = vec![0u32; text.len() + 2];
        let n = loop {
            match self.tokenizer.tokenize(
                text.as_bytes(),
                add_special,
                parse_special,
                &mut ids,
                &mut self.work,
            ) {
                Ok(n) => break n,
                // The count is known now: make room and tokenize again.
                Err(Error::BufferTooSmall { need, .. }) if need > ids.len() => ids.resize(need, 0),
                Err(e) => return Err(anyhow::Error::new(e).context("cannot tokenize the prompt")),
            }
        };
        ids.truncate(n);
        if ids.is_empty() {
            bail!("the prompt is empty");
        }
        Ok(ids)
    }

    /// Tokens the context still has room for.
    fn room(&self) -> usize {
        self.n_ctx - self.session.n_past()
    }

    /// The error for a prompt of `n` tokens that does not fit.
    fn too_long(&self, n: usize) -> anyhow::Error {
        anyhow::anyhow!(
            "the prompt is {n} tokens; the context has room for {} of {} (use --ctx)",
            self.room(),
            self.n_ctx
        )
    }

    /// Starts a new conversation: empty KV cache, fresh sampler history.
    fn reset(&mut self) {
        self.session.reset();
        self.sampler.reset();
    }

    /// Evaluates `prompt`, then samples up to `max_tokens` tokens, writing
    /// their text to `out` as they come.
    fn turn(&mut self, prompt: &[u32], max_tokens: u32, out: &mut impl Write) -> Result<Turn> {
        let t0 = Instant::now();
        let mut logits = self.session.eval(prompt, None)?.to_vec();
        let prefill = t0.elapsed();
        for &t in prompt {
            self.sampler.accept(t);
        }
        let t1 = Instant::now();
        let mut ids = Vec::new();
        let mut utf8 = Utf8Decoder::new();
        let mut piece = [0u8; 256];
        let mut text = [0u8; 260];
        let mut context_full = None;
        let mut decode_evals = (0, Duration::ZERO);
        let mut book = Bookkeeping::new(logits.len(), self.session.parallel().threads());
        while ids.len() < max_tokens as usize {
            // Before sampling, while the pool's workers still spin from the
            // forward pass.
            book.weigh(self.session.parallel(), &logits);
            let tok = self.sampler.sample(&logits);
            book.take(&logits, tok);
            ids.push(tok);
            if self.tokenizer.is_eog(tok) {
                break;
            }
            self.sampler.accept(tok);
            let n = self.tokenizer.piece(tok, false, &mut piece)?;
            out.write_all(utf8.push(&piece[..n], &mut text)?.as_bytes())?;
            out.flush()?;
            if ids.len() == max_tokens as usize {
                break;
            }
            let t = Instant::now();
            let evaluated = self.session.eval(&[tok], None);
            decode_evals.1 += t.elapsed();
            match evaluated {
                Ok(l) => {
                    decode_evals.0 += 1;
                    logits.copy_from_slice(l);
                }
                Err(Error::ContextFull { n_ctx }) => {
                    context_full = Some(format!("the context is full ({n_ctx} tokens)"));
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        out.write_all(utf8.finish(&mut text)?.as_bytes())?;
        Ok(Turn {
            prompt_tokens: prompt.len(),
            prefill,
            ids,
            decode: t1.elapsed(),
            decode_evals,
            nll: book.nll,
            logits_crc: book.crc.into_inner().unwrap_or_else(PoisonError::into_inner).finish(),
            context_full,
        })
    }

    /// The one-line summary printed on stderr after a turn.
    fn summary(&self, t: &Turn) -> String {
        let rate = |n: usize, d: Duration| {
            if d.is_zero() {
                0.0
            } else {
                n as f64 / d.as_secs_f64()
            }
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "prompt {} tokens, prefill {:.1} tok/s; generated {} tokens, decode {:.1} tok/s; perplexity {:.4}; arena {} bytes; kernels {}; threads {}",
            t.prompt_tokens,
            rate(t.prompt_tokens, t.prefill),
            t.ids.len(),
            rate(t.ids.len(), t.decode),
            t.perplexity(),
            self.arena_bytes,
            self.session.kernels().name(),
            self.session.parallel().threads()
        );
        s
    }
}

/// The perplexity and the logits' CRC-32 of the generated tokens, their
/// work spread over the session's threads: the vocabulary is cut into one
/// run per thread; the first run's softmax weights are summed as they are
/// computed, the others' stored, one more job takes the CRC, then the
/// stored runs are added in order. The values are those of `log_prob` and
/// `Crc32::update_f32s` on one thread, bit for bit.
struct Bookkeeping {
    /// The sum of the first run's weights.
    head: Mutex<WeightSum>,
    /// The weights of the other runs.
    runs: Vec<Mutex<Vec<f64>>>,
    /// Logits per run (the last may have fewer).
    run_len: usize,
    crc: Mutex<Crc32>,
    /// The largest logit and the softmax denominator of the logits last
    /// weighed.
    max: f32,
    sum: WeightSum,
    /// Sum of the generated tokens' negative log probabilities.
    nll: f64,
}

impl Bookkeeping {
    fn new(n_vocab: usize, threads: usize) -> Bookkeeping {
        let run_len = n_vocab.div_ceil(threads.max(1)).max(1);
        let runs = (1..n_vocab.div_ceil(run_len)).map(|_| Mutex::new(vec![0.0; run_len])).collect();
        Bookkeeping {
            head: Mutex::new(WeightSum::new()),
            runs,
            run_len,
            crc: Mutex::new(Crc32::new()),
            max: 0.0,
            sum: WeightSum::new(),
            nll: 0.0,
        }
    }

    /// Feeds `logits` to the CRC and sums their softmax weights.
    fn weigh(&mut self, par: &dyn Parallel, logits: &[f32]) {
        let max = max_logit(logits);
        self.max = max;
        if self.runs.is_empty() {
            // One thread: log_prob's fused loop.
            self.sum = WeightSum::new();
            self.sum.add_softmax(logits, max);
            self.crc.get_mut().unwrap_or_else(PoisonError::into_inner).update_f32s(logits);
            return;
        }
        let run = |i: usize| &logits[(i * self.run_len).min(logits.len())..((i + 1) * self.run_len).min(logits.len())];
        let (head, runs, crc) = (&self.head, &self.runs, &self.crc);
        par.run(runs.len() + 2, &|i| {
            if i == 0 {
                let mut sum = WeightSum::new();
                sum.add_softmax(run(0), max);
                *head.lock().unwrap_or_else(PoisonError::into_inner) = sum;
            } else if let Some(w) = runs.get(i - 1) {
                softmax_weights(run(i), max, &mut w.lock().unwrap_or_else(PoisonError::into_inner));
            } else {
                crc.lock().unwrap_or_else(PoisonError::into_inner).update_f32s(logits);
            }
        });
        let mut sum = *self.head.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (i, w) in self.runs.iter_mut().enumerate() {
            let n = run(i + 1).len();
            sum.add(&w.get_mut().unwrap_or_else(PoisonError::into_inner)[..n]);
        }
        self.sum = sum;
    }

    /// Accounts for token `tok`, drawn from the logits last weighed.
    fn take(&mut self, logits: &[f32], tok: u32) {
        if let Some(&logit) = logits.get(tok as usize) {
            self.nll -= self.sum.log_prob(logit, self.max);
        }
    }
}

/// The sampler settings from the arguments.
fn sampler_config(a: &SamplingArgs) -> SamplerConfig {
    let d = SamplerConfig::default();
    SamplerConfig {
        temperature: a.temp.unwrap_or(d.temperature),
        top_k: a.top_k.unwrap_or(d.top_k),
        top_p: a.top_p.unwrap_or(d.top_p),
        min_p: a.min_p.unwrap_or(d.min_p),
        repeat_penalty: a.repeat_penalty.unwrap_or(d.repeat_penalty),
        repeat_last_n: d.repeat_last_n,
        seed: a.seed.unwrap_or(d.seed),
    }
}

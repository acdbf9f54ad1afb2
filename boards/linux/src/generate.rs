//! `phi-edge run` and `phi-edge chat`: text generation through the core's
//! [`Generator`].
//!
//! One arena of [`GenOptions::arena_bytes`] holds the session, the sampler,
//! the prompt and its token ids; nothing is allocated per token. Generated
//! text goes to stdout as it is produced (incomplete UTF-8 sequences are
//! held back until the next token completes them); everything else goes to
//! stderr.
//!
//! The weights come from the mapped image, or with `--stream` from the file
//! through the arena's two staging buffers ([`FileSource`]'s reader thread
//! fills one while the kernels use the other); the same generic code runs
//! both, and the summary line then reports the bytes read per decoded
//! token and per prefill chunk.
//!
//! [`FileSource`]: crate::model_file::FileSource

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use phi_edge::generate::{turn_bytes, GenOptions, Stats, Step, Stop};
use phi_edge::parallel::ThreadPool;
use phi_edge::sample::SamplerConfig;
use phi_edge::{Error, Generator, Kernels, Mapped, Model, Parallel, Streamed, WeightSource};
use phi_edge_auto::AutoKernels;

use crate::cli::{GenArgs, SamplingArgs};
use crate::commands::{self, open_checked, run_options, thread_pool};
use crate::model_file::{ImageBytes, StreamedImage};

/// The generator the CLI runs: the host's kernels on a thread pool, over a
/// mapped image or a file streamed through staging buffers.
type HostGenerator<'m, 'a, S> = Generator<'m, 'a, AutoKernels, S, ThreadPool>;

/// Longest line `phi-edge chat` takes, in bytes (the arena holds the
/// rendered turn and the tokenizer's working memory for it).
const CHAT_LINE_BYTES: u32 = 16 * 1024;

/// Reads a line of at most [`CHAT_LINE_BYTES`] (and its newline) into
/// `line`: `None` at the end of input, `Some(false)` for a longer line,
/// which is read to its end and dropped.
fn read_line(r: &mut impl BufRead, line: &mut String) -> Result<Option<bool>> {
    let max = u64::from(CHAT_LINE_BYTES) + 2;
    if r.by_ref().take(max).read_line(line)? == 0 {
        return Ok(None);
    }
    if line.ends_with('\n') || (line.len() as u64) < max {
        return Ok(Some(true));
    }
    // Skip the rest of the line, a buffer at a time.
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                break;
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
    Ok(Some(false))
}

/// What runs on a generator, whatever its weight source.
trait Job {
    /// Runs on `g`.
    fn run<S: WeightSource>(self, model: &Model<'_>, g: HostGenerator<'_, '_, S>) -> Result<()>;
}

/// Runs `job` on a generator for `args`, for prompts of `texts` bytes of
/// the caller's text: over the mapped image, or with `--stream` over the
/// file read through the arena's staging buffers.
fn with_generator(args: &GenArgs, texts: usize, job: impl Job) -> Result<()> {
    let mut arena = Vec::new();
    let limits = args.session.limits.limits();
    if args.session.stream.is_some() {
        let (mut file, manifest) = StreamedImage::open(&args.model, &limits)?;
        let model = manifest.verified(&args.model, &mut file, &limits)?;
        let g = generator(&model, Streamed(file), args, texts, &mut arena)?;
        job.run(&model, g)
    } else {
        let bytes = ImageBytes::open(&args.model, &limits)?;
        let model = open_checked(&args.model, &bytes, &limits)?;
        let g = generator(&model, Mapped(bytes.bytes()), args, texts, &mut arena)?;
        job.run(&model, g)
    }
}

/// `phi-edge run`: one prompt, one answer.
pub fn run(
    args: &GenArgs,
    prompt: &str,
    chat: bool,
    system: Option<&str>,
    ids_out: Option<&Path>,
    timings: bool,
) -> Result<()> {
    if system.is_some() && !chat {
        bail!("--system needs --chat");
    }
    let texts = prompt.len() + system.map_or(0, str::len);
    args.session.limits.check_text(texts, "prompt")?;
    let job = Run {
        max_tokens: args.max_tokens,
        prompt,
        chat,
        system,
        ids_out,
        timings,
    };
    with_generator(args, texts, job)
}

/// `phi-edge run`'s turn.
struct Run<'x> {
    max_tokens: u32,
    prompt: &'x str,
    chat: bool,
    system: Option<&'x str>,
    ids_out: Option<&'x Path>,
    timings: bool,
}

impl Job for Run<'_> {
    fn run<S: WeightSource>(
        self,
        _model: &Model<'_>,
        mut g: HostGenerator<'_, '_, S>,
    ) -> Result<()> {
        if self.chat {
            warn_template(&g);
            g.chat(self.system, self.prompt)
        } else {
            g.prompt(self.prompt)
        }
        .map_err(|e| prompt_error(e, "prompt"))?;
        let turn = turn(&mut g, self.max_tokens)?;
        eprintln!("{}", summary(&g, &turn));
        if self.timings {
            eprintln!("{}", turn.timings());
        }
        if let Some(path) = self.ids_out {
            let s = g.stats();
            let json = format!(
                "{{\"prompt\": {:?}, \"generated\": {:?}, \"perplexity\": {}, \"logits_crc32\": {}{}}}\n",
                g.prompt_ids(),
                g.generated_ids(),
                s.perplexity,
                s.logits_crc,
                streamed_json(&s)
            );
            std::fs::write(path, json)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if turn.stop == Stop::ContextFull {
            bail!("the context is full ({} tokens)", g.n_ctx());
        }
        Ok(())
    }
}

/// `phi-edge chat`: an interactive conversation that keeps the KV cache
/// across turns.
pub fn chat(args: &GenArgs, system: Option<&str>) -> Result<()> {
    args.session
        .limits
        .check_text(system.map_or(0, str::len), "system message")?;
    let texts = CHAT_LINE_BYTES as usize + system.map_or(0, str::len);
    with_generator(
        args,
        texts,
        Chat {
            max_tokens: args.max_tokens,
            system,
        },
    )
}

/// `phi-edge chat`'s conversation.
struct Chat<'x> {
    max_tokens: u32,
    system: Option<&'x str>,
}

impl Job for Chat<'_> {
    fn run<S: WeightSource>(
        self,
        model: &Model<'_>,
        mut g: HostGenerator<'_, '_, S>,
    ) -> Result<()> {
        let system = self.system;
        warn_template(&g);
        let name = model.manifest().name;
        eprintln!(
            "chatting with {} (context {} tokens); an empty line or end of input quits",
            if name.is_empty() { "the model" } else { name },
            g.n_ctx()
        );
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            eprint!("> ");
            line.clear();
            let Some(whole) = read_line(&mut stdin.lock(), &mut line)? else {
                break;
            };
            if !whole {
                eprintln!("error: the line is longer than {CHAT_LINE_BYTES} bytes; it is skipped");
                continue;
            }
            let user = line.trim_end_matches(['\n', '\r']);
            if user.is_empty() {
                break;
            }
            let mut set = g.chat(system, user);
            if matches!(set, Err(Error::PromptTooManyTokens { .. })) && g.room() < g.n_ctx() {
                eprintln!(
                    "the context is full ({} tokens); the conversation starts over",
                    g.n_ctx()
                );
                g.reset();
                set = g.chat(system, user);
            }
            if let Err(e) = set {
                eprintln!("error: {:#}", prompt_error(e, "line"));
                continue;
            }
            let turn = turn(&mut g, self.max_tokens)?;
            eprintln!("{}", summary(&g, &turn));
            if turn.stop == Stop::ContextFull {
                eprintln!(
                    "the context is full ({} tokens); the conversation starts over",
                    g.n_ctx()
                );
                g.reset();
            }
        }
        Ok(())
    }
}

/// A generator for `args` over `src` in `arena` (resized to fit), for
/// prompts of `texts` bytes of the caller's text.
fn generator<'m, 'a, S: WeightSource>(
    model: &Model<'m>,
    src: S,
    args: &GenArgs,
    texts: usize,
    arena: &'a mut Vec<u8>,
) -> Result<HostGenerator<'m, 'a, S>> {
    let max_prompt_bytes = u32::try_from(turn_bytes(model, texts))
        .ok()
        .filter(|&n| n as usize <= phi_edge::tokenizer::MAX_TEXT)
        .with_context(|| format!("the prompt ({texts} bytes) is too long"))?;
    let opts = GenOptions {
        run: run_options(model, args.session)?,
        sampling: sampler_config(&args.sampling),
        max_prompt_bytes,
    };
    // 63 bytes more than the plan: room to align the arena to 64 bytes.
    let bytes = opts.arena_bytes(model.config()).saturating_add(63);
    *arena = commands::arena(bytes, opts.run.n_ctx, &args.session.limits)?;
    let (threads, reader) = (opts.run.threads, !src.is_mapped());
    let g = Generator::new(model, AutoKernels::detect(), src, arena, &opts)?;
    Ok(g.with_parallel(thread_pool(threads, reader)?))
}

/// Warns if the model's chat template was not recognised.
fn warn_template<S: WeightSource>(g: &HostGenerator<'_, '_, S>) {
    if let Some(e) = g.template_error() {
        eprintln!("warning: {e}; using ChatML without a system message");
    }
}

/// A prompt's error, with the advice that fits it.
fn prompt_error(e: Error, what: &str) -> anyhow::Error {
    let advice = match e {
        Error::PromptTooManyTokens { .. } => " (use --ctx)",
        _ => "",
    };
    anyhow::anyhow!("{e}{advice}").context(format!("cannot use the {what}"))
}

/// What one turn did, with its timings.
struct Turn {
    stats: Stats,
    stop: Stop,
    prefill: Duration,
    decode: Duration,
    /// The single-token evaluations after the prefill, alone (`decode`
    /// also counts sampling and bookkeeping).
    evals: Duration,
}

impl Turn {
    /// The `--timings` line: the prefill's and the single-token
    /// evaluations' time in nanoseconds, evaluation calls alone (under
    /// `qemu-system -icount shift=0` a guest nanosecond is an instruction).
    fn timings(&self) -> String {
        format!(
            "timings: prefill {} tokens {} ns; decode {} evaluations {} ns",
            self.stats.prompt_tokens,
            self.prefill.as_nanos(),
            self.stats.decode_evals,
            self.evals.as_nanos()
        )
    }
}

/// Evaluates the prompt, then draws up to `max_tokens` tokens, writing
/// their text to stdout as they come, and a newline after them.
fn turn<S: WeightSource>(g: &mut HostGenerator<'_, '_, S>, max_tokens: u32) -> Result<Turn> {
    let t0 = Instant::now();
    g.prefill()?;
    let prefill = t0.elapsed();
    let t1 = Instant::now();
    let mut evals = Duration::ZERO;
    let mut out = std::io::stdout().lock();
    let mut stop = Stop::MaxTokens;
    for _ in 0..max_tokens {
        let t = Instant::now();
        g.advance()?;
        evals += t.elapsed();
        match g.next_token()? {
            Step::Token { text, .. } => out.write_all(text.as_bytes())?,
            Step::Stopped { stop: why, text } => {
                out.write_all(text.as_bytes())?;
                stop = why;
                break;
            }
        }
        out.flush()?;
    }
    if stop == Stop::MaxTokens {
        out.write_all(g.finish()?.as_bytes())?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(Turn {
        stats: g.stats(),
        stop,
        prefill,
        decode: t1.elapsed(),
        evals,
    })
}

/// The one-line summary printed on stderr after a turn.
fn summary<S: WeightSource>(g: &HostGenerator<'_, '_, S>, t: &Turn) -> String {
    let rate = |n: usize, d: Duration| {
        if d.is_zero() {
            0.0
        } else {
            n as f64 / d.as_secs_f64()
        }
    };
    format!(
        "prompt {} tokens, prefill {:.1} tok/s; generated {} tokens, decode {:.1} tok/s; perplexity {:.4}{}; arena {} bytes; kernels {}; threads {}",
        t.stats.prompt_tokens,
        rate(t.stats.prompt_tokens, t.prefill),
        t.stats.generated,
        rate(t.stats.generated, t.decode),
        t.stats.perplexity,
        streamed(&t.stats),
        g.arena_bytes(),
        g.session().kernels().name(),
        g.session().parallel().threads()
    )
}

/// Bytes read from a streamed source per decoded token and per prefill
/// chunk (whole bytes, rounded down), if any were read.
fn per_step(s: &Stats) -> Option<(u64, u64)> {
    if s.prefill_read == 0 && s.decode_read == 0 {
        return None;
    }
    let per = |bytes: u64, n: usize| bytes.checked_div(n as u64).unwrap_or(0);
    Some((
        per(s.decode_read, s.decode_evals),
        per(s.prefill_read, s.prefill_chunks),
    ))
}

/// The summary's `; streamed N bytes/token, M bytes/prefill chunk` field
/// (empty for a mapped image).
fn streamed(s: &Stats) -> String {
    per_step(s).map_or_else(String::new, |(token, chunk)| {
        format!("; streamed {token} bytes/token, {chunk} bytes/prefill chunk")
    })
}

/// The `--ids-out` JSON's fields for a streamed source (empty for a
/// mapped image): the bytes read in the prefill and the decode, and what
/// they were divided by.
fn streamed_json(s: &Stats) -> String {
    match per_step(s) {
        None => String::new(),
        Some(_) => format!(
            ", \"prefill_chunks\": {}, \"prefill_read\": {}, \"decode_evals\": {}, \"decode_read\": {}",
            s.prefill_chunks, s.prefill_read, s.decode_evals, s.decode_read
        ),
    }
}

/// The sampler settings from the arguments.
fn sampler_config(a: &SamplingArgs) -> SamplerConfig {
    let d = SamplerConfig::DEFAULT;
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

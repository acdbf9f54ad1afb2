//! One request on a board: open and check the model, then run the core's
//! [`Generator`] on the request, streaming the text; `phi-edge run` runs
//! the same generator, so a greedy run gives the host's ids.
//!
//! The model comes one of two ways, and [`run`] takes either:
//!
//! - [`open_mapped`]: the whole image in memory (the boot chain loaded it);
//!   the kernels read the weights in place.
//! - [`open_streamed`]: the image on a block device (a [`ReadAt`], such as
//!   `virtio_blk::VirtioBlk`); only the header and the manifest (with the
//!   tokenizer tables) are kept in RAM, every tensor's CRC is checked once
//!   at start-up through the arena, and the run reads the weights through
//!   two staging buffers of [`STAGE_BYTES`] in the arena, the next piece
//!   in flight while the kernels work on the current one. Decode reads
//!   every weight byte once per token, prefill once per chunk of prompt
//!   tokens.
//!
//! The board supplies the model, a kernel set, its cores (a
//! [`Parallel`]: [`smp::Cores`](crate::smp::Cores), or
//! [`phi_edge::Serial`] for the boot core alone), the request, one arena
//! (typically the RAM past the model), a [`Console`] for the text and a
//! [`Clock`] for the rates. The logits, and so the text, do not depend on
//! the number of cores. Every working byte is in the arena, planned by
//! [`GenOptions::arena_bytes`] (session, sampler, the prompt's text and
//! token ids, the tokenizer's working memory; see [`phi_edge::generate`]);
//! nothing is allocated.
//!
//! Output on the console, after the text:
//!
//! ```text
//! prompt_ids: 1 9690 198 ...
//! ids: 60 23 39614 ...
//! logits_crc32: 0x032034dc
//! stats: prompt 37 tokens, prefill 0.98 tok/s; generated 16 tokens, decode 0.75 tok/s (emulated); perplexity 2.7473; arena 13465984 bytes; kernels neon; cores 4
//! ```
//!
//! A streamed image adds the bytes read from the block device per decode
//! step and per prefill chunk (the same figures as `phi-edge run
//! --stream`'s):
//!
//! ```text
//! stats: ...; cores 1; streamed 96577636 bytes/token, 76531921 bytes/prefill chunk
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
//! The perplexity is that of the generated tokens under the raw logits,
//! and `logits_crc32` the CRC-32 of those logits, both as the host's
//! `phi-edge run --ids-out` writes them (see [`phi_edge::generate::Stats`]).

use core::fmt::{self, Write};

use phi_edge::generate::{turn_bytes, GenOptions, Stop};
use phi_edge::image::header::{Header, HEADER_LEN};
use phi_edge::sample::SamplerConfig;
use phi_edge::{
    Error, Generator, Kernels, Mapped, Model, Parallel, ReadAt, RunOptions, Streamed, WeightSource,
};

use crate::{Request, RunError};

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
        /// Bytes of the arena.
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
    /// Bytes of the arena.
    pub arena_bytes: usize,
    /// Perplexity of the generated tokens.
    pub perplexity: f64,
    /// Cores the session's work was spread over.
    pub cores: usize,
    /// CRC-32 of the logits every generated token was drawn from (f32,
    /// little-endian, one vector after another): equal to the host's only
    /// if every logit is bit-identical.
    pub logits_crc: u32,
    /// Chunks the prompt was evaluated in.
    pub prefill_chunks: usize,
    /// Bytes the prefill read from a streamed image (0 if mapped).
    pub prefill_read: u64,
    /// Bytes the decode steps read from a streamed image (0 if mapped).
    pub decode_read: u64,
}

/// Bytes of each of the two staging buffers of a streamed run.
pub const STAGE_BYTES: u32 = 256 << 10;

/// Bytes of the arena the start-up check of a streamed image reads each
/// tensor through, in pieces of at most this size.
const VERIFY_CHUNK: usize = 1 << 20;

/// Where a board's model image is, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageAt {
    /// In memory at this address (loaded by the boot chain).
    Ram(usize),
    /// On a block device.
    Disk,
}

impl fmt::Display for ImageAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageAt::Ram(addr) => write!(f, "at {addr:#x}"),
            ImageAt::Disk => f.write_str("on the block device"),
        }
    }
}

/// A model image opened and checked, with the source [`run`] reads its
/// weights from: [`open_mapped`] or [`open_streamed`].
pub struct Opened<'m, S> {
    model: Model<'m>,
    source: S,
    /// Ticks of the check.
    verify_ticks: u64,
    /// Bytes of each staging buffer (0 for a mapped image).
    stage_bytes: u32,
}

/// Opens the image in memory at `image`, checks its header, manifest and
/// every tensor's CRC-32 and reports it on a `model:` line.
pub fn open_mapped<'m>(
    image: &'m [u8],
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<Opened<'m, Mapped<'m>>, RunError> {
    let addr = image.as_ptr() as usize;
    let model_err = |err| RunError::Model {
        at: ImageAt::Ram(addr),
        err,
    };
    let t0 = clock.ticks();
    let model = Model::open_mapped(image).map_err(model_err)?;
    model
        .verify(&mut Mapped(image), &mut [])
        .map_err(model_err)?;
    let ticks = verified(t0, out, clock);
    let _ = writeln!(
        out,
        "model: {} ({} bytes at {addr:#x}), header, manifest and {} tensor CRCs verified in {:.2} s{}",
        name(&model),
        image.len(),
        model.tensors().count(),
        clock.seconds(ticks),
        emulated(clock)
    );
    Ok(Opened {
        model,
        source: Mapped(image),
        verify_ticks: ticks,
        stage_bytes: 0,
    })
}

/// Opens the image on `disk`, keeping its header and manifest (the
/// tokenizer tables with it) at the start of `ram`, checks every tensor's
/// CRC-32 once, reading the disk through the rest of `ram`, and reports it
/// on a `model:` line. Returns the model, which [`run`] streams in
/// [`STAGE_BYTES`] pieces, and the rest of `ram`, for the arena.
pub fn open_streamed<'m, R: ReadAt>(
    mut disk: R,
    ram: &'m mut [u8],
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<(Opened<'m, Streamed<R>>, &'m mut [u8]), RunError> {
    let model_err = |err| RunError::Model {
        at: ImageAt::Disk,
        err,
    };
    let t0 = clock.ticks();
    let mut head = [0u8; HEADER_LEN];
    disk.read_at(0, &mut head).map_err(model_err)?;
    let header = Header::decode(&head, disk.size()).map_err(model_err)?;
    // The manifest's bytes, rounded up to keep the arena aligned; a
    // manifest larger than `ram` is open_streamed's BufferTooSmall.
    let keep = usize::try_from(header.manifest_len)
        .map_or(usize::MAX, |n| n.next_multiple_of(64))
        .min(ram.len());
    let (manifest, rest) = ram.split_at_mut(keep);
    let model = Model::open_streamed(&mut disk, manifest).map_err(model_err)?;
    let mut source = Streamed(disk);
    let staging = rest.len().min(VERIFY_CHUNK);
    model
        .verify(&mut source, &mut rest[..staging])
        .map_err(model_err)?;
    let ticks = verified(t0, out, clock);
    let _ = writeln!(
        out,
        "model: {} ({} bytes on the block device; header and {}-byte manifest in RAM), header, manifest and {} tensor CRCs verified in {:.2} s{}",
        name(&model),
        header.data_offset + header.data_len,
        header.manifest_len,
        model.tensors().count(),
        clock.seconds(ticks),
        emulated(clock)
    );
    let opened = Opened {
        model,
        source,
        verify_ticks: ticks,
        stage_bytes: STAGE_BYTES,
    };
    Ok((opened, rest))
}

/// Reports the end of a model check begun at `t0`; returns its ticks.
fn verified(t0: u64, out: &mut impl Console, clock: &impl Clock) -> u64 {
    let ticks = clock.ticks() - t0;
    out.progress(Progress::Verified { ticks });
    ticks
}

/// The model's name, or "unnamed".
fn name<'m>(model: &Model<'m>) -> &'m str {
    let name = model.manifest().name;
    if name.is_empty() {
        "unnamed"
    } else {
        name
    }
}

/// Runs `req` on the `opened` model with `kernels` on the cores of `par`,
/// in `arena`, streaming the text and the `prompt_ids:`, `ids:`,
/// `logits_crc32:` and `stats:` lines to `out`.
///
/// Errors are returned, not printed; a context that fills up is reported
/// after the three lines, as [`RunError::ContextFull`].
pub fn run<K: Kernels, S: WeightSource, P: Parallel>(
    opened: Opened<'_, S>,
    kernels: K,
    par: P,
    req: &Request<'_>,
    arena: &mut [u8],
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<Stats, RunError> {
    let Opened {
        model,
        source,
        verify_ticks,
        stage_bytes,
    } = opened;
    let cores = par.threads().max(1);
    let opts = options(&model, req, cores, stage_bytes);
    let mut g = Generator::new(&model, kernels, source, arena, &opts)
        .map_err(run_error("cannot start the session"))?
        .with_parallel(par);
    if let Some(e) = g.template_error().filter(|_| req.chat) {
        let _ = writeln!(out, "warning: {e}; using ChatML without a system message");
    }
    if req.chat {
        g.chat(req.system, req.prompt)
    } else {
        g.prompt(req.prompt)
    }
    .map_err(run_error("cannot tokenize the prompt"))?;
    out.progress(Progress::Prompt {
        tokens: g.prompt_ids().len(),
        arena_bytes: g.arena_bytes(),
    });
    let (stop, prefill_ticks, decode_ticks) = generate(&mut g, req.max_tokens, out, clock)?;
    let s = g.stats();
    let stats = Stats {
        prompt_tokens: s.prompt_tokens,
        generated: s.generated,
        verify_ticks,
        prefill_ticks,
        decode_ticks,
        decode_steps: s.decode_evals,
        arena_bytes: g.arena_bytes(),
        perplexity: s.perplexity,
        cores,
        logits_crc: s.logits_crc,
        prefill_chunks: s.prefill_chunks,
        prefill_read: s.prefill_read,
        decode_read: s.decode_read,
    };
    report(out, &g, &stats, clock, req.icount);
    match stop {
        Stop::ContextFull => Err(RunError::ContextFull { n_ctx: req.n_ctx }),
        _ => Ok(stats),
    }
}

/// The generator's options for `req` on `cores` cores: the request's
/// context and sampling, room for its prompt, and staging buffers of
/// `stage_bytes` (0: a mapped image).
fn options(model: &Model<'_>, req: &Request<'_>, cores: usize, stage_bytes: u32) -> GenOptions {
    let text = req.prompt.len() + req.system.map_or(0, str::len);
    let prompt_bytes = if req.chat {
        turn_bytes(model, text)
    } else {
        text
    };
    GenOptions {
        run: RunOptions {
            threads: u32::try_from(cores).unwrap_or(u32::MAX),
            kv_type: req.cache_type.into(),
            ..RunOptions::streamed(req.n_ctx, stage_bytes)
        },
        sampling: SamplerConfig {
            temperature: req.temperature,
            seed: req.seed,
            ..SamplerConfig::DEFAULT
        },
        // The generator rejects 0 and anything past the tokenizer's limit.
        max_prompt_bytes: u32::try_from(prompt_bytes.max(1)).unwrap_or(u32::MAX),
    }
}

/// The board's error for a core error met while `what`.
fn run_error(what: &'static str) -> impl FnOnce(Error) -> RunError {
    move |err| match err {
        Error::ArenaTooSmall { need, got } => RunError::ArenaTooSmall { need, got },
        Error::EmptyPrompt => RunError::EmptyPrompt,
        Error::PromptTooManyTokens { tokens, n_ctx, .. } => {
            RunError::PromptTooManyTokens { tokens, n_ctx }
        }
        err => RunError::Core { what, err },
    }
}

/// Prefills, then draws up to `max_tokens` tokens, writing their text to
/// `out` as they come; returns why it stopped and the prefill's and the
/// decode loop's ticks.
fn generate<K: Kernels, S: WeightSource, P: Parallel>(
    g: &mut Generator<'_, '_, K, S, P>,
    max_tokens: u32,
    out: &mut impl Console,
    clock: &impl Clock,
) -> Result<(Stop, u64, u64), RunError> {
    let t0 = clock.ticks();
    g.prefill().map_err(run_error("prefill failed"))?;
    let prefill_ticks = clock.ticks() - t0;
    out.progress(Progress::Prefilled);
    let t1 = clock.ticks();
    let stop = g
        .generate(max_tokens, |text| {
            let _ = out.write_str(text);
            out.flush();
        })
        .map_err(run_error("decode failed"))?;
    Ok((stop, prefill_ticks, clock.ticks() - t1))
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
fn report<K: Kernels, S: WeightSource, P: Parallel>(
    out: &mut impl Console,
    g: &Generator<'_, '_, K, S, P>,
    s: &Stats,
    clock: &impl Clock,
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
    let _ = writeln!(out, "prompt_ids:{}", Ids(g.prompt_ids()));
    let _ = writeln!(out, "ids:{}", Ids(g.generated_ids()));
    let _ = writeln!(out, "logits_crc32: {:#010x}", s.logits_crc);
    let _ = write!(
        out,
        "stats: prompt {} tokens, prefill {:.2} tok/s; generated {} tokens, decode {:.2} tok/s{}; perplexity {:.4}; arena {} bytes; kernels {}; cores {}",
        s.prompt_tokens,
        rate(s.prompt_tokens, s.prefill_ticks),
        s.generated,
        rate(s.generated, s.decode_ticks),
        emulated(clock),
        s.perplexity,
        s.arena_bytes,
        g.session().kernels().name(),
        s.cores
    );
    if s.prefill_read != 0 || s.decode_read != 0 {
        let per = |bytes: u64, n: usize| bytes.checked_div(n as u64).unwrap_or(0);
        let _ = write!(
            out,
            "; streamed {} bytes/token, {} bytes/prefill chunk",
            per(s.decode_read, s.decode_steps),
            per(s.prefill_read, s.prefill_chunks)
        );
    }
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

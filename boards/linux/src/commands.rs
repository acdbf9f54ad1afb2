//! The subcommands.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use phi_edge::image::tensor::Role;
use phi_edge::kernels::{AttnArgs, AttnQ8Args, F16Bits, MatOut, MatmulArgs};
use phi_edge::parallel::{self, ThreadPool, DEFAULT_SPIN};
use phi_edge::{
    ActFormat, DType, Kernels, KvType, Limits, Mapped, Model, Parallel, Plan, RunOptions, Session,
    Streamed, WeightSource,
};
use phi_edge_auto::AutoKernels;

use crate::cli::{Cli, Command, LimitArgs, SessionArgs};
use crate::generate;
use crate::model_file::{self, ImageBytes, StreamedImage};
use crate::npy;
use crate::progress::Progress;

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { model, session } => inspect(&model, session),
        Command::Pack { input, out, ftype } => pack(&input, &out, ftype),
        Command::Logits {
            model,
            tokens,
            out,
            session,
        } => logits(&model, &tokens, &out, session),
        Command::Run {
            gen,
            prompt,
            chat,
            system,
            ids_out,
            timings,
        } => generate::run(
            &gen,
            &prompt,
            chat,
            system.as_deref(),
            ids_out.as_deref(),
            timings,
        ),
        Command::Chat { gen, system } => generate::chat(&gen, system.as_deref()),
        Command::Tokenize(args) => crate::tokenize::run(&args),
        Command::Perplexity(args) => crate::perplexity::run(&args),
        Command::Bench { dim, ms, threads } => bench(dim, ms, threads),
    }
}

/// Run options from the arguments and the model. With `--stream`, the
/// staging buffers must hold the longest weight row the session reads (a
/// clear error otherwise, rather than the plan's).
pub fn run_options(model: &Model<'_>, args: SessionArgs) -> Result<RunOptions> {
    let n_ctx = args.ctx.unwrap_or(RunOptions::default_ctx(model.config()));
    let mut o = match args.stream {
        Some(kib) => {
            let min = Plan::min_stage_bytes(model.config());
            let bytes = u64::from(kib) * 1024;
            if bytes < min as u64 {
                bail!("--stream {kib}: a staging buffer must hold one weight row, at least {} KiB for this model", min.div_ceil(1024));
            }
            let bytes = u32::try_from(bytes)
                .map_err(|_| anyhow::anyhow!("--stream {kib}: at most 4 GiB per staging buffer"))?;
            RunOptions::streamed(n_ctx, bytes)
        }
        None => RunOptions::mapped(n_ctx),
    };
    o.prefill_chunk = args.chunk;
    o.threads = args.threads();
    o.kv_type = args.cache_type;
    Ok(o)
}

/// A pool of `threads` threads (the caller and `threads - 1` workers).
///
/// With `reader` (a streamed source's reader thread runs beside the pool)
/// and no core to spare for it, the workers park as soon as a run ends
/// instead of spinning for the next: a spinning worker would hold the core
/// the reader needs to copy the next chunk, and on a streamed source the
/// next run waits for that copy anyway.
pub fn thread_pool(threads: u32, reader: bool) -> Result<ThreadPool> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spin = if reader && threads as usize >= cpus {
        Duration::ZERO
    } else {
        DEFAULT_SPIN
    };
    ThreadPool::with_spin(threads as usize, spin)
        .with_context(|| format!("cannot start {threads} threads"))
}

/// Opens and fully checks an image: header, manifest (within `limits`) and
/// every tensor CRC.
pub fn open_checked<'a>(path: &Path, bytes: &'a ImageBytes, limits: &Limits) -> Result<Model<'a>> {
    let model = bytes
        .model(limits)
        .with_context(|| format!("cannot open {}", path.display()))?;
    model
        .verify(&mut Mapped(bytes.bytes()), &mut [])
        .with_context(|| format!("{} is corrupted", path.display()))?;
    Ok(model)
}

/// `n` zero bytes, allocated fallibly (a failed allocation is `None`, not
/// an abort) and lazily zeroed by the allocator (`calloc`), so an arena's
/// untouched pages cost nothing.
pub fn zeroed(n: usize) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(n).ok()?;
    // SAFETY: `layout` has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` was allocated by the global allocator with `layout`
    // (size `n`, alignment 1, as `Vec<u8>` with capacity `n` allocates),
    // and its `n` bytes are initialized (zero).
    Some(unsafe { Vec::from_raw_parts(p, n, n) })
}

/// An arena of `bytes` for a session of `n_ctx` tokens, within `limits`:
/// over the limit, or more than the machine can allocate, is an error that
/// says so, never an abort.
pub fn arena(bytes: usize, n_ctx: u32, limits: &LimitArgs) -> Result<Vec<u8>> {
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if let Err(e) = limits.limits().check_arena(bytes) {
        bail!("this model at --ctx {n_ctx} needs a {gib:.2} GiB arena: {e} (lower --ctx or raise --max-arena)");
    }
    zeroed(bytes).with_context(|| {
        format!("this model at --ctx {n_ctx} needs a {gib:.2} GiB arena, more than this machine can allocate (lower --ctx)")
    })
}

fn inspect(path: &Path, args: SessionArgs) -> Result<()> {
    let bytes = ImageBytes::open(path, &args.limits.limits())?;
    let model = open_checked(path, &bytes, &args.limits.limits())?;
    let h = model.header();
    let c = model.config();
    let m = model.manifest();
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "image       {} (format v{}, {} bytes)",
        path.display(),
        h.version,
        bytes.bytes().len()
    )?;
    writeln!(
        o,
        "name        {}",
        if m.name.is_empty() { "-" } else { m.name }
    )?;
    writeln!(
        o,
        "manifest    {} bytes, crc32 {:08x}",
        h.manifest_len, h.manifest_crc
    )?;
    writeln!(
        o,
        "data        {} bytes at offset {}, crc32 {:08x}",
        h.data_len, h.data_offset, h.data_crc
    )?;
    writeln!(o, "arch        {}", c.arch.gguf_name())?;
    writeln!(o, "vocab       {}", c.n_vocab)?;
    writeln!(o, "layers      {}", c.n_layer)?;
    writeln!(o, "width       {} (ffn {})", c.n_embd, c.n_ff)?;
    writeln!(
        o,
        "heads       {} query, {} key/value, {} wide",
        c.n_head, c.n_head_kv, c.head_dim
    )?;
    writeln!(
        o,
        "rope        {} dims, theta {}, freq scale {}, attn factor {}",
        c.n_rot, c.rope_theta, c.rope_freq_scale, c.rope_attn_factor
    )?;
    writeln!(
        o,
        "longrope    {}",
        if c.has_rope_factors {
            format!("yes, original context {}", c.n_ctx_orig)
        } else {
            "no".into()
        }
    )?;
    writeln!(o, "context     {} trained", c.n_ctx_train)?;
    writeln!(o, "rms eps     {:e}", c.rms_eps)?;
    writeln!(
        o,
        "output      {}",
        if c.tied_output {
            "tied to token_embd"
        } else {
            "own tensor"
        }
    )?;
    writeln!(
        o,
        "tokenizer   {:?} ({})",
        m.tokenizer.kind,
        if m.tokenizer.pre.is_empty() {
            "-"
        } else {
            m.tokenizer.pre
        }
    )?;
    let mut by_type = [(0usize, 0u64); DType::ALL.len()];
    for t in model.tensors() {
        by_type[t.dtype as usize].0 += 1;
        by_type[t.dtype as usize].1 += t.len;
    }
    let summary: Vec<String> = DType::ALL
        .iter()
        .zip(by_type)
        .filter(|(_, (n, _))| *n > 0)
        .map(|(t, (n, b))| format!("{n} {} ({:.1} MB)", t.name(), b as f64 / 1e6))
        .collect();
    writeln!(
        o,
        "tensors     {} : {}",
        model.tensors().count(),
        summary.join(", ")
    )?;
    for role in [Role::TokenEmbd, Role::Output] {
        if let Ok(t) = model.tensor(role, 0) {
            writeln!(
                o,
                "  {:<24}{} [{} x {}]",
                role.gguf_name(),
                t.dtype.name(),
                t.cols,
                t.rows
            )?;
        }
    }
    let opts = run_options(&model, args)?;
    let plan = Plan::new(c, &opts)?;
    if opts.stage_bytes > 0 {
        writeln!(
            o,
            "staging     2 x {} bytes (weights streamed from the file in chunks of whole rows, one buffer read while the other is used)",
            plan.stage[0].len
        )?;
    }
    writeln!(
        o,
        "arena       {} bytes for context {}, prefill chunk {}, {} thread{} ({:.1} MB KV cache)",
        plan.bytes(),
        opts.n_ctx,
        opts.prefill_chunk,
        opts.threads,
        if opts.threads == 1 { "" } else { "s" },
        (plan.kv_k.len + plan.kv_v.len) as f64 / 1e6
    )?;
    let kv = |t| Plan::kv_bytes(c, opts.n_ctx, t);
    writeln!(
        o,
        "kv cache    {} ({} bytes) for context {}: f16 {} bytes, q8_0 {} bytes{}",
        opts.kv_type.name(),
        plan.kv_k.len + plan.kv_v.len,
        opts.n_ctx,
        kv(KvType::F16),
        kv(KvType::Q8_0),
        if c.head_dim % 32 == 0 {
            ""
        } else {
            " (q8_0 needs a head width that is a multiple of 32)"
        }
    )?;
    writeln!(o, "kernels     {}", AutoKernels::detect().name())?;
    Ok(())
}

fn pack(input: &Path, out: &Path, ftype: Option<phi_edge::quant::FileType>) -> Result<()> {
    let map = model_file::map(input)?;
    let gguf = phi_edge::gguf::Gguf::parse(&map)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let tmp = out.with_extension("phi.partial");
    let mut w = BufWriter::new(
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    let mut bar = Progress::new(if ftype.is_some() {
        "quantizing"
    } else {
        "packing"
    });
    let opts = phi_edge::pack::PackOptions {
        quantize: ftype,
        threads: 0,
    };
    let report = phi_edge::pack::pack_with(&gguf, &mut w, &opts, &mut |done, total| {
        bar.update(done, total)
    })
    .with_context(|| format!("cannot pack {}", input.display()));
    let report = match report.and_then(|r| w.flush().map(|_| r).map_err(Into::into)) {
        Ok(l) => l,
        Err(e) => {
            drop(w);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    drop(w);
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(t) = ftype {
        let mut counts: Vec<(&str, &str, usize)> = Vec::new();
        for (_, from, to) in &report.converted {
            match counts.iter_mut().find(|c| c.0 == *from && c.1 == to.name()) {
                Some(c) => c.2 += 1,
                None => counts.push((from, to.name(), 1)),
            }
        }
        let list: Vec<String> = counts
            .iter()
            .map(|(from, to, n)| format!("{n} {from} -> {to}"))
            .collect();
        eprintln!(
            "{}: converted {} tensors ({})",
            t.name(),
            report.converted.len(),
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    eprintln!("wrote {} ({} bytes)", out.display(), report.len);
    Ok(())
}

fn logits(path: &Path, tokens: &[u32], out: &Path, args: SessionArgs) -> Result<()> {
    let mut all = Vec::new();
    let n_vocab = if args.stream.is_some() {
        let (mut file, image) = StreamedImage::open(path, &args.limits.limits())?;
        let model = image.verified(path, &mut file, &args.limits.limits())?;
        eval_all(&model, Streamed(file), tokens, args, &mut all)?
    } else {
        let bytes = ImageBytes::open(path, &args.limits.limits())?;
        let model = open_checked(path, &bytes, &args.limits.limits())?;
        eval_all(&model, Mapped(bytes.bytes()), tokens, args, &mut all)?
    };
    let mut w = BufWriter::new(
        File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    npy::write_f32(&mut w, tokens.len(), n_vocab, &all)?;
    w.flush()?;
    Ok(())
}

/// Evaluates `tokens` from an empty context on `model` over `src`,
/// leaving the logits after each token in `all` (`tokens.len()` rows of
/// `n_vocab`); returns `n_vocab`.
fn eval_all<S: WeightSource>(
    model: &Model<'_>,
    src: S,
    tokens: &[u32],
    args: SessionArgs,
    all: &mut Vec<f32>,
) -> Result<usize> {
    let opts = run_options(model, args)?;
    if tokens.len() > opts.n_ctx as usize {
        bail!(
            "{} tokens do not fit the context of {} (use --ctx)",
            tokens.len(),
            opts.n_ctx
        );
    }
    let n_vocab = model.config().n_vocab as usize;
    all.resize(tokens.len() * n_vocab, 0.0);
    let plan = Plan::new(model.config(), &opts)?;
    let mut arena = arena(plan.bytes() + 64, opts.n_ctx, &args.limits)?;
    let pool = thread_pool(opts.threads, !src.is_mapped())?;
    let s = Session::new(model, AutoKernels::detect(), src, &mut arena, &opts)?;
    s.with_parallel(pool).eval(tokens, Some(all))?;
    Ok(n_vocab)
}

fn bench(dim: usize, ms: u64, threads: u32) -> Result<()> {
    let k = AutoKernels::detect();
    let mut o = std::io::stdout().lock();
    let lines = if threads == 1 {
        writeln!(
            o,
            "kernels {} (one thread), matmul {dim} x {dim}, one token",
            k.name()
        )?;
        phi_edge_kernel_suite::bench(&k, dim, ms)
    } else {
        writeln!(o, "kernels {}, matmul {dim} x {dim} rows split over {threads} threads, one token; the other kernels on one thread", k.name())?;
        o.flush()?;
        let pool = thread_pool(threads, false)?;
        phi_edge_kernel_suite::bench(&RowsSplit { k, par: &pool }, dim, ms)
    };
    for line in lines {
        writeln!(o, "{line}")?;
    }
    Ok(())
}

/// A kernel set whose matmuls split their rows over `par`, as a session's
/// do ([`parallel::matmul`]); every other kernel is `k`'s.
struct RowsSplit<'p, K> {
    k: K,
    par: &'p ThreadPool,
}

impl<K: Kernels> Kernels for RowsSplit<'_, K> {
    fn name(&self) -> &'static str {
        self.k.name()
    }

    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        self.k.quantize_act(fmt, x, out)
    }

    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        parallel::matmul(self.par as &dyn Parallel, &self.k, m, out)
    }

    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        self.k.dequantize_row(dtype, src, out)
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        self.k.rms_norm(x, w, eps, out)
    }

    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        self.k.rope(x, cs, neox)
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        self.k.swiglu(gate, up, out)
    }

    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        self.k.f32_to_f16(src, dst)
    }

    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        self.k.attention(a, scratch, out)
    }

    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        self.k.attention_q8_0(a, out)
    }
}

//! `phi-edge perplexity`: a model's perplexity on a text file and, with
//! `--base`, its KL divergence from a second model, computed as llama.cpp's
//! `llama-perplexity` (and `--kl-divergence`) computes them; the arithmetic
//! is [`phi_edge::perplexity`]'s.
//!
//! The text is tokenized whole (BOS first where the vocabulary's add_bos
//! says so) and cut into chunks of `--ctx` tokens. Each chunk is evaluated
//! from an empty context with its first token replaced by BOS (again only
//! with add_bos), and its second half is scored: the logits at position j,
//! for ctx/2 <= j <= ctx - 2, score token j + 1 (the last token is not
//! evaluated, its logits score nothing). The session's prefill in chunks
//! of `--chunk` tokens gives the bits of llama.cpp's decode path (one
//! token per batch), so the figures are `llama-perplexity`'s on that path.
//!
//! With `--base`, both models are in memory and evaluate the same chunk
//! side by side, a prefill chunk at a time: the base's logits become
//! llama.cpp's 16-bit log-probability rows (what its logits file holds),
//! then the model's are compared with them.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use phi_edge::parallel::ThreadPool;
use phi_edge::perplexity::{
    base_log_probs, log_prob_row_len, median, percentile, Estimate, KlDivergence, KlSummary,
    Perplexity,
};
use phi_edge::{Kernels, Limits, Mapped, Model, Plan, Session, Streamed, Tokenizer, WeightSource};
use phi_edge_auto::AutoKernels;

use crate::cli::{PerplexityArgs, SessionArgs};
use crate::commands::{arena, open_checked, run_options, thread_pool};
use crate::model_file::{FileSource, ImageBytes, StreamedImage};

/// `--ctx` when none is given (llama-perplexity's default).
const DEFAULT_CTX: u32 = 512;

/// The shortest chunk `--ctx` may ask for.
const MIN_CTX: u32 = 8;

/// Fewest compared tokens for the final KL statistics (llama.cpp prints
/// none below this).
const MIN_KL_TOKENS: u64 = 100;

/// What a perplexity request cannot do.
#[derive(Debug, Clone, PartialEq)]
pub enum PerplexityError {
    /// `--ctx` is odd, too small, or more than a model was trained on.
    BadContext {
        /// The chunk length asked for.
        n_ctx: u32,
        /// The model's trained context.
        trained: u32,
    },
    /// The text holds fewer than two chunks of tokens (llama-perplexity's
    /// least).
    TextTooShort {
        /// Tokens of the whole text.
        tokens: usize,
        /// The chunk length.
        n_ctx: u32,
    },
    /// The vocabulary appends EOS to every text, which would end each
    /// chunk's text (llama-perplexity refuses such models too).
    AddsEos,
    /// `--base` has another vocabulary than `--model`.
    VocabMismatch {
        /// `--model`'s vocabulary size.
        model: u32,
        /// `--base`'s.
        base: u32,
        /// The first token id whose text differs, if the sizes agree.
        token: Option<u32>,
    },
    /// The scored tokens' log-likelihoods have no positive variance, so
    /// there is no uncertainty to give.
    NoVariance,
}

impl fmt::Display for PerplexityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PerplexityError::BadContext { n_ctx, trained } => write!(
                f,
                "--ctx {n_ctx}: a chunk must be an even number of tokens from {MIN_CTX} to the model's trained context ({trained})"
            ),
            PerplexityError::TextTooShort { tokens, n_ctx } => write!(
                f,
                "the text is {tokens} tokens; at --ctx {n_ctx} it needs at least {} (two chunks), so lower --ctx or give a longer text",
                2 * u64::from(n_ctx)
            ),
            PerplexityError::AddsEos => f.write_str(
                "the vocabulary appends EOS to every text (add_eos), which perplexity cannot score",
            ),
            PerplexityError::VocabMismatch { model, base, token } => match token {
                Some(id) => write!(
                    f,
                    "--base has another vocabulary than --model: token {id} differs"
                ),
                None => write!(
                    f,
                    "--base has another vocabulary than --model: {base} tokens against {model}"
                ),
            },
            PerplexityError::NoVariance => f.write_str(
                "the scored tokens' log-probabilities have no positive variance: no estimate",
            ),
        }
    }
}

impl std::error::Error for PerplexityError {}

/// `phi-edge perplexity`.
pub fn run(args: &PerplexityArgs) -> Result<()> {
    let limits = args.session.limits.limits();
    let text = read_text(&args.file, args)?;
    let stream = args.session.stream.is_some();
    let mut image = Image::open(&args.model, stream, &limits)?;
    let mut base_image = match &args.base {
        Some(p) => Some(Image::open(p, stream, &limits)?),
        None => None,
    };
    let (model, src) = image.checked(&args.model, &limits)?;
    let base = match (&mut base_image, &args.base) {
        (Some(img), Some(p)) => Some(img.checked(p, &limits)?),
        _ => None,
    };

    let tok = Tokenizer::from_model(&model)
        .with_context(|| format!("cannot read the tokenizer of {}", args.model.display()))?;
    if let Some((bm, _)) = &base {
        same_vocabulary(&model, &tok, bm)?;
    }
    let special = *tok.special();
    if special.add_eos {
        return Err(PerplexityError::AddsEos.into());
    }
    let n_ctx = args.session.ctx.unwrap_or(DEFAULT_CTX);
    for m in std::iter::once(&model).chain(base.as_ref().map(|(m, _)| m)) {
        let trained = m.config().n_ctx_train;
        if n_ctx % 2 != 0 || n_ctx < MIN_CTX || n_ctx > trained {
            return Err(PerplexityError::BadContext { n_ctx, trained }.into());
        }
    }
    let tokens = crate::tokenize::ids(&tok, text.as_bytes(), true, false)?;
    let n = n_ctx as usize;
    if tokens.len() < 2 * n {
        return Err(PerplexityError::TextTooShort {
            tokens: tokens.len(),
            n_ctx,
        }
        .into());
    }
    let max_chunks = tokens.len() / n;
    let n_chunk = args
        .chunks
        .map_or(max_chunks, |k| (k as usize).min(max_chunks));

    let session_args = SessionArgs {
        ctx: Some(n_ctx),
        ..args.session
    };
    let threads = session_args.threads();
    let pool = thread_pool(threads, stream)?;
    let mut arenas = (Vec::new(), Vec::new());
    let mut q = Evaluator::new(&model, src, session_args, &mut arenas.0, &pool)?;
    let mut b = match base {
        Some((bm, bsrc)) => Some(Evaluator::new(
            &bm,
            bsrc,
            session_args,
            &mut arenas.1,
            &pool,
        )?),
        None => None,
    };
    let first = n / 2;
    eprintln!(
        "perplexity: {} is {} tokens: {n_chunk} chunks of {n_ctx}, scoring the last {} of each{}; kernels {}, {threads} thread{}",
        args.file.display(),
        tokens.len(),
        n - 1 - first,
        if special.add_bos { ", BOS first" } else { "" },
        q.session.kernels().name(),
        if threads == 1 { "" } else { "s" }
    );

    let mut out = std::io::stdout().lock();
    let mut ppl = Perplexity::new();
    let mut chunk_ppl = Vec::with_capacity(n_chunk);
    let mut kl = b
        .as_ref()
        .map(|_| Comparison::new(n_chunk * (n - 1 - first)));
    if kl.is_some() {
        writeln!(out, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")?;
    }
    let nv = model.config().n_vocab as usize;
    let row_len = log_prob_row_len(nv);
    let mut base_rows = vec![0u16; if b.is_some() { q.step * row_len } else { 0 }];
    let mut chunk = vec![0u32; n];
    for i in 0..n_chunk {
        let orig = &tokens[i * n..(i + 1) * n];
        chunk.copy_from_slice(orig);
        if special.add_bos {
            chunk[0] = special.bos;
        }
        q.start(&chunk[..first])?;
        if let Some(b) = b.as_mut() {
            b.start(&chunk[..first])?;
        }
        let mut pos = first;
        while pos < n - 1 {
            let end = (pos + q.step).min(n - 1);
            if let Some(b) = b.as_mut() {
                let rows = b.logits(&chunk[pos..end])?;
                for (row, dst) in rows
                    .chunks_exact(nv)
                    .zip(base_rows.chunks_exact_mut(row_len))
                {
                    base_log_probs(row, dst)?;
                }
            }
            let rows = q.logits(&chunk[pos..end])?;
            for (j, row) in rows.chunks_exact(nv).enumerate() {
                let next = orig[pos + j + 1];
                ppl.add(row, next)?;
                if let Some(kl) = kl.as_mut() {
                    kl.add(row, &base_rows[j * row_len..(j + 1) * row_len], next)?;
                }
            }
            pos = end;
        }
        chunk_ppl.push(ppl.value());
        match &kl {
            Some(kl) => writeln!(out, "{}", chunk_row(i + 1, &kl.kl.summary()))?,
            None => write!(out, "[{}]{:.4},", i + 1, ppl.value())?,
        }
        out.flush()?;
    }
    writeln!(out)?;
    let estimate = ppl.estimate().ok_or(PerplexityError::NoVariance)?;
    let mut stats = None;
    if let Some(kl) = kl.as_mut() {
        kl.sort();
        if kl.kl.count() >= MIN_KL_TOKENS {
            write_statistics(&mut out, kl)?;
        } else {
            eprintln!(
                "perplexity: {} tokens compared, fewer than {MIN_KL_TOKENS}: no KL statistics (as llama-perplexity); use more chunks or a longer --ctx",
                kl.kl.count()
            );
        }
        stats = Some(kl.figures());
    }
    writeln!(
        out,
        "Final estimate: PPL = {:.4} +/- {:.5}",
        estimate.value, estimate.uncertainty
    )?;
    out.flush()?;
    if let Some(path) = &args.json {
        let json = Json {
            args,
            n_ctx,
            n_chunk,
            n_tokens: tokens.len(),
            add_bos: special.add_bos,
            estimate,
            chunk_ppl: &chunk_ppl,
            kl: stats.as_deref(),
        };
        let mut w = BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        json.write(&mut w)
            .and_then(|()| w.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The text of `path` within `--max-text`, one final newline dropped.
fn read_text(path: &Path, args: &PerplexityArgs) -> Result<String> {
    let limits = &args.session.limits;
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    limits.check_text(usize::try_from(len).unwrap_or(usize::MAX), "text")?;
    let mut text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Fails unless `base` has `model`'s vocabulary: as many logits and the
/// same text for every token.
fn same_vocabulary(model: &Model<'_>, tok: &Tokenizer<'_>, base: &Model<'_>) -> Result<()> {
    let (nm, nb) = (model.config().n_vocab, base.config().n_vocab);
    let bt = Tokenizer::from_model(base).context("cannot read the tokenizer of --base")?;
    if nm != nb || tok.n_vocab() != bt.n_vocab() {
        return Err(PerplexityError::VocabMismatch {
            model: nm,
            base: nb,
            token: None,
        }
        .into());
    }
    let differs = (0..tok.n_vocab()).find(|&id| tok.token_text(id).ok() != bt.token_text(id).ok());
    if let Some(id) = differs {
        return Err(PerplexityError::VocabMismatch {
            model: nm,
            base: nb,
            token: Some(id),
        }
        .into());
    }
    Ok(())
}

/// A model file opened for a session: mapped, or its manifest read for
/// streaming the tensors from the file.
enum Image {
    Mapped(ImageBytes),
    Streamed(StreamedImage, Option<FileSource>),
}

impl Image {
    fn open(path: &Path, stream: bool, limits: &Limits) -> Result<Image> {
        Ok(if stream {
            let (file, image) = StreamedImage::open(path, limits)?;
            Image::Streamed(image, Some(file))
        } else {
            Image::Mapped(ImageBytes::open(path, limits)?)
        })
    }

    /// The model, every tensor checked, and its weight source (the file
    /// moves into a streamed source: call once).
    fn checked<'i>(&'i mut self, path: &Path, limits: &Limits) -> Result<(Model<'i>, Source<'i>)> {
        match self {
            Image::Mapped(bytes) => {
                let bytes: &'i ImageBytes = bytes;
                Ok((
                    open_checked(path, bytes, limits)?,
                    Source::Mapped(Mapped(bytes.bytes())),
                ))
            }
            Image::Streamed(image, file) => {
                let mut file = file.take().context("the model file is in use")?;
                let image: &'i StreamedImage = image;
                let model = image.verified(path, &mut file, limits)?;
                Ok((model, Source::Streamed(Streamed(file))))
            }
        }
    }
}

/// The weight source of either kind of [`Image`], so that `--model` and
/// `--base` share one code path.
enum Source<'a> {
    Mapped(Mapped<'a>),
    Streamed(Streamed<FileSource>),
}

impl WeightSource for Source<'_> {
    fn is_mapped(&self) -> bool {
        matches!(self, Source::Mapped(_))
    }

    fn bytes<'s>(
        &'s mut self,
        offset: u64,
        len: usize,
        staging: &'s mut [u8],
    ) -> phi_edge::Result<&'s [u8]> {
        match self {
            Source::Mapped(m) => m.bytes(offset, len, staging),
            Source::Streamed(s) => s.bytes(offset, len, staging),
        }
    }

    fn fetch_during(
        &mut self,
        offset: u64,
        staging: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> phi_edge::Result<()> {
        match self {
            Source::Mapped(m) => m.fetch_during(offset, staging, work),
            Source::Streamed(s) => s.fetch_during(offset, staging, work),
        }
    }
}

/// One model's session and the buffer its logits rows land in.
struct Evaluator<'m, 'a, 'p> {
    session: Session<'m, 'a, AutoKernels, Source<'m>, &'p ThreadPool>,
    /// Tokens per evaluation call: the prefill chunk.
    step: usize,
    rows: Vec<f32>,
}

impl<'m, 'a, 'p> Evaluator<'m, 'a, 'p> {
    fn new(
        model: &Model<'m>,
        src: Source<'m>,
        args: SessionArgs,
        arena_buf: &'a mut Vec<u8>,
        pool: &'p ThreadPool,
    ) -> Result<Self> {
        let opts = run_options(model, args)?;
        let plan = Plan::new(model.config(), &opts)?;
        *arena_buf = arena(plan.bytes().saturating_add(63), opts.n_ctx, &args.limits)?;
        let session =
            Session::new(model, AutoKernels::detect(), src, arena_buf, &opts)?.with_parallel(pool);
        let step = session.prefill_chunk();
        let nv = model.config().n_vocab as usize;
        Ok(Evaluator {
            session,
            step,
            rows: vec![0.0; step * nv],
        })
    }

    /// Starts a chunk from an empty context with its first tokens, whose
    /// logits score nothing.
    fn start(&mut self, tokens: &[u32]) -> Result<()> {
        self.session.reset();
        self.session.eval(tokens, None)?;
        Ok(())
    }

    /// Evaluates at most [`step`](Self::step) more tokens; the logits
    /// after each, row by row.
    fn logits(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.session.eval(tokens, Some(&mut self.rows))?;
        let nv = self.session.config().n_vocab as usize;
        Ok(&self.rows[..tokens.len() * nv])
    }
}

/// The KL comparison and the per-token values its percentiles need.
struct Comparison {
    kl: KlDivergence,
    kld: Vec<f32>,
    p_diff: Vec<f32>,
}

impl Comparison {
    fn new(tokens: usize) -> Comparison {
        Comparison {
            kl: KlDivergence::new(),
            kld: Vec::with_capacity(tokens),
            p_diff: Vec::with_capacity(tokens),
        }
    }

    fn add(&mut self, logits: &[f32], base: &[u16], token: u32) -> Result<()> {
        let t = self.kl.add(logits, base, token)?;
        self.kld.push(t.kld);
        self.p_diff.push(t.p_diff);
        Ok(())
    }

    /// Sorts the per-token values, for the percentiles.
    fn sort(&mut self) {
        self.kld.sort_unstable_by(f32::total_cmp);
        self.p_diff.sort_unstable_by(f32::total_cmp);
    }

    /// The value at `fraction` of the sorted `values` (`None`: the median).
    fn at(values: &[f32], fraction: Option<f32>) -> f64 {
        let v = match fraction {
            None => median(values),
            Some(f) => percentile(values, f),
        };
        v.map_or(f64::NAN, f64::from)
    }

    /// Every statistic, named as in the JSON output (sorted values).
    fn figures(&self) -> Vec<(String, f64)> {
        let s = self.kl.summary();
        let mut f: Vec<(String, f64)> = vec![
            ("count".into(), s.count as f64),
            ("ppl".into(), s.ppl.value),
            ("ppl_unc".into(), s.ppl.uncertainty),
            ("ppl_base".into(), s.ppl_base.value),
            ("ppl_base_unc".into(), s.ppl_base.uncertainty),
            ("log_ppl_cor".into(), s.log_ppl_cor),
            ("log_ppl_ratio".into(), s.log_ppl_ratio.value),
            ("log_ppl_ratio_unc".into(), s.log_ppl_ratio.uncertainty),
            ("ppl_ratio".into(), s.ppl_ratio.value),
            ("ppl_ratio_unc".into(), s.ppl_ratio.uncertainty),
            ("ppl_diff".into(), s.ppl_diff.value),
            ("ppl_diff_unc".into(), s.ppl_diff.uncertainty),
            ("kld".into(), s.kld.value),
            ("kld_unc".into(), s.kld.uncertainty),
            ("kld_max".into(), Self::at(&self.kld, Some(1.0))),
        ];
        for (name, fr) in KLD_PERCENTILES {
            f.push((format!("kld_{name}"), Self::at(&self.kld, fr)));
        }
        f.push(("kld_min".into(), Self::at(&self.kld, Some(0.0))));
        f.push(("p_diff".into(), s.p_diff.value));
        f.push(("p_diff_unc".into(), s.p_diff.uncertainty));
        f.push(("p_diff_max".into(), Self::at(&self.p_diff, Some(1.0))));
        for (name, fr) in P_DIFF_PERCENTILES {
            f.push((format!("p_diff_{name}"), Self::at(&self.p_diff, fr)));
        }
        f.push(("p_diff_min".into(), Self::at(&self.p_diff, Some(0.0))));
        f.push(("p_diff_rms".into(), s.p_diff_rms.value));
        f.push(("p_diff_rms_unc".into(), s.p_diff_rms.uncertainty));
        f.push(("same_top".into(), s.same_top.value));
        f.push(("same_top_unc".into(), s.same_top.uncertainty));
        f
    }
}

/// The KL percentiles llama.cpp prints, top down (`None`: the median),
/// with the names of their lines.
const KLD_PERCENTILES: [(&str, Option<f32>); 9] = [
    ("99.9", Some(0.999)),
    ("99", Some(0.990)),
    ("95", Some(0.950)),
    ("90", Some(0.900)),
    ("median", None),
    ("10", Some(0.100)),
    ("5", Some(0.050)),
    ("1", Some(0.010)),
    ("0.1", Some(0.001)),
];

/// The probability-difference percentiles llama.cpp prints.
const P_DIFF_PERCENTILES: [(&str, Option<f32>); 11] = [
    ("99.9", Some(0.999)),
    ("99", Some(0.990)),
    ("95", Some(0.950)),
    ("90", Some(0.900)),
    ("75", Some(0.750)),
    ("median", None),
    ("25", Some(0.250)),
    ("10", Some(0.100)),
    ("5", Some(0.050)),
    ("1", Some(0.010)),
    ("0.1", Some(0.001)),
];

/// `v` as C's `%W.Pf` prints it (`nan`, `inf` for the non-finite).
fn c(v: f64, width: usize, prec: usize) -> String {
    if v.is_nan() {
        format!("{:>width$}", "nan")
    } else if v.is_infinite() {
        format!("{:>width$}", if v > 0.0 { "inf" } else { "-inf" })
    } else {
        format!("{v:width$.prec$}")
    }
}

/// `value ± uncertainty`, both as `%W.Pf`.
fn pm(e: Estimate, width: usize, prec: usize, scale: f64) -> String {
    format!(
        "{} ± {}",
        c(scale * e.value, width, prec),
        c(scale * e.uncertainty, width, prec)
    )
}

/// A chunk's line of the KL table, with the running statistics.
fn chunk_row(chunk: usize, s: &KlSummary) -> String {
    format!(
        "{chunk:4}    {}    {}    {}    {} %    {} %",
        pm(s.ppl, 9, 4, 1.0),
        pm(s.log_ppl_ratio, 10, 5, 1.0),
        pm(s.kld, 10, 5, 1.0),
        pm(s.p_diff_rms, 6, 3, 100.0),
        pm(s.same_top, 6, 3, 100.0)
    )
}

/// The final statistics, as llama.cpp prints them after a KL run.
fn write_statistics(o: &mut impl Write, kl: &Comparison) -> std::io::Result<()> {
    let s = kl.kl.summary();
    writeln!(o, "====== Perplexity statistics ======")?;
    writeln!(
        o,
        "Mean PPL(Q)                   : {}",
        pm(s.ppl, 10, 6, 1.0)
    )?;
    writeln!(
        o,
        "Mean PPL(base)                : {}",
        pm(s.ppl_base, 10, 6, 1.0)
    )?;
    writeln!(
        o,
        "Cor(ln(PPL(Q)), ln(PPL(base))): {}%",
        c(100.0 * s.log_ppl_cor, 6, 2)
    )?;
    writeln!(
        o,
        "Mean ln(PPL(Q)/PPL(base))     : {}",
        pm(s.log_ppl_ratio, 10, 6, 1.0)
    )?;
    writeln!(
        o,
        "Mean PPL(Q)/PPL(base)         : {}",
        pm(s.ppl_ratio, 10, 6, 1.0)
    )?;
    writeln!(
        o,
        "Mean PPL(Q)-PPL(base)         : {}",
        pm(s.ppl_diff, 10, 6, 1.0)
    )?;
    writeln!(o)?;
    writeln!(o, "====== KL divergence statistics ======")?;
    writeln!(o, "Mean    KLD: {}", pm(s.kld, 10, 6, 1.0))?;
    let kld = |f| c(Comparison::at(&kl.kld, f), 10, 6);
    writeln!(o, "Maximum KLD: {}", kld(Some(1.0)))?;
    for (name, f) in KLD_PERCENTILES {
        writeln!(o, "{} KLD: {}", label(name), kld(f))?;
    }
    writeln!(o, "Minimum KLD: {}", kld(Some(0.0)))?;
    writeln!(o)?;
    writeln!(o, "====== Token probability statistics ======")?;
    writeln!(
        o,
        "Mean    Δp: {} ± {} %",
        c(100.0 * s.p_diff.value, 6, 3),
        c(100.0 * s.p_diff.uncertainty, 5, 3)
    )?;
    let dp = |f| c(100.0 * Comparison::at(&kl.p_diff, f), 6, 3);
    writeln!(o, "Maximum Δp: {}%", dp(Some(1.0)))?;
    for (name, f) in P_DIFF_PERCENTILES {
        writeln!(o, "{} Δp: {}%", label(name), dp(f))?;
    }
    writeln!(o, "Minimum Δp: {}%", dp(Some(0.0)))?;
    writeln!(
        o,
        "RMS Δp    : {} ± {} %",
        c(100.0 * s.p_diff_rms.value, 6, 3),
        c(100.0 * s.p_diff_rms.uncertainty, 5, 3)
    )?;
    writeln!(
        o,
        "Same top p: {} ± {} %",
        c(100.0 * s.same_top.value, 6, 3),
        c(100.0 * s.same_top.uncertainty, 5, 3)
    )?;
    writeln!(o)
}

/// A percentile line's label as llama.cpp aligns it: `99.9%  `, ` 5.0%  `,
/// `Median `.
fn label(name: &str) -> String {
    if name == "median" {
        return "Median ".into();
    }
    let v: f64 = name.parse().unwrap_or(0.0);
    format!("{v:4.1}%  ")
}

/// The `--json` file.
struct Json<'x> {
    args: &'x PerplexityArgs,
    n_ctx: u32,
    n_chunk: usize,
    n_tokens: usize,
    add_bos: bool,
    estimate: Estimate,
    chunk_ppl: &'x [f64],
    kl: Option<&'x [(String, f64)]>,
}

/// A number for JSON: `null` for NaN and the infinities.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".into()
    }
}

/// `s` as a JSON string: quotes, backslashes and control characters
/// escaped (Rust's `{:?}` is not JSON: it writes `\u{1b}`).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Json<'_> {
    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let path = |p: &Path| json_string(&p.display().to_string());
        writeln!(w, "{{")?;
        writeln!(w, "  \"model\": {},", path(&self.args.model))?;
        writeln!(
            w,
            "  \"base\": {},",
            self.args.base.as_deref().map_or("null".into(), path)
        )?;
        writeln!(w, "  \"file\": {},", path(&self.args.file))?;
        writeln!(w, "  \"n_ctx\": {},", self.n_ctx)?;
        writeln!(w, "  \"chunks\": {},", self.n_chunk)?;
        writeln!(w, "  \"n_tokens\": {},", self.n_tokens)?;
        writeln!(w, "  \"add_bos\": {},", self.add_bos)?;
        writeln!(w, "  \"ppl\": {},", num(self.estimate.value))?;
        writeln!(
            w,
            "  \"ppl_uncertainty\": {},",
            num(self.estimate.uncertainty)
        )?;
        let chunks: Vec<String> = self.chunk_ppl.iter().map(|&v| num(v)).collect();
        writeln!(w, "  \"chunk_ppl\": [{}],", chunks.join(", "))?;
        match self.kl {
            None => writeln!(w, "  \"kl\": null")?,
            Some(figures) => {
                let fields: Vec<String> = figures
                    .iter()
                    .map(|(k, v)| format!("    \"{k}\": {}", num(*v)))
                    .collect();
                writeln!(w, "  \"kl\": {{\n{}\n  }}", fields.join(",\n"))?;
            }
        }
        writeln!(w, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_escape_what_json_needs() {
        assert_eq!(json_string("a/b.txt"), r#""a/b.txt""#);
        assert_eq!(json_string("q\"b\\n\n"), r#""q\"b\\n\n""#);
        assert_eq!(json_string("\u{1b}x\té"), r#""\u001bx\u0009é""#);
    }
}

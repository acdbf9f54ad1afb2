//! A decoding session: the forward pass over one fixed arena.
//!
//! [`Session::eval`] runs a chunk of tokens through the model (prefill) or
//! one token (decode) and returns logits. The forward pass reads like the
//! model's math; the numeric work happens in the [`Kernels`].

use crate::config::{Arch, Config};
use crate::dtype::ActFormat;
use crate::error::{Error, Result};
use crate::hadamard;
use crate::image::tensor::{Role, TensorEntry};
use crate::image::Model;
use crate::kernels::{AttnArgs, AttnQ8Args, F16Bits, Kernels, MatOut, MatmulArgs, WeightUse};
use crate::parallel::{self, Parallel, Serial};
use crate::plan::{KvType, Plan, Region, RunOptions, ARENA_ALIGN};
use crate::rope;
use crate::source::WeightSource;

/// The session's buffers, carved from the arena.
struct Buffers<'a> {
    /// Keys in the session's [`KvType`]: f16 bits or Q8_0 blocks.
    kv_k: &'a mut [u8],
    /// Values, as the keys.
    kv_v: &'a mut [u8],
    x: &'a mut [f32],
    xb: &'a mut [f32],
    qkv: &'a mut [f32],
    att: &'a mut [f32],
    ffn: &'a mut [f32],
    hid: &'a mut [f32],
    act: &'a mut [u8],
    scores: &'a mut [f32],
    logits: &'a mut [f32],
    rope: &'a mut [f32],
    freq: &'a mut [f32],
    norm: &'a mut [f32],
}

/// Reads weights for the kernels: in place from a mapped source, or in
/// row chunks through the two staging buffers, the next chunk read while
/// the kernels work on the current one.
struct Weights<'a, S> {
    src: S,
    stage: [&'a mut [u8]; 2],
    data_offset: u64,
    /// Bytes read from a streamed source so far.
    read: u64,
    /// The first chunk of the next matrix, read ahead during the last
    /// chunk of the one before.
    ahead: Option<Ahead>,
}

/// A chunk read ahead into a staging buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ahead {
    /// Absolute image offset.
    offset: u64,
    /// Bytes.
    len: usize,
    /// The staging buffer holding them.
    which: usize,
}

impl<S: WeightSource> Weights<'_, S> {
    /// Rows of `e` per staging buffer (all of them for a mapped source).
    fn rows_per_chunk(&self, e: &TensorEntry) -> usize {
        if self.src.is_mapped() {
            e.rows as usize
        } else {
            // The plan sizes staging for at least one row of any tensor.
            (self.stage[0].len() / e.row_bytes()).max(1)
        }
    }

    /// The image bytes of `e`'s first chunk: absolute offset and length.
    fn first_chunk(&self, e: &TensorEntry) -> (u64, usize) {
        let n = self.rows_per_chunk(e).min(e.rows as usize);
        (self.data_offset + e.offset, n * e.row_bytes())
    }

    /// `out.token(t)[r] = dot(row r of e, act row t)` for all rows of `e`,
    /// the rows split across the cores of `par`. On a streamed source,
    /// each chunk after the first is read while the kernels work on the
    /// one before, and the last chunk's work overlaps the read of `next`'s
    /// first chunk (the matrix the forward pass multiplies with next).
    #[allow(clippy::too_many_arguments)]
    fn matmul<K: Kernels>(
        &mut self,
        k: &K,
        par: &dyn Parallel,
        e: &TensorEntry,
        next: Option<&TensorEntry>,
        act: &[u8],
        n_tok: usize,
        out: MatOut<'_>,
    ) -> Result<()> {
        let usage = match e.role {
            Role::TokenEmbd => WeightUse::TiedEmbedding,
            _ => WeightUse::Projection,
        };
        let cols = e.cols as usize;
        if self.src.is_mapped() {
            let rows = e.rows as usize;
            let off = self.data_offset + e.offset;
            let w = self
                .src
                .bytes(off, rows * e.row_bytes(), &mut [])
                .map_err(|_| e.read_error(off))?;
            let m = MatmulArgs {
                dtype: e.dtype,
                usage,
                w,
                k: cols,
                rows,
                act,
                n_tok,
            };
            let mut out = out;
            parallel::matmul(par, k, &m, &mut out);
            return Ok(());
        }
        let row = e.row_bytes();
        let rows = e.rows as usize;
        let per_chunk = self.rows_per_chunk(e);
        let (base, first_len) = self.first_chunk(e);
        let mut which = match self.ahead.take() {
            Some(a) if a.offset == base && a.len == first_len => a.which,
            _ => {
                self.staged(0, base, first_len)
                    .map_err(|_| e.read_error(base))?;
                0
            }
        };
        let mut out = out;
        let mut r0 = 0;
        while r0 < rows {
            let n = per_chunk.min(rows - r0);
            let (mut piece, rest) = out.split_at(n);
            // What to read during this chunk's work: the tensor's next
            // chunk, or after its last one the next matrix's first.
            let after = r0 + n;
            let fetch = if after < rows {
                Some((
                    base + (after * row) as u64,
                    per_chunk.min(rows - after) * row,
                    e,
                ))
            } else {
                next.map(|nx| {
                    let (off, len) = self.first_chunk(nx);
                    (off, len, nx)
                })
            };
            let [s0, s1] = &mut self.stage;
            let (cur, other) = if which == 0 {
                (&**s0, &mut **s1)
            } else {
                (&**s1, &mut **s0)
            };
            let m = MatmulArgs {
                dtype: e.dtype,
                usage,
                w: &cur[..n * row],
                k: cols,
                rows: n,
                act,
                n_tok,
            };
            let mut work = || parallel::matmul(par, k, &m, &mut piece);
            match fetch {
                Some((off, len, owner)) => {
                    self.src
                        .fetch_during(off, &mut other[..len], &mut work)
                        .map_err(|_| owner.read_error(off))?;
                    self.read += len as u64;
                    which ^= 1;
                    if after >= rows {
                        self.ahead = Some(Ahead {
                            offset: off,
                            len,
                            which,
                        });
                    }
                }
                None => work(),
            }
            out = rest;
            r0 = after;
        }
        Ok(())
    }

    /// The `len` bytes at `offset`: in place from a mapped source, else
    /// read into staging buffer `which` (counted, and dropping a chunk
    /// read ahead there).
    fn staged(&mut self, which: usize, offset: u64, len: usize) -> Result<&[u8]> {
        let streamed = !self.src.is_mapped();
        if streamed && self.ahead.is_some_and(|a| a.which == which) {
            self.ahead = None;
        }
        let w = self.src.bytes(offset, len, self.stage[which])?;
        if streamed {
            self.read += len as u64;
        }
        Ok(w)
    }

    /// Row `r` of `e`, dequantized into `out`.
    fn row<K: Kernels>(&mut self, k: &K, e: &TensorEntry, r: usize, out: &mut [f32]) -> Result<()> {
        let row = e.row_bytes();
        let off = self.data_offset + e.offset + (r * row) as u64;
        let w = self.staged(0, off, row).map_err(|_| e.read_error(off))?;
        k.dequantize_row(e.dtype, w, out);
        Ok(())
    }

    /// An f32 vector tensor (norm weights, rope factors) copied to `out`;
    /// a streamed source reads it straight into `out`, not through the
    /// staging buffers (so a chunk read ahead there stays).
    fn f32s(&mut self, e: &TensorEntry, out: &mut [f32]) -> Result<()> {
        let off = self.data_offset + e.offset;
        let len = out.len() * 4;
        if self.src.is_mapped() {
            let w = self
                .src
                .bytes(off, len, &mut [])
                .map_err(|_| e.read_error(off))?;
            for (o, b) in out.iter_mut().zip(w.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        } else {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            self.src
                .bytes(off, len, bytes)
                .map_err(|_| e.read_error(off))?;
            self.read += len as u64;
            for o in out.iter_mut() {
                *o = f32::from_le_bytes(o.to_ne_bytes());
            }
        }
        Ok(())
    }
}

/// A decoding session over one model, one weight source and one arena,
/// its work spread over the cores of a [`Parallel`] (by default
/// [`Serial`]: the calling core alone; see [`Session::with_parallel`]).
pub struct Session<'m, 'a, K, S, P = Serial> {
    model: Model<'m>,
    cfg: Config,
    kernels: K,
    par: P,
    /// Cores the arena has attention scratch for.
    threads: usize,
    weights: Weights<'a, S>,
    buf: Buffers<'a>,
    n_ctx: usize,
    chunk: usize,
    kv_type: KvType,
    n_past: usize,
    /// What `buf.act` holds, while it is still current: the buffer it was
    /// quantized from and the format.
    act_fmt: Option<(Src, ActFormat)>,
    /// Whether the chunk being evaluated ends with the output head (what
    /// a streamed source reads ahead after the last layer).
    head: bool,
}

fn carve<'a, T: bytemuck::Pod>(
    arena: &mut &'a mut [u8],
    used: &mut usize,
    r: Region,
) -> &'a mut [T] {
    let rest = core::mem::take(arena);
    let (_, rest) = rest.split_at_mut(r.offset - *used);
    let (mine, rest) = rest.split_at_mut(r.len);
    *arena = rest;
    *used = r.offset + r.len;
    // Regions are 64-byte aligned within a 64-byte-aligned arena and sized
    // in whole elements, so the cast cannot fail.
    bytemuck::cast_slice_mut(mine)
}

impl<'m, 'a, K: Kernels, S: WeightSource> Session<'m, 'a, K, S, Serial> {
    /// Plans the arena for `opts`, carves it into buffers and loads the
    /// RoPE factors. Fails with [`Error::ArenaTooSmall`] if `arena` is
    /// smaller than the plan (plus up to 63 bytes if it is not 64-byte
    /// aligned).
    pub fn new(
        model: &Model<'m>,
        kernels: K,
        src: S,
        arena: &'a mut [u8],
        opts: &RunOptions,
    ) -> Result<Self> {
        let cfg = *model.config();
        if src.is_mapped() != (opts.stage_bytes == 0) {
            return Err(Error::BadOptions {
                what:
                    "staging buffers are for streamed sources only, and streamed sources need them",
            });
        }
        let plan = Plan::new(&cfg, opts)?;
        let skip = arena.as_ptr().align_offset(ARENA_ALIGN);
        let need = plan.bytes().saturating_add(skip);
        if arena.len() < need {
            return Err(Error::ArenaTooSmall {
                need,
                got: arena.len(),
            });
        }
        let mut rest: &'a mut [u8] = &mut arena[skip..];
        let mut used = 0;
        let buf = Buffers {
            kv_k: carve(&mut rest, &mut used, plan.kv_k),
            kv_v: carve(&mut rest, &mut used, plan.kv_v),
            x: carve(&mut rest, &mut used, plan.x),
            xb: carve(&mut rest, &mut used, plan.xb),
            qkv: carve(&mut rest, &mut used, plan.qkv),
            att: carve(&mut rest, &mut used, plan.att),
            ffn: carve(&mut rest, &mut used, plan.ffn),
            hid: carve(&mut rest, &mut used, plan.hid),
            act: carve(&mut rest, &mut used, plan.act),
            scores: carve(&mut rest, &mut used, plan.scores),
            logits: carve(&mut rest, &mut used, plan.logits),
            rope: carve(&mut rest, &mut used, plan.rope),
            freq: carve(&mut rest, &mut used, plan.freq),
            norm: carve(&mut rest, &mut used, plan.norm),
        };
        let stage = [
            carve(&mut rest, &mut used, plan.stage[0]),
            carve(&mut rest, &mut used, plan.stage[1]),
        ];
        let mut s = Session {
            model: *model,
            cfg,
            kernels,
            par: Serial,
            threads: opts.threads as usize,
            weights: Weights {
                src,
                stage,
                data_offset: model.header().data_offset,
                read: 0,
                ahead: None,
            },
            buf,
            n_ctx: opts.n_ctx as usize,
            chunk: opts.prefill_chunk as usize,
            kv_type: opts.kv_type,
            n_past: 0,
            act_fmt: None,
            head: false,
        };
        s.load_rope_factors()?;
        Ok(s)
    }

    /// The same session with its work spread over the cores of `par`.
    /// Attention uses at most as many cores as the session was planned for
    /// ([`RunOptions::threads`]); matmuls use all of them. Logits do not
    /// depend on the number of cores.
    pub fn with_parallel<P: Parallel>(self, par: P) -> Session<'m, 'a, K, S, P> {
        let Session {
            model,
            cfg,
            kernels,
            par: _,
            threads,
            weights,
            buf,
            n_ctx,
            chunk,
            kv_type,
            n_past,
            act_fmt,
            head,
        } = self;
        Session {
            model,
            cfg,
            kernels,
            par,
            threads,
            weights,
            buf,
            n_ctx,
            chunk,
            kv_type,
            n_past,
            act_fmt,
            head,
        }
    }
}

impl<'m, 'a, K: Kernels, S: WeightSource, P: Parallel> Session<'m, 'a, K, S, P> {
    /// Whether this session uses LongRoPE's long factors: llama.cpp pads
    /// the context to a multiple of 256 and uses them when that exceeds
    /// the original training context.
    pub fn uses_long_rope(&self) -> bool {
        self.cfg.has_rope_factors && self.n_ctx.div_ceil(256) * 256 > self.cfg.n_ctx_orig as usize
    }

    fn load_rope_factors(&mut self) -> Result<()> {
        if !self.cfg.has_rope_factors {
            self.buf.freq.fill(1.0);
            return Ok(());
        }
        let role = if self.uses_long_rope() {
            Role::RopeFactorsLong
        } else {
            Role::RopeFactorsShort
        };
        let e = self.model.tensor(role, 0)?;
        self.weights.f32s(&e, self.buf.freq)?;
        Ok(())
    }

    /// Tokens evaluated so far (the position of the next token).
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Tokens per forward pass of a prefill
    /// ([`RunOptions::prefill_chunk`]).
    pub fn prefill_chunk(&self) -> usize {
        self.chunk
    }

    /// The session context.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The KV cache's element type ([`RunOptions::kv_type`]).
    pub fn kv_type(&self) -> KvType {
        self.kv_type
    }

    /// The model's hyperparameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The kernel set.
    pub fn kernels(&self) -> &K {
        &self.kernels
    }

    /// The cores the session's work is spread over.
    pub fn parallel(&self) -> &P {
        &self.par
    }

    /// The logits after the token evaluated last (what
    /// [`eval`](Self::eval) returned; zeros before any evaluation).
    pub fn logits(&self) -> &[f32] {
        self.buf.logits
    }

    /// Bytes read from a streamed weight source since the session was
    /// created (0 for a mapped source): one decoded token reads every
    /// weight byte the forward pass uses once, a prefill chunk too.
    pub fn bytes_read(&self) -> u64 {
        self.weights.read
    }

    /// Forgets all tokens; the next token is at position 0.
    pub fn reset(&mut self) {
        self.n_past = 0;
    }

    /// Evaluates `tokens` at the next positions and returns the logits
    /// after the last one.
    ///
    /// With `all_logits`, the logits after every token are written there
    /// too, row by row (`tokens.len() * n_vocab` values, what llama.cpp
    /// returns with `logits_all`). Nothing is evaluated if any token id is
    /// out of range or the tokens do not fit the context.
    pub fn eval(&mut self, tokens: &[u32], mut all_logits: Option<&mut [f32]>) -> Result<&[f32]> {
        let n_vocab = self.cfg.n_vocab;
        if tokens.is_empty() {
            return Err(Error::BadOptions {
                what: "no tokens to evaluate",
            });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t >= n_vocab) {
            return Err(Error::BadToken { id, n_vocab });
        }
        if tokens.len() > self.n_ctx - self.n_past {
            return Err(Error::ContextFull {
                n_ctx: self.n_ctx as u32,
            });
        }
        let nv = n_vocab as usize;
        if let Some(out) = all_logits.as_deref() {
            let need = tokens.len() * nv;
            if out.len() < need {
                return Err(Error::BufferTooSmall {
                    need,
                    got: out.len(),
                });
            }
        }
        let n_chunks = tokens.len().div_ceil(self.chunk);
        let start = self.n_past;
        for (i, chunk) in tokens.chunks(self.chunk).enumerate() {
            let out = match all_logits.as_deref_mut() {
                Some(all) => Logits::All(&mut all[i * self.chunk * nv..]),
                None if i + 1 == n_chunks => Logits::Last,
                None => Logits::None,
            };
            self.head = !matches!(out, Logits::None);
            if let Err(e) = self.forward(chunk, out) {
                // Undo the chunks evaluated so far: their KV rows are past
                // `n_past` again, to be overwritten.
                self.n_past = start;
                self.act_fmt = None;
                self.weights.ahead = None;
                return Err(e);
            }
        }
        if let Some(all) = all_logits {
            let last = (tokens.len() - 1) * nv;
            self.buf.logits.copy_from_slice(&all[last..last + nv]);
        }
        Ok(self.buf.logits)
    }

    /// Quantizes the first `n` rows of `width` values of `src` into the
    /// activation buffer, in the format `e` multiplies with.
    fn quantize(&mut self, e: &TensorEntry, src: Src, n: usize, width: usize) {
        let fmt = e.dtype.act_format();
        if self.act_fmt == Some((src, fmt)) {
            return;
        }
        // Row sizes were checked against the plan when the model was opened.
        let rb = fmt.row_bytes(width).unwrap_or(0);
        let b = &mut self.buf;
        let x: &[f32] = match src {
            Src::Xb => b.xb,
            Src::Att => b.att,
            Src::Hid => b.hid,
        };
        for t in 0..n {
            self.kernels.quantize_act(
                fmt,
                &x[t * width..(t + 1) * width],
                &mut b.act[t * rb..(t + 1) * rb],
            );
        }
        self.act_fmt = Some((src, fmt));
    }

    /// `out = x W^T` for the first `n` activation rows, `out` rows `ld`
    /// apart.
    fn matmul(&mut self, e: &TensorEntry, n: usize, dst: Dst, col: usize, ld: usize) -> Result<()> {
        if matches!(dst, Dst::Xb) {
            self.act_fmt = None;
        }
        let b = &mut self.buf;
        let out: &mut [f32] = match dst {
            Dst::Xb => b.xb,
            Dst::Qkv => b.qkv,
            Dst::Ffn => b.ffn,
            Dst::Logits => b.logits,
        };
        let out = MatOut::new(&mut out[col..], e.rows as usize, n, ld);
        let next = self.model.next_matrix(e.role, e.layer);
        let next =
            next.filter(|nx| self.head || !matches!(nx.role, Role::Output | Role::TokenEmbd));
        self.weights
            .matmul(&self.kernels, &self.par, e, next.as_ref(), b.act, n, out)
    }

    /// RMSNorm of the first `n` rows of the residual stream into `xb`.
    fn norm(&mut self, role: Role, layer: u16, rows: core::ops::Range<usize>) -> Result<()> {
        let e = self.model.tensor(role, layer)?;
        self.weights.f32s(&e, self.buf.norm)?;
        let d = self.cfg.n_embd as usize;
        for (o, t) in rows.enumerate() {
            self.kernels.rms_norm(
                &self.buf.x[t * d..(t + 1) * d],
                self.buf.norm,
                self.cfg.rms_eps,
                &mut self.buf.xb[o * d..(o + 1) * d],
            );
        }
        self.act_fmt = None;
        Ok(())
    }

    /// Fills the RoPE cos/sin pairs for `n` tokens from position `p0`:
    /// the image's table where it has those positions and this session
    /// uses its factors (the short ones, or none), else computed (see
    /// [`rope`]).
    fn rope_cache(&mut self, p0: usize, n: usize) -> Result<()> {
        let n_rot = self.cfg.n_rot as usize;
        let from_table = p0 + n <= self.cfg.rope_cache_rows as usize && !self.uses_long_rope();
        let out = &mut self.buf.rope[..n * n_rot];
        if from_table {
            let e = self.model.tensor(Role::RopeCache, 0)?;
            for (t, row) in out.chunks_exact_mut(n_rot).enumerate() {
                self.weights.row(&self.kernels, &e, p0 + t, row)?;
            }
        } else {
            rope::fill(&self.cfg, self.buf.freq, p0, out);
        }
        Ok(())
    }

    /// Runs one chunk of tokens through the model.
    fn forward(&mut self, tokens: &[u32], logits: Logits<'_>) -> Result<()> {
        let c = self.cfg;
        let n = tokens.len();
        let p0 = self.n_past;
        let d = c.n_embd as usize;
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        let qkv_w = q_dim + 2 * kv_dim;
        let ff = c.n_ff as usize;

        let embd = self.model.tensor(Role::TokenEmbd, 0)?;
        for (t, &tok) in tokens.iter().enumerate() {
            self.weights.row(
                &self.kernels,
                &embd,
                tok as usize,
                &mut self.buf.x[t * d..(t + 1) * d],
            )?;
        }
        self.rope_cache(p0, n)?;

        for l in 0..c.n_layer as u16 {
            // Attention: q, k, v projections.
            self.norm(Role::AttnNorm, l, 0..n)?;
            match c.arch {
                Arch::Phi3 => {
                    let w = self.model.tensor(Role::AttnQkv, l)?;
                    self.quantize(&w, Src::Xb, n, d);
                    self.matmul(&w, n, Dst::Qkv, 0, qkv_w)?;
                }
                Arch::Llama => {
                    for (role, col) in [
                        (Role::AttnQ, 0),
                        (Role::AttnK, q_dim),
                        (Role::AttnV, q_dim + kv_dim),
                    ] {
                        let w = self.model.tensor(role, l)?;
                        self.quantize(&w, Src::Xb, n, d);
                        self.matmul(&w, n, Dst::Qkv, col, qkv_w)?;
                    }
                }
            }
            self.attend(l as usize, p0, n)?;
            self.act_fmt = None;

            // Attention output projection and residual.
            let w = self.model.tensor(Role::AttnOut, l)?;
            self.quantize(&w, Src::Att, n, q_dim);
            self.matmul(&w, n, Dst::Xb, 0, d)?;
            add(&mut self.buf.x[..n * d], &self.buf.xb[..n * d]);

            // Feed-forward: SwiGLU.
            self.norm(Role::FfnNorm, l, 0..n)?;
            let up = self.model.tensor(Role::FfnUp, l)?;
            match c.arch {
                // One matmul gives gate (first half) and up (second half).
                Arch::Phi3 => {
                    self.quantize(&up, Src::Xb, n, d);
                    self.matmul(&up, n, Dst::Ffn, 0, 2 * ff)?;
                }
                Arch::Llama => {
                    let gate = self.model.tensor(Role::FfnGate, l)?;
                    self.quantize(&gate, Src::Xb, n, d);
                    self.matmul(&gate, n, Dst::Ffn, 0, 2 * ff)?;
                    self.quantize(&up, Src::Xb, n, d);
                    self.matmul(&up, n, Dst::Ffn, ff, 2 * ff)?;
                }
            }
            for t in 0..n {
                let (gate, up) = self.buf.ffn[t * 2 * ff..(t + 1) * 2 * ff].split_at(ff);
                self.kernels
                    .swiglu(gate, up, &mut self.buf.hid[t * ff..(t + 1) * ff]);
            }
            self.act_fmt = None;
            let down = self.model.tensor(Role::FfnDown, l)?;
            self.quantize(&down, Src::Hid, n, ff);
            self.matmul(&down, n, Dst::Xb, 0, d)?;
            add(&mut self.buf.x[..n * d], &self.buf.xb[..n * d]);
        }
        self.n_past += n;

        // Output head, for the tokens whose logits are wanted.
        let rows = match logits {
            Logits::None => return Ok(()),
            Logits::Last => n - 1..n,
            Logits::All(_) => 0..n,
        };
        let n_out = rows.len();
        self.norm(Role::OutputNorm, 0, rows)?;
        let out = if c.tied_output {
            embd
        } else {
            self.model.tensor(Role::Output, 0)?
        };
        self.quantize(&out, Src::Xb, n_out, d);
        match logits {
            Logits::All(dst) => {
                let nv = c.n_vocab as usize;
                let dst = MatOut::new(dst, nv, n_out, nv);
                self.weights.matmul(
                    &self.kernels,
                    &self.par,
                    &out,
                    None,
                    self.buf.act,
                    n_out,
                    dst,
                )
            }
            _ => self.matmul(&out, 1, Dst::Logits, 0, 0),
        }
    }

    /// RoPE, KV cache update and attention for layer `l`, tokens at
    /// positions `p0..p0 + n`; writes `att`.
    fn attend(&mut self, l: usize, p0: usize, n: usize) -> Result<()> {
        let c = self.cfg;
        let hd = c.head_dim as usize;
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        let qkv_w = q_dim + 2 * kv_dim;
        let n_rot = c.n_rot as usize;
        let neox = c.arch.rope_neox();
        let k = &self.kernels;
        let b = &mut self.buf;
        // Phi-3 scales the query before attention, llama scales the scores.
        let (q_scale, kq_scale) = match c.arch {
            Arch::Phi3 => (1.0 / libm::sqrtf(hd as f32), 1.0),
            Arch::Llama => (1.0, 1.0 / libm::sqrtf(hd as f32)),
        };
        // One cached position: `kv_dim` values in the cache's type.
        let kv_row = self.kv_type.row_bytes(kv_dim);
        let layer_base = l * self.n_ctx * kv_row;
        for t in 0..n {
            let cs = &b.rope[t * n_rot..(t + 1) * n_rot];
            let row = &mut b.qkv[t * qkv_w..(t + 1) * qkv_w];
            let (q, kv) = row.split_at_mut(q_dim);
            let (kr, vr) = kv.split_at_mut(kv_dim);
            for head in q.chunks_exact_mut(hd) {
                k.rope(head, cs, neox);
            }
            if q_scale != 1.0 {
                q.iter_mut().for_each(|v| *v *= q_scale);
            }
            for head in kr.chunks_exact_mut(hd) {
                k.rope(head, cs, neox);
            }
            if self.kv_type == KvType::Q8_0 {
                let (rot_k, rot_v) = hadamard::sizes(hd);
                if let Some(r) = rot_k {
                    hadamard::rotate(q, r);
                    hadamard::rotate(kr, r);
                }
                if let Some(r) = rot_v {
                    hadamard::rotate(vr, r);
                }
            }
            let at = layer_base + (p0 + t) * kv_row;
            let (kc, vc) = (&mut b.kv_k[at..at + kv_row], &mut b.kv_v[at..at + kv_row]);
            match self.kv_type {
                KvType::F16 => {
                    k.f32_to_f16(kr, bytemuck::cast_slice_mut(kc));
                    k.f32_to_f16(vr, bytemuck::cast_slice_mut(vc));
                }
                // llama.cpp stores a row with its CPU `from_float` for
                // Q8_0: the activation quantizer.
                KvType::Q8_0 => {
                    k.quantize_act(ActFormat::Q8_0, kr, kc);
                    k.quantize_act(ActFormat::Q8_0, vr, vc);
                }
            }
        }
        let group = (c.n_head / c.n_head_kv) as usize;
        let n_head = c.n_head as usize;
        let parts = parallel::parts(&self.par, n_head, 1).min(self.threads);
        let mut att = MatOut::new(b.att, q_dim, n, q_dim);
        let scratch = &mut b.scores[..parts * self.n_ctx];
        // The queries in K's dot type, as llama.cpp's flash attention
        // converts them for a Q8_0 cache; quantizing a whole row of heads
        // is quantizing each head (the blocks do not cross heads:
        // `head_dim` is a multiple of 32).
        let q_row = self.kv_type.row_bytes(q_dim);
        if self.kv_type == KvType::Q8_0 {
            for t in 0..n {
                let q = &b.qkv[t * qkv_w..t * qkv_w + q_dim];
                k.quantize_act(ActFormat::Q8_0, q, &mut b.act[t * q_row..(t + 1) * q_row]);
            }
        }
        // One head of one cached position, in bytes.
        let head = self.kv_type.row_bytes(hd);
        let kv_type = self.kv_type;
        let (kv_k, kv_v, qkv, qq) = (&*b.kv_k, &*b.kv_v, &*b.qkv, &*b.act);
        parallel::for_cols(
            &self.par,
            &mut att,
            scratch,
            parts,
            hd,
            &|cols, mut out, scores| {
                for t in 0..n {
                    let n_kv = p0 + t + 1;
                    let row = out.token(t);
                    for (h, o) in (cols.start / hd..).zip(row.chunks_exact_mut(hd)) {
                        // Head `h / group`'s keys and values from position
                        // 0 to `n_kv - 1`, `kv_row` bytes apart.
                        let kvh = h / group;
                        let from = layer_base + kvh * head;
                        let to = layer_base + (n_kv - 1) * kv_row + (kvh + 1) * head;
                        let (kc, vc) = (&kv_k[from..to], &kv_v[from..to]);
                        match kv_type {
                            KvType::F16 => {
                                let a = AttnArgs {
                                    q: &qkv[t * qkv_w + h * hd..t * qkv_w + (h + 1) * hd],
                                    k: bytemuck::cast_slice::<u8, F16Bits>(kc),
                                    v: bytemuck::cast_slice::<u8, F16Bits>(vc),
                                    stride: kv_dim,
                                    n_kv,
                                    scale: kq_scale,
                                };
                                k.attention(&a, scores, o);
                            }
                            KvType::Q8_0 => {
                                let a = AttnQ8Args {
                                    q: &qq[t * q_row + h * head..t * q_row + (h + 1) * head],
                                    k: kc,
                                    v: vc,
                                    stride: kv_row,
                                    n_kv,
                                    scale: kq_scale,
                                };
                                k.attention_q8_0(&a, o);
                            }
                        }
                    }
                }
            },
        );
        // Back from the values' rotation.
        if let (KvType::Q8_0, (_, Some(r))) = (kv_type, hadamard::sizes(hd)) {
            hadamard::rotate(&mut b.att[..n * q_dim], r);
        }
        Ok(())
    }
}

/// `x += y`, element-wise (the residual connections).
fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += *b);
}

/// Which logits a chunk must produce.
enum Logits<'o> {
    /// None: more chunks follow.
    None,
    /// The last token's, into the arena.
    Last,
    /// Every token's, into the caller's buffer.
    All(&'o mut [f32]),
}

/// Activation buffers that feed a matmul.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Src {
    Xb,
    Att,
    Hid,
}

/// Buffers a matmul writes.
#[derive(Clone, Copy)]
enum Dst {
    Xb,
    Qkv,
    Ffn,
    Logits,
}

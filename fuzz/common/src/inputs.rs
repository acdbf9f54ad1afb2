//! The byte formats of the structured targets, decoded from the fuzzer's
//! bytes (any bytes decode: missing fields are zero) and encoded by the
//! seed writer.

use phi_edge::SamplerConfig;

/// Reads little-endian fields off the front of a byte string; past its
/// end every field is zero.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let b = self.take(N);
        a[..b.len()].copy_from_slice(b);
        a
    }

    /// A byte.
    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    /// A u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// A u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// An f32, any bit pattern (NaN, infinities, subnormals).
    pub fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }

    /// What is left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// `sampler`: a configuration, a vocabulary size, rounds of logits.
#[derive(Clone, Debug)]
pub struct SamplerInput {
    /// The configuration (possibly invalid: then `Sampler::new` must say so).
    pub cfg: SamplerConfig,
    /// Vocabulary size, 1..=512 (every comparison of a sort is traced:
    /// a larger vocabulary costs throughput, not coverage).
    pub n_vocab: usize,
    /// Logits, `n_vocab` per round, cycled from the input's values.
    pub logits: Vec<f32>,
    /// Rounds of sample + accept.
    pub rounds: usize,
}

impl SamplerInput {
    /// Decodes any bytes.
    pub fn decode(data: &[u8]) -> SamplerInput {
        let mut r = Reader(data);
        let cfg = SamplerConfig {
            temperature: r.f32(),
            top_k: r.u32(),
            top_p: r.f32(),
            min_p: r.f32(),
            repeat_penalty: r.f32(),
            repeat_last_n: u32::from(r.u16()),
            seed: r.u64(),
        };
        let n_vocab = (r.u16() as usize % 512) + 1;
        let rounds = (r.u8() as usize % 4) + 1;
        let values: Vec<f32> = r
            .rest()
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                f32::from_le_bytes(b)
            })
            .collect();
        let logits = if values.is_empty() {
            vec![0.0; n_vocab * rounds]
        } else {
            values
                .iter()
                .copied()
                .cycle()
                .take(n_vocab * rounds)
                .collect()
        };
        SamplerInput {
            cfg,
            n_vocab,
            logits,
            rounds,
        }
    }

    /// Encodes `cfg`, `n_vocab` (1..=512), `rounds` (1..=4) and the
    /// logits to cycle.
    pub fn encode(cfg: &SamplerConfig, n_vocab: u16, rounds: u8, logits: &[f32]) -> Vec<u8> {
        let mut b = vec![];
        b.extend(cfg.temperature.to_le_bytes());
        b.extend(cfg.top_k.to_le_bytes());
        b.extend(cfg.top_p.to_le_bytes());
        b.extend(cfg.min_p.to_le_bytes());
        b.extend(cfg.repeat_penalty.to_le_bytes());
        b.extend((cfg.repeat_last_n as u16).to_le_bytes());
        b.extend(cfg.seed.to_le_bytes());
        b.extend((n_vocab - 1).to_le_bytes());
        b.push(rounds - 1);
        for v in logits {
            b.extend(v.to_le_bytes());
        }
        b
    }
}

/// `chat_template`: a template and up to three messages, separated by
/// NUL bytes (each lossily UTF-8), and a byte of flags in front.
#[derive(Clone, Debug)]
pub struct ChatInput {
    /// Bit 0: pass the system message (else `None`, the default);
    /// bit 1: render a next turn too; bit 2: tokenize with Phi-3's
    /// vocabulary instead of SmolLM2's.
    pub flags: u8,
    /// The Jinja text (or `chatml` / `phi3`).
    pub template: String,
    /// The system message.
    pub system: String,
    /// The first user message.
    pub user: String,
    /// The next user message.
    pub next: String,
}

impl ChatInput {
    /// Decodes any bytes.
    pub fn decode(data: &[u8]) -> ChatInput {
        let mut r = Reader(data);
        let flags = r.u8();
        let mut parts = r.rest().splitn(4, |&b| b == 0);
        let mut s = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        ChatInput {
            flags,
            template: s(),
            system: s(),
            user: s(),
            next: s(),
        }
    }

    /// Encodes the parts (none may hold a NUL byte).
    pub fn encode(flags: u8, template: &str, system: &str, user: &str, next: &str) -> Vec<u8> {
        let mut b = vec![flags];
        for (i, p) in [template, system, user, next].iter().enumerate() {
            if i > 0 {
                b.push(0);
            }
            b.extend(p.bytes().filter(|&c| c != 0));
        }
        b
    }
}

/// How a read fails in `stream_faults`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A device error.
    Error,
    /// `n`/256 of the bytes arrive, then the device ends.
    Short(u8),
}

/// `stream_faults`: a model, options, tokens and the reads that fail.
#[derive(Clone, Debug)]
pub struct StreamInput {
    /// Index into the tiny models the target builds.
    pub model: u8,
    /// Prefill chunk, 1..=4.
    pub chunk: u32,
    /// Staging bytes as a multiple of the minimum, 1..=4.
    pub stage_mult: u32,
    /// The prompt (ids taken modulo the vocabulary), 1..=8 ids.
    pub prompt: Vec<u32>,
    /// The token fed after the prompt.
    pub next: u32,
    /// (read number, fault), counting reads from the start (opening
    /// included), in any order.
    pub faults: Vec<(u32, Fault)>,
}

impl StreamInput {
    /// Decodes any bytes.
    pub fn decode(data: &[u8]) -> StreamInput {
        let mut r = Reader(data);
        let model = r.u8();
        let opts = r.u8();
        let n = (r.u8() as usize % 8) + 1;
        let prompt = (0..n).map(|_| u32::from(r.u8())).collect();
        let next = u32::from(r.u8());
        let mut faults = vec![];
        while !r.0.is_empty() && faults.len() < 16 {
            let at = u32::from(r.u16());
            let kind = r.u8();
            faults.push((
                at,
                if kind < 128 {
                    Fault::Error
                } else {
                    Fault::Short(kind.wrapping_mul(2))
                },
            ));
        }
        StreamInput {
            model,
            chunk: u32::from(opts & 3) + 1,
            stage_mult: u32::from((opts >> 2) & 3) + 1,
            prompt,
            next,
            faults,
        }
    }

    /// Encodes the fields as [`decode`](Self::decode) reads them.
    pub fn encode(
        model: u8,
        chunk: u8,
        stage_mult: u8,
        prompt: &[u8],
        next: u8,
        faults: &[(u16, u8)],
    ) -> Vec<u8> {
        let mut b = vec![
            model,
            (chunk - 1) | ((stage_mult - 1) << 2),
            (prompt.len() - 1) as u8,
        ];
        b.extend(prompt);
        b.push(next);
        for (at, kind) in faults {
            b.extend(at.to_le_bytes());
            b.push(*kind);
        }
        b
    }
}

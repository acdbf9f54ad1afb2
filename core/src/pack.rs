//! The image writer: turns a GGUF model into a phi-edge image (host only).
//!
//! Everything the board would otherwise do at start-up is done here: the
//! tensors are put in forward order, 64-byte aligned, norm weights and rope
//! factors converted to f32, the hyperparameters checked, the tokenizer
//! tables flattened, and every tensor given a CRC-32.
//!
//! With a file type ([`PackOptions::quantize`]), F32, F16 and BF16 weight
//! tensors are converted on the way, to the types llama.cpp's
//! `llama-quantize` would give them and with the same bytes (see
//! [`crate::quant`]); the tensor table then records the new types.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Seek, SeekFrom, Write};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::config::{Arch, Config};
use crate::crc::{crc32, Crc32};
use crate::dtype::DType;
use crate::error::Error;
use crate::gguf::{Gguf, GgufError, TensorInfo};
use crate::image::header::{Header, HEADER_LEN, MAGIC, TENSOR_ALIGN, VERSION};
use crate::image::manifest::{Manifest, SpecialTokens, TokenizerKind, TokenizerTables, NO_TOKEN};
use crate::image::tensor::{Role, TensorEntry, TensorLayout};
use crate::image::Model;
use crate::quant::policy::{llama_order, ModelDesc, TensorDesc};
use crate::quant::{quantize_row, Choice, FileType, Policy, QuantError};
use crate::rope;
use crate::tokenizer::build::{derive, Derived, Keys};
use crate::tokenizer::PreTokenizer;

/// Why a GGUF file could not be packed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PackError {
    /// The GGUF file is malformed.
    Gguf(GgufError),
    /// The model is inconsistent (checked by the core).
    Model(Error),
    /// A metadata key is missing or has a bad value.
    Key {
        /// The key.
        key: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The file uses something phi-edge does not support.
    Unsupported(String),
    /// The vocabulary is of a tokenizer llama.cpp has and phi-edge does not
    /// (WordPiece, Unigram, RWKV, PLaMo-2, ...).
    UnsupportedVocab {
        /// `tokenizer.ggml.model`.
        model: String,
        /// What llama.cpp calls that tokenizer (`WPM`, `UGM`, ...), or
        /// `unknown`.
        kind: &'static str,
    },
    /// A required tensor is absent.
    MissingTensor(String),
    /// A tensor does not fit the model.
    BadTensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// `--type` would convert a tensor that is already quantized (only
    /// F32, F16 and BF16 tensors are converted).
    Requantize {
        /// The tensor's name.
        name: String,
        /// Its type in the GGUF file.
        from: &'static str,
        /// The type the file type's policy gives it.
        to: &'static str,
    },
    /// A tensor could not be converted to its new type.
    Quantize {
        /// The tensor's name.
        name: String,
        /// The type it was being converted to.
        to: &'static str,
        /// The first failing row.
        row: u64,
        /// Why.
        error: QuantError,
    },
    /// Writing the image failed.
    Io(io::Error),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Gguf(e) => write!(f, "malformed GGUF: {e}"),
            PackError::Model(e) => write!(f, "{e}"),
            PackError::Key { key, what } => write!(f, "GGUF key {key}: {what}"),
            PackError::Unsupported(s) => write!(f, "unsupported: {s}"),
            PackError::UnsupportedVocab { model, kind } => write!(
                f,
                "unsupported vocabulary: tokenizer.ggml.model {model:?} ({kind}); phi-edge tokenizes \
                 SentencePiece (\"llama\") and BPE (\"gpt2\", \"gemma4\") vocabularies"
            ),
            PackError::MissingTensor(name) => write!(f, "missing tensor {name}"),
            PackError::BadTensor { name, what } => write!(f, "tensor {name}: {what}"),
            PackError::Requantize { name, from, to } => write!(
                f,
                "tensor {name} is already quantized ({from}); --type converts only F32, F16 and \
                 BF16 tensors (it would become {to}): pack without --type, or start from an \
                 F32/F16/BF16 GGUF"
            ),
            PackError::Quantize {
                name,
                to,
                row,
                error,
            } => write!(
                f,
                "tensor {name}: cannot convert to {to}: row {row} {error}"
            ),
            PackError::Io(e) => write!(f, "writing the image: {e}"),
        }
    }
}

impl std::error::Error for PackError {}

impl From<GgufError> for PackError {
    fn from(e: GgufError) -> Self {
        PackError::Gguf(e)
    }
}

impl From<Error> for PackError {
    fn from(e: Error) -> Self {
        PackError::Model(e)
    }
}

impl From<io::Error> for PackError {
    fn from(e: io::Error) -> Self {
        PackError::Io(e)
    }
}

type Result<T> = std::result::Result<T, PackError>;

/// Reads a required `u32` key.
fn req_u32(g: &Gguf<'_>, key: &str) -> Result<u32> {
    g.get_u32(key)?.ok_or_else(|| PackError::Key {
        key: key.to_string(),
        what: "missing",
    })
}

/// Builds the hyperparameters from the `{arch}.*` keys, as llama.cpp
/// reads them.
pub fn read_config(g: &Gguf<'_>) -> Result<Config> {
    let arch_name = g
        .get_str("general.architecture")?
        .ok_or_else(|| PackError::Key {
            key: "general.architecture".into(),
            what: "missing",
        })?;
    let arch = match arch_name {
        "phi3" => Arch::Phi3,
        "llama" => Arch::Llama,
        other => {
            return Err(PackError::Unsupported(format!(
                "architecture {other:?} (phi3 and llama are)"
            )))
        }
    };
    let k = |s: &str| format!("{arch_name}.{s}");
    let n_embd = req_u32(g, &k("embedding_length"))?;
    let n_head = req_u32(g, &k("attention.head_count"))?;
    if n_head == 0 {
        return Err(PackError::Key {
            key: k("attention.head_count"),
            what: "must be non-zero",
        });
    }
    let n_head_kv = g.get_u32(&k("attention.head_count_kv"))?.unwrap_or(n_head);
    let head_dim = match g.get_u32(&k("attention.key_length"))? {
        Some(d) => d,
        None if n_embd % n_head == 0 => n_embd / n_head,
        None => {
            return Err(PackError::Key {
                key: k("attention.head_count"),
                what: "does not divide the width",
            })
        }
    };
    if let Some(v) = g.get_u32(&k("attention.value_length"))? {
        if v != head_dim {
            return Err(PackError::Unsupported(
                "key and value heads of different widths".into(),
            ));
        }
    }
    let n_ctx_train = req_u32(g, &k("context_length"))?;
    let scaling = g.get_str(&k("rope.scaling.type"))?.unwrap_or("linear");
    let freq_scale = match scaling {
        "none" | "longrope" => 1.0,
        "linear" => match g.get_f32(&k("rope.scaling.factor"))? {
            Some(f) if f > 0.0 => 1.0 / f,
            _ => 1.0,
        },
        other => return Err(PackError::Unsupported(format!("rope scaling {other:?}"))),
    };
    let embd = g
        .tensor("token_embd.weight")
        .ok_or_else(|| PackError::MissingTensor("token_embd.weight".into()))?;
    let n_vocab = u32::try_from(embd.dims[1]).map_err(|_| PackError::BadTensor {
        name: "token_embd.weight".into(),
        what: "too many rows".into(),
    })?;
    let has_short = g.tensor(Role::RopeFactorsShort.gguf_name()).is_some();
    let has_long = g.tensor(Role::RopeFactorsLong.gguf_name()).is_some();
    if has_short != has_long {
        return Err(PackError::MissingTensor(
            "rope_factors_short.weight and rope_factors_long.weight (only one is present)".into(),
        ));
    }
    let config = Config {
        arch,
        n_vocab,
        n_embd,
        n_layer: req_u32(g, &k("block_count"))?,
        n_head,
        n_head_kv,
        head_dim,
        n_ff: req_u32(g, &k("feed_forward_length"))?,
        n_rot: g.get_u32(&k("rope.dimension_count"))?.unwrap_or(head_dim),
        rms_eps: g
            .get_f32(&k("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| PackError::Key {
                key: k("attention.layer_norm_rms_epsilon"),
                what: "missing",
            })?,
        rope_theta: g.get_f32(&k("rope.freq_base"))?.unwrap_or(10000.0),
        rope_freq_scale: freq_scale,
        rope_attn_factor: g.get_f32(&k("rope.scaling.attn_factor"))?.unwrap_or(1.0),
        n_ctx_train,
        n_ctx_orig: g
            .get_u32(&k("rope.scaling.original_context_length"))?
            .unwrap_or(n_ctx_train),
        has_rope_factors: has_short,
        rope_cache_rows: 0,
        tied_output: g.tensor("output.weight").is_none(),
    };
    config.validate()?;
    Ok(Config {
        rope_cache_rows: rope::cache_rows(&config),
        ..config
    })
}

/// Flattens `strings` into a string table: `n + 1` u32 positions, then
/// the bytes.
fn string_table<'s>(strings: impl Iterator<Item = &'s str> + Clone) -> Result<Vec<u8>> {
    let n = strings.clone().count();
    let mut out = Vec::with_capacity(4 * (n + 1));
    let mut at = 4 * (n + 1);
    out.extend_from_slice(&u32_pos(at)?.to_le_bytes());
    for s in strings.clone() {
        at += s.len();
        out.extend_from_slice(&u32_pos(at)?.to_le_bytes());
    }
    for s in strings {
        out.extend_from_slice(s.as_bytes());
    }
    Ok(out)
}

fn u32_pos(at: usize) -> Result<u32> {
    u32::try_from(at).map_err(|_| PackError::Unsupported("tokenizer tables over 4 GiB".into()))
}

/// Tokenizer tables read from a GGUF file, owned; [`OwnedTokenizer::tables`]
/// borrows them as the manifest stores them.
#[derive(Clone, Debug)]
pub struct OwnedTokenizer<'g> {
    kind: TokenizerKind,
    pre: &'g str,
    tokens: Vec<u8>,
    scores: Vec<u8>,
    types: Vec<u8>,
    merges: Vec<u8>,
    derived: Derived,
    special: SpecialTokens,
    chat_template: &'g str,
    /// `general.name`, or empty (the tokenizer's model-name rules use it).
    pub name: &'g str,
}

impl OwnedTokenizer<'_> {
    /// The tables, borrowed.
    pub fn tables(&self) -> TokenizerTables<'_> {
        TokenizerTables {
            kind: self.kind,
            pre: self.pre,
            tokens: &self.tokens,
            scores: &self.scores,
            types: &self.types,
            merges: &self.merges,
            attrs: &self.derived.attrs,
            eog: &self.derived.eog,
            token_index: &self.derived.token_index,
            merge_index: &self.derived.merge_index,
            specials: &self.derived.specials,
            special_automaton: &self.derived.automaton,
            special: self.special,
            chat_template: self.chat_template,
        }
    }
}

/// Reads the tokenizer of a GGUF file (a model or a vocabulary-only file
/// such as llama.cpp's `ggml-vocab-*.gguf`) and derives the lookup tables.
/// `n_vocab`, when given, is the embedding's row count, which the
/// vocabulary must match.
pub fn read_tokenizer<'g>(g: &Gguf<'g>, n_vocab: Option<u32>) -> Result<OwnedTokenizer<'g>> {
    let kind = match g.get_str("tokenizer.ggml.model")? {
        None | Some("none") => TokenizerKind::None,
        Some("llama") => TokenizerKind::SentencePiece,
        Some("gpt2" | "gemma4") => TokenizerKind::ByteLevelBpe,
        Some(other) => {
            let kind = match other {
                "bert" => "WPM",
                "t5" => "UGM",
                "rwkv" => "RWKV",
                "plamo2" => "PLaMo-2",
                "hybriddna" | "whitespace" => "BPE",
                _ => "unknown",
            };
            return Err(PackError::UnsupportedVocab {
                model: other.to_string(),
                kind,
            });
        }
    };
    let gemma4 = g.get_str("tokenizer.ggml.model")? == Some("gemma4");
    let mut t = OwnedTokenizer {
        kind,
        // llama.cpp gives every "gemma4" vocabulary the gemma4 pre-tokenizer.
        pre: if gemma4 {
            "gemma4"
        } else {
            g.get_str("tokenizer.ggml.pre")?.unwrap_or("")
        },
        tokens: Vec::new(),
        scores: Vec::new(),
        types: Vec::new(),
        merges: Vec::new(),
        derived: Derived::default(),
        special: TokenizerTables::EMPTY.special,
        chat_template: g.get_str("tokenizer.chat_template")?.unwrap_or(""),
        name: g.get_str("general.name").ok().flatten().unwrap_or(""),
    };
    if kind == TokenizerKind::None {
        return Ok(t);
    }
    let key = |k: &str, what| PackError::Key {
        key: k.to_string(),
        what,
    };
    let tokens = g
        .get_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| key("tokenizer.ggml.tokens", "missing"))?;
    let n_vocab = match n_vocab {
        Some(n) if tokens.len() != n as usize => {
            return Err(key(
                "tokenizer.ggml.tokens",
                "length differs from the embedding rows",
            ))
        }
        Some(n) => n,
        None => u32::try_from(tokens.len())
            .map_err(|_| key("tokenizer.ggml.tokens", "too many tokens"))?,
    };
    let texts = tokens.strings()?;
    t.tokens = string_table(texts.clone())?;
    if let Some(scores) = g.get_array("tokenizer.ggml.scores")? {
        if scores.len() != n_vocab as usize {
            return Err(key(
                "tokenizer.ggml.scores",
                "length differs from the vocabulary",
            ));
        }
        t.scores = scores.f32s()?.flat_map(f32::to_le_bytes).collect();
    }
    let mut types_i32 = None;
    if let Some(types) = g.get_array("tokenizer.ggml.token_type")? {
        if types.len() != n_vocab as usize {
            return Err(key(
                "tokenizer.ggml.token_type",
                "length differs from the vocabulary",
            ));
        }
        let v: Vec<i32> = types.i32s()?.collect();
        t.types = v
            .iter()
            .map(|&v| {
                u8::try_from(v).map_err(|_| key("tokenizer.ggml.token_type", "value out of range"))
            })
            .collect::<Result<_>>()?;
        types_i32 = Some(v);
    }
    let mut merge_texts: Vec<&str> = Vec::new();
    if let Some(merges) = g.get_array("tokenizer.ggml.merges")? {
        t.merges = string_table(merges.strings()?)?;
        merge_texts = merges.strings()?.collect();
    }
    let id = |k: &str| -> Result<u32> {
        match g.get_u32(k)? {
            Some(v) if v < n_vocab => Ok(v),
            Some(_) => Err(key(k, "token id outside the vocabulary")),
            None => Ok(NO_TOKEN),
        }
    };
    let by_text = |text: &str| {
        texts
            .clone()
            .position(|s| s == text)
            .map_or(NO_TOKEN, |p| p as u32)
    };
    let s = &mut t.special;
    // llama.cpp's defaults when the keys are absent: 1 and 2 for
    // SentencePiece, 11 for "gpt2" BPE, none for "gemma4".
    let spm = kind == TokenizerKind::SentencePiece;
    // The key's id, or llama.cpp's default when the key is absent: BOS 1,
    // EOS 2 and UNK 0 for SentencePiece, BOS = EOS = 11 for "gpt2" BPE,
    // none for "gemma4" (a default outside the vocabulary is none).
    let id_or = |k: &str, default: Option<u32>| -> Result<u32> {
        match (g.get_u32(k)?, default) {
            (None, Some(d)) if !gemma4 && d < n_vocab => Ok(d),
            _ => id(k),
        }
    };
    s.bos = id_or(
        "tokenizer.ggml.bos_token_id",
        Some(if spm { 1 } else { 11 }),
    )?;
    s.eos = id_or(
        "tokenizer.ggml.eos_token_id",
        Some(if spm { 2 } else { 11 }),
    )?;
    s.unk = id_or("tokenizer.ggml.unknown_token_id", spm.then_some(0))?;
    s.pad = id("tokenizer.ggml.padding_token_id")?;
    s.eot = id("tokenizer.ggml.eot_token_id")?;
    if s.eot == NO_TOKEN {
        // llama.cpp finds the end-of-turn token by its text.
        s.eot = ["<|end|>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>"]
            .iter()
            .map(|x| by_text(x))
            .find(|&i| i != NO_TOKEN && i != s.eos)
            .unwrap_or(NO_TOKEN);
    }
    // BOS by default for SentencePiece and the Llama 3 pre-tokenizers;
    // llama.cpp forces it on for Gemma 4.
    let llama3 = kind == TokenizerKind::ByteLevelBpe
        && PreTokenizer::from_name(t.pre) == Some(PreTokenizer::Llama3);
    s.add_bos = gemma4
        || g.get_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(spm || llama3);
    s.add_eos = g.get_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    s.add_space_prefix = g
        .get_bool("tokenizer.ggml.add_space_prefix")?
        .unwrap_or(spm);
    let opt = |k: &str| -> Result<Option<u32>> { Ok(Some(id(k)?).filter(|&i| i != NO_TOKEN)) };
    let either = |a: &str, b: &str| -> Result<Option<u32>> { Ok(opt(a)?.or(opt(b)?)) };
    let keys = Keys {
        eos: Some(s.eos).filter(|&i| i != NO_TOKEN),
        eot: Some(s.eot).filter(|&i| i != NO_TOKEN),
        eom: opt("tokenizer.ggml.eom_token_id")?,
        fim_pre: either(
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        )?,
        fim_suf: either(
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        )?,
        fim_mid: either(
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        )?,
        fim_pad: opt("tokenizer.ggml.fim_pad_token_id")?,
        fim_rep: opt("tokenizer.ggml.fim_rep_token_id")?,
        fim_sep: opt("tokenizer.ggml.fim_sep_token_id")?,
    };
    let all: Vec<&str> = texts.collect();
    t.derived = derive(&all, types_i32.as_deref(), &merge_texts, &keys);
    Ok(t)
}

/// Where a tensor's bytes come from.
enum Origin<'g> {
    /// A tensor of the GGUF file.
    Gguf(&'g TensorInfo<'g>),
    /// The RoPE table, computed here.
    RopeCache,
}

/// One tensor to write: where it comes from and what it becomes.
struct Planned<'g> {
    origin: Origin<'g>,
    entry: TensorEntry,
    /// The GGUF tensor is converted to `entry.dtype` row by row (F32, F16
    /// or BF16 source); otherwise its bytes are copied (or widened).
    convert: bool,
}

/// How to pack.
#[derive(Clone, Copy, Debug, Default)]
pub struct PackOptions {
    /// Convert the weights to this file type, as `llama-quantize` would;
    /// `None` keeps every tensor's type.
    pub quantize: Option<FileType>,
    /// Threads converting rows; 0 uses every CPU.
    pub threads: usize,
}

/// ggml's `ggml_n_dims`: 1 + the index of the last dimension above 1.
fn ggml_n_dims(dims: &[u64; 4]) -> u32 {
    (1..4)
        .rev()
        .find(|&i| dims[i] > 1)
        .map_or(1, |i| i as u32 + 1)
}

/// The type `ftype`'s policy gives each tensor of `g`, by name.
fn choices<'g>(g: &'g Gguf<'g>, config: &Config, ftype: FileType) -> HashMap<&'g str, Choice> {
    let mut order: Vec<&TensorInfo<'g>> = g.tensors().iter().collect();
    order.sort_by(|a, b| llama_order(a.name, b.name));
    let model = ModelDesc {
        n_layer: config.n_layer,
        llama_70b: config.arch == Arch::Llama
            && config.n_layer == 80
            && config.n_head != config.n_head_kv,
    };
    let mut policy = Policy::new(ftype, model, order.iter().map(|t| t.name));
    order
        .into_iter()
        .map(|t| {
            let desc = TensorDesc {
                name: t.name,
                cols: t.dims[0],
                n_dims: ggml_n_dims(&t.dims),
            };
            (t.name, policy.choose(&desc))
        })
        .collect()
}

fn plan_tensors<'g>(
    g: &'g Gguf<'g>,
    config: &Config,
    ftype: Option<FileType>,
) -> Result<Vec<Planned<'g>>> {
    let layout = TensorLayout::new(*config);
    let choices = ftype.map(|t| choices(g, config, t)).unwrap_or_default();
    let mut used = vec![false; g.tensors().len()];
    // Name to index; the first of repeated names, as a scan would find.
    let mut by_name = HashMap::with_capacity(g.tensors().len());
    for (i, t) in g.tensors().iter().enumerate() {
        by_name.entry(t.name).or_insert(i);
    }
    let mut out = Vec::with_capacity(layout.count());
    let mut offset = 0u64;
    for i in 0..layout.count() {
        let (role, layer) = layout
            .at(i)
            .ok_or_else(|| PackError::Unsupported("tensor layout".into()))?;
        offset = offset.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN;
        if role == Role::RopeCache {
            let (cols, rows) = layout.shape(role);
            let len = u64::from(cols) * u64::from(rows) * 4;
            let entry = TensorEntry {
                role,
                dtype: DType::F32,
                layer,
                cols,
                rows,
                offset,
                len,
                crc: 0,
            };
            out.push(Planned {
                origin: Origin::RopeCache,
                entry,
                convert: false,
            });
            offset += len;
            continue;
        }
        let name = role.gguf_name().replace('N', &layer.to_string());
        let pos = *by_name
            .get(name.as_str())
            .ok_or_else(|| PackError::MissingTensor(name.clone()))?;
        used[pos] = true;
        let info = &g.tensors()[pos];
        let bad = |what: String| PackError::BadTensor {
            name: name.clone(),
            what,
        };
        if info.dims[2..info.n_dims.max(2) as usize]
            .iter()
            .any(|&d| d != 1)
        {
            return Err(bad(format!(
                "has {} dimensions, expected at most 2",
                info.n_dims
            )));
        }
        let (cols, rows) = layout.shape(role);
        let got = (
            info.dims[0],
            if info.n_dims >= 2 { info.dims[1] } else { 1 },
        );
        if got != (u64::from(cols), u64::from(rows)) {
            return Err(bad(format!(
                "shape [{}, {}] does not match the hyperparameters (expected [{cols}, {rows}])",
                got.0, got.1
            )));
        }
        let choice = match choices.get(info.name) {
            Some(&c) if !role.needs_f32() => c,
            _ => Choice::Keep,
        };
        let mut convert = false;
        let dtype = match choice {
            Choice::Unsupported(ty) => {
                return Err(PackError::Unsupported(format!(
                    "tensor {name}: llama.cpp's {} policy stores it as {ty} (its rows hold {} \
                     values), a type phi-edge does not run",
                    ftype.map_or("", FileType::name),
                    info.dims[0]
                )))
            }
            Choice::To(t) if t.ggml_id() != info.ggml_type => {
                if !matches!(info.ggml_type, 0 | 1 | 30) {
                    return Err(PackError::Requantize {
                        name: name.clone(),
                        from: info.type_name(),
                        to: t.name(),
                    });
                }
                convert = true;
                t
            }
            _ => match DType::from_ggml_id(info.ggml_type) {
                Some(_) if role.needs_f32() && matches!(info.ggml_type, 1 | 30) => DType::F32,
                Some(t) if role.needs_f32() && t != DType::F32 => {
                    return Err(bad(format!(
                        "norm/rope tensor of type {} (f32, f16 or bf16 expected)",
                        info.type_name()
                    )))
                }
                Some(t) => t,
                None => {
                    return Err(PackError::Unsupported(format!(
                        "tensor {name} has type {}",
                        info.type_name()
                    )))
                }
            },
        };
        let row = dtype.row_bytes(cols as usize).ok_or_else(|| {
            bad(format!(
                "{cols} values per row is not a whole number of {} blocks",
                dtype.name()
            ))
        })?;
        let len = row as u64 * u64::from(rows);
        out.push(Planned {
            origin: Origin::Gguf(info),
            entry: TensorEntry {
                role,
                dtype,
                layer,
                cols,
                rows,
                offset,
                len,
                crc: 0,
            },
            convert,
        });
        offset += len;
    }
    if let Some(p) = used.iter().position(|u| !u) {
        return Err(PackError::Unsupported(format!(
            "tensor {} (phi-edge does not know what it is for)",
            g.tensors()[p].name
        )));
    }
    Ok(out)
}

/// The bytes of a planned tensor as the image stores them.
fn tensor_bytes<'g>(
    g: &Gguf<'g>,
    config: &Config,
    p: &Planned<'g>,
) -> Result<std::borrow::Cow<'g, [u8]>> {
    match p.origin {
        Origin::Gguf(info) => Ok(stored_bytes(g, info, p.entry.dtype)),
        Origin::RopeCache => Ok(rope_cache(g, config)?.into()),
    }
}

/// The bytes of GGUF tensor `info` stored as `dtype`: f16 and bf16 widened
/// to f32 where `dtype` is f32, else as they are.
fn stored_bytes<'g>(
    g: &Gguf<'g>,
    info: &TensorInfo<'g>,
    dtype: DType,
) -> std::borrow::Cow<'g, [u8]> {
    let src = g.tensor_data(info);
    match (info.ggml_type, dtype) {
        (1 | 30, DType::F32) => {
            let mut values = vec![0f32; src.len() / 2];
            widen(info.ggml_type, src, &mut values);
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        _ => src.into(),
    }
}

/// The values of `bytes`, GGUF values of type F32 (0), F16 (1) or BF16
/// (30, any other), into `out` (as many as both hold).
fn widen(ggml_type: u32, bytes: &[u8], out: &mut [f32]) {
    match ggml_type {
        0 => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        1 => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *v = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        _ => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *v = half::bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
    }
}

/// The RoPE table's bytes: `config.rope_cache_rows` positions with the
/// short LongRoPE factors (or none), computed with this build's (the
/// host's) `sinf`/`cosf`, as the session would.
fn rope_cache(g: &Gguf<'_>, config: &Config) -> Result<Vec<u8>> {
    let freq = if config.has_rope_factors {
        let name = Role::RopeFactorsShort.gguf_name();
        let info = g
            .tensor(name)
            .ok_or_else(|| PackError::MissingTensor(name.into()))?;
        let bytes = stored_bytes(g, info, DType::F32);
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        vec![1.0; config.n_rot as usize / 2]
    };
    let mut table = vec![0.0f32; config.rope_cache_rows as usize * config.n_rot as usize];
    rope::fill(config, &freq, 0, &mut table);
    Ok(table.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Packs a parsed GGUF file into an image written to `out`, calling
/// `progress(done, total)` with tensor bytes written. Returns the image
/// length.
pub fn pack<W: Write + Seek>(
    g: &Gguf<'_>,
    out: &mut W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    Ok(pack_with(g, out, &PackOptions::default(), progress)?.len)
}

/// What [`pack_with`] wrote.
#[derive(Clone, Debug)]
pub struct PackReport {
    /// The image's length.
    pub len: u64,
    /// The tensors converted: GGUF name, GGUF type, new type.
    pub converted: Vec<(String, &'static str, DType)>,
}

/// [`pack`] with options: with [`PackOptions::quantize`], weights are
/// converted to that file type's types on the way.
pub fn pack_with<W: Write + Seek>(
    g: &Gguf<'_>,
    out: &mut W,
    opts: &PackOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PackReport> {
    let config = read_config(g)?;
    let tok = read_tokenizer(g, Some(config.n_vocab))?;
    let mut planned = plan_tensors(g, &config, opts.quantize)?;
    let data_len = planned.last().map_or(0, |p| p.entry.offset + p.entry.len);

    let manifest = |table: &[u8]| {
        Manifest {
            config,
            name: g.get_str("general.name").ok().flatten().unwrap_or(""),
            tokenizer: tok.tables(),
            tensors: table,
        }
        .encode()
    };
    let table = |ps: &[Planned<'_>]| {
        ps.iter()
            .flat_map(|p| p.entry.encode())
            .collect::<Vec<u8>>()
    };
    // The manifest's length does not depend on the CRCs (the table is a
    // fixed-size blob), so the data can be placed before they are known.
    let manifest_len = manifest(&table(&planned)).len() as u64;
    let data_offset = (HEADER_LEN as u64 + manifest_len).div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN;

    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let start = out.stream_position()?;
    out.write_all(&vec![0u8; data_offset as usize])?;
    let mut data_crc = Crc32::new();
    let mut at = 0u64;
    let mut converted = Vec::new();
    for p in planned.iter_mut() {
        let pad = vec![0u8; (p.entry.offset - at) as usize];
        out.write_all(&pad)?;
        data_crc.update(&pad);
        match p.origin {
            Origin::Gguf(info) if p.convert => {
                let mut crc = Crc32::new();
                let base = p.entry.offset;
                convert_tensor(g, info, &p.entry, threads, &mut |bytes, done| {
                    crc.update(bytes);
                    data_crc.update(bytes);
                    out.write_all(bytes)?;
                    progress(base + done, data_len);
                    Ok(())
                })?;
                p.entry.crc = crc.finish();
                converted.push((info.name.to_string(), info.type_name(), p.entry.dtype));
            }
            _ => {
                let bytes = tensor_bytes(g, &config, p)?;
                p.entry.crc = crc32(&bytes);
                out.write_all(&bytes)?;
                data_crc.update(&bytes);
            }
        }
        at = p.entry.offset + p.entry.len;
        progress(at, data_len);
    }
    let m = manifest(&table(&planned));
    debug_assert_eq!(m.len() as u64, manifest_len);
    let header = Header {
        magic: MAGIC,
        version: VERSION,
        header_crc: 0,
        manifest_offset: HEADER_LEN as u64,
        manifest_len,
        manifest_crc: crc32(&m),
        data_crc: data_crc.finish(),
        data_offset,
        data_len,
        reserved: [0; 8],
    };
    out.seek(SeekFrom::Start(start))?;
    out.write_all(&header.encode())?;
    out.write_all(&m)?;
    out.seek(SeekFrom::Start(start + data_offset + data_len))?;
    Ok(PackReport {
        len: data_offset + data_len,
        converted,
    })
}

/// Output bytes converted per batch of rows (and per progress report).
const CONVERT_BATCH: usize = 4 << 20;

/// Converts GGUF tensor `info` (F32, F16 or BF16) to `entry.dtype`, row
/// by row on `threads` threads, handing each batch of rows to `sink` with
/// the tensor bytes done so far.
fn convert_tensor(
    g: &Gguf<'_>,
    info: &TensorInfo<'_>,
    entry: &TensorEntry,
    threads: usize,
    sink: &mut dyn FnMut(&[u8], u64) -> Result<()>,
) -> Result<()> {
    let cols = entry.cols as usize;
    let rows = entry.rows as usize;
    let row_out = entry.row_bytes();
    let elem = if info.ggml_type == 0 { 4 } else { 2 };
    let row_in = cols * elem;
    let src = g.tensor_data(info);
    if src.len() != rows * row_in || row_out == 0 {
        return Err(PackError::BadTensor {
            name: info.name.to_string(),
            what: "data size does not match its shape".into(),
        });
    }
    let batch_rows = (CONVERT_BATCH / row_out).clamp(1, rows.max(1));
    let mut buf = vec![0u8; batch_rows * row_out];
    let mut done = 0u64;
    for first in (0..rows).step_by(batch_rows) {
        let n = batch_rows.min(rows - first);
        let out = &mut buf[..n * row_out];
        let input = &src[first * row_in..(first + n) * row_in];
        let per_thread = n.div_ceil(threads.max(1));
        let failed = std::thread::scope(|s| {
            let workers: Vec<_> = out
                .chunks_mut(per_thread * row_out)
                .zip(input.chunks(per_thread * row_in))
                .enumerate()
                .map(|(t, (o, i))| {
                    s.spawn(move || {
                        convert_rows(info.ggml_type, entry.dtype, (cols, row_in, row_out), i, o)
                            .map_err(|(r, e)| ((first + t * per_thread + r) as u64, e))
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| w.join().ok().and_then(|r| r.err()))
                .min_by_key(|&(row, _)| row)
        });
        if let Some((row, error)) = failed {
            return Err(PackError::Quantize {
                name: info.name.to_string(),
                to: entry.dtype.name(),
                row,
                error,
            });
        }
        done += out.len() as u64;
        sink(out, done)?;
    }
    Ok(())
}

/// Converts whole rows of ggml type `src_type` in `input` to `dtype` in
/// `out`, given `(values, input bytes, output bytes)` per row; the first
/// failing row (counted within these) and why.
fn convert_rows(
    src_type: u32,
    dtype: DType,
    (cols, row_in, row_out): (usize, usize, usize),
    input: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), (usize, QuantError)> {
    let mut row = vec![0f32; cols];
    for (r, (i, o)) in input
        .chunks_exact(row_in)
        .zip(out.chunks_exact_mut(row_out))
        .enumerate()
    {
        // (`half` quiets a BF16 NaN where ggml keeps its bits; the
        // quantizers refuse NaN either way.)
        widen(src_type, i, &mut row);
        quantize_row(dtype, &row, o).map_err(|e| (r, e))?;
    }
    Ok(())
}

/// Packs GGUF bytes into an image in memory and checks that it opens.
pub fn pack_to_vec(gguf: &[u8]) -> Result<Vec<u8>> {
    pack_to_vec_with(gguf, &PackOptions::default())
}

/// [`pack_to_vec`] with options.
pub fn pack_to_vec_with(gguf: &[u8], opts: &PackOptions) -> Result<Vec<u8>> {
    let g = Gguf::parse(gguf)?;
    let mut cur = io::Cursor::new(Vec::new());
    pack_with(&g, &mut cur, opts, &mut |_, _| {})?;
    let image = cur.into_inner();
    Model::open_mapped(&image)?;
    Ok(image)
}

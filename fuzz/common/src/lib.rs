//! What the phi-edge fuzz targets share: tiny synthetic models (so one
//! execution takes microseconds, not milliseconds), CRC repair for mutated
//! images, the real vocabularies, and the seed corpora.
//!
//! Kept out of the fuzz targets' crate so the seed writer (`seeds`, a
//! plain binary) builds without libFuzzer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use phi_edge::crc::crc32;
use phi_edge::gguf::{Gguf, GgufWriter};
use phi_edge::image::header::HEADER_LEN;
use phi_edge::image::manifest::{Manifest, TokenizerTables};
use phi_edge::image::tensor::{TensorEntry, RECORD_LEN};
use phi_edge::pack::{pack_to_vec, read_tokenizer, OwnedTokenizer};
use phi_edge::plan::ARENA_ALIGN;
use phi_edge::{Arch, DType, Tokenizer};
use phi_edge_tests::synth::{self, Spec};

pub mod inputs;
pub mod run;
pub mod seeds;

/// Environment variable that turns a target binary into the seed writer:
/// with `PHI_EDGE_FUZZ_SEEDS=DIR`, its libFuzzer init ([`init`]) writes
/// every target's seeds to `DIR/<target>/`, prints each target and its
/// `-max_len` on stdout and exits, so `cargo xtask fuzz` needs no second
/// (uninstrumented) build for the seeds.
pub const SEEDS_ENV: &str = "PHI_EDGE_FUZZ_SEEDS";

/// What every target runs in libFuzzer's init: the seed writer when
/// [`SEEDS_ENV`] is set, else nothing.
pub fn init() {
    let Some(dir) = std::env::var_os(SEEDS_ENV) else {
        return;
    };
    match seeds::write(Path::new(&dir), &seeds::TARGETS) {
        Ok(n) => {
            eprintln!("seeds: {n} files in {}", Path::new(&dir).display());
            for t in seeds::TARGETS {
                println!("{t} {}", seeds::max_len(t));
            }
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("seeds: {}: {e}", Path::new(&dir).display());
            std::process::exit(1)
        }
    }
}

/// The most arena a fuzzed session may plan: an input asking for more is
/// skipped (bounding the arena is the job of the core's limits, not of
/// the fuzzer's memory).
pub const ARENA_CAP: usize = 64 << 20;

/// A tiny model: one or two layers 32 wide, small vocabulary. Every weight
/// type whose block is 32 values fits; K-quants need 256 (see
/// [`tiny_k`]).
pub fn tiny(arch: Arch, dtype: DType) -> Spec {
    Spec {
        arch,
        n_vocab: 64,
        n_embd: 32,
        n_layer: 1,
        n_head: 2,
        n_head_kv: if arch == Arch::Llama { 1 } else { 2 },
        n_ff: 64,
        n_rot: 16,
        dtype,
        tied: arch == Arch::Llama,
        rope_factors: arch == Arch::Phi3,
        seed: 7,
    }
}

/// The smallest model K-quant weights fit (rows of 256 values).
pub fn tiny_k(arch: Arch, dtype: DType) -> Spec {
    Spec {
        n_embd: 256,
        n_ff: 256,
        n_head: 4,
        n_head_kv: if arch == Arch::Llama { 2 } else { 4 },
        n_rot: 64,
        n_vocab: 16,
        ..tiny(arch, dtype)
    }
}

/// Trained context of the tiny models: the packed RoPE table has this
/// many rows (the synthetic default, 4096, would make every pack write
/// 256 KiB).
pub const TINY_CTX: u32 = 64;

/// Which tokenizer a tiny model carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocab {
    /// None (`tokenizer.ggml.model` absent).
    None,
    /// SentencePiece (`llama`), Phi-3 style specials.
    Spm,
    /// Byte-level BPE (`gpt2`, SmolLM pre-tokenizer), ChatML specials.
    Bpe,
}

/// The GGUF file of `spec` with a short trained context and the
/// tokenizer `vocab` (`spec.n_vocab` tokens).
pub fn tiny_gguf(spec: &Spec, vocab: Vocab) -> Vec<u8> {
    let a = match spec.arch {
        Arch::Phi3 => "phi3",
        Arch::Llama => "llama",
    };
    let ctx = format!("{a}.context_length");
    let orig = format!("{a}.rope.scaling.original_context_length");
    let mut w = synth::writer_without(spec, &[&ctx, &orig]);
    w.add_u32(&ctx, TINY_CTX);
    if spec.rope_factors {
        w.add_u32(&orig, TINY_CTX / 2);
    }
    add_vocab(&mut w, spec.n_vocab as usize, vocab);
    w.finish()
}

/// Adds a small tokenizer of `n` tokens to `w`.
pub fn add_vocab(w: &mut GgufWriter, n: usize, vocab: Vocab) {
    match vocab {
        Vocab::None => {}
        Vocab::Spm => {
            let mut toks: Vec<String> = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
                .into_iter()
                .chain(["<|end|>", "<|system|>", "<0x0A>", "<0x20>", "\u{2581}"])
                .map(String::from)
                .collect();
            let words = [
                "a",
                "b",
                "\u{2581}a",
                "\u{2581}the",
                "th",
                "e",
                "he",
                "é",
                "1",
                ".",
            ];
            toks.extend(words.iter().map(|s| s.to_string()));
            let mut i = 0;
            while toks.len() < n {
                toks.push(format!("x{i}"));
                i += 1;
            }
            toks.truncate(n);
            let types: Vec<i32> = toks
                .iter()
                .enumerate()
                .map(|(i, t)| match i {
                    0 => 2,
                    1..=6 => 3,
                    _ if t.starts_with("<0x") => 6,
                    _ => 1,
                })
                .collect();
            let scores: Vec<f32> = (0..toks.len()).map(|i| -(i as f32)).collect();
            let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
            w.add_str("tokenizer.ggml.model", "llama");
            w.add_array_str("tokenizer.ggml.tokens", &refs);
            w.add_array_f32("tokenizer.ggml.scores", &scores);
            w.add_array_i32("tokenizer.ggml.token_type", &types);
            w.add_u32("tokenizer.ggml.unknown_token_id", 0);
            w.add_u32("tokenizer.ggml.bos_token_id", 1);
            w.add_u32("tokenizer.ggml.eos_token_id", 2);
            w.add_str(
                "tokenizer.chat_template",
                "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}<|assistant|>\n",
            );
        }
        Vocab::Bpe => {
            let mut toks: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
                .into_iter()
                .map(String::from)
                .collect();
            // GPT-2's byte-to-character map for the printable ASCII bytes,
            // then merges of a few of them.
            toks.extend((b'a'..=b'z').map(|c| (c as char).to_string()));
            toks.extend(
                ["Ġ", "Ċ", "0", "1", "Ġt", "th", "Ġth", "he", "Ġthe", "in"].map(String::from),
            );
            let mut i = 0;
            while toks.len() < n {
                toks.push(format!("z{i}"));
                i += 1;
            }
            toks.truncate(n);
            let types: Vec<i32> = (0..toks.len()).map(|i| if i < 3 { 3 } else { 1 }).collect();
            let merges = ["Ġ t", "t h", "Ġ th", "h e", "Ġth e", "i n"];
            let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
            w.add_str("tokenizer.ggml.model", "gpt2");
            w.add_str("tokenizer.ggml.pre", "smollm");
            w.add_array_str("tokenizer.ggml.tokens", &refs);
            w.add_array_i32("tokenizer.ggml.token_type", &types);
            w.add_array_str("tokenizer.ggml.merges", &merges);
            w.add_u32("tokenizer.ggml.bos_token_id", 1);
            w.add_u32("tokenizer.ggml.eos_token_id", 2);
            w.add_str(
                "tokenizer.chat_template",
                "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
            );
        }
    }
}

/// The packed image of [`tiny_gguf`].
pub fn tiny_image(spec: &Spec, vocab: Vocab) -> Vec<u8> {
    pack_to_vec(&tiny_gguf(spec, vocab)).expect("the tiny model packs")
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes every checksum of a (mutated) image in place, as far as
/// the image's own fields locate them: each tensor's CRC-32 in the
/// tensor table (when the manifest decodes), the manifest's, the data
/// section's and the header's. Offsets and lengths are left as they are,
/// so the checks behind the checksums see the mutation.
pub fn fix_crcs(image: &mut [u8]) {
    if image.len() < HEADER_LEN {
        return;
    }
    let (Some(m_len), Some(d_off), Some(d_len)) =
        (u64_at(image, 24), u64_at(image, 40), u64_at(image, 48))
    else {
        return;
    };
    let m_end = HEADER_LEN.checked_add(usize::try_from(m_len).unwrap_or(usize::MAX));
    let data = usize::try_from(d_off).ok().and_then(|o| {
        let end = o.checked_add(usize::try_from(d_len).ok()?)?;
        (end <= image.len()).then_some(o..end)
    });
    if let Some(m_end) = m_end.filter(|&e| e <= image.len()) {
        // The tensor table is a byte string inside the manifest: find it
        // and fix each record's CRC over the bytes it names.
        let mut fixes = vec![];
        if let Ok(m) = Manifest::decode(&image[HEADER_LEN..m_end]) {
            // An empty table may point anywhere: it has no records to fix.
            let at = (m.tensors.as_ptr() as usize).wrapping_sub(image.as_ptr() as usize);
            for (i, rec) in m.tensors.chunks_exact(RECORD_LEN).enumerate() {
                let Ok(rec) = <&[u8; RECORD_LEN]>::try_from(rec) else {
                    continue;
                };
                let Ok(e) = TensorEntry::decode(rec, i as u32) else {
                    continue;
                };
                let bytes = d_off
                    .checked_add(e.offset)
                    .and_then(|s| Some((s, s.checked_add(e.len)?)))
                    .and_then(|(s, t)| {
                        image.get(usize::try_from(s).ok()?..usize::try_from(t).ok()?)
                    });
                if let Some(b) = bytes {
                    fixes.push((at + i * RECORD_LEN + 28, crc32(b)));
                }
            }
        }
        for (at, crc) in fixes {
            put_u32(image, at, crc);
        }
        let crc = crc32(&image[HEADER_LEN..m_end]);
        put_u32(image, 32, crc);
    }
    if let Some(d) = data {
        let crc = crc32(&image[d]);
        put_u32(image, 36, crc);
    }
    put_u32(image, 12, 0);
    let crc = crc32(&image[..HEADER_LEN]);
    put_u32(image, 12, crc);
}

/// `bytes` copied into a buffer aligned to [`ARENA_ALIGN`], as a mapped
/// image is (page-aligned `mmap`, a flash address): the returned vector
/// owns the memory, the slice is the copy.
pub fn aligned_copy(bytes: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut buf = vec![0u8; bytes.len() + ARENA_ALIGN];
    let skip = buf.as_ptr().align_offset(ARENA_ALIGN);
    buf[skip..skip + bytes.len()].copy_from_slice(bytes);
    (buf, skip..skip + bytes.len())
}

/// The workspace root (`fuzz/common/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Environment variable naming the SmolLM2 GGUF file for `tokenize`.
pub const SMOLLM2_ENV: &str = "PHI_EDGE_FUZZ_SMOLLM2";
/// Environment variable naming llama.cpp's Phi-3 vocabulary file.
pub const PHI3_VOCAB_ENV: &str = "PHI_EDGE_FUZZ_PHI3_VOCAB";

/// The real vocabularies: SmolLM2-135M-Instruct (byte-level BPE) and
/// llama.cpp's `ggml-vocab-phi-3.gguf` (SentencePiece), read once from
/// `$PHI_EDGE_FUZZ_SMOLLM2` / `$PHI_EDGE_FUZZ_PHI3_VOCAB`, or from where
/// `cargo xtask setup` puts them.
pub fn real_vocabs() -> &'static [Tokenizer<'static>] {
    static VOCABS: OnceLock<Vec<Tokenizer<'static>>> = OnceLock::new();
    VOCABS.get_or_init(|| {
        let root = workspace_root().join("target");
        let files = [
            (
                SMOLLM2_ENV,
                root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
            (
                PHI3_VOCAB_ENV,
                root.join("vendor/vocab/ggml-vocab-phi-3.gguf"),
            ),
        ];
        files
            .into_iter()
            .map(|(env, default)| {
                let path = std::env::var_os(env).map_or(default, PathBuf::from);
                load_vocab(&path).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e} (run `cargo xtask setup`, or set {env})",
                        path.display()
                    )
                })
            })
            .collect()
    })
}

/// Environment variable naming the directory of llama.cpp's
/// `ggml-vocab-*.gguf` files for [`pretok_vocabs`].
pub const VOCAB_DIR_ENV: &str = "PHI_EDGE_FUZZ_VOCAB_DIR";

/// llama.cpp's BPE vocabularies whose pre-tokenizers have scanners of their
/// own (llama-bpe, qwen35, deepseek-llm, deepseek-coder, falcon, gpt-neox
/// for the default, gemma-4), and llama-bpe's tables under the `gpt-4o`
/// pre-tokenizer; read once from `$PHI_EDGE_FUZZ_VOCAB_DIR` or where
/// `cargo xtask setup` puts them.
pub fn pretok_vocabs() -> &'static [Tokenizer<'static>] {
    static VOCABS: OnceLock<Vec<Tokenizer<'static>>> = OnceLock::new();
    VOCABS.get_or_init(|| {
        let dir = std::env::var_os(VOCAB_DIR_ENV).map_or_else(
            || workspace_root().join("target/vendor/vocab"),
            PathBuf::from,
        );
        let mut out = Vec::new();
        for stem in [
            "llama-bpe",
            "qwen35",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "gpt-neox",
            "gemma-4",
        ] {
            let path = dir.join(format!("ggml-vocab-{stem}.gguf"));
            let (tables, name) = load_tables(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run `cargo xtask setup`, or set {VOCAB_DIR_ENV})",
                    path.display()
                )
            });
            out.push(Tokenizer::new(tables, name).expect("supported pre-tokenizer"));
            if stem == "llama-bpe" {
                let gpt4o = Box::leak(Box::new(TokenizerTables {
                    pre: "gpt-4o",
                    ..*tables
                }));
                out.push(Tokenizer::new(gpt4o, name).expect("gpt-4o"));
            }
        }
        out
    })
}

/// A tokenizer read from a GGUF file, its tables leaked (read once per
/// process).
fn load_vocab(path: &Path) -> Result<Tokenizer<'static>, String> {
    let (tables, name) = load_tables(path)?;
    Tokenizer::new(tables, name).map_err(|e| e.to_string())
}

/// The tokenizer tables of a GGUF file and its model name, leaked.
fn load_tables(path: &Path) -> Result<(&'static TokenizerTables<'static>, &'static str), String> {
    // What is leaked stays referenced from a static, so LeakSanitizer
    // does not report it when the fuzzer exits.
    static KEPT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let keep = |p: *const u8| {
        KEPT.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p as usize)
    };
    let bytes: &'static [u8] = std::fs::read(path).map_err(|e| e.to_string())?.leak();
    keep(bytes.as_ptr());
    let g: &'static Gguf<'static> =
        Box::leak(Box::new(Gguf::parse(bytes).map_err(|e| e.to_string())?));
    keep(std::ptr::from_ref(g).cast());
    let owned: &'static OwnedTokenizer<'static> = Box::leak(Box::new(
        read_tokenizer(g, None).map_err(|e| e.to_string())?,
    ));
    keep(std::ptr::from_ref(owned).cast());
    let tables = Box::leak(Box::new(owned.tables()));
    keep(std::ptr::from_ref(tables).cast());
    Ok((tables, owned.name))
}

/// Tokenizes `text` with right-sized buffers; panics only on an error the
/// tokenizer must not give for any text (a wrong buffer size).
pub fn tokenize_checked(
    t: &Tokenizer<'_>,
    text: &[u8],
    add_special: bool,
    parse_special: bool,
) -> Vec<u32> {
    let mut work = vec![0u8; t.work_bytes(text.len())];
    let mut out = vec![0u32; text.len() + 4];
    let n = match t.tokenize(text, add_special, parse_special, &mut out, &mut work) {
        Err(phi_edge::Error::BufferTooSmall { need, .. }) => {
            assert!(
                need > out.len(),
                "BufferTooSmall asks for {need} with {} given",
                out.len()
            );
            out.resize(need, 0);
            match t.tokenize(text, add_special, parse_special, &mut out, &mut work) {
                Ok(n) => n,
                Err(e) => return check_error(e),
            }
        }
        Ok(n) => n,
        Err(e) => return check_error(e),
    };
    out.truncate(n);
    for &id in &out {
        assert!(
            id < t.n_vocab(),
            "id {id} outside the vocabulary of {}",
            t.n_vocab()
        );
    }
    out
}

/// The errors a tokenizer may give for hostile text: anything but a
/// work buffer it sized itself being too small.
fn check_error(e: phi_edge::Error) -> Vec<u32> {
    if let phi_edge::Error::WorkTooSmall { need, got } = e {
        panic!("work_bytes() too small: tokenize needs {need}, got {got}");
    }
    vec![]
}

//! Seed corpora: the tiny synthetic models, the malformed corpus
//! (`tests/src/corpus.rs`) and its breakages redone on a tiny model, the
//! tokenizer corpus, the real chat templates, request blobs, sampler
//! settings and fault plans.

use std::path::Path;

use phi_edge::gguf::GgufWriter;
use phi_edge::{Arch, DType, SamplerConfig};
use phi_edge_board::request::Request;
use phi_edge_tests::corpus;

use crate::inputs::{ChatInput, SamplerInput, StreamInput};
use crate::{tiny, tiny_gguf, tiny_image, workspace_root, Vocab, TINY_CTX};

/// The targets, in the order `cargo xtask fuzz` runs them (fastest first).
pub const TARGETS: [&str; 7] = [
    "request",
    "chat_template",
    "sampler",
    "tokenize",
    "stream_faults",
    "image",
    "gguf_pack",
];

/// Longest input each target is given (`-max_len`).
pub fn max_len(target: &str) -> usize {
    match target {
        "gguf_pack" | "image" => 64 << 10,
        "tokenize" | "chat_template" => 2048,
        "sampler" => 4096,
        _ => 1024,
    }
}

/// The seeds of `target`, named.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let named = |v: Vec<(&str, Vec<u8>)>| v.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    let max = max_len(target);
    let mut v: Vec<(String, Vec<u8>)> = match target {
        "gguf_pack" => gguf_seeds(),
        "image" => image_seeds(),
        "tokenize" => text_seeds(),
        "chat_template" => chat_seeds(),
        "request" => named(request_seeds()),
        "sampler" => named(sampler_seeds()),
        "stream_faults" => named(stream_seeds()),
        _ => vec![],
    };
    v.retain(|(_, b)| b.len() <= max);
    v
}

/// Writes the seeds of every target in `targets` to `dir/<target>/`
/// (files named `seed-<name>`, rewritten each time; what the fuzzer adds
/// is left alone). Returns the number of files written.
pub fn write(dir: &Path, targets: &[&str]) -> std::io::Result<usize> {
    let mut n = 0;
    for t in targets {
        let d = dir.join(t);
        std::fs::create_dir_all(&d)?;
        for (name, bytes) in seeds(t) {
            let file: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            std::fs::write(d.join(format!("seed-{file}")), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The tiny models' variety: both architectures, most weight types, both
/// tokenizer kinds and none.
fn model_specs() -> Vec<(String, phi_edge_tests::synth::Spec, Vocab)> {
    use Arch::{Llama, Phi3};
    let mut v = vec![];
    for (arch, dt, vocab) in [
        (Phi3, DType::Q8_0, Vocab::Spm),
        (Phi3, DType::F16, Vocab::Bpe),
        (Phi3, DType::F32, Vocab::None),
        (Llama, DType::Q4_0, Vocab::Bpe),
        (Llama, DType::Q4_1, Vocab::Spm),
        (Llama, DType::BF16, Vocab::None),
    ] {
        v.push((format!("{arch:?}-{dt:?}-{vocab:?}"), tiny(arch, dt), vocab));
    }
    // K-quant models (rows of 256) are over the 64 KiB input limit:
    // `stream_faults` runs one.
    v
}

fn gguf_seeds() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = model_specs()
        .into_iter()
        .map(|(n, s, vocab)| (n, tiny_gguf(&s, vocab)))
        .collect();
    // The malformed corpus's breakages, on a tiny model (the corpus's own
    // base model is 1 MB, over the input limit).
    let spec = tiny(Arch::Phi3, DType::Q8_0);
    let w = |skip: &[&str]| {
        let mut w = phi_edge_tests::synth::writer_without(
            &spec,
            &[&["phi3.context_length"], skip].concat(),
        );
        w.add_u32("phi3.context_length", TINY_CTX);
        w
    };
    let mut add = |name: &str, w: GgufWriter| v.push((name.to_string(), w.finish()));
    add("version-1", {
        let mut x = w(&[]);
        x.set_version(1);
        x
    });
    add("n-dims-0", {
        let mut x = w(&[]);
        x.set_tensor_n_dims(0, 0);
        x
    });
    add("n-dims-5", {
        let mut x = w(&[]);
        x.set_tensor_n_dims(0, 5);
        x
    });
    add("n-tensors-huge", {
        let mut x = w(&[]);
        x.set_n_tensors(u64::MAX - 1);
        x
    });
    add("n-kv-huge", {
        let mut x = w(&[]);
        x.set_n_kv(u64::MAX);
        x
    });
    add("offset-wraps", {
        let mut x = w(&[]);
        x.set_tensor_offset(0, u64::MAX - 31);
        x
    });
    add("alignment-0", {
        let mut x = w(&[]);
        x.set_alignment(0);
        x
    });
    add("unknown-type", {
        let mut x = w(&[]);
        x.set_tensor_type(2, 77);
        x
    });
    add("q5_0", {
        let mut x = w(&[]);
        x.set_tensor_type(2, 6);
        x
    });
    add("duplicate-key", {
        let mut x = w(&[]);
        x.add_u32("phi3.block_count", 1);
        x
    });
    add("missing-tensor", w(&["blk.0.ffn_down.weight"]));
    add("head-count-0", {
        let mut x = w(&["phi3.attention.head_count"]);
        x.add_u32("phi3.attention.head_count", 0);
        x
    });
    add("blocks-1000", {
        let mut x = w(&["phi3.block_count"]);
        x.add_u32("phi3.block_count", 1000);
        x
    });
    add("string-len-huge", {
        let mut x = w(&[]);
        let mut s = (u64::MAX - 3).to_le_bytes().to_vec();
        s.extend_from_slice(b"abc");
        x.add_raw_kv("general.description", 8, &s);
        x
    });
    add("array-len-huge", {
        let mut x = w(&[]);
        let mut a = 8u32.to_le_bytes().to_vec();
        a.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        x.add_raw_kv("general.tags", 9, &a);
        x
    });
    for c in corpus::gguf_cases() {
        v.push((format!("corpus-{}", c.name), c.bytes));
    }
    v
}

fn image_seeds() -> Vec<(String, Vec<u8>)> {
    let mut v = vec![];
    for (name, spec, vocab) in model_specs() {
        let image = tiny_image(&spec, vocab);
        if name == "Phi3-Q8_0-Spm" {
            for c in corpus::image_cases(&image) {
                v.push((format!("corpus-{}", c.name), c.bytes));
            }
        }
        v.push((name, image));
    }
    v
}

/// Paragraphs of the tokenizer corpus (`tests/oracle/tokenizer_corpus.txt`)
/// and special-token text.
fn text_seeds() -> Vec<(String, Vec<u8>)> {
    let path = workspace_root().join("tests/oracle/tokenizer_corpus.txt");
    let text = std::fs::read(&path).unwrap_or_default();
    let mut v: Vec<(String, Vec<u8>)> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| (format!("corpus-{i}"), l.to_vec()))
        .collect();
    for (i, s) in [
        "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
        "<|user|>\nHello<|end|>\n<|assistant|>\n",
        "<s> </s><unk> <|endoftext|><|end|>",
        "   \t\n\r\n  12345 67 ü ß 日本語 🙂 \u{200b}",
        "<|im_start|<|im_start|>><|end|<|end|>>",
    ]
    .iter()
    .enumerate()
    {
        v.push((format!("special-{i}"), s.as_bytes().to_vec()));
    }
    v.push((
        "invalid-utf8".into(),
        vec![0xff, 0xfe, b'a', 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f],
    ));
    v
}

fn chat_seeds() -> Vec<(String, Vec<u8>)> {
    let mut templates: Vec<(String, String)> = vec![
        ("chatml".into(), "chatml".into()),
        ("phi3".into(), "phi3".into()),
        ("mistral".into(), "[INST] {{ m }} [/INST]".into()),
        ("empty".into(), String::new()),
    ];
    let chat = workspace_root().join("target/ref/chat.json");
    if let Some(json) = std::fs::read_to_string(chat)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    {
        if let Some(t) = json["templates"].as_object() {
            for (name, t) in t {
                if let Some(text) = t["text"].as_str() {
                    templates.push((name.clone(), text.into()));
                }
            }
        }
        if let Some(d) = json["detect"].as_array() {
            for (i, d) in d.iter().enumerate() {
                if let Some(text) = d["text"].as_str() {
                    templates.push((format!("detect-{i}"), text.into()));
                }
            }
        }
    }
    let mut v = vec![];
    for (i, (name, t)) in templates.iter().enumerate() {
        let flags = (i % 8) as u8;
        v.push((
            name.clone(),
            ChatInput::encode(
                flags,
                t,
                "Be brief.",
                "What is 2+2?",
                "<|im_end|>and <|end|>?",
            ),
        ));
    }
    v
}

fn request_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = vec![];
    let mut buf = [0u8; 512];
    let mut add = |name, r: &Request<'_>| {
        if let Ok(b) = r.encode(&mut buf) {
            v.push((name, b.to_vec()));
        }
    };
    add("default", &Request::new("What is the capital of France?"));
    let mut r = Request::new("Hi");
    r.system = Some("You are terse.");
    r.chat = true;
    r.temperature = 0.0;
    r.max_tokens = 1;
    r.n_ctx = 4096;
    r.icount = true;
    add("chat", &r);
    r.temperature = f32::NAN;
    r.n_ctx = u32::MAX;
    r.seed = u64::MAX;
    add("extreme", &r);
    v.push(("bad-magic", b"PHRX\x02\x00".to_vec()));
    v.push(("version-1", b"PHRQ\x01\x00".to_vec()));
    v
}

fn sampler_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let d = SamplerConfig::DEFAULT;
    let greedy = SamplerConfig::GREEDY;
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    vec![
        (
            "default",
            SamplerInput::encode(&d, 32, 2, &[1.0, 2.0, -1.0, 0.5, 3.0, 3.0]),
        ),
        (
            "greedy-nan",
            SamplerInput::encode(&greedy, 8, 1, &[nan, 1.0, inf, -inf]),
        ),
        (
            "nonfinite",
            SamplerInput::encode(&d, 16, 3, &[nan, inf, -inf, 0.0, -0.0, f32::MIN, f32::MAX]),
        ),
        (
            "penalty",
            SamplerInput::encode(
                &SamplerConfig {
                    repeat_penalty: 1.3,
                    repeat_last_n: 4,
                    top_k: 0,
                    top_p: 1.0,
                    min_p: 0.0,
                    ..d
                },
                64,
                4,
                &[0.1, 0.2, 0.3, -5.0],
            ),
        ),
        (
            "hot",
            SamplerInput::encode(
                &SamplerConfig {
                    temperature: 1e-30,
                    top_k: 1000,
                    ..d
                },
                512,
                1,
                &[1e30, -1e30, 1e-38],
            ),
        ),
        ("all-inf", SamplerInput::encode(&d, 5, 1, &[inf])),
        ("all-neg-inf", SamplerInput::encode(&d, 5, 1, &[-inf])),
    ]
}

fn stream_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "clean-phi3",
            StreamInput::encode(0, 2, 1, &[1, 5, 9], 17, &[]),
        ),
        (
            "clean-llama",
            StreamInput::encode(1, 3, 2, &[1, 5, 9, 2, 63], 17, &[]),
        ),
        (
            "open-fails",
            StreamInput::encode(0, 1, 1, &[3], 4, &[(0, 0), (1, 200)]),
        ),
        (
            "early",
            StreamInput::encode(1, 2, 1, &[1, 2, 3, 4], 5, &[(3, 0), (5, 255)]),
        ),
        (
            "late",
            StreamInput::encode(
                2,
                4,
                4,
                &[7, 7, 7, 7, 7, 7],
                8,
                &[(20, 10), (31, 0), (40, 130)],
            ),
        ),
        (
            "many",
            StreamInput::encode(
                0,
                1,
                3,
                &[1, 2],
                3,
                &[(4, 0), (4, 0), (6, 0), (9, 129), (12, 0)],
            ),
        ),
    ]
}

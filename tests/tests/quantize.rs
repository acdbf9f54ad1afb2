//! `pack --type` against llama.cpp's quantizer.
//!
//! - Row quantizers and f16/bf16 rounding: `quant_rows.json` (written by
//!   `tests/oracle/quant_ref.py` from ggml's own C functions through
//!   ctypes) holds chosen rows (zeros, ties, huge and tiny magnitudes,
//!   one-sided rows, outliers, random rows) with the bytes
//!   `ggml_quantize_chunk` wrote for each type and whether
//!   `ggml_validate_row_data` accepts them; `quantize_row` must write the
//!   same bytes, and fail exactly where llama.cpp's validation fails.
//! - Whole models: for every file `llama_model_quantize` made from an F32
//!   source (`cases.json`'s `quantized`: 3 synthetic models x q8_0, q4_0,
//!   q4_1, q4_k_m, q6_k, and phi3 to f16 and bf16), packing the source with
//!   that file type gives every tensor the type and the bytes of llama.cpp's
//!   file, and so the same image as packing llama.cpp's file; its logits
//!   equal llama.cpp's golden for that file to the bit. A model with rows
//!   of 96 values checks the K-quant fallbacks: q6_k (Q8_0 in place of
//!   Q6_K) must match, q4_k_m (Q5_0, not run by phi-edge) be refused,
//!   naming a tensor llama.cpp stored as Q5_0.
//! - Refusals: an already-quantized tensor, NaN weights, a fallback type
//!   phi-edge does not run.

use std::collections::HashMap;

use phi_edge::gguf::Gguf;
use phi_edge::pack::{pack_to_vec, pack_to_vec_with, PackError, PackOptions};
use phi_edge::quant::{floats, quantize_row, FileType, QuantError};
use phi_edge::{DType, Mapped, Model, Plan, RunOptions, Session};
use phi_edge_portable::Portable;
use phi_edge_tests::goldens::{self, bitwise, read_json};
use phi_edge_tests::ref_dir;
use phi_edge_tests::synth::{self, Spec};
use serde::Deserialize;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[derive(Deserialize)]
struct Rows {
    rows: Vec<Row>,
    fp16: Conversion,
    bf16: Conversion,
}

#[derive(Deserialize)]
struct Row {
    name: String,
    x: String,
    out: HashMap<String, Quantized>,
}

#[derive(Deserialize)]
struct Quantized {
    hex: String,
    valid: bool,
}

#[derive(Deserialize)]
struct Conversion {
    x: String,
    out: String,
}

fn load_rows() -> Rows {
    read_json(&ref_dir(), "quant_rows.json")
}

fn dtype(name: &str) -> DType {
    DType::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("unknown type {name}"))
}

#[test]
fn row_quantizers_write_ggml_bytes() {
    let rows = load_rows();
    let mut checked = 0;
    let mut fails = vec![];
    for r in &rows.rows {
        let x = f32s(&unhex(&r.x));
        for (tname, q) in &r.out {
            let t = dtype(tname);
            let want = unhex(&q.hex);
            let mut got = vec![0u8; want.len()];
            match (quantize_row(t, &x, &mut got), q.valid) {
                (Ok(()), true) if got == want => {}
                (Ok(()), true) => {
                    let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                    fails.push(format!("{} {tname}: byte {at} differs", r.name));
                }
                (Err(QuantError::Overflow), false) => {}
                (got, valid) => fails.push(format!(
                    "{} {tname}: {got:?}, llama.cpp's validation says {valid}",
                    r.name
                )),
            }
            checked += 1;
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    assert!(checked >= 7 * 30, "only {checked} rows checked");
    let invalid = rows
        .rows
        .iter()
        .flat_map(|r| r.out.values())
        .filter(|q| !q.valid)
        .count();
    assert!(invalid > 0, "no overflowing row among the goldens");
}

#[test]
fn fp16_and_bf16_rounding_is_ggml_s() {
    let rows = load_rows();
    for (conv, f, what) in [
        (&rows.fp16, floats::fp32_to_fp16 as fn(f32) -> u16, "f16"),
        (&rows.bf16, floats::fp32_to_bf16, "bf16"),
    ] {
        let x = f32s(&unhex(&conv.x));
        let want = u16s(&unhex(&conv.out));
        assert_eq!(x.len(), want.len());
        assert!(x.iter().any(|v| v.is_nan()), "no NaN among the inputs");
        for (v, w) in x.iter().zip(want) {
            assert_eq!(f(*v), w, "{what} of {:#010x}", v.to_bits());
        }
    }
}

/// One of `cases.json`'s `quantized` files.
#[derive(Deserialize)]
struct QuantizedModel {
    model: String,
    source: String,
    ftype: String,
}

#[derive(Deserialize)]
struct Index {
    quantized: Vec<QuantizedModel>,
}

/// (name, ggml type, bytes) of every tensor of GGUF `bytes`.
fn tensors(bytes: &[u8]) -> HashMap<String, (u32, Vec<u8>)> {
    let g = Gguf::parse(bytes).unwrap();
    g.tensors()
        .iter()
        .map(|t| (t.name.to_string(), (t.ggml_type, g.tensor_data(t).to_vec())))
        .collect()
}

/// Our image's tensors, by role/layer key, with their types and bytes.
fn image_tensors(image: &[u8]) -> Vec<(String, DType, Vec<u8>)> {
    let model = Model::open_mapped(image).unwrap();
    model
        .tensors()
        .map(|t| {
            let at = model.tensor_offset(&t) as usize;
            (
                format!("{:?}.{}", t.role, t.layer),
                t.dtype,
                image[at..at + t.len as usize].to_vec(),
            )
        })
        .collect()
}

/// Logits of every position of `tokens`, portable kernels, one thread.
fn logits(image: &[u8], tokens: &[u32], n_ctx: u32) -> Vec<f32> {
    let model = Model::open_mapped(image).unwrap();
    let opts = RunOptions::mapped(n_ctx);
    let nv = model.config().n_vocab as usize;
    let mut arena = vec![0u8; Plan::new(model.config(), &opts).unwrap().bytes() + 64];
    let mut out = vec![0f32; tokens.len() * nv];
    let mut s = Session::new(&model, Portable, Mapped(image), &mut arena, &opts).unwrap();
    s.eval(tokens, Some(&mut out)).unwrap();
    out
}

#[test]
fn pack_type_equals_llama_quantize() {
    let dir = ref_dir();
    let index: Index = read_json(&dir, "cases.json");
    let cases = goldens::load(&dir);
    let mut sources: HashMap<String, Vec<u8>> = HashMap::new();
    let mut per_type: HashMap<String, usize> = HashMap::new();
    let mut with_logits = 0;
    let mut refused = 0;
    for q in &index.quantized {
        let ftype = FileType::from_name(&q.ftype).unwrap();
        let src = sources
            .entry(q.source.clone())
            .or_insert_with(|| std::fs::read(dir.join(&q.source)).unwrap());
        let theirs_gguf = std::fs::read(dir.join(&q.model)).unwrap();
        let opts = PackOptions {
            quantize: Some(ftype),
            threads: 2,
        };
        // A type phi-edge does not run (a K-quant's fallback): refused,
        // naming that tensor and type.
        let want = tensors(&theirs_gguf);
        let unsupported: Vec<(&String, u32)> = want
            .iter()
            .filter(|(_, (ty, _))| DType::from_ggml_id(*ty).is_none())
            .map(|(name, (ty, _))| (name, *ty))
            .collect();
        if !unsupported.is_empty() {
            match pack_to_vec_with(src, &opts) {
                Err(PackError::Unsupported(msg)) => {
                    let named = unsupported.iter().any(|(name, ty)| {
                        let ty = phi_edge::gguf::ggml_type_info(*ty).unwrap().name;
                        msg.contains(name.as_str()) && msg.contains(ty)
                    });
                    assert!(named, "{}: {msg}", q.model);
                }
                other => panic!("{}: expected Unsupported, got {:?}", q.model, other.err()),
            }
            refused += 1;
            continue;
        }
        let ours = pack_to_vec_with(src, &opts)
            .unwrap_or_else(|e| panic!("{} --type {}: {e}", q.source, q.ftype));
        let theirs = pack_to_vec(&theirs_gguf).unwrap();
        // Every tensor: llama.cpp's type and bytes (the image keeps the
        // GGUF bytes of every non-f32-widened tensor as they are).
        let ours_t = image_tensors(&ours);
        let theirs_t = image_tensors(&theirs);
        assert_eq!(ours_t.len(), theirs_t.len());
        for ((key, t, bytes), (_, t2, bytes2)) in ours_t.iter().zip(&theirs_t) {
            assert_eq!(t, t2, "{}: {key} is {t:?}, llama.cpp's {t2:?}", q.model);
            assert!(bytes == bytes2, "{}: {key} ({t:?}) bytes differ", q.model);
        }
        let n_quant = want
            .values()
            .filter(|(ty, _)| !matches!(ty, 0 | 1 | 30))
            .count();
        assert!(
            n_quant > 0 || matches!(ftype, FileType::F16 | FileType::BF16),
            "{}: no quantized tensor",
            q.model
        );
        assert!(ours == theirs, "{}: images differ", q.model);
        *per_type.entry(q.ftype.clone()).or_default() += 1;
        // The logits llama.cpp computed on its file.
        if let Some(c) = cases.cases.iter().find(|c| c.model == q.model) {
            let model = Model::open_mapped(&ours).unwrap();
            let golden = c.golden(&dir, model.config().n_vocab as usize);
            let got = logits(&ours, &c.tokens, c.n_ctx);
            let (same, first) = bitwise(&got, &golden);
            assert!(
                first.is_none(),
                "{}: position {} is not llama.cpp's to the bit ({same}/{} are)",
                c.name,
                first.unwrap_or(0),
                c.tokens.len()
            );
            with_logits += 1;
        }
        eprintln!("{} --type {}: identical to {}", q.source, q.ftype, q.model);
    }
    for t in ["q8_0", "q4_0", "q4_1", "q4_k_m", "q6_k"] {
        assert!(per_type.get(t) >= Some(&3), "3 models quantized to {t}");
    }
    assert!(with_logits >= 15, "{with_logits} with logits");
    // llama-narrow (rows of 96) to q4_k_m: Q4_K falls back to Q5_0.
    assert!(
        refused >= 1,
        "no fallback to an unsupported type was checked"
    );
}

#[test]
fn refuses_to_requantize() {
    let dir = ref_dir();
    let gguf = std::fs::read(dir.join("models/phi3-q4_0.gguf")).unwrap();
    let opts = |t| PackOptions {
        quantize: Some(t),
        threads: 1,
    };
    match pack_to_vec_with(&gguf, &opts(FileType::Q8_0)) {
        Err(PackError::Requantize { name, from, to }) => {
            assert_eq!((from, to), ("q4_0", "q8_0"), "{name}");
            let msg = PackError::Requantize { name, from, to }.to_string();
            assert!(msg.contains("already quantized (q4_0)"), "{msg}");
        }
        other => panic!("expected Requantize, got {:?}", other.err()),
    }
    // The policy's own types are kept as they are: the same image.
    let same = pack_to_vec_with(&gguf, &opts(FileType::Q4_0)).unwrap();
    assert!(same == pack_to_vec(&gguf).unwrap());
}

#[test]
fn refuses_nan_weights() {
    let spec = Spec::phi3(DType::F32);
    let mut w = synth::writer_without(&spec, &["blk.1.ffn_down.weight"]);
    let (cols, rows) = (spec.n_ff as usize, spec.n_embd as usize);
    let mut v = vec![0.01f32; cols * rows];
    v[3 * cols + 5] = f32::NAN;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    w.add_tensor(
        "blk.1.ffn_down.weight",
        &[cols as u64, rows as u64],
        0,
        &bytes,
    );
    let gguf = w.finish();
    let opts = PackOptions {
        quantize: Some(FileType::Q4_0),
        threads: 2,
    };
    match pack_to_vec_with(&gguf, &opts) {
        Err(PackError::Quantize {
            name, row, error, ..
        }) => {
            assert_eq!(
                (name.as_str(), row, error),
                ("blk.1.ffn_down.weight", 3, QuantError::NonFinite)
            );
        }
        other => panic!("expected Quantize, got {:?}", other.err()),
    }
}

#[test]
fn k_quant_fallbacks() {
    // Rows of 96 values: llama.cpp's Q6_K falls back to Q8_0 (and the
    // output rule gives Q8_0); Q4_K would fall back to Q5_0, which
    // phi-edge does not run.
    let spec = Spec {
        n_embd: 96,
        n_head: 3,
        n_head_kv: 1,
        n_rot: 32,
        ..Spec::llama(DType::F32)
    };
    let gguf = synth::build(&spec);
    let opts = |t| PackOptions {
        quantize: Some(t),
        threads: 1,
    };
    let image = pack_to_vec_with(&gguf, &opts(FileType::Q6K)).unwrap();
    for (key, t, _) in image_tensors(&image) {
        let want = if key.contains("Norm") || key.contains("Rope") {
            DType::F32
        } else if key.starts_with("FfnDown") {
            DType::Q6K // rows of n_ff = 256
        } else {
            DType::Q8_0
        };
        assert_eq!(t, want, "{key}");
    }
    match pack_to_vec_with(&gguf, &opts(FileType::Q4KM)) {
        Err(PackError::Unsupported(msg)) => assert!(msg.contains("q5_0"), "{msg}"),
        other => panic!("expected Unsupported, got {:?}", other.err()),
    }
}

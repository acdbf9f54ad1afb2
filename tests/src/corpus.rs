//! The malformed-input corpus: GGUF files and phi-edge images that are
//! broken in one specific way each. Every one must give a typed error
//! (exit status 2 in the CLI), never a panic or an out-of-bounds read.

use phi_edge::gguf::GgufWriter;
use phi_edge::image::header::HEADER_LEN;
use phi_edge::DType;

use crate::synth::{self, Spec};

/// A named broken input.
pub struct Case {
    /// What is broken.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

fn case(name: &str, bytes: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        bytes,
    }
}

/// A small valid phi3 model to break.
pub fn base_spec() -> Spec {
    Spec {
        n_vocab: 64,
        ..Spec::phi3(DType::Q8_0)
    }
}

fn without(skip: &[&str]) -> GgufWriter {
    synth::writer_without(&base_spec(), skip)
}

/// Index of the first tensor in a writer built from [`base_spec`]
/// (`rope_factors_short.weight`).
const FIRST_TENSOR: usize = 0;

/// Broken GGUF files.
pub fn gguf_cases() -> Vec<Case> {
    let good = synth::build(&base_spec());
    let mut v = vec![];
    for frac in [0usize, 3, 10, 50, 200, 999] {
        let cut = (good.len() * frac / 1000).max(1);
        v.push(case(
            &format!("truncated at {cut} of {} bytes", good.len()),
            good[..cut].to_vec(),
        ));
    }
    // The end of the tensor-info section: truncate just inside the data.
    v.push(case(
        "truncated one byte short",
        good[..good.len() - 1].to_vec(),
    ));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    v.push(case("bad magic", bad_magic));
    let mut w = without(&[]);
    w.set_version(1);
    v.push(case("GGUF version 1", w.finish()));
    for n in [0u32, 5] {
        let mut w = without(&[]);
        w.set_tensor_n_dims(FIRST_TENSOR, n);
        v.push(case(&format!("n_dims {n}"), w.finish()));
    }
    let mut w = without(&[]);
    w.set_n_tensors(u64::MAX - 1);
    v.push(case("tensor count near u64::MAX", w.finish()));
    let mut w = without(&[]);
    w.set_n_kv(u64::MAX);
    v.push(case("KV count u64::MAX", w.finish()));
    let mut w = without(&[]);
    let mut s = (u64::MAX - 3).to_le_bytes().to_vec();
    s.extend_from_slice(b"abc");
    w.add_raw_kv("general.description", 8, &s);
    v.push(case("string length near u64::MAX", w.finish()));
    let mut w = without(&[]);
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    w.add_raw_kv("general.tags", 9, &arr);
    v.push(case("array length near u64::MAX", w.finish()));
    let mut w = without(&[]);
    w.set_tensor_offset(FIRST_TENSOR, u64::MAX - 31);
    v.push(case("tensor offset + size wraps", w.finish()));
    let mut w = without(&[]);
    w.set_tensor_offset(FIRST_TENSOR, 1 << 40);
    v.push(case("tensor offset past EOF", w.finish()));
    let mut w = without(&[]);
    w.set_alignment(0);
    v.push(case("alignment 0", w.finish()));
    let mut w = without(&[]);
    w.add_str("general.alignment", "32");
    v.push(case("alignment of the wrong type", w.finish()));
    let mut w = without(&[]);
    w.add_u32("phi3.block_count", 2);
    v.push(case("duplicate key", w.finish()));
    let mut w = without(&["phi3.block_count"]);
    w.add_str("phi3.block_count", "two");
    v.push(case("key of the wrong type", w.finish()));
    let mut w = without(&[]);
    w.set_tensor_type(FIRST_TENSOR + 2, 77);
    v.push(case("unknown tensor type", w.finish()));
    let mut w = without(&[]);
    w.set_tensor_type(FIRST_TENSOR + 2, 6);
    v.push(case("unsupported tensor type q5_0", w.finish()));
    let mut w = without(&["phi3.embedding_length"]);
    w.add_u32("phi3.embedding_length", 512);
    v.push(case("shapes disagree with the width", w.finish()));
    let mut w = without(&["phi3.block_count"]);
    w.add_u32("phi3.block_count", 1000);
    v.push(case("block count far beyond the tensors", w.finish()));
    let mut w = without(&["phi3.attention.head_count"]);
    w.add_u32("phi3.attention.head_count", 0);
    v.push(case("head count 0", w.finish()));
    let mut w = without(&["phi3.attention.head_count_kv"]);
    w.add_u32("phi3.attention.head_count_kv", 0);
    v.push(case("key/value head count 0", w.finish()));
    let mut w = without(&["phi3.attention.head_count"]);
    w.add_u32("phi3.attention.head_count", 3);
    v.push(case("head count does not divide the width", w.finish()));
    let mut w = without(&["phi3.attention.head_count_kv"]);
    w.add_u32("phi3.attention.head_count_kv", 3);
    v.push(case("key/value heads do not divide the heads", w.finish()));
    let mut w = without(&[]);
    w.add_str("tokenizer.ggml.model", "llama");
    w.add_array_f32("tokenizer.ggml.tokens", &[0.5; 64]);
    v.push(case("tokens array of floats", w.finish()));
    let mut w = without(&["general.architecture"]);
    w.add_str("general.architecture", "mamba");
    v.push(case("unsupported architecture", w.finish()));
    v.push(case(
        "missing tensor",
        without(&["blk.1.ffn_down.weight"]).finish(),
    ));
    v.push(case(
        "missing architecture",
        without(&["general.architecture"]).finish(),
    ));
    let mut w = without(&[]);
    w.add_tensor("blk.0.attn_qkv.bias", &[256], 0, &[0u8; 1024]);
    v.push(case("unknown extra tensor", w.finish()));
    v.push(case("empty file", vec![]));
    v
}

/// Broken images made from `image`, a valid one.
pub fn image_cases(image: &[u8]) -> Vec<Case> {
    let mut v = vec![];
    let manifest_len = u64::from_le_bytes(image[24..32].try_into().unwrap_or_default()) as usize;
    let data_offset = u64::from_le_bytes(image[40..48].try_into().unwrap_or_default()) as usize;
    for (what, cut) in [
        ("header", HEADER_LEN / 2),
        ("manifest", HEADER_LEN + manifest_len / 2),
        ("data", data_offset + (image.len() - data_offset) / 2),
        ("last byte", image.len() - 1),
    ] {
        v.push(case(
            &format!("image truncated in the {what}"),
            image[..cut].to_vec(),
        ));
    }
    for (what, at) in [
        ("header", 20),
        ("manifest", HEADER_LEN + manifest_len / 3),
        ("tensor", data_offset + (image.len() - data_offset) / 2),
    ] {
        let mut b = image.to_vec();
        b[at] ^= 0x01;
        v.push(case(&format!("flipped byte in the {what}"), b));
    }
    let mut b = image.to_vec();
    b[8] = 9;
    v.push(case("image format version 9", b));
    v.push(case("not an image", b"hello, world".repeat(10)));
    v
}

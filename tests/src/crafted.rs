//! Crafted inputs: files that are well formed but hostile, asking for
//! more memory or time than any real model would. Each must be refused
//! with a typed error (exit status 2 in the CLI) or handled in time linear
//! in its size, never abort the process or take super-linear time.

use phi_edge::gguf::GgufWriter;
use phi_edge::DType;

use crate::synth::{self, Spec};

/// The context length [`huge_context`] trains for: 2^20 tokens.
pub const HUGE_CTX: u32 = 1 << 20;

/// A valid phi3 GGUF of 100 small layers trained for [`HUGE_CTX`] tokens:
/// at that context its KV cache alone is 100 GiB.
pub fn huge_context() -> Vec<u8> {
    let spec = Spec {
        n_layer: 100,
        ..Spec::phi3(DType::Q4_0)
    };
    let mut w = synth::writer_without(&spec, &["phi3.context_length"]);
    w.add_u32("phi3.context_length", HUGE_CTX);
    w.finish()
}

/// Special tokens in [`many_specials`].
pub const N_SPECIALS: usize = 3000;

/// The text of special token `i` of [`many_specials`]: `"a" * (i + 1) + "b"`.
pub fn special_text(i: usize) -> String {
    let mut s = "a".repeat(i + 1);
    s.push('b');
    s
}

/// A SentencePiece vocabulary (`llama`, no tensors) whose [`N_SPECIALS`]
/// user-defined tokens are [`special_text`]`(i)`: a text of `a`s is a
/// prefix of every one of them, the worst case of matching them one by
/// one. Returns the GGUF and the id of the first special token.
pub fn many_specials() -> (Vec<u8>, u32) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    tokens.extend(["\u{2581}", "a", "b", "\u{2581}a", "aa"].map(String::from));
    let first_special = tokens.len() as u32;
    tokens.extend((0..N_SPECIALS).map(special_text));
    let types: Vec<i32> = (0..tokens.len())
        .map(|i| match i {
            0 => 2,
            1 | 2 => 3,
            3..=258 => 6,
            _ if i >= first_special as usize => 4,
            _ => 1,
        })
        .collect();
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut w = GgufWriter::new();
    w.add_str("general.architecture", "llama")
        .add_str("general.name", "crafted")
        .add_str("tokenizer.ggml.model", "llama")
        .add_array_str("tokenizer.ggml.tokens", &refs)
        .add_array_f32("tokenizer.ggml.scores", &scores)
        .add_array_i32("tokenizer.ggml.token_type", &types)
        .add_u32("tokenizer.ggml.unknown_token_id", 0)
        .add_u32("tokenizer.ggml.bos_token_id", 1)
        .add_u32("tokenizer.ggml.eos_token_id", 2);
    (w.finish(), first_special)
}

/// A chat template of `len` bytes (rounded down to whole repeats) of
/// `unit` repeated, for template detection.
pub fn repeated_template(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len())
}

/// The template units whose repeats once made detection quadratic: bare
/// `<|im_start|>system` lines, and quoted ones each of which opens a
/// candidate default system message with no end marker after it.
pub const TEMPLATE_UNITS: [&str; 3] = [
    "<|im_start|>system\n",
    "'<|im_start|>system\n'",
    "'<|im_start|>system\n' \"<|im_start|>system\n\" <|im_end|>",
];

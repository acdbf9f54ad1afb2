//! `phi-edge tokenize` on llama.cpp's vocabulary files: its ids, and exit
//! status 2 with one line on stderr for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn vocab(name: &str) -> PathBuf {
    let p = phi_edge_tests::workspace_root()
        .join("target/vendor/vocab")
        .join(name);
    assert!(
        p.is_file(),
        "{} missing (run `cargo xtask setup`)",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phi-edge"))
        .args(args)
        .output()
        .expect("run phi-edge")
}

fn ids(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn tokenize_prints_llama_cpp_ids() {
    let phi3 = vocab("ggml-vocab-phi-3.gguf");
    let m = phi3.to_str().unwrap();
    // llama.cpp: ggml-vocab-phi-3.gguf.inp/.out, and llama_tokenize with
    // add_special / parse_special.
    assert_eq!(
        ids(&run(&["tokenize", "--model", m, "--text", "Hello world"])),
        "15043 3186"
    );
    let chat = "<|user|>  hi</s>  x";
    assert_eq!(
        ids(&run(&[
            "tokenize",
            "--model",
            m,
            "--text",
            chat,
            "--special",
            "--bos"
        ])),
        "1 32010 7251 2 921"
    );
    assert_eq!(
        ids(&run(&["tokenize", "--model", m, "--text", chat])),
        "529 29989 1792 29989 29958 29871 7251 829 29879 29958 29871 921"
    );
    let gpt2 = vocab("ggml-vocab-gpt-2.gguf");
    assert_eq!(
        ids(&run(&[
            "tokenize",
            "--model",
            gpt2.to_str().unwrap(),
            "--text",
            "Hello world"
        ])),
        "15496 995"
    );
}

#[test]
fn tokenize_rejects_bad_input_with_exit_2() {
    let bert = vocab("ggml-vocab-bert-bge.gguf");
    let cargo_toml = phi_edge_tests::workspace_root().join("Cargo.toml");
    for (what, model) in [
        ("missing file", "/nonexistent/model.gguf"),
        ("not a model", cargo_toml.to_str().unwrap()),
        ("unsupported tokenizer", bert.to_str().unwrap()),
    ] {
        let out = run(&["tokenize", "--model", model, "--text", "x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{what}: {err}"
        );
    }
}

//! `--cache-type`: q8_0 computes logits and `inspect` reports its KV bytes;
//! a head width that is not a multiple of 32, or an unknown type, is exit
//! status 2 with one `error:` line.

use std::process::{Command, Output};

use phi_edge::DType;
use phi_edge_tests::{synth, tmp_path};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phi-edge"))
        .args(args)
        .output()
        .expect("run phi-edge")
}

fn model(name: &str, spec: &synth::Spec) -> String {
    let p = tmp_path("cache", name);
    std::fs::write(&p, synth::build(spec)).unwrap();
    p.to_str().unwrap().to_string()
}

fn bad(out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(err.contains(says), "{err}");
}

#[test]
fn q8_0_cache_runs_and_inspect_shows_both_sizes() {
    // 8 heads of 32: one Q8_0 block per head.
    let m = model("q8.gguf", &synth::Spec::llama(DType::Q8_0));
    let out = run(&["inspect", &m, "--ctx", "256", "--cache-type", "q8_0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("kv cache")).unwrap();
    // 2 layers x 256 positions x 2 KV heads x 32 values, keys and values.
    let f16 = 2 * 256 * 64 * 2 * 2;
    let q8 = 2 * 256 * 2 * 34 * 2;
    assert!(
        line.contains(&format!("q8_0 ({q8} bytes)"))
            && line.contains(&format!("f16 {f16} bytes, q8_0 {q8} bytes")),
        "{line}"
    );
    let npy = tmp_path("cache", "logits.npy");
    let out = run(&[
        "logits",
        "--model",
        &m,
        "--tokens",
        "1,2,3,4,5",
        "--cache-type",
        "q8_0",
        "--out",
        npy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = phi_edge_tests::npy::read_f32_2d(&npy).unwrap();
    assert!(a.data.iter().all(|v| v.is_finite()));
}

#[test]
fn q8_0_cache_needs_heads_of_whole_blocks() {
    // 16 heads of 16 values: half a Q8_0 block each.
    let spec = synth::Spec {
        n_head: 16,
        n_head_kv: 4,
        n_rot: 16,
        ..synth::Spec::llama(DType::F32)
    };
    let m = model("hd16.gguf", &spec);
    let npy = tmp_path("cache", "hd16.npy");
    let npy = npy.to_str().unwrap();
    let args = ["logits", "--model", &m, "--tokens", "1,2", "--out", npy];
    assert!(run(&args).status.success());
    let q8 = [&args[..], &["--cache-type", "q8_0"]].concat();
    bad(&run(&q8), "multiple of 32");
    bad(
        &run(&["inspect", &m, "--cache-type", "q8_0"]),
        "multiple of 32",
    );
    // An unknown type is clap's usage error: exit 2 as well.
    let out = run(&[&args[..], &["--cache-type", "q4_0"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected f16 or q8_0"));
}

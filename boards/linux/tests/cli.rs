//! The `phi-edge` binary: success paths, and exit status 2 with one clear
//! line on stderr for every malformed input, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use phi_edge::DType;
use phi_edge_tests::{corpus, crafted, synth, tmp_path};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phi-edge"))
}

fn tmp(name: &str) -> PathBuf {
    tmp_path("cli", name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run phi-edge")
}

fn assert_bad_input(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}; stderr: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert!(
        err.starts_with("error: "),
        "{what}: stderr should say what is wrong: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{what}: one line on stderr, got: {err}"
    );
}

fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn pack_inspect_and_logits_work_and_agree() {
    let gguf = write(
        &tmp("ok.gguf"),
        &synth::build(&synth::Spec::llama(DType::Q4_1)),
    );
    let phi = tmp("ok.phi");
    let out = run(&["pack", &gguf, "-o", phi.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["inspect", phi.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for field in [
        "arch        llama",
        "heads       8 query, 2 key/value",
        "tied to token_embd",
        "arena",
        "kernels     ",
    ] {
        assert!(text.contains(field), "inspect lacks {field:?}:\n{text}");
    }
    let out = bin()
        .args(["inspect", phi.to_str().unwrap()])
        .env("PHI_EDGE_KERNELS", "portable")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kernels     portable"),
        "PHI_EDGE_KERNELS=portable picks the portable set"
    );
    let out = run(&["inspect", phi.to_str().unwrap(), "--threads", "3"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(", 3 threads ("),
        "inspect shows the planned threads"
    );
    let (a, b, c, d) = (tmp("a.npy"), tmp("b.npy"), tmp("c.npy"), tmp("d.npy"));
    let phi = phi.to_str().unwrap().to_string();
    for (model, out, extra) in [
        (&gguf, &a, vec!["--threads", "1"]),
        (&phi, &b, vec![]),
        (&phi, &c, vec!["--stream", "24", "--threads", "2"]),
        (&phi, &d, vec!["--threads", "3", "--chunk", "3"]),
    ] {
        let mut args = vec![
            "logits",
            "--model",
            model,
            "--tokens",
            "1,2,3,250",
            "--ctx",
            "64",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (a, b, c, d) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
        std::fs::read(d).unwrap(),
    );
    assert_eq!(a, b, "GGUF and .phi give the same logits");
    assert_eq!(a, c, "streamed and mapped give the same logits");
    assert_eq!(a, d, "threads and prefill chunks do not change the logits");
    let arr = phi_edge_tests::npy::read_f32_2d(&tmp("a.npy")).unwrap();
    assert_eq!((arr.rows, arr.cols), (4, 300));
}

#[test]
fn bad_arguments_exit_2() {
    let gguf = write(
        &tmp("args.gguf"),
        &synth::build(&synth::Spec::llama(DType::Q8_0)),
    );
    let out = tmp("args.npy");
    let out = out.to_str().unwrap();
    assert_bad_input(
        &run(&[
            "logits",
            "--model",
            "/nonexistent.phi",
            "--tokens",
            "1",
            "--out",
            out,
        ]),
        "missing file",
    );
    assert_bad_input(
        &run(&[
            "logits", "--model", &gguf, "--tokens", "1,300", "--out", out,
        ]),
        "token id out of range",
    );
    assert_bad_input(
        &run(&[
            "logits",
            "--model",
            &gguf,
            "--tokens",
            "1,2,3,4,5",
            "--ctx",
            "4",
            "--out",
            out,
        ]),
        "too many tokens",
    );
    assert_bad_input(
        &run(&[
            "logits", "--model", &gguf, "--tokens", "1", "--ctx", "0", "--out", out,
        ]),
        "zero context",
    );
    assert_bad_input(
        &run(&[
            "logits", "--model", &gguf, "--tokens", "1", "--stream", "1", "--out", out,
        ]),
        "stream needs an image",
    );
    let o = run(&["logits", "--model", &gguf, "--tokens", "x", "--out", out]);
    assert_eq!(o.status.code(), Some(2), "unparsable token ids");
    for threads in ["0", "257", "-1", "many"] {
        let o = run(&[
            "logits",
            "--model",
            &gguf,
            "--tokens",
            "1",
            &format!("--threads={threads}"),
            "--out",
            out,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--threads {threads}: {err}");
        assert!(
            err.contains("thread count from 1 to 256") && !err.contains("panicked"),
            "--threads {threads}: {err}"
        );
    }
}

#[test]
fn every_malformed_file_exits_2_from_logits_and_inspect() {
    let image = phi_edge::pack::pack_to_vec(&synth::build(&corpus::base_spec())).unwrap();
    let cases: Vec<_> = corpus::gguf_cases()
        .into_iter()
        .chain(corpus::image_cases(&image))
        .collect();
    let out = tmp("bad.npy");
    for (i, c) in cases.iter().enumerate() {
        let path = write(&tmp(&format!("bad{i}.bin")), &c.bytes);
        assert_bad_input(&run(&["inspect", &path]), &format!("inspect: {}", c.name));
        assert_bad_input(
            &run(&[
                "logits",
                "--model",
                &path,
                "--tokens",
                "1,2",
                "--out",
                out.to_str().unwrap(),
            ]),
            &format!("logits: {}", c.name),
        );
        // Streamed: the header and manifest are read from the file, not mapped.
        let streamed = [
            "logits",
            "--model",
            &path,
            "--tokens",
            "1,2",
            "--out",
            out.to_str().unwrap(),
            "--stream",
            "64",
        ];
        assert_bad_input(&run(&streamed), &format!("logits --stream: {}", c.name));
    }
    println!(
        "{} malformed files: exit 2 from inspect, logits and logits --stream",
        cases.len()
    );
}

#[test]
fn a_model_asking_for_a_100_gib_arena_exits_2_at_once() {
    let gguf = write(&tmp("huge-ctx.gguf"), &crafted::huge_context());
    let ctx = crafted::HUGE_CTX.to_string();
    for args in [
        &["run", "--model", &gguf, "--ctx", &ctx, "--prompt", "hi"][..],
        &[
            "logits",
            "--model",
            &gguf,
            "--ctx",
            &ctx,
            "--tokens",
            "1,2",
            "--out",
            "/dev/null",
        ],
    ] {
        let start = Instant::now();
        let out = run(args);
        let took = start.elapsed();
        assert_bad_input(&out, args[0]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("this model at --ctx {ctx} needs a 10"))
                && err.contains("GiB arena")
                && err.contains("raise --max-arena"),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{}: took {took:?}", args[0]);
        println!("{}: {took:?}: {}", args[0], err.trim());
    }
}

#[test]
fn limits_name_the_flag_that_raises_them() {
    let (gguf, _) = crafted::many_specials();
    let gguf = write(&tmp("specials.gguf"), &gguf);
    let limited =
        |flag: &str, value: &str| run(&["tokenize", "--model", &gguf, "--text", "ab", flag, value]);
    let out = limited("--max-specials", "100");
    assert_bad_input(&out, "--max-specials 100");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("special tokens, over the limit of 100 (raise it with --max-specials)"),
        "{err}"
    );
    assert_bad_input(&limited("--max-text", "1"), "--max-text 1");
    let text = "a".repeat(100_000);
    let start = Instant::now();
    let out = run(&["tokenize", "--model", &gguf, "--text", &text, "--special"]);
    let took = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("phi-edge tokenize, 100 KB against 3000 specials: {took:?}");
}

#[test]
fn pack_type_quantizes_and_refuses_quantized_input() {
    use phi_edge::pack::{pack_to_vec_with, PackOptions};
    use phi_edge::quant::FileType;
    let f16 = synth::build(&synth::Spec::phi3(DType::F16));
    let gguf = write(&tmp("f16.gguf"), &f16);
    let phi = tmp("q4km.phi");
    let out = run(&[
        "pack",
        &gguf,
        "-o",
        phi.to_str().unwrap(),
        "--type",
        "q4_k_m",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("q4_k_m: converted 10 tensors") && err.contains("f16 -> q6_K"),
        "{err}"
    );
    // The CLI writes what the library does.
    let opts = PackOptions {
        quantize: Some(FileType::Q4KM),
        threads: 1,
    };
    assert!(std::fs::read(&phi).unwrap() == pack_to_vec_with(&f16, &opts).unwrap());
    let quantized = write(
        &tmp("q4_1.gguf"),
        &synth::build(&synth::Spec::llama(DType::Q4_1)),
    );
    let refused = tmp("refused.phi");
    let out = run(&[
        "pack",
        &quantized,
        "-o",
        refused.to_str().unwrap(),
        "--type",
        "q8_0",
    ]);
    assert_bad_input(&out, "requantize");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already quantized (q4_1)"), "{err}");
    assert!(!refused.exists(), "no image is left behind");
    // A usage error (clap's message and hint): exit 2, the types listed.
    let out = run(&["pack", &gguf, "-o", "x.phi", "--type", "q5_0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("expected one of q4_0, q4_1, q8_0, q4_k_m, q6_k"),
        "{err}"
    );
}

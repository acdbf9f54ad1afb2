//! The core's `Generator` on the real SmolLM2 model (packed in memory from
//! the GGUF `cargo xtask setup` fetched): its statistics do not depend on
//! the cores, its arena is exactly `GenOptions::arena_bytes`, and every
//! bad request is a typed error that leaves the context usable.

use std::cell::Cell;
use std::sync::OnceLock;

use phi_edge::generate::{GenOptions, Step, Stop};
use phi_edge::image::tensor::Role;
use phi_edge::pack::pack_to_vec;
use phi_edge::parallel::ThreadPool;
use phi_edge::{Error, Generator, Mapped, Model, Parallel, ReadAt, RunOptions, Streamed};
use phi_edge_portable::Portable;
use phi_edge_tests::ref_dir;

/// The SmolLM2 image, packed once per test process.
fn image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let path = ref_dir().join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        let gguf = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask setup`)", path.display()));
        pack_to_vec(&gguf).unwrap()
    })
}

fn model() -> Model<'static> {
    Model::open_mapped(image()).unwrap()
}

/// An arena for `opts`, 64-byte aligned when `misalign` is 0.
fn arena(opts: &GenOptions, misalign: usize) -> Vec<u8> {
    vec![0u8; opts.arena_bytes(model().config()) + 128 + misalign]
}

/// The 64-byte-aligned part of `buf`, shifted by `misalign` bytes.
fn aligned(buf: &mut [u8], misalign: usize) -> &mut [u8] {
    let skip = buf.as_ptr().align_offset(64) + misalign;
    &mut buf[skip..]
}

/// What a greedy chat answer of `n` tokens gives on `par`: ids, perplexity
/// bits and the logits' CRC.
fn answer(par: impl Parallel, threads: u32, n: u32) -> (Vec<u32>, u64, u32, String) {
    let mut opts = GenOptions::greedy(128, 512);
    opts.run.threads = threads;
    let mut buf = arena(&opts, 0);
    let m = model();
    let mut g = Generator::new(&m, Portable, Mapped(image()), aligned(&mut buf, 0), &opts)
        .unwrap()
        .with_parallel(par);
    g.chat(None, "What is the capital of France?").unwrap();
    let mut text = String::new();
    g.generate(n, |t| text.push_str(t)).unwrap();
    let s = g.stats();
    (
        g.generated_ids().to_vec(),
        s.perplexity.to_bits(),
        s.logits_crc,
        text,
    )
}

#[test]
fn statistics_do_not_depend_on_the_cores() {
    let one = answer(phi_edge::Serial, 1, 6);
    assert_eq!(one.0.len(), 6);
    for threads in [2, 3] {
        let pool = ThreadPool::new(threads).unwrap();
        assert_eq!(answer(&pool, threads as u32, 6), one, "{threads} threads");
    }
}

#[test]
fn the_arena_is_exactly_the_planned_size() {
    let opts = GenOptions::greedy(64, 256);
    let need = opts.arena_bytes(model().config());
    for misalign in [0, 8, 63] {
        let mut buf = arena(&opts, misalign);
        let pad = (64 - misalign) % 64;
        let a = &mut aligned(&mut buf, misalign)[..need + pad];
        let g = Generator::new(&model(), Portable, Mapped(image()), a, &opts).unwrap();
        assert_eq!(g.arena_bytes(), need + pad);
        let mut buf = arena(&opts, misalign);
        let short = &mut aligned(&mut buf, misalign)[..need + pad - 1];
        match Generator::new(&model(), Portable, Mapped(image()), short, &opts) {
            Err(Error::ArenaTooSmall { need: n, got }) => {
                assert_eq!((n, got), (need + pad, need + pad - 1));
            }
            other => panic!("{:?}", other.err()),
        }
    }
}

#[test]
fn bad_prompts_are_typed_errors_that_leave_the_context_usable() {
    let opts = GenOptions::greedy(24, 256);
    let mut buf = arena(&opts, 0);
    let m = model();
    let mut g = Generator::new(&m, Portable, Mapped(image()), aligned(&mut buf, 0), &opts).unwrap();
    assert_eq!(g.next_token().err(), Some(Error::NoPrompt));
    assert_eq!(g.prefill().err(), Some(Error::NoPrompt));
    assert_eq!(g.prompt("").err(), Some(Error::EmptyPrompt));
    let long = "x".repeat(257);
    assert_eq!(
        g.prompt(&long).err(),
        Some(Error::PromptTooLong {
            bytes: 257,
            max: 256
        })
    );
    let many = "word ".repeat(40);
    match g.prompt(&many) {
        Err(Error::PromptTooManyTokens {
            tokens,
            room: 24,
            n_ctx: 24,
        }) => assert!(tokens > 24),
        other => panic!("{other:?}"),
    }
    // SmolLM2's template has a default system message: a 256-byte turn
    // does not hold it and a long question.
    assert!(matches!(
        g.chat(None, &"a".repeat(200)),
        Err(Error::PromptTooLong { .. })
    ));
    // After all that, a prompt that fits works from an empty context.
    g.prompt("The capital of France is").unwrap();
    let n_prompt = g.prompt_ids().len();
    let mut stop = None;
    let mut tokens = 0;
    while stop.is_none() {
        match g.next_token().unwrap() {
            Step::Token { .. } => tokens += 1,
            Step::Stopped { stop: why, .. } => stop = Some(why),
        }
    }
    // Greedy, this prompt runs on to the end of the context.
    assert_eq!(stop, Some(Stop::ContextFull));
    let s = g.stats();
    assert_eq!(s.generated, tokens);
    assert_eq!(n_prompt + s.decode_evals, 24);
    assert_eq!(g.room(), 0);
    // The next call stops again.
    assert!(matches!(
        g.next_token().unwrap(),
        Step::Stopped {
            stop: Stop::ContextFull,
            ..
        }
    ));
    // A new prompt does not fit a full context...
    assert!(matches!(
        g.prompt("more"),
        Err(Error::PromptTooManyTokens { room: 0, .. })
    ));
    // ...until the conversation starts over.
    g.reset();
    g.prompt("more").unwrap();
    assert!(matches!(g.next_token().unwrap(), Step::Token { .. }));
}

#[test]
fn next_token_and_generate_agree_and_chat_turns_continue() {
    let opts = GenOptions::greedy(256, 1024);
    let mut buf = arena(&opts, 0);
    let m = model();
    let mut g = Generator::new(&m, Portable, Mapped(image()), aligned(&mut buf, 0), &opts).unwrap();
    g.chat(
        Some("Answer in one word."),
        "What is the capital of France?",
    )
    .unwrap();
    let mut pieces = String::new();
    for _ in 0..5 {
        match g.next_token().unwrap() {
            Step::Token { text, .. } => pieces.push_str(text),
            Step::Stopped { text, .. } => {
                pieces.push_str(text);
                break;
            }
        }
    }
    pieces.push_str(g.finish().unwrap());
    let first: Vec<u32> = g.generated_ids().to_vec();
    let (ids, text) = {
        let mut buf = arena(&opts, 0);
        let mut h =
            Generator::new(&m, Portable, Mapped(image()), aligned(&mut buf, 0), &opts).unwrap();
        h.chat(
            Some("Answer in one word."),
            "What is the capital of France?",
        )
        .unwrap();
        let mut text = String::new();
        h.generate(5, |t| text.push_str(t)).unwrap();
        (h.generated_ids().to_vec(), text)
    };
    assert_eq!((first, pieces), (ids, text));
    // A second turn continues the context: its prompt starts with the
    // end-of-turn marker's token, with no BOS.
    let past = 256 - g.room();
    g.chat(None, "And of Spain?").unwrap();
    assert_eq!(256 - g.room(), past);
    let eot = g.tokenizer().token_text(g.prompt_ids()[0]).unwrap();
    assert_eq!(eot, g.template().end_of_turn().as_bytes());
    assert!(matches!(g.next_token().unwrap(), Step::Token { .. }));
}

/// A file-like device over the image that fails its `fail_at`-th read.
struct Flaky<'a> {
    reads: &'a Cell<usize>,
    fail_at: &'a Cell<Option<usize>>,
}

impl ReadAt for Flaky<'_> {
    fn size(&self) -> u64 {
        image().len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        let n = self.reads.get();
        self.reads.set(n + 1);
        if self.fail_at.get() == Some(n) {
            self.fail_at.set(None);
            return Err(Error::Read { offset });
        }
        (&image()[..]).read_at(offset, buf)
    }
}

#[test]
fn streamed_turns_count_their_reads_and_survive_a_failed_read() {
    let m = model();
    let mut opts = GenOptions::greedy(128, 512);
    opts.run = RunOptions {
        prefill_chunk: 8,
        ..RunOptions::streamed(128, 256 << 10)
    };
    // Greedy ids of a mapped run, then streamed runs with a read failing
    // in the prefill, the first decode step and a later one.
    let mapped = {
        let o = GenOptions {
            run: RunOptions::mapped(128),
            ..opts
        };
        let mut buf = arena(&o, 0);
        let mut g =
            Generator::new(&m, Portable, Mapped(image()), aligned(&mut buf, 0), &o).unwrap();
        g.chat(None, "Name a colour.").unwrap();
        let mut ids = Vec::new();
        g.generate(6, |_| {}).unwrap();
        ids.extend_from_slice(g.generated_ids());
        (ids, g.stats())
    };
    for fail in [None, Some(0), Some(1), Some(4)] {
        let (reads, fail_at) = (Cell::new(0), Cell::new(None));
        let src = Streamed(Flaky {
            reads: &reads,
            fail_at: &fail_at,
        });
        let mut buf = arena(&opts, 0);
        let mut g = Generator::new(&m, Portable, src, aligned(&mut buf, 0), &opts).unwrap();
        g.chat(None, "Name a colour.").unwrap();
        let mut errors = 0;
        for step in 0..6 {
            if fail == Some(step) {
                fail_at.set(Some(reads.get() + 40));
            }
            let mut tries = 0;
            loop {
                tries += 1;
                match g.next_token() {
                    Ok(Step::Token { .. }) => break,
                    Ok(Step::Stopped { .. }) => break,
                    Err(e @ Error::WeightRead { .. }) if tries == 1 => {
                        assert!(e.to_string().starts_with("reading tensor "), "{e}");
                        errors += 1;
                    }
                    Err(e) => panic!("step {step}: {e}"),
                }
            }
        }
        let s = g.stats();
        assert_eq!(errors, usize::from(fail.is_some()), "fault at {fail:?}");
        assert_eq!(
            (g.generated_ids(), s.logits_crc),
            (&mapped.0[..], mapped.1.logits_crc),
            "fault at {fail:?}"
        );
        assert_eq!(s.prefill_chunks, s.prompt_tokens.div_ceil(8));
        // Each decode step reads every weight byte it uses once: all but
        // the rope factors (read at start), the rope table and the
        // embedding's unused rows (tied: read once more whole, as the
        // output head).
        let per_token = s.decode_read / s.decode_evals as u64;
        assert_eq!(
            s.decode_read,
            per_token * s.decode_evals as u64,
            "steps read different bytes"
        );
        assert_eq!(
            per_token,
            phi_edge_tests::decode_read_bytes(&m, s.prompt_tokens)
        );
        // A chunk reads the weights once, plus one embedding row and one
        // rope-table row per token past the first; only the last chunk
        // reads the output norm and head.
        let rows = (s.prompt_tokens - s.prefill_chunks) as u64;
        let embd = m.tensor(Role::TokenEmbd, 0).unwrap();
        let rope_row = m
            .tensor(Role::RopeCache, 0)
            .map_or(0, |t| t.row_bytes() as u64);
        let head = m.tensor(Role::OutputNorm, 0).unwrap().len
            + if m.config().tied_output {
                embd.len
            } else {
                m.tensor(Role::Output, 0).unwrap().len
            };
        let chunks = s.prefill_chunks as u64;
        assert_eq!(
            s.prefill_read,
            chunks * per_token - (chunks - 1) * head + rows * (embd.row_bytes() as u64 + rope_row)
        );
    }
}

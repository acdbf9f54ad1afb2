//! The C API called from Rust as C calls it: every error path gives its
//! status code (NULL pointers, misaligned and overlapping buffers, a small
//! arena, bad images, bad text, a full context, a text buffer below the
//! cap), never a crash; and a generator made through the API gives the
//! core generator's text.
//!
//! The model is a tiny synthetic llama (random weights, `phi-edge-tests`'
//! `synth`) with a SentencePiece vocabulary of its 300 ids: control
//! tokens, the 256 byte tokens and a few letters.

use core::ffi::{c_char, CStr};
use core::ptr::{null, null_mut};

use phi_edge::{DType, GenOptions, Generator, Mapped, Model, Step};
use phi_edge_auto::AutoKernels;
use phi_edge_ffi::*;
use phi_edge_tests::{corpus, synth};

/// The image of the test model (packed once per test process).
fn image() -> &'static [u8] {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let spec = synth::Spec::llama(DType::Q8_0);
        let mut w = synth::writer_without(&spec, &[]);
        // 3 control tokens, 256 byte tokens, letters: SentencePiece falls
        // back to bytes for anything else. No EOS: generation never ends
        // on its own, so the context fills up.
        let mut tokens: Vec<String> = ["<unk>", "<s>", "<pad>"].map(String::from).to_vec();
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        let letters = "abcdefghijklmnopqrstuvwxyz";
        tokens.push("\u{2581}".into());
        tokens.extend(letters.chars().map(|c| c.to_string()));
        tokens.extend(
            letters
                .chars()
                .take(spec.n_vocab as usize - tokens.len())
                .map(|c| format!("\u{2581}{c}")),
        );
        assert_eq!(tokens.len(), spec.n_vocab as usize);
        let types: Vec<i32> = (0..tokens.len())
            .map(|i| match i {
                0 => 2,
                1 | 2 => 3,
                3..=258 => 6,
                _ => 1,
            })
            .collect();
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        w.add_str("tokenizer.ggml.model", "llama")
            .add_array_str("tokenizer.ggml.tokens", &refs)
            .add_array_f32("tokenizer.ggml.scores", &scores)
            .add_array_i32("tokenizer.ggml.token_type", &types)
            .add_u32("tokenizer.ggml.unknown_token_id", 0)
            .add_u32("tokenizer.ggml.bos_token_id", 1);
        phi_edge::pack::pack_to_vec(&w.finish()).expect("the test model packs")
    })
}

/// Options for the test model: context 64, prompts of up to 64 bytes.
fn options() -> PhiEdgeOptions {
    PhiEdgeOptions {
        n_ctx: 64,
        max_prompt_bytes: 64,
        ..phi_edge_options_default()
    }
}

/// `phi_edge_open` on `image`.
fn open(model: &mut PhiEdgeModel, image: &[u8]) -> PhiEdgeStatus {
    // SAFETY: `model` is valid storage and `image` readable for the whole
    // test (the test images are statics or outlive their models).
    unsafe { phi_edge_open(model, image.as_ptr().cast(), image.len()) }
}

/// An opened and verified model of the test image.
fn model() -> PhiEdgeModel {
    let mut m = PhiEdgeModel::new();
    assert_eq!(open(&mut m, image()), PhiEdgeStatus::Ok);
    // SAFETY: `m` was opened above.
    assert_eq!(unsafe { phi_edge_verify(&mut m) }, PhiEdgeStatus::Ok);
    m
}

/// `phi_edge_arena_bytes` for `opts`.
fn arena_bytes(m: &mut PhiEdgeModel, opts: &PhiEdgeOptions) -> Result<usize, PhiEdgeStatus> {
    let mut n = 0;
    // SAFETY: every pointer is a live reference.
    match unsafe { phi_edge_arena_bytes(m, opts, &mut n) } {
        PhiEdgeStatus::Ok => Ok(n),
        s => Err(s),
    }
}

/// A generator in `arena`.
fn generator(
    m: &mut PhiEdgeModel,
    opts: &PhiEdgeOptions,
    arena: &mut [u8],
) -> Result<*mut PhiEdgeGenerator, PhiEdgeStatus> {
    let mut g = null_mut();
    // SAFETY: every pointer is a live reference; the arena outlives the
    // generator in every test.
    match unsafe { phi_edge_generator_new(m, opts, arena.as_mut_ptr().cast(), arena.len(), &mut g) }
    {
        PhiEdgeStatus::Ok => {
            assert!(!g.is_null());
            Ok(g)
        }
        s => {
            assert!(g.is_null(), "a failed generator_new writes NULL");
            Err(s)
        }
    }
}

/// `phi_edge_prompt` with `text`.
fn prompt(g: *mut PhiEdgeGenerator, text: &[u8]) -> PhiEdgeStatus {
    // SAFETY: `g` is a live generator (or NULL) and `text` readable.
    unsafe { phi_edge_prompt(g, text.as_ptr().cast(), text.len()) }
}

/// `phi_edge_next` into a buffer of `cap` bytes: the status and the text.
fn next(g: *mut PhiEdgeGenerator, cap: usize) -> (PhiEdgeStatus, Vec<u8>) {
    let mut buf = vec![0xAAu8; cap.max(1)];
    let mut len = usize::MAX;
    // SAFETY: `g` is a live generator (or NULL), `buf` has `cap` bytes
    // (or more), `len` is a live reference.
    let s = unsafe { phi_edge_next(g, buf.as_mut_ptr().cast(), cap, &mut len) };
    if s == PhiEdgeStatus::NullPointer {
        return (s, vec![]);
    }
    if cap > 0 {
        assert!(len < cap, "len {len} within the buffer");
        assert_eq!(buf[len], 0, "the text is NUL-terminated");
    }
    (s, buf[..len].to_vec())
}

/// The last error of `g` as text.
fn generator_error(g: *mut PhiEdgeGenerator) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `g` is a live generator, `buf` 256 writable bytes.
    let status = unsafe { phi_edge_generator_error(g, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// The last error of `m` as text.
fn model_error(m: &mut PhiEdgeModel) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `m` is a live model, `buf` 256 writable bytes.
    let status = unsafe { phi_edge_model_error(m, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn null_pointers_are_errors() {
    use PhiEdgeStatus::NullPointer as N;
    let mut m = model();
    let opts = options();
    let n = arena_bytes(&mut m, &opts).unwrap();
    let mut arena = vec![0u8; n];
    let g = generator(&mut m, &opts, &mut arena).unwrap();
    let mut len = 0usize;
    let mut buf = [0u8; PHI_EDGE_TEXT_CAP];
    let mut stats = PhiEdgeStats::default();
    let mut out = null_mut();
    let b: *mut c_char = buf.as_mut_ptr().cast();
    let text: *const c_char = c"hi".as_ptr();
    // SAFETY: every pointer is NULL or a live reference with the length
    // given; the functions return before touching anything on NULL.
    unsafe {
        assert_eq!(
            phi_edge_open(null_mut(), image().as_ptr().cast(), image().len()),
            N
        );
        let mut fresh = PhiEdgeModel::new();
        assert_eq!(phi_edge_open(&mut fresh, null(), 100), N);
        assert_eq!(phi_edge_verify(null_mut()), N);
        assert_eq!(phi_edge_arena_bytes(null_mut(), &opts, &mut len), N);
        assert_eq!(phi_edge_arena_bytes(&mut m, null(), &mut len), N);
        assert_eq!(phi_edge_arena_bytes(&mut m, &opts, null_mut()), N);
        assert_eq!(phi_edge_model_error(null_mut(), b, buf.len()), N);
        assert_eq!(phi_edge_model_error(&mut m, null_mut(), 10), N);
        let a: *mut core::ffi::c_void = arena.as_mut_ptr().cast();
        assert_eq!(phi_edge_generator_new(null_mut(), &opts, a, n, &mut out), N);
        assert_eq!(phi_edge_generator_new(&mut m, null(), a, n, &mut out), N);
        assert_eq!(
            phi_edge_generator_new(&mut m, &opts, null_mut(), n, &mut out),
            N
        );
        assert_eq!(phi_edge_generator_new(&mut m, &opts, a, n, null_mut()), N);
        assert_eq!(phi_edge_prompt(null_mut(), text, 2), N);
        assert_eq!(phi_edge_prompt(g, null(), 2), N);
        assert_eq!(phi_edge_chat(null_mut(), null(), 0, text, 2), N);
        assert_eq!(phi_edge_chat(g, null(), 3, text, 2), N);
        assert_eq!(phi_edge_chat(g, null(), 0, null(), 2), N);
        assert_eq!(phi_edge_next(null_mut(), b, buf.len(), &mut len), N);
        assert_eq!(phi_edge_next(g, null_mut(), buf.len(), &mut len), N);
        assert_eq!(phi_edge_next(g, b, buf.len(), null_mut()), N);
        assert_eq!(phi_edge_finish(null_mut(), b, buf.len(), &mut len), N);
        assert_eq!(phi_edge_finish(g, null_mut(), buf.len(), &mut len), N);
        assert_eq!(phi_edge_finish(g, b, buf.len(), null_mut()), N);
        assert_eq!(phi_edge_reset(null_mut()), N);
        assert_eq!(phi_edge_get_stats(null_mut(), &mut stats), N);
        assert_eq!(phi_edge_get_stats(g, null_mut()), N);
        assert_eq!(phi_edge_kernels(null_mut(), b, buf.len()), N);
        assert_eq!(phi_edge_kernels(g, null_mut(), 10), N);
        assert_eq!(phi_edge_generator_error(null_mut(), b, buf.len()), N);
        assert_eq!(phi_edge_generator_error(g, null_mut(), 10), N);
        // NULL with length 0 is the empty text (BOS alone on this model).
        assert_eq!(phi_edge_prompt(g, null(), 0), PhiEdgeStatus::Ok);
        // None of it hurt the generator.
        assert_eq!(phi_edge_prompt(g, text, 2), PhiEdgeStatus::Ok);
    }
    assert_eq!(next(g, PHI_EDGE_TEXT_CAP).0, PhiEdgeStatus::Ok);
}

#[test]
fn handles_that_are_not_handles_are_errors() {
    let mut buf = [0u8; 64];
    let b: *mut c_char = buf.as_mut_ptr().cast();
    // Never opened.
    let mut m = PhiEdgeModel::new();
    // SAFETY: live references.
    unsafe {
        assert_eq!(phi_edge_verify(&mut m), PhiEdgeStatus::BadHandle);
        assert_eq!(
            phi_edge_model_error(&mut m, b, buf.len()),
            PhiEdgeStatus::BadHandle
        );
    }
    // Opened on a bad image: the error, then BAD_HANDLE.
    assert_eq!(
        open(&mut m, b"not an image at all, not at all, no"),
        PhiEdgeStatus::NotAnImage
    );
    assert_eq!(model_error(&mut m), "not a phi-edge image (bad magic)");
    // SAFETY: live references.
    unsafe { assert_eq!(phi_edge_verify(&mut m), PhiEdgeStatus::BadHandle) };
    assert_eq!(
        arena_bytes(&mut m, &options()),
        Err(PhiEdgeStatus::BadHandle)
    );
    assert_eq!(
        generator(&mut m, &options(), &mut [0u8; 4096]),
        Err(PhiEdgeStatus::BadHandle)
    );
    assert_eq!(open(&mut m, &[]), PhiEdgeStatus::NotAnImage);
    // A generator pointer to memory that holds no generator.
    let mut not_gen = [0u64; 64];
    let g: *mut PhiEdgeGenerator = not_gen.as_mut_ptr().cast();
    assert_eq!(prompt(g, b"hi"), PhiEdgeStatus::BadHandle);
    assert_eq!(
        next(g, PHI_EDGE_TEXT_CAP),
        (PhiEdgeStatus::BadHandle, vec![])
    );
    // SAFETY: `g` points to 512 readable bytes.
    unsafe { assert_eq!(phi_edge_reset(g), PhiEdgeStatus::BadHandle) };
    // Misaligned.
    let odd: *mut PhiEdgeGenerator = not_gen.as_mut_ptr().cast::<u8>().wrapping_add(1).cast();
    assert_eq!(prompt(odd, b"hi"), PhiEdgeStatus::BadHandle);
    let odd_model: *mut PhiEdgeModel = not_gen.as_mut_ptr().cast::<u8>().wrapping_add(4).cast();
    // SAFETY: misaligned pointers are rejected before any access.
    unsafe { assert_eq!(phi_edge_verify(odd_model), PhiEdgeStatus::BadArgument) };
}

#[test]
fn bad_images_are_typed_errors() {
    let mut failed = 0;
    for case in corpus::image_cases(image()) {
        let mut m = PhiEdgeModel::new();
        let opened = open(&mut m, &case.bytes);
        let status = if opened == PhiEdgeStatus::Ok {
            // SAFETY: `m` was opened on `case.bytes`, which outlives it.
            unsafe { phi_edge_verify(&mut m) }
        } else {
            opened
        };
        assert!((status as i32) < 0, "{}: {status:?}", case.name);
        assert!(!model_error(&mut m).is_empty(), "{}: a detail", case.name);
        println!("{:<36} {:?}: {}", case.name, status, model_error(&mut m));
        failed += 1;
    }
    assert!(failed >= 9);
    // A flipped tensor byte opens (the header and manifest are intact) and
    // fails the verification.
    let mut bad = image().to_vec();
    let at = bad.len() - 100;
    bad[at] ^= 0x10;
    let mut m = PhiEdgeModel::new();
    assert_eq!(open(&mut m, &bad), PhiEdgeStatus::Ok);
    // SAFETY: `m` was opened on `bad`, which outlives it.
    assert_eq!(unsafe { phi_edge_verify(&mut m) }, PhiEdgeStatus::Checksum);
    assert!(
        model_error(&mut m).contains("checksum mismatch"),
        "{}",
        model_error(&mut m)
    );
}

#[test]
fn a_small_arena_is_an_error() {
    let mut m = model();
    let opts = options();
    let n = arena_bytes(&mut m, &opts).unwrap();
    // A 64-byte-aligned arena needs 63 bytes fewer than any address.
    let mut big = vec![0u8; n + 64];
    let at = big.as_ptr().align_offset(PHI_EDGE_ARENA_ALIGN);
    let aligned = &mut big[at..at + n - (PHI_EDGE_ARENA_ALIGN - 1)];
    assert!(generator(&mut m, &opts, aligned).is_ok());
    let short = &mut big[at..at + n - PHI_EDGE_ARENA_ALIGN];
    assert_eq!(
        generator(&mut m, &opts, short),
        Err(PhiEdgeStatus::ArenaTooSmall)
    );
    let detail = model_error(&mut m);
    assert_eq!(
        detail,
        format!("arena too small: need {} bytes, got {}", n - 63, n - 64)
    );
    for len in [0, 1, 63, 64, 1000, n / 2] {
        let mut arena = vec![0u8; len.max(1)];
        assert_eq!(
            generator(&mut m, &opts, &mut arena[..len]),
            Err(PhiEdgeStatus::ArenaTooSmall),
            "{len} bytes"
        );
    }
    // An arena that overlaps the image.
    let mut copy = image().to_vec();
    copy.resize(image().len() + n, 0);
    let mut mm = PhiEdgeModel::new();
    // SAFETY: `copy` outlives `mm` and is not written while it is used.
    let status = unsafe { phi_edge_open(&mut mm, copy.as_ptr().cast(), image().len()) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    let mut g = null_mut();
    // SAFETY: the overlap is rejected before the arena is touched.
    let s = unsafe {
        phi_edge_generator_new(&mut mm, &opts, copy.as_mut_ptr().add(16).cast(), n, &mut g)
    };
    assert_eq!(s, PhiEdgeStatus::BadArgument);
    assert!(g.is_null());
}

#[test]
fn bad_options_are_errors() {
    let mut m = model();
    let bad_top_p = PhiEdgeOptions {
        top_p: 0.0,
        ..options()
    };
    let n = arena_bytes(&mut m, &options()).unwrap();
    let mut arena = vec![0u8; n * 2];
    assert_eq!(
        generator(&mut m, &bad_top_p, &mut arena),
        Err(PhiEdgeStatus::BadOptions)
    );
    assert!(
        model_error(&mut m).contains("top_p"),
        "{}",
        model_error(&mut m)
    );
    let no_prompt = PhiEdgeOptions {
        max_prompt_bytes: 0,
        ..options()
    };
    assert_eq!(
        generator(&mut m, &no_prompt, &mut arena),
        Err(PhiEdgeStatus::BadOptions)
    );
    let bad_cache = PhiEdgeOptions {
        cache_type: 2,
        ..options()
    };
    assert_eq!(
        arena_bytes(&mut m, &bad_cache),
        Err(PhiEdgeStatus::BadOptions)
    );
    assert_eq!(
        generator(&mut m, &bad_cache, &mut arena),
        Err(PhiEdgeStatus::BadOptions)
    );
    assert!(
        model_error(&mut m).contains("cache_type"),
        "{}",
        model_error(&mut m)
    );
    let huge_ctx = PhiEdgeOptions {
        n_ctx: u32::MAX,
        ..options()
    };
    assert!(arena_bytes(&mut m, &huge_ctx).is_err());
    // A generator whose arena another generator_new reused is gone, even
    // when the new one failed.
    let g = generator(&mut m, &options(), &mut arena).unwrap();
    assert_eq!(prompt(g, b"hi"), PhiEdgeStatus::Ok);
    assert_eq!(
        generator(&mut m, &bad_top_p, &mut arena),
        Err(PhiEdgeStatus::BadOptions)
    );
    assert_eq!(prompt(g, b"hi"), PhiEdgeStatus::BadHandle);
}

#[test]
fn bad_text_and_prompt_errors() {
    let mut m = model();
    let opts = PhiEdgeOptions {
        n_ctx: 16,
        max_prompt_bytes: 32,
        ..options()
    };
    let mut arena = vec![0u8; arena_bytes(&mut m, &opts).unwrap()];
    let g = generator(&mut m, &opts, &mut arena).unwrap();
    assert_eq!(
        next(g, PHI_EDGE_TEXT_CAP),
        (PhiEdgeStatus::NoPrompt, vec![])
    );
    assert_eq!(generator_error(g), "no prompt to generate from");
    assert_eq!(prompt(g, b"ab\xFFcd"), PhiEdgeStatus::BadUtf8);
    assert_eq!(prompt(g, &[b'a'; 33]), PhiEdgeStatus::PromptTooLong);
    assert_eq!(
        generator_error(g),
        "the prompt is 33 bytes; the generator was planned for at most 32"
    );
    // 1 BOS + 20 byte tokens in a context of 16.
    assert_eq!(
        prompt(g, "\u{e9}".repeat(10).as_bytes()),
        PhiEdgeStatus::PromptTooManyTokens
    );
    // SAFETY: live generator, readable text; the bad system text is
    // rejected.
    unsafe {
        assert_eq!(
            phi_edge_chat(g, c"\xC3".as_ptr(), 1, c"hi".as_ptr(), 2),
            PhiEdgeStatus::BadUtf8
        );
    }
    assert_eq!(prompt(g, b"abc"), PhiEdgeStatus::Ok);
    assert_eq!(next(g, PHI_EDGE_TEXT_CAP).0, PhiEdgeStatus::Ok);
}

#[test]
fn a_full_context_stops_generation() {
    let mut m = model();
    let opts = PhiEdgeOptions {
        n_ctx: 8,
        max_prompt_bytes: 8,
        ..options()
    };
    let mut arena = vec![0u8; arena_bytes(&mut m, &opts).unwrap()];
    let g = generator(&mut m, &opts, &mut arena).unwrap();
    // BOS and 3 letters: room for 4 more tokens; the 5th drawn does not
    // fit.
    assert_eq!(prompt(g, b"abc"), PhiEdgeStatus::Ok);
    let mut tokens = 0;
    let stop = loop {
        match next(g, PHI_EDGE_TEXT_CAP) {
            (PhiEdgeStatus::Ok, _) => tokens += 1,
            (s, _) => break s,
        }
        assert!(tokens <= 8, "generation must stop");
    };
    assert_eq!(stop, PhiEdgeStatus::ContextFull);
    assert_eq!(tokens, 5);
    assert_eq!(
        next(g, PHI_EDGE_TEXT_CAP),
        (PhiEdgeStatus::ContextFull, vec![]),
        "stops again"
    );
    let mut stats = PhiEdgeStats::default();
    // SAFETY: live generator and stats.
    let status = unsafe { phi_edge_get_stats(g, &mut stats) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    assert_eq!(
        (
            stats.prompt_tokens,
            stats.generated,
            stats.n_ctx,
            stats.room
        ),
        (4, 5, 8, 0)
    );
    // A new prompt does not fit either; after a reset it does.
    assert_eq!(prompt(g, b"a"), PhiEdgeStatus::PromptTooManyTokens);
    // SAFETY: live generator.
    assert_eq!(unsafe { phi_edge_reset(g) }, PhiEdgeStatus::Ok);
    assert_eq!(prompt(g, b"abc"), PhiEdgeStatus::Ok);
    assert_eq!(next(g, PHI_EDGE_TEXT_CAP).0, PhiEdgeStatus::Ok);
}

/// Text of up to `max` tokens through the API with text buffers of `cap`
/// bytes, and the statuses that were not OK.
fn generate(prompt_text: &str, max: usize, cap: usize) -> (Vec<u8>, Vec<PhiEdgeStatus>) {
    generate_with(&options(), prompt_text, max, cap)
}

/// [`generate`] with `opts`.
fn generate_with(
    opts: &PhiEdgeOptions,
    prompt_text: &str,
    max: usize,
    cap: usize,
) -> (Vec<u8>, Vec<PhiEdgeStatus>) {
    let mut m = model();
    let opts = *opts;
    let mut arena = vec![0u8; arena_bytes(&mut m, &opts).unwrap()];
    let g = generator(&mut m, &opts, &mut arena).unwrap();
    assert_eq!(prompt(g, prompt_text.as_bytes()), PhiEdgeStatus::Ok);
    let (mut text, mut other) = (vec![], vec![]);
    let mut n = 0;
    while n < max {
        let (s, t) = next(g, cap);
        text.extend(t);
        match s {
            PhiEdgeStatus::Ok => n += 1,
            PhiEdgeStatus::BufferTooSmall => {
                other.push(s);
                // Nothing was generated: try again with room.
                let (s, t) = next(g, PHI_EDGE_TEXT_CAP);
                assert_eq!(s, PhiEdgeStatus::Ok);
                text.extend(t);
                n += 1;
            }
            s => {
                other.push(s);
                break;
            }
        }
    }
    let mut buf = [0u8; PHI_EDGE_TEXT_CAP];
    let mut len = 0;
    // SAFETY: live generator, buffer and length.
    let status = unsafe { phi_edge_finish(g, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    text.extend(&buf[..len]);
    (text, other)
}

/// The core generator's text for `prompt_text` and `n` tokens with `opts`.
fn core_text(opts: &GenOptions, prompt_text: &str, n: usize) -> String {
    let image = image();
    let model = Model::open_mapped(image).unwrap();
    let mut arena = vec![0u8; opts.arena_bytes(model.config()) + 63];
    let mut g = Generator::new(
        &model,
        AutoKernels::detect(),
        Mapped(image),
        &mut arena,
        opts,
    )
    .unwrap();
    g.prompt(prompt_text).unwrap();
    let mut text = String::new();
    for _ in 0..n {
        match g.next_token().unwrap() {
            Step::Token { text: t, .. } => text.push_str(t),
            Step::Stopped { .. } => panic!("the test model has no EOS"),
        }
    }
    text.push_str(g.finish().unwrap());
    text
}

#[test]
fn the_api_gives_the_core_generators_text_and_no_buffer_loses_any() {
    let opts = GenOptions::greedy(64, 64);
    let model = Model::open_mapped(image()).unwrap();
    assert_eq!(Ok(opts), options().gen_options(model.config()));
    let want = core_text(&opts, "hello", 20);
    let (text, other) = generate("hello", 20, PHI_EDGE_TEXT_CAP);
    assert_eq!(String::from_utf8(text).unwrap(), want);
    assert!(other.is_empty(), "{other:?}");
    // Buffers one byte short are refused before a token is drawn, so the
    // text is the same.
    let (text, other) = generate("hello", 20, PHI_EDGE_TEXT_CAP - 1);
    assert_eq!(String::from_utf8(text).unwrap(), want);
    assert_eq!(other, vec![PhiEdgeStatus::BufferTooSmall; 20]);
    let (_, other) = generate("hello", 1, 0);
    assert_eq!(other, vec![PhiEdgeStatus::BufferTooSmall]);
}

#[test]
fn a_q8_0_cache_gives_the_core_generators_text_in_fewer_bytes() {
    let q8 = PhiEdgeOptions {
        cache_type: PHI_EDGE_CACHE_Q8_0,
        ..options()
    };
    let mut opts = GenOptions::greedy(64, 64);
    opts.run.kv_type = phi_edge::KvType::Q8_0;
    let core_model = Model::open_mapped(image()).unwrap();
    assert_eq!(Ok(opts), q8.gen_options(core_model.config()));
    let mut m = model();
    assert!(arena_bytes(&mut m, &q8).unwrap() < arena_bytes(&mut m, &options()).unwrap());
    let want = core_text(&opts, "hello", 20);
    let (text, other) = generate_with(&q8, "hello", 20, PHI_EDGE_TEXT_CAP);
    assert_eq!(String::from_utf8(text).unwrap(), want);
    assert!(other.is_empty(), "{other:?}");
}

#[test]
fn chat_turns_and_kernels() {
    let mut m = model();
    let user = "hi <|im_start|>";
    let mut max_prompt_bytes = 0;
    // SAFETY: live model and output.
    let status = unsafe { phi_edge_turn_bytes(&mut m, user.len(), &mut max_prompt_bytes) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    assert!(max_prompt_bytes as usize > user.len());
    // SAFETY: NULL pointers are rejected before any access.
    unsafe {
        assert_eq!(
            phi_edge_turn_bytes(null_mut(), 1, &mut max_prompt_bytes),
            PhiEdgeStatus::NullPointer
        );
        assert_eq!(
            phi_edge_turn_bytes(&mut m, 1, null_mut()),
            PhiEdgeStatus::NullPointer
        );
        assert_eq!(
            phi_edge_turn_bytes(&mut m, usize::MAX, &mut max_prompt_bytes),
            PhiEdgeStatus::BadArgument
        );
    }
    let opts = PhiEdgeOptions {
        n_ctx: 256,
        max_prompt_bytes,
        ..options()
    };
    let mut arena = vec![0u8; arena_bytes(&mut m, &opts).unwrap()];
    let g = generator(&mut m, &opts, &mut arena).unwrap();
    // SAFETY: live generator and texts.
    let s = unsafe { phi_edge_chat(g, null(), 0, user.as_ptr().cast(), user.len()) };
    assert_eq!(s, PhiEdgeStatus::Ok, "{}", generator_error(g));
    assert_eq!(next(g, PHI_EDGE_TEXT_CAP).0, PhiEdgeStatus::Ok);
    let mut stats = PhiEdgeStats::default();
    // SAFETY: live generator and stats.
    let status = unsafe { phi_edge_get_stats(g, &mut stats) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    assert!(stats.prompt_tokens > 4 && stats.generated == 1, "{stats:?}");
    let mut name = [0u8; 32];
    // SAFETY: live generator, 32 writable bytes.
    let status = unsafe { phi_edge_kernels(g, name.as_mut_ptr().cast(), name.len()) };
    assert_eq!(status, PhiEdgeStatus::Ok);
    let name = CStr::from_bytes_until_nul(&name).unwrap().to_str().unwrap();
    assert_eq!(name, phi_edge::Kernels::name(&AutoKernels::detect()));
}

#[test]
fn every_status_has_its_own_message() {
    let mut seen = std::collections::HashSet::new();
    for s in PhiEdgeStatus::all() {
        // SAFETY: phi_edge_strerror returns a static C string.
        let msg = unsafe { CStr::from_ptr(phi_edge_strerror(s as i32)) }
            .to_str()
            .unwrap();
        assert!(!msg.is_empty() && seen.insert(msg), "{s:?}: {msg:?}");
        assert!(
            (s as i32 >= 0)
                == matches!(
                    s,
                    PhiEdgeStatus::Ok | PhiEdgeStatus::Done | PhiEdgeStatus::ContextFull
                )
        );
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(phi_edge_strerror(12345)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown status code");
}

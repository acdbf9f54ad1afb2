//! Session behaviour on synthetic models: streamed and mapped weights give
//! bit-identical logits, decoding reads each weight byte once, and full
//! arenas, full contexts and bad tokens are typed errors.

use std::cell::RefCell;

use phi_edge::image::tensor::Role;
use phi_edge::pack::pack_to_vec;
use phi_edge::plan::ARENA_ALIGN;
use phi_edge::{DType, Error, Mapped, Model, Plan, ReadAt, RunOptions, Session, Streamed};
use phi_edge_portable::Portable;
use phi_edge_tests::synth::{self, Spec};

/// A 64-byte-aligned heap arena of `n` bytes.
fn arena(n: usize) -> Vec<u8> {
    vec![0u8; n + ARENA_ALIGN]
}

fn logits_all(image: &[u8], tokens: &[u32], opts: &RunOptions, streamed: bool) -> Vec<f32> {
    let model = Model::open_mapped(image).unwrap();
    let nv = model.config().n_vocab as usize;
    let mut out = vec![0f32; tokens.len() * nv];
    let mut a = arena(Plan::new(model.config(), opts).unwrap().bytes());
    if streamed {
        let mut s = Session::new(&model, Portable, Streamed(image), &mut a, opts).unwrap();
        s.eval(tokens, Some(&mut out)).unwrap();
    } else {
        let mut s = Session::new(&model, Portable, Mapped(image), &mut a, opts).unwrap();
        s.eval(tokens, Some(&mut out)).unwrap();
    }
    out
}

fn specs() -> Vec<Spec> {
    vec![
        Spec::phi3(DType::Q4K),
        Spec {
            n_rot: 32,
            n_head_kv: 2,
            ..Spec::phi3(DType::Q8_0)
        },
        Spec::llama(DType::Q4_1),
        Spec::llama(DType::Q6K),
        Spec {
            n_vocab: 64,
            ..Spec::phi3(DType::F32)
        },
        Spec {
            n_vocab: 64,
            ..Spec::llama(DType::F16)
        },
        Spec {
            n_vocab: 64,
            ..Spec::llama(DType::BF16)
        },
        Spec {
            n_vocab: 64,
            ..Spec::phi3(DType::Q4_0)
        },
    ]
}

const TOKENS: [u32; 11] = [1, 5, 9, 2, 63, 0, 17, 33, 8, 8, 40];

#[test]
fn streamed_and_mapped_logits_are_bit_identical_at_any_chunk_and_stage_size() {
    for spec in specs() {
        let image = pack_to_vec(&synth::build(&spec)).unwrap();
        let model = Model::open_mapped(&image).unwrap();
        let min_stage = Plan::min_stage_bytes(model.config()) as u32;
        let reference = logits_all(&image, &TOKENS, &RunOptions::mapped(64), false);
        assert!(
            reference.iter().all(|v| v.is_finite()),
            "{spec:?}: non-finite logits"
        );
        for (chunk, stage) in [(16, min_stage), (1, min_stage + 100), (3, 1 << 16)] {
            let mut o = RunOptions::streamed(64, stage);
            o.prefill_chunk = chunk;
            assert!(
                logits_all(&image, &TOKENS, &o, true) == reference,
                "{:?} {:?} streamed chunk {chunk} stage {stage}",
                spec.arch,
                spec.dtype
            );
            let mut o = RunOptions::mapped(64);
            o.prefill_chunk = chunk;
            assert!(
                logits_all(&image, &TOKENS, &o, false) == reference,
                "{:?} {:?} mapped chunk {chunk}",
                spec.arch,
                spec.dtype
            );
        }
    }
}

#[test]
fn logits_after_prefill_match_token_by_token_decoding() {
    let spec = Spec::llama(DType::Q4_1);
    let image = pack_to_vec(&synth::build(&spec)).unwrap();
    let model = Model::open_mapped(&image).unwrap();
    let all = logits_all(&image, &TOKENS, &RunOptions::mapped(32), false);
    let nv = model.config().n_vocab as usize;
    let opts = RunOptions::mapped(32);
    let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
    let mut s = Session::new(&model, Portable, Mapped(&image), &mut a, &opts).unwrap();
    for (i, &t) in TOKENS.iter().enumerate() {
        let l = s.eval(&[t], None).unwrap();
        assert!(l == &all[i * nv..(i + 1) * nv], "position {i}");
    }
    assert_eq!(s.n_past(), TOKENS.len());
}

/// A device that records which bytes were read, and how often.
struct Counting<'a> {
    image: &'a [u8],
    reads: &'a RefCell<Vec<u32>>,
}

impl ReadAt for Counting<'_> {
    fn size(&self) -> u64 {
        self.image.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        let o = offset as usize;
        buf.copy_from_slice(&self.image[o..o + buf.len()]);
        for c in &mut self.reads.borrow_mut()[o..o + buf.len()] {
            *c += 1;
        }
        Ok(())
    }
}

#[test]
fn decoding_one_token_reads_each_weight_byte_once() {
    for spec in [Spec::phi3(DType::Q4K), Spec::llama(DType::Q4_1)] {
        let image = pack_to_vec(&synth::build(&spec)).unwrap();
        let model = Model::open_mapped(&image).unwrap();
        let reads = RefCell::new(vec![0u32; image.len()]);
        let opts = RunOptions::streamed(32, Plan::min_stage_bytes(model.config()) as u32 * 3);
        let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
        let src = Streamed(Counting {
            image: &image,
            reads: &reads,
        });
        let mut s = Session::new(&model, Portable, src, &mut a, &opts).unwrap();
        s.eval(&[3, 4, 5], None).unwrap();
        reads.borrow_mut().fill(0);
        let tok = 7u32;
        s.eval(&[tok], None).unwrap();
        let reads = reads.borrow();
        let tied = model.config().tied_output;
        for t in model.tensors() {
            let at = model.tensor_offset(&t) as usize;
            let bytes = &reads[at..at + t.len as usize];
            let row = t.row_bytes();
            let expect = |i: usize| -> u32 {
                match t.role {
                    Role::RopeFactorsShort | Role::RopeFactorsLong => 0,
                    // The one position decoded (after the three prompt tokens).
                    Role::RopeCache => u32::from(i / row == 3),
                    Role::TokenEmbd => u32::from(tied) + u32::from(i / row == tok as usize),
                    _ => 1,
                }
            };
            for (i, &n) in bytes.iter().enumerate() {
                assert_eq!(
                    n,
                    expect(i),
                    "{:?} {:?} layer {} byte {i} read {n} times",
                    spec.arch,
                    t.role,
                    t.layer
                );
            }
        }
        let header_and_manifest_reads: u32 =
            reads[..model.header().data_offset as usize].iter().sum();
        assert_eq!(
            header_and_manifest_reads, 0,
            "decoding re-read the header or manifest"
        );
    }
}

#[test]
fn arena_too_small_says_what_it_needs() {
    let image = pack_to_vec(&synth::build(&Spec::phi3(DType::Q8_0))).unwrap();
    let model = Model::open_mapped(&image).unwrap();
    let opts = RunOptions::mapped(40);
    let need = Plan::new(model.config(), &opts).unwrap().bytes();
    assert_eq!(
        need,
        Plan::arena_bytes(model.config(), &opts),
        "const plan agrees"
    );
    let mut a = arena(need);
    let skip = a.as_ptr().align_offset(ARENA_ALIGN);
    let aligned = &mut a[skip..];
    match Session::new(
        &model,
        Portable,
        Mapped(&image),
        &mut aligned[..need - 1],
        &opts,
    ) {
        Err(Error::ArenaTooSmall { need: n, got }) => assert_eq!((n, got), (need, need - 1)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted a short arena"),
    }
    assert!(Session::new(
        &model,
        Portable,
        Mapped(&image),
        &mut aligned[..need],
        &opts
    )
    .is_ok());
}

#[test]
fn a_full_context_and_bad_tokens_are_errors_that_change_nothing() {
    let image = pack_to_vec(&synth::build(&Spec::llama(DType::Q8_0))).unwrap();
    let model = Model::open_mapped(&image).unwrap();
    let opts = RunOptions::mapped(8);
    let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
    let mut s = Session::new(&model, Portable, Mapped(&image), &mut a, &opts).unwrap();
    assert_eq!(
        s.eval(&[1; 9], None).unwrap_err(),
        Error::ContextFull { n_ctx: 8 }
    );
    assert_eq!(
        s.eval(&[1, 300], None).unwrap_err(),
        Error::BadToken {
            id: 300,
            n_vocab: 300
        }
    );
    assert!(matches!(s.eval(&[], None), Err(Error::BadOptions { .. })));
    assert_eq!(s.n_past(), 0);
    s.eval(&[1; 8], None).unwrap();
    assert_eq!(
        s.eval(&[1], None).unwrap_err(),
        Error::ContextFull { n_ctx: 8 }
    );
    let mut small = vec![0f32; 10];
    s.reset();
    assert!(matches!(
        s.eval(&[1, 2], Some(&mut small)),
        Err(Error::BufferTooSmall { .. })
    ));
}

#[test]
fn long_rope_factors_follow_llama_cpp_context_rule() {
    // Original context 1024: llama.cpp pads n_ctx to 256 and uses the long
    // factors above it.
    let image = pack_to_vec(&synth::build(&Spec::phi3(DType::F32))).unwrap();
    let model = Model::open_mapped(&image).unwrap();
    for (n_ctx, long) in [(1024, false), (1000, false), (1025, true), (2048, true)] {
        let opts = RunOptions::mapped(n_ctx);
        let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
        let s = Session::new(&model, Portable, Mapped(&image), &mut a, &opts).unwrap();
        assert_eq!(s.uses_long_rope(), long, "n_ctx {n_ctx}");
    }
    let short = logits_all(&image, &TOKENS, &RunOptions::mapped(1024), false);
    let long = logits_all(&image, &TOKENS, &RunOptions::mapped(2048), false);
    assert!(short != long, "long and short factors gave the same logits");
}

//! Streamed weights under faults and with background reads: a failed or
//! short read at any point of an evaluation is a typed error naming the
//! tensor, the session has not advanced, and the next call gives the
//! logits a fault-free session gives; reads issued through
//! `read_at_during` overlap the kernels' work and change no bit.

use std::cell::Cell;

use phi_edge::pack::pack_to_vec;
use phi_edge::plan::ARENA_ALIGN;
use phi_edge::{DType, Error, Mapped, Model, Plan, ReadAt, RunOptions, Session, Streamed};
use phi_edge_portable::Portable;
use phi_edge_tests::synth::{self, Spec};

/// A 64-byte-aligned heap arena of `n` bytes.
fn arena(n: usize) -> Vec<u8> {
    vec![0u8; n + ARENA_ALIGN]
}

/// How a faulty device fails.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The read reports a device error.
    Error,
    /// The device returns fewer bytes than asked (as past a truncated
    /// end), which the reader reports as an error for that offset.
    Short,
}

/// A device that fails its `fail_at`-th read (counting from 0), once.
struct Faulty<'a> {
    image: &'a [u8],
    reads: &'a Cell<usize>,
    fail_at: &'a Cell<Option<usize>>,
    fault: Fault,
}

impl ReadAt for Faulty<'_> {
    fn size(&self) -> u64 {
        self.image.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        let n = self.reads.get();
        self.reads.set(n + 1);
        let o = offset as usize;
        if self.fail_at.get() == Some(n) {
            self.fail_at.set(None);
            return match self.fault {
                Fault::Error => Err(Error::Read { offset }),
                Fault::Short => {
                    // Half the bytes arrive, then the device ends.
                    let half = buf.len() / 2;
                    buf[..half].copy_from_slice(&self.image[o..o + half]);
                    Err(Error::Read {
                        offset: offset + half as u64,
                    })
                }
            };
        }
        buf.copy_from_slice(&self.image[o..o + buf.len()]);
        Ok(())
    }
}

const PROMPT: [u32; 5] = [1, 5, 9, 2, 63];
const NEXT: u32 = 17;

/// The logits after `PROMPT` then `NEXT`, mapped.
fn reference(image: &[u8], opts: &RunOptions) -> (Vec<f32>, Vec<f32>) {
    let model = Model::open_mapped(image).unwrap();
    let opts = RunOptions {
        stage_bytes: 0,
        ..*opts
    };
    let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
    let mut s = Session::new(&model, Portable, Mapped(image), &mut a, &opts).unwrap();
    let after_prompt = s.eval(&PROMPT, None).unwrap().to_vec();
    let after_next = s.eval(&[NEXT], None).unwrap().to_vec();
    (after_prompt, after_next)
}

#[test]
fn a_failed_read_anywhere_is_a_typed_error_and_the_next_call_succeeds() {
    for spec in [Spec::phi3(DType::Q4K), Spec::llama(DType::Q4_1)] {
        let image = pack_to_vec(&synth::build(&spec)).unwrap();
        let model = Model::open_mapped(&image).unwrap();
        let mut opts = RunOptions::streamed(32, Plan::min_stage_bytes(model.config()) as u32 * 3);
        // Two prefill chunks: a fault in the second must undo the first.
        opts.prefill_chunk = 3;
        let (want_prompt, want_next) = reference(&image, &opts);
        let reads = Cell::new(0);
        let fail_at = Cell::new(None);
        // Reads of one prompt evaluation and one decode step, fault-free.
        let count = |fault| {
            let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
            let src = Streamed(Faulty {
                image: &image,
                reads: &reads,
                fail_at: &fail_at,
                fault,
            });
            let mut s = Session::new(&model, Portable, src, &mut a, &opts).unwrap();
            let r0 = reads.get();
            s.eval(&PROMPT, None).unwrap();
            let r1 = reads.get();
            s.eval(&[NEXT], None).unwrap();
            (r1 - r0, reads.get() - r1)
        };
        let (prompt_reads, decode_reads) = count(Fault::Error);
        assert!(
            prompt_reads > 10 && decode_reads > 5,
            "{prompt_reads} {decode_reads}"
        );
        for fault in [Fault::Error, Fault::Short] {
            for (phase, n_reads) in [("prompt", prompt_reads), ("decode", decode_reads)] {
                for k in 0..n_reads {
                    let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
                    let src = Streamed(Faulty {
                        image: &image,
                        reads: &reads,
                        fail_at: &fail_at,
                        fault,
                    });
                    let mut s = Session::new(&model, Portable, src, &mut a, &opts).unwrap();
                    let what = format!("{:?} {fault:?} at {phase} read {k}", spec.arch);
                    if phase == "decode" {
                        s.eval(&PROMPT, None).unwrap();
                    }
                    let (tokens, want): (&[u32], _) = if phase == "prompt" {
                        (&PROMPT, &want_prompt)
                    } else {
                        (&[NEXT], &want_next)
                    };
                    let before = s.n_past();
                    fail_at.set(Some(reads.get() + k));
                    match s.eval(tokens, None) {
                        Err(Error::WeightRead {
                            name,
                            layer,
                            offset,
                        }) => {
                            let t = model
                                .tensors()
                                .find(|t| {
                                    (model.tensor_offset(t)..model.tensor_offset(t) + t.len)
                                        .contains(&offset)
                                })
                                .unwrap_or_else(|| {
                                    panic!("{what}: offset {offset} is in no tensor")
                                });
                            assert_eq!(
                                (name, layer),
                                (t.role.gguf_name(), t.role.per_layer().then_some(t.layer)),
                                "{what}"
                            );
                        }
                        other => panic!("{what}: {:?}", other.map(|l| l.len())),
                    }
                    assert_eq!(
                        s.n_past(),
                        before,
                        "{what}: the failed call advanced the session"
                    );
                    let got = s.eval(tokens, None).unwrap();
                    assert!(got == &want[..], "{what}: the retry gave other logits");
                }
            }
        }
    }
}

#[test]
fn the_error_names_the_tensor_being_read() {
    let spec = Spec::llama(DType::Q4_1);
    let image = pack_to_vec(&synth::build(&spec)).unwrap();
    let model = Model::open_mapped(&image).unwrap();
    let opts = RunOptions::streamed(32, Plan::min_stage_bytes(model.config()) as u32);
    let down = model
        .tensor(phi_edge::image::tensor::Role::FfnDown, 1)
        .unwrap();
    let at = model.tensor_offset(&down);
    // A device whose bytes end inside layer 1's ffn_down.
    let short = &image[..at as usize + 10];
    let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
    let mut s = Session::new(&model, Portable, Streamed(short), &mut a, &opts).unwrap();
    let e = s.eval(&[3], None).unwrap_err();
    assert_eq!(
        e,
        Error::WeightRead {
            name: "blk.N.ffn_down.weight",
            layer: Some(1),
            offset: at
        }
    );
    assert_eq!(
        e.to_string(),
        format!("reading tensor blk.N.ffn_down.weight of layer 1 failed at image offset {at}")
    );
    assert_eq!(s.n_past(), 0);
    let mut staging = vec![0u8; 4096];
    assert_eq!(
        model
            .verify(&mut Streamed(short), &mut staging)
            .unwrap_err(),
        e
    );
}

/// A device that reads in `read_at_during` only after checking that the
/// work has not run yet, then runs it: records how many reads were issued
/// with work and how many without.
struct Background<'a> {
    image: &'a [u8],
    during: &'a Cell<usize>,
    plain: &'a Cell<usize>,
}

impl ReadAt for Background<'_> {
    fn size(&self) -> u64 {
        self.image.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        self.plain.set(self.plain.get() + 1);
        let o = offset as usize;
        buf.copy_from_slice(
            self.image
                .get(o..o + buf.len())
                .ok_or(Error::Read { offset })?,
        );
        Ok(())
    }

    fn read_at_during(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        work: &mut dyn FnMut(),
    ) -> phi_edge::Result<()> {
        // The buffer is filled first, as a DMA engine would before the
        // completion: the work must not depend on it.
        let o = offset as usize;
        buf.copy_from_slice(
            self.image
                .get(o..o + buf.len())
                .ok_or(Error::Read { offset })?,
        );
        work();
        self.during.set(self.during.get() + 1);
        Ok(())
    }
}

#[test]
fn reads_overlap_the_work_across_tensors_and_change_no_bit() {
    for spec in [
        Spec::phi3(DType::Q4K),
        Spec::llama(DType::Q4_1),
        Spec::llama(DType::Q6K),
    ] {
        let image = pack_to_vec(&synth::build(&spec)).unwrap();
        let model = Model::open_mapped(&image).unwrap();
        let min = Plan::min_stage_bytes(model.config()) as u32;
        for stage in [min, min * 3, 1 << 20] {
            let opts = RunOptions::streamed(32, stage);
            let (want_prompt, want_next) = reference(&image, &opts);
            let (during, plain) = (Cell::new(0), Cell::new(0));
            let mut a = arena(Plan::new(model.config(), &opts).unwrap().bytes());
            let src = Streamed(Background {
                image: &image,
                during: &during,
                plain: &plain,
            });
            let mut s = Session::new(&model, Portable, src, &mut a, &opts).unwrap();
            assert!(s.eval(&PROMPT, None).unwrap() == &want_prompt[..]);
            let read = s.bytes_read();
            let (d0, p0) = (during.get(), plain.get());
            assert!(
                s.eval(&[NEXT], None).unwrap() == &want_next[..],
                "{:?} stage {stage}",
                spec.arch
            );
            let (d, p) = (during.get() - d0, plain.get() - p0);
            // A decode step reads synchronously only the embedding row, the
            // first matrix's first chunk, the norms and the rope-table row:
            // every other chunk is read during the work before it.
            let layers = model.config().n_layer as usize;
            let sync_reads = 1 + 1 + 2 * layers + 1 + 1;
            assert!(
                p <= sync_reads,
                "{:?} stage {stage}: {p} synchronous reads, {d} overlapped",
                spec.arch
            );
            assert!(
                d >= model.tensors().filter(|t| t.cols > 1 && t.rows > 1).count() - 3,
                "{:?} stage {stage}: only {d} overlapped",
                spec.arch
            );
            assert_eq!(
                s.bytes_read() - read,
                phi_edge_tests::decode_read_bytes(&model, 5)
            );
        }
    }
}

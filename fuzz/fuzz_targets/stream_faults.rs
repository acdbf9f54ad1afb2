//! A `ReadAt` that fails, or returns short, at fuzzer-chosen reads while a
//! tiny model is opened from it and evaluated streamed: every failure is
//! a typed read error, a failed evaluation leaves the session where it
//! was, and once the faults are spent the logits are bit for bit those of
//! the same session over mapped memory.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use phi_edge::plan::ARENA_ALIGN;
use phi_edge::{Arch, DType, Error, Mapped, Model, Plan, ReadAt, RunOptions, Session, Streamed};
use phi_edge_fuzz_common::inputs::{Fault, StreamInput};
use phi_edge_fuzz_common::{tiny, tiny_image, tiny_k, Vocab};
use phi_edge_portable::Portable;

const N_CTX: u32 = 16;

fn images() -> &'static [Vec<u8>] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        vec![
            tiny_image(&tiny(Arch::Phi3, DType::Q8_0), Vocab::None),
            tiny_image(&tiny(Arch::Llama, DType::Q4_1), Vocab::None),
            tiny_image(&tiny_k(Arch::Phi3, DType::Q4K), Vocab::None),
            tiny_image(&tiny(Arch::Llama, DType::F16), Vocab::None),
        ]
    })
}

/// A device over `image` whose reads numbered in `faults` fail once each.
struct Faulty<'a> {
    image: &'a [u8],
    reads: u32,
    faults: Vec<(u32, Fault)>,
}

impl ReadAt for Faulty<'_> {
    fn size(&self) -> u64 {
        self.image.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> phi_edge::Result<()> {
        let n = self.reads;
        self.reads += 1;
        let o = usize::try_from(offset).expect("offset fits");
        let src = self
            .image
            .get(o..o + buf.len())
            .unwrap_or_else(|| panic!("read of {} at {offset} past the image's end", buf.len()));
        if let Some(i) = self.faults.iter().position(|&(at, _)| at == n) {
            let (_, fault) = self.faults.swap_remove(i);
            return match fault {
                Fault::Error => Err(Error::Read { offset }),
                Fault::Short(frac) => {
                    let k = buf.len() * usize::from(frac) / 256;
                    buf[..k].copy_from_slice(&src[..k]);
                    Err(Error::Read {
                        offset: offset + k as u64,
                    })
                }
            };
        }
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn is_read_error(e: &Error) -> bool {
    matches!(e, Error::Read { .. } | Error::WeightRead { .. })
}

fuzz_target!(
    // Loaded before the first input, outside its 1 s timeout.
    init: {
        phi_edge_fuzz_common::init();
        images();
    },
    |data: &[u8]| {
    let input = StreamInput::decode(data);
    let images = images();
    let image = &images[usize::from(input.model) % images.len()];
    let mapped = Model::open_mapped(image).expect("the tiny model opens");
    let cfg = *mapped.config();
    let n_vocab = cfg.n_vocab;
    let prompt: Vec<u32> = input.prompt.iter().map(|t| t % n_vocab).collect();
    let next = input.next % n_vocab;
    let stage = Plan::min_stage_bytes(&cfg) as u32 * input.stage_mult;
    let opts = RunOptions {
        prefill_chunk: input.chunk,
        ..RunOptions::streamed(N_CTX, stage)
    };

    // The reference: the same options over mapped memory.
    let mapped_opts = RunOptions {
        stage_bytes: 0,
        ..opts
    };
    let mut arena = vec![0u8; Plan::new(&cfg, &mapped_opts).unwrap().bytes() + ARENA_ALIGN];
    let mut s = Session::new(&mapped, Portable, Mapped(image), &mut arena, &mapped_opts).unwrap();
    let want_prompt = s.eval(&prompt, None).unwrap().to_vec();
    let want_next = s.eval(&[next], None).unwrap().to_vec();

    let mut dev = Faulty {
        image,
        reads: 0,
        faults: input.faults.clone(),
    };
    let mut manifest = vec![0u8; image.len()];
    let model = loop {
        match Model::open_streamed(&mut dev, &mut manifest) {
            Ok(m) => break m,
            Err(e) => assert!(is_read_error(&e), "opening: {e:?}"),
        }
    };
    let mut arena = vec![0u8; Plan::new(&cfg, &opts).unwrap().bytes() + ARENA_ALIGN];
    let mut s = loop {
        // `Session::new` reads the RoPE factors.
        match Session::new(&model, Portable, Streamed(&mut dev), &mut arena, &opts) {
            Ok(s) => break s,
            Err(e) => assert!(is_read_error(&e), "session: {e:?}"),
        }
    };
    for (tokens, want) in [(&prompt[..], &want_prompt), (&[next][..], &want_next)] {
        loop {
            let before = s.n_past();
            match s.eval(tokens, None) {
                Ok(logits) => {
                    let same = logits
                        .iter()
                        .zip(want.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "streamed logits differ from mapped after faults");
                    break;
                }
                Err(e) => {
                    assert!(is_read_error(&e), "eval: {e:?}");
                    assert_eq!(s.n_past(), before, "a failed eval moved the session");
                }
            }
        }
    }
});

//! Every malformed GGUF file and image gives a typed error from the
//! library, never a panic.

use phi_edge::pack::pack_to_vec;
use phi_edge::{Mapped, Model};
use phi_edge_tests::{corpus, synth};

#[test]
fn malformed_gguf_files_are_rejected_with_typed_errors() {
    let cases = corpus::gguf_cases();
    for c in &cases {
        match pack_to_vec(&c.bytes) {
            Ok(_) => panic!("{}: accepted", c.name),
            Err(e) => println!("{:<45} -> {e}", c.name),
        }
    }
    println!("{} malformed GGUF cases rejected", cases.len());
}

#[test]
fn the_base_of_the_corpus_is_valid() {
    // Otherwise every case above would fail for the same uninteresting reason.
    let image = pack_to_vec(&synth::build(&corpus::base_spec())).expect("base model packs");
    let model = Model::open_mapped(&image).expect("base image opens");
    model
        .verify(&mut Mapped(&image), &mut [])
        .expect("base image verifies");
}

#[test]
fn malformed_images_are_rejected_with_typed_errors() {
    let image = pack_to_vec(&synth::build(&corpus::base_spec())).unwrap();
    let cases = corpus::image_cases(&image);
    for c in &cases {
        let result =
            Model::open_mapped(&c.bytes).and_then(|m| m.verify(&mut Mapped(&c.bytes), &mut []));
        match result {
            Ok(()) => panic!("{}: accepted", c.name),
            Err(e) => println!("{:<45} -> {e}", c.name),
        }
    }
    println!("{} malformed image cases rejected", cases.len());
}

#[test]
fn random_byte_flips_never_panic() {
    let gguf = synth::build(&corpus::base_spec());
    let image = pack_to_vec(&gguf).unwrap();
    let mut rng = synth::Rng::new(7);
    for _ in 0..300 {
        let mut g = gguf.clone();
        let mut im = image.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let i = (rng.next_u64() as usize) % g.len().min(4096);
            g[i] ^= 1 << (rng.next_u64() % 8);
            let j = (rng.next_u64() as usize) % im.len();
            im[j] ^= 1 << (rng.next_u64() % 8);
        }
        let _ = pack_to_vec(&g);
        let _ = Model::open_mapped(&im).and_then(|m| m.verify(&mut Mapped(&im), &mut []));
    }
}

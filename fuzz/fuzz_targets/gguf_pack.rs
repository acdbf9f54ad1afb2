//! GGUF bytes through the packer (`phi_edge::pack`, as `phi-edge pack`
//! does), then the image it writes opened, verified, its tokenizer built
//! and two tokens evaluated, as `image` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phi_edge::pack::pack_to_vec;
use phi_edge_fuzz_common::run::exercise;

fuzz_target!(
    init: phi_edge_fuzz_common::init(),
    |data: &[u8]| {
    let Ok(image) = pack_to_vec(data) else {
        return;
    };
    // What the packer writes opens (pack_to_vec checked) and verifies.
    let model = phi_edge::Model::open_mapped(&image).expect("a packed image opens");
    model
        .verify(&mut phi_edge::Mapped(&image), &mut [])
        .expect("a packed image verifies");
    let _ = exercise(&image);
});

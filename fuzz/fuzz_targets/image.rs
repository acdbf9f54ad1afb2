//! `.phi` image bytes with every checksum recomputed before opening, so
//! mutations reach the postcard manifest, config validation, the tensor
//! table and the tokenizer tables: open, verify, tokenizer, then two
//! tokens evaluated with the portable kernels under a 64 MiB arena cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phi_edge_fuzz_common::{fix_crcs, run::exercise};

fuzz_target!(
    init: phi_edge_fuzz_common::init(),
    |data: &[u8]| {
    let mut image = data.to_vec();
    fix_crcs(&mut image);
    let _ = exercise(&image);
});

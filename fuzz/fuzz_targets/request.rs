//! The board request blob (`boards/common/src/request.rs`), decode side:
//! any bytes give a request or a typed error, and a decoded request
//! encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phi_edge_board::request::Request;

fuzz_target!(
    init: phi_edge_fuzz_common::init(),
    |data: &[u8]| {
    let Ok(req) = Request::decode(data) else {
        return;
    };
    let mut buf = vec![0u8; data.len() + 64];
    let blob = req.encode(&mut buf).expect("a decoded request encodes");
    let again = Request::decode(blob).expect("an encoded request decodes");
    // Compare through the encoding: a NaN temperature is not equal to itself.
    let mut buf2 = vec![0u8; data.len() + 64];
    let blob2 = again.encode(&mut buf2).expect("re-encodes");
    assert_eq!(blob, blob2, "encode(decode(encode(r))) differs");
    assert_eq!(again.prompt, req.prompt);
    assert_eq!(again.system, req.system);
});

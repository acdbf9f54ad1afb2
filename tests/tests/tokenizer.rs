//! Tokenizer parity with llama.cpp.
//!
//! - llama.cpp's own test vectors (every SentencePiece and BPE
//!   `ggml-vocab-*.gguf` with `.inp` / `.out`, as its test-tokenizer-0 runs
//!   them): every case.
//! - `tests/oracle/tokenizer_corpus.txt` on those vocabularies, the ones
//!   without test vectors (aquila, gpt-neox, baichuan), the real SmolLM2
//!   model and a `gpt-4o` copy of llama-bpe, against the ids, pieces, token
//!   attributes and
//!   end-of-generation sets llama.cpp gave at `cargo xtask ref` time
//!   (`target/ref/tokenizer.json`, written by `tokenize_ref.py`): ids with
//!   and without special-token parsing and with BOS, and the detokenized
//!   text of those ids.
//! - Bad input: malformed UTF-8, a 1 MB prompt, an empty string, small
//!   buffers, bad ids.

use std::path::{Path, PathBuf};

use phi_edge::gguf::Gguf;
use phi_edge::pack::{read_tokenizer, OwnedTokenizer, PackError};
use phi_edge::{Error, Tokenizer, Utf8Decoder};
use phi_edge_tests::goldens::read_json;
use phi_edge_tests::ref_dir;
use serde::Deserialize;

#[derive(Deserialize)]
struct Goldens {
    corpus_size: usize,
    vocabs: Vec<Vocab>,
}

#[derive(Deserialize)]
struct Vocab {
    name: String,
    model: String,
    n_vocab: u32,
    eog: Vec<u32>,
    attrs: Vec<(u32, u16)>,
    pieces: Vec<String>,
    pieces_special: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    source: String,
    plain: Vec<u32>,
    special: Vec<u32>,
    bos: Vec<u32>,
    detok: String,
    detok_special: String,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn goldens() -> (PathBuf, Goldens) {
    let dir = ref_dir();
    let goldens = read_json(&dir, "tokenizer.json");
    (dir, goldens)
}

/// The GGUF file's bytes (kept alive for the tokenizer tables' strings).
fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask setup`)", path.display()))
}

fn owned(bytes: &[u8]) -> OwnedTokenizer<'_> {
    let g = Gguf::parse(bytes).expect("GGUF parses");
    read_tokenizer(&g, None).expect("tokenizer reads")
}

/// Tokenizes with a right-sized buffer and working memory.
fn tokenize(
    t: &Tokenizer<'_>,
    text: &[u8],
    add_special: bool,
    parse_special: bool,
) -> Result<Vec<u32>, Error> {
    let mut work = vec![0u8; t.work_bytes(text.len())];
    let mut out = vec![0u32; text.len() + 4];
    let n = match t.tokenize(text, add_special, parse_special, &mut out, &mut work) {
        // Byte fallback can give up to three ids per byte.
        Err(Error::BufferTooSmall { need, .. }) => {
            out.resize(need, 0);
            t.tokenize(text, add_special, parse_special, &mut out, &mut work)?
        }
        r => r?,
    };
    out.truncate(n);
    Ok(out)
}

fn pieces(t: &Tokenizer<'_>, ids: &[u32], special: bool) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 256];
    for &id in ids {
        let n = t.piece(id, special, &mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
    }
    all
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

#[test]
fn llama_cpp_test_vectors() {
    let (dir, g) = goldens();
    let mut failures = Vec::new();
    let with_vectors = |v: &&Vocab| v.cases.iter().any(|c| c.source == "inp");
    for v in g.vocabs.iter().filter(with_vectors) {
        let model = dir.join(&v.model);
        let inp = std::fs::read(model.with_extension("gguf.inp")).unwrap();
        let out = std::fs::read_to_string(model.with_extension("gguf.out")).unwrap();
        // test-tokenizer-0's format: inputs separated by this line, one
        // output line of ids per input.
        let sep = b"\n__ggml_vocab_test__\n";
        let mut inputs = Vec::new();
        let mut rest = &inp[..];
        while !rest.is_empty() {
            match rest.windows(sep.len()).position(|w| w == sep) {
                Some(p) => {
                    inputs.push(&rest[..p]);
                    rest = &rest[p + sep.len()..];
                }
                None => {
                    inputs.push(rest);
                    rest = &[];
                }
            }
        }
        let expected: Vec<Vec<u32>> = out
            .lines()
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(
            inputs.len(),
            expected.len(),
            "{}: .inp and .out disagree",
            v.name
        );
        let bytes = read(&model);
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        let mut pass = 0;
        for (text, want) in inputs.iter().zip(&expected) {
            let got = tokenize(&t, text, false, false).unwrap();
            if &got == want {
                pass += 1;
            } else {
                failures.push(format!(
                    "{} {}: got {got:?}, want {want:?}",
                    v.name,
                    show(text)
                ));
            }
        }
        println!(
            "{:<24} {pass}/{} llama.cpp test vectors",
            v.name,
            inputs.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vocabularies_phi_edge_lacks_get_a_typed_error() {
    // llama.cpp's vocabulary directory, where the goldens found gpt-2's.
    let (ref_dir, g) = goldens();
    let gpt2 = g
        .vocabs
        .iter()
        .find(|v| v.name == "ggml-vocab-gpt-2")
        .unwrap();
    let dir = ref_dir.join(&gpt2.model).parent().unwrap().to_path_buf();
    for (file, model, kind) in [
        ("ggml-vocab-bert-bge.gguf", "bert", "WPM"),
        ("ggml-vocab-nomic-bert-moe.gguf", "t5", "UGM"),
    ] {
        let bytes = read(&dir.join(file));
        let g = Gguf::parse(&bytes).expect("GGUF parses");
        let e = read_tokenizer(&g, None).unwrap_err();
        assert!(
            matches!(&e, PackError::UnsupportedVocab { model: m, kind: k } if m == model && *k == kind),
            "{file}: {e:?}"
        );
        assert!(e.to_string().contains(model), "{e}");
    }
}

#[test]
fn corpus_ids_and_text_match_llama_cpp() {
    let (dir, g) = goldens();
    assert!(g.corpus_size >= 200, "corpus has {} strings", g.corpus_size);
    let mut failures = Vec::new();
    for v in &g.vocabs {
        let bytes = read(&dir.join(&v.model));
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        assert_eq!(t.n_vocab(), v.n_vocab);
        let mut pass = [0usize; 5];
        for c in &v.cases {
            let text = hex(&c.text);
            let mut check = |k: usize, what: &str, ok: bool, detail: String| {
                if ok {
                    pass[k] += 1;
                } else {
                    failures.push(format!(
                        "{} [{}] {what} {}: {detail}",
                        v.name,
                        c.source,
                        show(&text)
                    ));
                }
            };
            for (k, (want, add, parse)) in [
                (&c.plain, false, false),
                (&c.special, false, true),
                (&c.bos, true, true),
            ]
            .into_iter()
            .enumerate()
            {
                let got = tokenize(&t, &text, add, parse).unwrap();
                let what = ["ids", "ids (parse_special)", "ids (add_special)"][k];
                check(k, what, &got == want, format!("got {got:?}, want {want:?}"));
            }
            let (d, ds) = (pieces(&t, &c.plain, false), pieces(&t, &c.special, true));
            check(
                3,
                "detokenized",
                d == hex(&c.detok),
                format!("got {}, want {}", show(&d), show(&hex(&c.detok))),
            );
            let want = hex(&c.detok_special);
            check(
                4,
                "detokenized (special)",
                ds == want,
                format!("got {}, want {}", show(&ds), show(&want)),
            );
        }
        let n = v.cases.len();
        println!(
            "{:<24} {n} cases: ids {}/{n}, parse_special {}/{n}, add_special {}/{n}, text {}/{n}, special text {}/{n}",
            v.name, pass[0], pass[1], pass[2], pass[3], pass[4]
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pieces_attributes_and_eog_match_llama_cpp() {
    let (dir, g) = goldens();
    for v in &g.vocabs {
        let bytes = read(&dir.join(&v.model));
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        let mut want_attr = vec![phi_edge::tokenizer::attr::NORMAL; v.n_vocab as usize];
        for &(id, a) in &v.attrs {
            want_attr[id as usize] = a;
        }
        let mut buf = [0u8; 512];
        let mut bad = Vec::new();
        for id in 0..v.n_vocab {
            if t.attr(id) != want_attr[id as usize] {
                bad.push(format!(
                    "attr of {id}: {} vs {}",
                    t.attr(id),
                    want_attr[id as usize]
                ));
            }
            for (special, want) in [(false, &v.pieces), (true, &v.pieces_special)] {
                let n = t.piece(id, special, &mut buf).unwrap();
                if buf[..n] != hex(&want[id as usize])[..] {
                    bad.push(format!(
                        "piece of {id} (special {special}): {}",
                        show(&buf[..n])
                    ));
                }
            }
        }
        let eog: Vec<u32> = (0..v.n_vocab).filter(|&i| t.is_eog(i)).collect();
        assert_eq!(eog, v.eog, "{}: end-of-generation ids", v.name);
        assert!(
            bad.is_empty(),
            "{}: {} mismatches:\n{}",
            v.name,
            bad.len(),
            bad[..bad.len().min(40)].join("\n")
        );
        println!(
            "{:<24} {} pieces x2, attributes and eog {:?} identical",
            v.name, v.n_vocab, v.eog
        );
    }
}

#[test]
fn streaming_decoder_gives_the_lossy_text() {
    let (dir, g) = goldens();
    let v = g.vocabs.iter().find(|v| v.name == "smollm2").unwrap();
    let bytes = read(&dir.join(&v.model));
    let o = owned(&bytes);
    let t = Tokenizer::new(&o.tables(), o.name).unwrap();
    for c in &v.cases {
        let mut d = Utf8Decoder::new();
        let mut text = String::new();
        let (mut piece, mut out) = ([0u8; 256], [0u8; 1024]);
        for &id in &c.plain {
            let n = t.piece(id, false, &mut piece).unwrap();
            text += d.push(&piece[..n], &mut out).unwrap();
        }
        text += d.finish(&mut out).unwrap();
        assert_eq!(text, String::from_utf8_lossy(&hex(&c.detok)), "{}", c.text);
    }
}

fn smollm2_and_phi3() -> Vec<(String, Vec<u8>)> {
    let (dir, g) = goldens();
    g.vocabs
        .iter()
        .filter(|v| v.name == "smollm2" || v.name == "ggml-vocab-phi-3")
        .map(|v| (v.name.clone(), read(&dir.join(&v.model))))
        .collect()
}

#[test]
fn bad_input_gives_results_or_typed_errors() {
    for (name, bytes) in smollm2_and_phi3() {
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        // Empty text: nothing, or BOS alone.
        assert_eq!(tokenize(&t, b"", false, true).unwrap(), Vec::<u32>::new());
        let with_bos = tokenize(&t, b"", true, true).unwrap();
        assert_eq!(with_bos.len(), usize::from(t.special().add_bos), "{name}");
        // Malformed UTF-8 of every kind tokenizes (llama.cpp's lenient rules).
        for text in [
            &b"\xff\xfe\xfd"[..],
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"abc\xe4\xb8",
            b"\x80\x80\x80",
        ] {
            let ids = tokenize(&t, text, false, true).unwrap();
            assert!(!ids.is_empty(), "{name}: {text:?}");
        }
        // A 1 MB prompt.
        let big: Vec<u8> = "The lighthouse keeper climbed the stairs. 灯台守 🦙 1234\n"
            .bytes()
            .cycle()
            .take(1 << 20)
            .collect();
        let ids = tokenize(&t, &big, true, true).unwrap();
        assert!(ids.len() > 100_000, "{name}: {} ids", ids.len());
        println!("{name}: 1 MB prompt -> {} ids", ids.len());
        // Too little memory or output room: typed errors.
        let mut out = [0u32; 4];
        let mut work = vec![0u8; t.work_bytes(11)];
        let need = t.work_bytes(11);
        assert_eq!(
            t.tokenize(
                b"hello world",
                false,
                false,
                &mut out,
                &mut work[..need - 5]
            ),
            Err(Error::WorkTooSmall {
                need,
                got: need - 5
            })
        );
        let n = tokenize(&t, b"hello world, hello world", false, false)
            .unwrap()
            .len();
        assert_eq!(
            t.tokenize(
                b"hello world, hello world",
                false,
                false,
                &mut out[..1],
                &mut vec![0; t.work_bytes(24)]
            ),
            Err(Error::BufferTooSmall { need: n, got: 1 })
        );
        assert_eq!(
            t.piece(t.n_vocab(), true, &mut [0; 16]),
            Err(Error::BadToken {
                id: t.n_vocab(),
                n_vocab: t.n_vocab()
            })
        );
        let long = tokenize(&t, b"Supercalifragilistic", false, false).unwrap()[0];
        assert!(matches!(
            t.piece(long, false, &mut [0; 1]),
            Err(Error::BufferTooSmall { got: 1, .. })
        ));
    }
}

#[test]
fn code_points_past_unicode_are_an_error_for_byte_level_bpe() {
    // llama.cpp aborts on these; SentencePiece does not decode, so it copes.
    for (name, bytes) in smollm2_and_phi3() {
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        let r = tokenize(&t, b"ok \xf4\x90\x80\x80", false, false);
        if name == "smollm2" {
            assert_eq!(r, Err(Error::UnencodableText { offset: 3 }));
        } else {
            assert!(r.is_ok());
        }
    }
}

#[test]
fn random_bytes_and_damaged_tables_never_panic() {
    use phi_edge::image::manifest::TokenizerTables;
    use phi_edge_tests::synth::Rng;
    let mut rng = Rng::new(11);
    let pool: &[&[u8]] = &[
        b"<|im_start|>",
        b"<|end|>",
        b"</s>",
        b" ",
        b"\n",
        b"\xf0\x9f",
        b"\xe4\xb8\xad",
        b"a",
        b"1",
        b"'s",
        b"\xc1",
        b"\xf0",
        b"\xe2\x96",
        b"  ",
    ];
    for (name, bytes) in smollm2_and_phi3() {
        let o = owned(&bytes);
        let tables = o.tables();
        let t = Tokenizer::new(&tables, o.name).unwrap();
        let mut texts = Vec::new();
        for _ in 0..1000 {
            let mut text = Vec::new();
            for _ in 0..rng.next_u64() % 24 {
                match rng.next_u64() % 3 {
                    0 => text.push(rng.next_u64() as u8),
                    _ => {
                        text.extend_from_slice(pool[(rng.next_u64() % pool.len() as u64) as usize])
                    }
                }
            }
            for (add, parse) in [(false, false), (true, true)] {
                match tokenize(&t, &text, add, parse) {
                    Ok(_) | Err(Error::UnencodableText { .. }) => {}
                    Err(e) => panic!("{name}: {text:?}: {e}"),
                }
            }
            texts.push(text);
        }
        // Flip bytes in every table: the tokenizer rejects the tables or
        // keeps working (wrong ids are fine, panics are not).
        let blobs = [
            tables.tokens,
            tables.scores,
            tables.attrs,
            tables.eog,
            tables.token_index,
            tables.merges,
            tables.merge_index,
            tables.specials,
            tables.special_automaton,
        ];
        let (mut accepted, mut rejected) = (0, 0);
        for round in 0..40 {
            let mut copies: Vec<Vec<u8>> = blobs.iter().map(|b| b.to_vec()).collect();
            let which = round % copies.len();
            let c = &mut copies[which];
            for _ in 0..1 + rng.next_u64() % 4 {
                if !c.is_empty() {
                    let i = (rng.next_u64() % c.len() as u64) as usize;
                    c[i] ^= 1 << (rng.next_u64() % 8);
                }
            }
            let damaged = TokenizerTables {
                tokens: &copies[0],
                scores: &copies[1],
                attrs: &copies[2],
                eog: &copies[3],
                token_index: &copies[4],
                merges: &copies[5],
                merge_index: &copies[6],
                specials: &copies[7],
                special_automaton: &copies[8],
                ..tables
            };
            let Ok(t) = Tokenizer::new(&damaged, o.name) else {
                rejected += 1;
                continue;
            };
            accepted += 1;
            for text in texts.iter().take(20) {
                let _ = tokenize(&t, text, true, true);
            }
            let mut buf = [0u8; 64];
            for id in (0..t.n_vocab()).step_by(97) {
                let _ = t.piece(id, true, &mut buf);
            }
        }
        println!("{name}: 2000 random tokenizations tokenized; damaged tables: {accepted} accepted, {rejected} rejected");
    }
}

#[test]
fn random_text_on_every_vocabulary_gives_ids_in_range() {
    use phi_edge_tests::synth::Rng;
    let mut rng = Rng::new(16);
    // Pieces that drive the pre-tokenizers' edge cases.
    let pool: &[&str] = &[
        " ",
        "  ",
        "\n",
        "\r",
        "\r\n",
        "\t",
        "\u{3000}",
        "\u{85}",
        "a",
        "Z",
        "É",
        "é",
        "ß",
        "\u{301}",
        "'",
        "'s",
        "'LL",
        "1",
        "22",
        "٣",
        "①",
        "!",
        "/",
        "`",
        "$",
        "。",
        "，",
        "中",
        "한",
        "😀",
        "\u{200d}",
        "Ａ",
        "\u{1c}",
        "<|im_start|>",
        "<s>",
    ];
    let (dir, g) = goldens();
    for v in &g.vocabs {
        let bytes = read(&dir.join(&v.model));
        let o = owned(&bytes);
        let t = Tokenizer::new(&o.tables(), o.name).unwrap();
        for _ in 0..300 {
            let mut text = Vec::new();
            for _ in 0..rng.next_u64() % 32 {
                if rng.next_u64() % 8 == 0 {
                    text.push(rng.next_u64() as u8);
                } else {
                    let p = pool[(rng.next_u64() % pool.len() as u64) as usize];
                    text.extend_from_slice(p.as_bytes());
                }
            }
            for (add, parse) in [(false, false), (true, true)] {
                match tokenize(&t, &text, add, parse) {
                    Ok(ids) => assert!(
                        ids.iter().all(|&id| id < t.n_vocab()),
                        "{}: {}",
                        v.name,
                        show(&text)
                    ),
                    Err(Error::UnencodableText { .. }) => {}
                    Err(e) => panic!("{}: {}: {e}", v.name, show(&text)),
                }
            }
        }
    }
}

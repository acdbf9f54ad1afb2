//! Crafted inputs (`phi_edge_tests::crafted`): valid files that ask for too
//! much are refused with a typed error, and the paths they attack run in
//! time linear in their size. The time bounds are the acceptance
//! lines: denial-of-service bounds with a wide margin, not benchmarks.

use std::time::{Duration, Instant};

use phi_edge::gguf::Gguf;
use phi_edge::pack::read_tokenizer;
use phi_edge::{ChatTemplate, Error, Limit, Limits, Tokenizer};
use phi_edge_tests::crafted;

fn tokenize(t: &Tokenizer<'_>, text: &[u8]) -> Vec<u32> {
    let mut work = vec![0u8; t.work_bytes(text.len())];
    let mut out = vec![0u32; text.len() + 4];
    let n = t.tokenize(text, true, true, &mut out, &mut work).unwrap();
    out.truncate(n);
    out
}

#[test]
fn three_thousand_specials_tokenize_100_kb_in_linear_time() {
    let (gguf, first) = crafted::many_specials();
    let g = Gguf::parse(&gguf).unwrap();
    let owned = read_tokenizer(&g, None).unwrap();
    let t = Tokenizer::new(&owned.tables(), owned.name).unwrap();

    let text = vec![b'a'; 100_000];
    let start = Instant::now();
    let ids = tokenize(&t, &text);
    let took = start.elapsed();
    println!(
        "100 KB of 'a' against {} specials: {took:?}",
        crafted::N_SPECIALS
    );
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert!(
        ids.iter().all(|&id| id < first),
        "no special token is in a text without 'b'"
    );

    // The specials still match, the longest first.
    let special = |i: usize| first + i as u32;
    let text = format!(
        "x{}y{}",
        crafted::special_text(2999),
        crafted::special_text(0)
    );
    let ids = tokenize(&t, text.as_bytes());
    assert!(
        ids.contains(&special(2999)) && ids.contains(&special(0)),
        "{ids:?}"
    );
    let ids = tokenize(&t, "a".repeat(10).as_bytes());
    assert!(!ids.iter().any(|&id| id >= first), "{ids:?}");
    let ids = tokenize(&t, crafted::special_text(41).as_bytes());
    assert_eq!(ids[ids.len() - 1], special(41), "{ids:?}");
}

#[test]
fn limits_refuse_a_vocabulary_with_too_many_specials() {
    let (gguf, _) = crafted::many_specials();
    let g = Gguf::parse(&gguf).unwrap();
    let owned = read_tokenizer(&g, None).unwrap();
    let limits = Limits {
        specials: 1000,
        ..Limits::DEFAULT
    };
    let e = limits.check_tokenizer(&owned.tables()).unwrap_err();
    // The user-defined tokens, <unk>, <s> and </s>.
    let n = crafted::N_SPECIALS as u64 + 3;
    assert_eq!(
        e,
        Error::OverLimit {
            limit: Limit::Specials,
            value: n,
            max: 1000
        }
    );
    assert_eq!(
        e.to_string(),
        format!("the vocabulary has {n} special tokens, over the limit of 1000")
    );
    assert!(Limits::DEFAULT.check_tokenizer(&owned.tables()).is_ok());
}

#[test]
fn a_20_mb_template_is_detected_in_linear_time() {
    for unit in crafted::TEMPLATE_UNITS {
        let template = crafted::repeated_template(unit, 20 << 20);
        let start = Instant::now();
        let got = ChatTemplate::detect(&template);
        let took = start.elapsed();
        println!(
            "20 MB of {unit:?}: {took:?}, {:?}",
            got.as_ref().map(|_| ())
        );
        assert!(took < Duration::from_secs(1), "{unit:?}: took {took:?}");
    }
    // The default limit refuses such a template before anyone detects it.
    let e = Limits::DEFAULT
        .check(Limit::ChatTemplateBytes, 20 << 20)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::OverLimit {
            limit: Limit::ChatTemplateBytes,
            ..
        }
    ));
}

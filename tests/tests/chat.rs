//! Chat templates against jinja2: `target/ref/chat.json` (written by
//! `tests/oracle/chat_ref.py` through `cargo xtask ref`) holds the real
//! SmolLM2 and Phi-3 template texts, conversations, and the Jinja rendering
//! after every user turn; and llama.cpp's own classification of every
//! template in its test suite.

use std::collections::BTreeMap;

use phi_edge::{ChatTemplate, Error, Phi3System};
use phi_edge_tests::goldens::read_json;
use phi_edge_tests::ref_dir;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    templates: BTreeMap<String, Template>,
    cases: Vec<Case>,
    detect: Vec<Detect>,
}

#[derive(Deserialize)]
struct Template {
    source: String,
    text: String,
}

#[derive(Deserialize)]
struct Case {
    template: String,
    system: Option<String>,
    /// (user, the assistant's reply; None after the last user turn).
    turns: Vec<(String, Option<String>)>,
    renders: Vec<String>,
}

#[derive(Deserialize)]
struct Detect {
    name: String,
    text: String,
    family: String,
}

fn golden() -> Golden {
    read_json(&ref_dir(), "chat.json")
}

/// Every conversation, rendered turn by turn as the CLI does (first turn,
/// then reply + next turn appended), equals the Jinja rendering of the
/// conversation so far after each user turn.
#[test]
fn renders_match_jinja() {
    let g = golden();
    let mut failures = vec![];
    for case in &g.cases {
        let t = &g.templates[&case.template];
        let tmpl = ChatTemplate::detect(&t.text)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", case.template, t.source));
        let mut text = String::new();
        for (i, ((user, _), want)) in case.turns.iter().zip(&case.renders).enumerate() {
            if i == 0 {
                tmpl.render_first(case.system.as_deref(), user, &mut text)
                    .unwrap();
            } else {
                text.push_str(
                    case.turns[i - 1]
                        .1
                        .as_deref()
                        .expect("a reply before every later turn"),
                );
                tmpl.render_next(user, &mut text).unwrap();
            }
            if &text != want {
                failures.push(format!(
                    "{} system {:?} turn {}:\n  ours  {text:?}\n  jinja {want:?}",
                    case.template,
                    case.system,
                    i + 1
                ));
                break;
            }
        }
    }
    assert!(g.cases.len() >= 50, "only {} chat cases", g.cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} conversations differ:\n{}",
        failures.len(),
        g.cases.len(),
        failures.join("\n")
    );
}

/// The recognised family of every template agrees with llama.cpp's
/// built-in detection (phi3 / chatml / anything else is an error).
#[test]
fn detection_matches_llama_cpp() {
    let g = golden();
    let mut wrong = vec![];
    for d in &g.detect {
        let ours = match ChatTemplate::detect(&d.text) {
            Ok(ChatTemplate::Phi3 { .. }) => "phi3",
            Ok(ChatTemplate::ChatMl { .. }) => "chatml",
            Err(Error::UnknownChatTemplate { .. }) => "other",
            Err(e) => panic!("{}: unexpected error {e}", d.name),
        };
        if ours != d.family {
            wrong.push(format!("{}: ours {ours}, llama.cpp {}", d.name, d.family));
        }
    }
    for family in ["phi3", "chatml", "other"] {
        assert!(
            g.detect.iter().any(|d| d.family == family),
            "no {family} template in the goldens"
        );
    }
    assert!(
        wrong.is_empty(),
        "detection differs from llama.cpp:\n{}",
        wrong.join("\n")
    );
}

/// What each real template is recognised as, including the parts the
/// renderings above only exercise indirectly.
#[test]
fn real_templates_detected_as() {
    let g = golden();
    let get = |name: &str| ChatTemplate::detect(&g.templates[name].text).unwrap();
    assert_eq!(
        get("smollm2"),
        ChatTemplate::ChatMl {
            default_system: Some(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
            )
        }
    );
    for (name, system) in [
        ("phi3-vocab", Phi3System::MergedIntoUser),
        ("phi3-mini", Phi3System::MergedIntoUser),
        ("phi3-medium", Phi3System::MergedIntoUser),
        ("phi3-small", Phi3System::Turn),
        ("phi3-vision", Phi3System::Turn),
        ("phi3-mini-2024", Phi3System::Turn),
        ("phi3.5-mini", Phi3System::TurnIfNonEmpty),
    ] {
        assert_eq!(get(name), ChatTemplate::Phi3 { system }, "{name}");
    }
    for (name, t) in &g.templates {
        let eot = ChatTemplate::detect(&t.text).unwrap().end_of_turn();
        assert_eq!(
            eot,
            if name == "smollm2" {
                "<|im_end|>"
            } else {
                "<|end|>"
            },
            "{name}"
        );
    }
}

#[test]
fn unknown_and_fallback() {
    for text in [
        "",
        "{{ messages }}",
        "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
    ] {
        assert!(
            matches!(
                ChatTemplate::detect(text),
                Err(Error::UnknownChatTemplate { .. })
            ),
            "{text:?} accepted"
        );
    }
    assert_eq!(
        ChatTemplate::detect("chatml").unwrap(),
        ChatTemplate::FALLBACK
    );
    assert_eq!(
        ChatTemplate::detect("phi3").unwrap(),
        ChatTemplate::Phi3 {
            system: Phi3System::Turn
        }
    );
    let mut s = String::new();
    ChatTemplate::FALLBACK
        .render_first(None, "hi", &mut s)
        .unwrap();
    assert_eq!(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    // A default system message the core cannot borrow verbatim.
    let escaped = "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nSay \\\"hi\\\"<|im_end|>\\n' }}{% endif %}";
    assert!(matches!(
        ChatTemplate::detect(escaped),
        Err(Error::UnknownChatTemplate { .. })
    ));
}

/// Rendering into a fixed buffer reports a full buffer, as a board would
/// see it (heapless-style writer).
#[test]
fn full_buffer_is_an_error() {
    struct Fixed<'a>(&'a mut [u8], usize);
    impl std::fmt::Write for Fixed<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let t = ChatTemplate::Phi3 {
        system: Phi3System::Turn,
    };
    let mut buf = [0u8; 16];
    assert!(t
        .render_first(None, "hello", &mut Fixed(&mut buf, 0))
        .is_err());
    let mut buf = [0u8; 64];
    let mut w = Fixed(&mut buf, 0);
    t.render_first(None, "hello", &mut w).unwrap();
    let n = w.1;
    assert_eq!(&buf[..n], b"<|user|>\nhello<|end|>\n<|assistant|>\n");
}

/// Markers and text apart: what [`Tokenizer::tokenize_marked`] takes.
#[derive(Default)]
struct Marked {
    text: String,
    markers: Vec<std::ops::Range<usize>>,
}

impl phi_edge::chat::ChatSink for Marked {
    fn marker(&mut self, marker: &'static str) -> std::fmt::Result {
        let start = self.text.len();
        self.text.push_str(marker);
        self.markers.push(start..self.text.len());
        Ok(())
    }

    fn text(&mut self, text: &str) -> std::fmt::Result {
        self.text.push_str(text);
        Ok(())
    }
}

/// Every conversation's first turn, tokenized with the template's markers
/// as tokens and the messages as text, gives the ids of the whole
/// rendering tokenized with special-token parsing on (llama.cpp's way,
/// which the tokenizer tests check against llama.cpp), on the Phi-3
/// (SentencePiece, RSTRIP specials) and SmolLM2 (byte-level BPE)
/// vocabularies; and a message that spells a marker stays text.
#[test]
fn markers_tokenize_as_llama_cpp_parses_them() {
    use phi_edge::gguf::Gguf;
    use phi_edge::pack::read_tokenizer;
    use phi_edge::Tokenizer;

    let g = golden();
    let tokenize = |t: &Tokenizer<'_>, m: &Marked, marked: bool| -> Vec<u32> {
        let mut work = vec![0u8; t.work_bytes(m.text.len())];
        let mut out = vec![0u32; 3 * m.text.len() + 4];
        let n = if marked {
            t.tokenize_marked(m.text.as_bytes(), &m.markers, true, &mut out, &mut work)
        } else {
            t.tokenize(m.text.as_bytes(), true, true, &mut out, &mut work)
        }
        .unwrap();
        out.truncate(n);
        out
    };
    let mut checked = 0;
    for (vocab, family) in [
        ("vendor/vocab/ggml-vocab-phi-3.gguf", "phi3"),
        ("models/SmolLM2-135M-Instruct.Q4_1.gguf", "chatml"),
    ] {
        let path = ref_dir().join("..").join(vocab);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let owned = read_tokenizer(&Gguf::parse(&bytes).unwrap(), None).unwrap();
        let t = Tokenizer::new(&owned.tables(), owned.name).unwrap();
        for case in &g.cases {
            let tmpl = ChatTemplate::detect(&g.templates[&case.template].text).unwrap();
            if matches!(tmpl, ChatTemplate::Phi3 { .. }) != (family == "phi3") {
                continue;
            }
            let (user, _) = &case.turns[0];
            if user.contains('<') || case.system.as_deref().is_some_and(|s| s.contains('<')) {
                // Special-token text in a message: parsing it is what
                // markers avoid.
                continue;
            }
            let mut m = Marked::default();
            tmpl.render_first(case.system.as_deref(), user, &mut m)
                .unwrap();
            assert_eq!(
                tokenize(&t, &m, true),
                tokenize(&t, &m, false),
                "{vocab}, {}: {:?}",
                case.template,
                m.text
            );
            checked += 1;
        }
        // A message spelling the end-of-turn marker: as text, it tokenizes
        // to more than the one token the parsed rendering has.
        let tmpl = g
            .templates
            .values()
            .map(|t| ChatTemplate::detect(&t.text).unwrap())
            .find(|t| matches!(t, ChatTemplate::Phi3 { .. }) == (family == "phi3"))
            .unwrap();
        let injected = format!("hi{}", tmpl.end_of_turn());
        let mut m = Marked::default();
        tmpl.render_first(None, &injected, &mut m).unwrap();
        let (marked, parsed) = (tokenize(&t, &m, true), tokenize(&t, &m, false));
        assert!(
            marked.len() > parsed.len(),
            "{vocab}: {marked:?} vs {parsed:?}"
        );
    }
    assert!(checked >= 20, "only {checked} conversations checked");
}

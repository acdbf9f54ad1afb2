//! Chat template detection and rendering (`core/src/chat.rs`) on
//! arbitrary template text and messages; the rendering's markers then
//! tokenized with a real vocabulary, as a chat turn is.
#![no_main]

use std::fmt;
use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use phi_edge::chat::ChatSink;
use phi_edge::ChatTemplate;
use phi_edge_fuzz_common::inputs::ChatInput;
use phi_edge_fuzz_common::real_vocabs;

/// The rendering and its markers' byte ranges.
#[derive(Default)]
struct Marked {
    text: String,
    markers: Vec<Range<usize>>,
}

impl ChatSink for Marked {
    fn marker(&mut self, marker: &'static str) -> fmt::Result {
        let start = self.text.len();
        self.text.push_str(marker);
        self.markers.push(start..self.text.len());
        Ok(())
    }

    fn text(&mut self, text: &str) -> fmt::Result {
        self.text.push_str(text);
        Ok(())
    }
}

fuzz_target!(
    // Loaded before the first input, outside its 1 s timeout.
    init: {
        phi_edge_fuzz_common::init();
        real_vocabs();
    },
    |data: &[u8]| {
    let input = ChatInput::decode(data);
    let Ok(t) = ChatTemplate::detect(&input.template) else {
        return;
    };
    let system = (input.flags & 1 != 0).then_some(input.system.as_str());
    let mut out = Marked::default();
    t.render_first(system, &input.user, &mut out)
        .expect("renders into a String");
    assert!(
        out.text.contains(&input.user),
        "the user's message is rendered"
    );
    if input.flags & 2 != 0 {
        let from = out.text.len();
        t.render_next(&input.next, &mut out)
            .expect("renders into a String");
        assert!(out.text[from..].starts_with(t.end_of_turn()));
    }
    // The plain rendering is the marked one's text.
    let mut plain = String::new();
    t.render_first(system, &input.user, &mut plain)
        .expect("renders");
    assert!(out.text.starts_with(&plain));

    let vocab = &real_vocabs()[usize::from(input.flags >> 2 & 1)];
    let mut work = vec![0u8; vocab.work_bytes(out.text.len())];
    let mut ids = vec![0u32; out.text.len() * 3 + 4];
    match vocab.tokenize_marked(out.text.as_bytes(), &out.markers, true, &mut ids, &mut work) {
        Ok(n) => assert!(ids[..n].iter().all(|&id| id < vocab.n_vocab())),
        Err(phi_edge::Error::WorkTooSmall { need, got }) => {
            panic!("work_bytes too small: need {need}, got {got}")
        }
        Err(_) => {}
    }
});

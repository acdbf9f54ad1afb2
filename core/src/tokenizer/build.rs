//! Host side: the tables the packer derives from a GGUF vocabulary so the
//! board does no work at start-up (token attributes, end-of-generation ids,
//! sorted lookup indexes).
//!
//! The attribute and end-of-generation rules follow llama.cpp's
//! `llama_vocab::impl::load`. Where llama.cpp picks "the first" token of a
//! list by iterating a hash map (the FIM tokens found by their text), this
//! takes the lowest id; the vocabularies tested here have at most one
//! candidate each.

use std::vec::Vec;

use super::attr;

/// Special-token ids from the GGUF keys that the derivation needs
/// (`None` when the key is absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys {
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// The end-of-turn token (key or llama.cpp's text rule).
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`.
    pub eom: Option<u32>,
    /// `tokenizer.ggml.fim_{pre,suf,mid}_token_id` (or the deprecated
    /// prefix/suffix/middle keys).
    pub fim_pre: Option<u32>,
    /// See `fim_pre`.
    pub fim_suf: Option<u32>,
    /// See `fim_pre`.
    pub fim_mid: Option<u32>,
    /// `tokenizer.ggml.fim_pad_token_id`.
    pub fim_pad: Option<u32>,
    /// `tokenizer.ggml.fim_rep_token_id`.
    pub fim_rep: Option<u32>,
    /// `tokenizer.ggml.fim_sep_token_id`.
    pub fim_sep: Option<u32>,
}

/// The derived tables, little-endian, ready for [`TokenizerTables`](crate::image::manifest::TokenizerTables).
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// u16 attributes per token.
    pub attrs: Vec<u8>,
    /// u32 end-of-generation ids.
    pub eog: Vec<u8>,
    /// u32 ids sorted by text.
    pub token_index: Vec<u8>,
    /// u32 merge ranks sorted by pair.
    pub merge_index: Vec<u8>,
    /// u32 special ids, longest text first, ties by id; texts that can
    /// never match left out.
    pub specials: Vec<u8>,
    /// The special-token automaton over `specials`.
    pub automaton: Vec<u8>,
}

const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
const ALWAYS_RENDERED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// llama.cpp's attribute for a GGUF token type.
fn attr_of_type(t: i32) -> u16 {
    match t {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => attr::UNDEFINED,
    }
}

/// Derives the tables from the token texts, GGUF token types (None if
/// the file has none: every token is then normal) and merges.
pub fn derive(texts: &[&str], types: Option<&[i32]>, merges: &[&str], keys: &Keys) -> Derived {
    let n = texts.len();
    let mut attrs: Vec<u16> = match types {
        Some(t) => t.iter().map(|&t| attr_of_type(t)).collect(),
        None => vec![attr::NORMAL; n],
    };
    attrs.resize(n, attr::NORMAL);
    let first = |list: &[&str]| {
        texts
            .iter()
            .position(|t| list.contains(t))
            .map(|p| p as u32)
    };
    let mut set_control = |id: u32| attrs[id as usize] |= attr::CONTROL;

    // Tokens llama.cpp finds by text when their key is absent become
    // control. (The end-of-turn texts are all end-of-generation texts too,
    // which become control below.)
    let eom = keys
        .eom
        .or_else(|| first(&["<|eom_id|>"]).inspect(|&id| set_control(id)));
    let mut fim = |key: Option<u32>, list: &[&str]| {
        key.or_else(|| first(list).inspect(|&id| set_control(id)))
    };
    fim(keys.fim_pre, FIM_PRE_TEXTS);
    fim(keys.fim_suf, FIM_SUF_TEXTS);
    fim(keys.fim_mid, FIM_MID_TEXTS);
    let fim_pad = fim(keys.fim_pad, FIM_PAD_TEXTS);
    let fim_rep = fim(keys.fim_rep, FIM_REP_TEXTS);
    let fim_sep = fim(keys.fim_sep, FIM_SEP_TEXTS);

    // Control tokens named "unused" are unused.
    for (a, t) in attrs.iter_mut().zip(texts) {
        if *a & attr::CONTROL != 0 && t.contains("unused") {
            *a |= attr::UNUSED;
        }
    }

    let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
    for (i, t) in texts.iter().enumerate() {
        if EOG_TEXTS.contains(t) {
            eog.push(i as u32);
            attrs[i] |= attr::CONTROL;
        }
    }
    for (i, t) in texts.iter().enumerate() {
        if ALWAYS_RENDERED.contains(t) {
            attrs[i] = attr::USER_DEFINED;
        }
    }
    eog.extend([keys.eos, keys.eot, eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();
    let text_of = |id: u32| texts.get(id as usize).copied().unwrap_or("");
    let has = |eog: &[u32], s: &str| eog.iter().any(|&i| text_of(i) == s);
    // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
    if (has(&eog, "<|return|>") && has(&eog, "<|call|>")
        || has(&eog, "<|calls|>") && has(&eog, "<|flush|>"))
        && has(&eog, "<|end|>")
    {
        if let Some(p) = eog.iter().position(|&i| text_of(i) == "<|end|>") {
            attrs[eog.remove(p) as usize] = attr::USER_DEFINED;
        }
    }
    // gemma4 / plamo: "</s>" is a normal token there.
    if has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>") {
        if let Some(p) = eog.iter().position(|&i| text_of(i) == "</s>") {
            attrs[eog.remove(p) as usize] = attr::NORMAL;
        }
    }

    // Text -> id: sorted by text then id; the last of equal texts wins.
    let mut index: Vec<u32> = (0..n as u32)
        .filter(|&i| !texts[i as usize].is_empty())
        .collect();
    index.sort_by(|&a, &b| {
        texts[a as usize]
            .as_bytes()
            .cmp(texts[b as usize].as_bytes())
            .then(a.cmp(&b))
    });
    let mut token_index: Vec<u32> = Vec::with_capacity(index.len());
    for (k, &id) in index.iter().enumerate() {
        let next_same = index
            .get(k + 1)
            .is_some_and(|&j| texts[j as usize] == texts[id as usize]);
        if !next_same {
            token_index.push(id);
        }
    }

    // Merge pair -> rank: llama.cpp splits at the first space after the
    // first byte and keeps the first rank of a repeated pair.
    let pair = |r: u32| super::tables::split_merge(merges[r as usize].as_bytes());
    let mut ranks: Vec<u32> = (0..merges.len() as u32)
        .filter(|&r| pair(r).is_some())
        .collect();
    ranks.sort_by(|&a, &b| pair(a).cmp(&pair(b)).then(a.cmp(&b)));
    ranks.dedup_by(|b, a| pair(*a) == pair(*b));

    let mut specials: Vec<u32> = (0..n as u32)
        .filter(|&i| attrs[i as usize] & attr::PARTITIONED != 0 && !texts[i as usize].is_empty())
        .collect();
    specials.sort_by(|&a, &b| {
        texts[b as usize]
            .len()
            .cmp(&texts[a as usize].len())
            .then(a.cmp(&b))
    });
    let specials = dedup_specials(specials, texts, &attrs);
    let special_texts: Vec<&[u8]> = specials
        .iter()
        .map(|&i| texts[i as usize].as_bytes())
        .collect();

    let le32 = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    Derived {
        attrs: attrs.iter().flat_map(|a| a.to_le_bytes()).collect(),
        eog: le32(&eog),
        token_index: le32(&token_index),
        merge_index: le32(&ranks),
        specials: le32(&specials),
        automaton: le32(&automaton(&special_texts)),
    }
}

/// Whether special tokens with attributes `at` are matched only when
/// special tokens are parsed.
fn parse_special_only(at: u16) -> bool {
    at & (attr::CONTROL | attr::UNKNOWN) != 0
}

/// Drops the specials (sorted longest first, ties by id) that can never
/// match: a later token whose text equals an earlier one's, unless the
/// earlier one takes part only when special tokens are parsed and the
/// later one always does. The partitioner's first pass over a text takes
/// every occurrence the later one could.
fn dedup_specials(specials: Vec<u32>, texts: &[&str], attrs: &[u16]) -> Vec<u32> {
    use std::collections::HashMap;
    // Per text: whether a kept token always takes part, and whether one
    // takes part only when parsing special tokens.
    let mut seen: HashMap<&str, (bool, bool)> = HashMap::new();
    specials
        .into_iter()
        .filter(|&id| {
            let only = parse_special_only(attrs[id as usize]);
            let (always, parsed) = seen.entry(texts[id as usize]).or_default();
            // An earlier token always matches first, or matches first
            // whenever this one could.
            let keep = !(*always || only && *parsed);
            if keep {
                *always |= !only;
                *parsed |= only;
            }
            keep
        })
        .collect()
}

/// The special-token automaton ([`automaton`](super::automaton) has the
/// layout) over `texts`, the special tokens' texts in special-list order.
pub(crate) fn automaton(texts: &[&[u8]]) -> Vec<u32> {
    use super::automaton::NONE;
    use std::collections::BTreeMap;
    // The trie, numbered as built.
    let mut kids: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
    let mut term = vec![NONE];
    let mut node_of = Vec::with_capacity(texts.len());
    for (k, text) in texts.iter().enumerate() {
        let mut v = 0;
        for &b in *text {
            v = match kids[v].get(&b) {
                Some(&c) => c,
                None => {
                    kids.push(BTreeMap::new());
                    term.push(NONE);
                    let c = kids.len() - 1;
                    kids[v].insert(b, c);
                    c
                }
            };
        }
        if term[v] == NONE {
            term[v] = k as u32;
        }
        node_of.push(v);
    }
    // Breadth-first numbering: `order[new] = old`.
    let mut order = vec![0usize];
    let mut i = 0;
    while i < order.len() {
        order.extend(kids[order[i]].values().copied());
        i += 1;
    }
    let mut new_of = vec![0usize; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new;
    }
    let n = order.len();
    let child = |v: usize, b: u8| kids[order[v]].get(&b).map(|&c| new_of[c]);
    let mut fail = vec![0usize; n];
    let mut depth = vec![0u32; n];
    let mut out = vec![NONE; n];
    let mut edge_start = Vec::with_capacity(n + 1);
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    for v in 0..n {
        edge_start.push(edges.len() as u32);
        if term[order[v]] != NONE {
            out[v] = v as u32;
        } else if v > 0 {
            out[v] = out[fail[v]];
        }
        for (&b, &c) in &kids[order[v]] {
            let c = new_of[c];
            edges.push((c as u32) << 8 | u32::from(b));
            depth[c] = depth[v] + 1;
            if v > 0 {
                let mut f = fail[v];
                fail[c] = loop {
                    if let Some(x) = child(f, b) {
                        break x;
                    }
                    if f == 0 {
                        break 0;
                    }
                    f = fail[f];
                };
            }
        }
    }
    edge_start.push(edges.len() as u32);
    let mut words = vec![n as u32, edges.len() as u32, texts.len() as u32];
    words.extend(edge_start);
    words.extend(fail.iter().map(|&f| f as u32));
    words.extend(depth);
    words.extend(out);
    words.extend(order.iter().map(|&old| term[old]));
    words.extend(edges);
    words.extend(node_of.iter().map(|&v| new_of[v] as u32));
    words
}

//! Checked, read-in-place views of the flat tokenizer tables.

use core::cmp::Ordering;

use super::automaton::Automaton;
use crate::error::{Error, Result};
use crate::image::manifest::{TokenizerKind, TokenizerTables, NO_TOKEN};

fn bad(what: &'static str) -> Error {
    Error::BadTokenizer { what }
}

/// A little-endian u32 array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct U32s<'a>(&'a [u8]);

impl<'a> U32s<'a> {
    /// The array in `bytes`; [`Error::BadTokenizer`] saying `what` unless
    /// a whole number of values.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Result<U32s<'a>> {
        if bytes.len() % 4 != 0 {
            return Err(bad(what));
        }
        Ok(U32s(bytes))
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Value `i` (0 past the end; callers stay in range).
    pub(crate) fn get(&self, i: usize) -> u32 {
        match self.0.get(4 * i..4 * i + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    /// All values.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A string table: `n + 1` u32 positions, then the texts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StrTable<'a> {
    blob: &'a [u8],
    n: usize,
}

impl<'a> StrTable<'a> {
    fn new(blob: &'a [u8], what: &'static str) -> Result<StrTable<'a>> {
        if blob.is_empty() {
            return Ok(StrTable { blob, n: 0 });
        }
        let first = blob.get(..4).ok_or(bad(what))?;
        let start = u32::from_le_bytes([first[0], first[1], first[2], first[3]]) as usize;
        if start % 4 != 0 || start < 4 || start > blob.len() {
            return Err(bad(what));
        }
        let mut prev = start;
        for o in blob[..start].chunks_exact(4) {
            let o = u32::from_le_bytes([o[0], o[1], o[2], o[3]]) as usize;
            if o < prev || o > blob.len() {
                return Err(bad(what));
            }
            prev = o;
        }
        Ok(StrTable {
            blob,
            n: start / 4 - 1,
        })
    }

    /// Number of strings.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    fn pos(&self, i: usize) -> usize {
        match self.blob.get(4 * i..4 * i + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            None => 0,
        }
    }

    /// String `i` (empty past the end).
    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        if i >= self.n {
            return &[];
        }
        self.blob.get(self.pos(i)..self.pos(i + 1)).unwrap_or(&[])
    }
}

/// Splits a merge `"left right"` at the first space after the first byte,
/// as llama.cpp does; `None` if there is none.
pub(crate) fn split_merge(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let p = m.iter().skip(1).position(|&b| b == b' ')? + 1;
    Some((&m[..p], &m[p + 1..]))
}

/// Every table the tokenizer reads, checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tables<'a> {
    pub(crate) tokens: StrTable<'a>,
    pub(crate) scores: &'a [u8],
    pub(crate) attrs: &'a [u8],
    pub(crate) eog: U32s<'a>,
    pub(crate) token_index: U32s<'a>,
    pub(crate) merges: StrTable<'a>,
    pub(crate) merge_index: U32s<'a>,
    pub(crate) specials: U32s<'a>,
    pub(crate) automaton: Automaton<'a>,
}

impl<'a> Tables<'a> {
    /// Checks the tables: sizes, every id in range, both indexes sorted.
    pub(crate) fn new(t: &TokenizerTables<'a>) -> Result<Tables<'a>> {
        if t.kind == TokenizerKind::None {
            return Err(Error::NoTokenizer);
        }
        let tokens = StrTable::new(t.tokens, "token table is inconsistent")?;
        let n = tokens.len();
        if n == 0 || n >= NO_TOKEN as usize {
            return Err(bad("the vocabulary is empty or too large"));
        }
        if !t.scores.is_empty() && t.scores.len() != 4 * n {
            return Err(bad("token scores do not match the vocabulary"));
        }
        if t.attrs.len() != 2 * n {
            return Err(bad(
                "token attributes do not match the vocabulary (repack the image)",
            ));
        }
        let s = &t.special;
        for id in [s.bos, s.eos, s.eot, s.unk, s.pad] {
            if id != NO_TOKEN && id as usize >= n {
                return Err(bad("special token id outside the vocabulary"));
            }
        }
        let merges = StrTable::new(t.merges, "merge table is inconsistent")?;
        let specials = U32s::new(t.specials, "special token list is not u32 values")?;
        if specials.len() > n {
            return Err(bad("special token list is longer than the vocabulary"));
        }
        let automaton = Automaton::new(t.special_automaton, specials.len(), |k| {
            tokens.get(specials.get(k) as usize).len()
        })?;
        let tb = Tables {
            tokens,
            scores: t.scores,
            attrs: t.attrs,
            eog: U32s::new(t.eog, "end-of-generation list is not u32 values")?,
            token_index: U32s::new(t.token_index, "token index is not u32 values")?,
            merges,
            merge_index: U32s::new(t.merge_index, "merge index is not u32 values")?,
            specials,
            automaton,
        };
        let in_vocab = |v: U32s<'_>| v.iter().all(|id| (id as usize) < n);
        if !in_vocab(tb.eog) || !in_vocab(tb.token_index) || !in_vocab(tb.specials) {
            return Err(bad("token id outside the vocabulary in a derived table"));
        }
        if tb.token_index.len() > n {
            return Err(bad("token index is longer than the vocabulary"));
        }
        let mut prev: Option<&[u8]> = None;
        for id in tb.token_index.iter() {
            let text = tb.tokens.get(id as usize);
            if text.is_empty() || prev.is_some_and(|p| p >= text) {
                return Err(bad("token index is not sorted"));
            }
            prev = Some(text);
        }
        let mut prev: Option<(&[u8], &[u8])> = None;
        for r in tb.merge_index.iter() {
            if r as usize >= merges.len() {
                return Err(bad("merge rank outside the merge table"));
            }
            let pair =
                split_merge(merges.get(r as usize)).ok_or(bad("indexed merge has no space"))?;
            if prev.is_some_and(|p| p >= pair) {
                return Err(bad("merge index is not sorted"));
            }
            prev = Some(pair);
        }
        if tb
            .eog
            .iter()
            .zip(tb.eog.iter().skip(1))
            .any(|(a, b)| a >= b)
        {
            return Err(bad("end-of-generation list is not sorted"));
        }
        let mut prev_len = usize::MAX;
        for id in tb.specials.iter() {
            let len = tb.tokens.get(id as usize).len();
            if len == 0 || len > prev_len {
                return Err(bad("special token list is not sorted longest first"));
            }
            prev_len = len;
        }
        Ok(tb)
    }

    /// Stored attribute of token `id`.
    pub(crate) fn attr(&self, id: u32) -> u16 {
        let i = 2 * id as usize;
        match self.attrs.get(i..i + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]),
            None => 0,
        }
    }

    /// Score of token `id` (0 without scores).
    pub(crate) fn score(&self, id: u32) -> f32 {
        let i = 4 * id as usize;
        match self.scores.get(i..i + 4) {
            Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0.0,
        }
    }

    /// The token whose text is `text`.
    pub(crate) fn find(&self, text: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.token_index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let id = self.token_index.get(mid);
            match self.tokens.get(id as usize).cmp(text) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(id),
            }
        }
        None
    }

    /// Whether `id` is in the end-of-generation list.
    pub(crate) fn is_eog(&self, id: u32) -> bool {
        let (mut lo, mut hi) = (0, self.eog.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.eog.get(mid).cmp(&id) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return true,
            }
        }
        false
    }

    /// The rank of merging `left` with `right`.
    pub(crate) fn merge_rank(&self, left: &[u8], right: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.merge_index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.merge_index.get(mid);
            let pair = split_merge(self.merges.get(r as usize))?;
            match pair.cmp(&(left, right)) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(r),
            }
        }
        None
    }
}

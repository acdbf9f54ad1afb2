//! The special-token automaton: an Aho-Corasick automaton over the texts
//! of the special tokens, built by the packer (`build`) and read in place.
//! One pass over a text finds which special tokens occur in it, in time
//! linear in the text (plus one step per special token found), so the
//! partitioner searches only for those.
//!
//! The blob is little-endian u32 words:
//!
//! | words | what |
//! |---|---|
//! | 3 | node count `n`, edge count `n - 1`, special count `s` |
//! | `n + 1` | `edge_start`: node `v`'s edges are `edge_start[v]..edge_start[v + 1]` |
//! | `n` | `fail`: the node of the longest proper suffix of `v`'s text |
//! | `n` | `depth`: the length of `v`'s text |
//! | `n` | `out`: the deepest node on `v`'s fail chain (`v` included) that ends a special token, or `NONE` |
//! | `n` | `term`: the first special (its index in the special list) whose text is `v`'s, or `NONE` |
//! | `n - 1` | edges, `child << 8 \| byte`, in node order, bytes ascending |
//! | `s` | the node of each special's text, in special-list order |
//!
//! Nodes are numbered breadth first, so edge `e` leads to node `e + 1`;
//! [`Automaton::new`] checks that, the depths and the links, so a hostile
//! image can make the automaton wrong but never slow: every fail step
//! lowers the depth, every edge raises it by one.

use super::tables::U32s;
use crate::error::{Error, Result};

/// An absent node or special.
pub(crate) const NONE: u32 = u32::MAX;

/// What a malformed automaton is.
const BAD: &str = "special-token automaton is inconsistent (repack the image)";

fn bad() -> Error {
    Error::BadTokenizer { what: BAD }
}

/// A checked automaton, read in place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Automaton<'a> {
    w: U32s<'a>,
    n: usize,
    s: usize,
}

impl<'a> Automaton<'a> {
    /// Checks `blob` as the automaton of `s` specials whose text lengths
    /// are `len(k)`.
    pub(crate) fn new(
        blob: &'a [u8],
        s: usize,
        len: impl Fn(usize) -> usize,
    ) -> Result<Automaton<'a>> {
        let w = U32s::new(blob, BAD)?;
        // Past the end `get` is 0: a blob too short for the counts has n = 0.
        let n = w.get(0) as usize;
        if n == 0 || w.get(1) as usize != n - 1 || w.get(2) as usize != s {
            return Err(bad());
        }
        let words = n
            .checked_mul(6)
            .and_then(|w| w.checked_add(s))
            .and_then(|w| w.checked_add(3))
            .ok_or_else(bad)?;
        if w.len() != words {
            return Err(bad());
        }
        let a = Automaton { w, n, s };
        if a.edge_start(0) != 0
            || a.edge_start(n as u32) as usize != n - 1
            || a.depth(0) != 0
            || a.fail(0) != 0
        {
            return Err(bad());
        }
        for v in 0..n as u32 {
            let (lo, hi) = (a.edge_start(v), a.edge_start(v + 1));
            if hi < lo || hi as usize > n - 1 {
                return Err(bad());
            }
            let mut prev_byte = None;
            for e in lo..hi {
                let (child, byte) = a.edge(e);
                if child != e + 1
                    || prev_byte.is_some_and(|p| p >= byte)
                    || a.depth(child) != a.depth(v) + 1
                {
                    return Err(bad());
                }
                prev_byte = Some(byte);
            }
            if v > 0 {
                let f = a.fail(v);
                if f as usize >= n || a.depth(f) >= a.depth(v) {
                    return Err(bad());
                }
            }
            let o = a.out(v);
            if o != NONE && (o as usize >= n || a.term(o) == NONE || a.depth(o) > a.depth(v)) {
                return Err(bad());
            }
            let t = a.term(v);
            if t != NONE && (v == 0 || t as usize >= s) {
                return Err(bad());
            }
        }
        for k in 0..s {
            let v = a.node_of(k);
            if v as usize >= n || a.term(v) == NONE || a.depth(v) as usize != len(k) {
                return Err(bad());
            }
        }
        Ok(a)
    }

    fn at(&self, section: usize, i: u32) -> u32 {
        self.w
            .get(3 + section * self.n + section.min(1) + i as usize)
    }

    fn edge_start(&self, v: u32) -> u32 {
        self.at(0, v)
    }

    fn fail(&self, v: u32) -> u32 {
        self.at(1, v)
    }

    fn depth(&self, v: u32) -> u32 {
        self.at(2, v)
    }

    fn out(&self, v: u32) -> u32 {
        self.at(3, v)
    }

    fn term(&self, v: u32) -> u32 {
        self.at(4, v)
    }

    fn edge(&self, e: u32) -> (u32, u8) {
        let w = self.at(5, e);
        (w >> 8, w as u8)
    }

    fn node_of(&self, k: usize) -> u32 {
        self.w.get(3 + 6 * self.n + k)
    }

    /// The child of `v` along `byte`.
    fn child(&self, v: u32, byte: u8) -> Option<u32> {
        let (mut lo, mut hi) = (self.edge_start(v), self.edge_start(v + 1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (child, b) = self.edge(mid);
            match b.cmp(&byte) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return Some(child),
            }
        }
        None
    }

    /// u32 words of the set [`scan`](Self::scan) fills, for `s` specials.
    pub(crate) const fn set_words(s: usize) -> usize {
        s.div_ceil(32)
    }

    /// Marks in `found` (a bit per special, [`set_words`](Self::set_words)
    /// long, cleared here) every special whose text occurs in `text`.
    pub(crate) fn scan(&self, text: &[u8], found: &mut [u32]) {
        found.fill(0);
        let mut v = 0;
        for &byte in text {
            loop {
                if let Some(c) = self.child(v, byte) {
                    v = c;
                    break;
                }
                if v == 0 {
                    break;
                }
                v = self.fail(v);
            }
            let mut u = self.out(v);
            while u != NONE {
                let k = self.term(u) as usize;
                let Some(w) = found.get_mut(k / 32) else {
                    break;
                };
                if *w & (1 << (k % 32)) != 0 {
                    // Everything further down this chain is marked too.
                    break;
                }
                *w |= 1 << (k % 32);
                u = self.out(self.fail(u));
            }
        }
    }

    /// Whether special `k` (its index in the special list) was found by
    /// [`scan`](Self::scan).
    pub(crate) fn found(&self, k: usize, found: &[u32]) -> bool {
        if k >= self.s {
            return false;
        }
        let t = self.term(self.node_of(k)) as usize;
        found.get(t / 32).is_some_and(|w| w & (1 << (t % 32)) != 0)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use std::vec::Vec;

    use super::Automaton;
    use crate::tokenizer::build::automaton;

    /// A xorshift generator: the tests need no crate for it.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn text(&mut self, max: u64) -> Vec<u8> {
            let len = 1 + self.below(max);
            (0..len).map(|_| b'a' + self.below(3) as u8).collect()
        }
    }

    fn blob(texts: &[Vec<u8>]) -> Vec<u8> {
        let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
        automaton(&refs)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn a_scan_finds_exactly_the_specials_that_occur() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let n = 1 + rng.below(12) as usize;
            let mut texts: Vec<Vec<u8>> = (0..n).map(|_| rng.text(5)).collect();
            texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
            let b = blob(&texts);
            let a = Automaton::new(&b, n, |k| texts[k].len()).unwrap();
            let hay = rng.text(40);
            let mut found = [0u32; 1];
            a.scan(&hay, &mut found);
            for (k, t) in texts.iter().enumerate() {
                let occurs = hay.windows(t.len()).any(|w| w == t.as_slice());
                assert_eq!(a.found(k, &found), occurs, "{:?} in {:?}", t, hay);
            }
        }
    }

    #[test]
    fn damaged_automata_are_rejected_or_stay_in_bounds() {
        let texts: Vec<Vec<u8>> = ["<|im_start|>", "<|im_end|>", "<|end|>", "<s>", "im"]
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .collect();
        let good = blob(&texts);
        let len = |k: usize| texts[k].len();
        assert!(Automaton::new(&good, texts.len(), len).is_ok());
        assert!(Automaton::new(&good, texts.len() - 1, len).is_err());
        assert!(Automaton::new(&good[..good.len() - 4], texts.len(), len).is_err());
        let mut rng = Rng(7);
        let (mut accepted, mut found) = (0, [0u32; 1]);
        for _ in 0..2000 {
            let mut b = good.clone();
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 << rng.below(8);
            if let Ok(a) = Automaton::new(&b, texts.len(), len) {
                accepted += 1;
                a.scan(b"<|im_start|>user\nhi<|im_end|><s>", &mut found);
            }
        }
        // Flips in the edge bytes of leaves and in unused high bits pass.
        assert!(accepted < 2000, "every damaged automaton was accepted");
    }
}

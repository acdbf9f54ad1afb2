//! The merge loop both BPE flavours share (llama.cpp's `llm_symbol`
//! chain and bigram priority queue), in caller memory: symbols are
//! `[start, len, prev, next]` u32 quadruples, queue entries
//! `[key, left, size]` triples in a binary heap.

use crate::error::{Error, Result};

/// No symbol.
pub(crate) const NONE: u32 = u32::MAX;
/// u32 words per symbol.
pub(crate) const SYM_WORDS: usize = 4;
/// u32 words per queue entry.
pub(crate) const ENTRY_WORDS: usize = 3;
/// Queue entries per symbol the heap may need: at most `m - 1` initial
/// pairs plus one per merge are ever live at once.
pub(crate) const ENTRIES_PER_SYM: usize = 2;

/// Which queued pair merges first: SentencePiece takes the highest score,
/// byte-level BPE the lowest rank; ties go to the leftmost pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Key is f32 bits, higher first.
    HighScore,
    /// Key is a rank, lower first.
    LowRank,
}

impl Order {
    fn before(self, a: [u32; 3], b: [u32; 3]) -> bool {
        match self {
            Order::HighScore => {
                let (x, y) = (f32::from_bits(a[0]), f32::from_bits(b[0]));
                x > y || (x == y && a[1] < b[1])
            }
            Order::LowRank => a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]),
        }
    }
}

struct Heap<'w> {
    h: &'w mut [u32],
    len: usize,
    order: Order,
}

impl Heap<'_> {
    fn at(&self, i: usize) -> [u32; 3] {
        let e = &self.h[ENTRY_WORDS * i..ENTRY_WORDS * i + ENTRY_WORDS];
        [e[0], e[1], e[2]]
    }

    fn set(&mut self, i: usize, e: [u32; 3]) {
        self.h[ENTRY_WORDS * i..ENTRY_WORDS * i + ENTRY_WORDS].copy_from_slice(&e);
    }

    fn push(&mut self, e: [u32; 3]) -> Result<()> {
        if ENTRY_WORDS * (self.len + 1) > self.h.len() {
            return Err(Error::WorkTooSmall {
                need: ENTRY_WORDS * 4 * (self.len + 1),
                got: 4 * self.h.len(),
            });
        }
        let mut i = self.len;
        self.len += 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.at(parent);
            if !self.order.before(e, p) {
                break;
            }
            self.set(i, p);
            i = parent;
        }
        self.set(i, e);
        Ok(())
    }

    fn pop(&mut self) -> Option<[u32; 3]> {
        if self.len == 0 {
            return None;
        }
        let top = self.at(0);
        self.len -= 1;
        let last = self.at(self.len);
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            if l >= self.len {
                break;
            }
            let c = if r < self.len && self.order.before(self.at(r), self.at(l)) {
                r
            } else {
                l
            };
            if !self.order.before(self.at(c), last) {
                break;
            }
            let v = self.at(c);
            self.set(i, v);
            i = c;
        }
        if self.len > 0 {
            self.set(i, last);
        }
        Some(top)
    }
}

/// A chain of symbols over `text`.
pub(crate) struct Symbols<'w> {
    s: &'w mut [u32],
    count: usize,
}

impl<'w> Symbols<'w> {
    /// Splits `text` into symbols of one (llama.cpp-guessed) UTF-8
    /// character each; `s` must hold [`SYM_WORDS`] per byte.
    pub(crate) fn new(text: &[u8], s: &'w mut [u32]) -> Result<Symbols<'w>> {
        let cap = 4 * s.len();
        let mut count = 0;
        let mut offs = 0;
        while offs < text.len() {
            let n = super::unicode::seq_len(text[offs]).min(text.len() - offs);
            let slot = s
                .get_mut(SYM_WORDS * count..SYM_WORDS * (count + 1))
                .ok_or(Error::WorkTooSmall {
                    need: SYM_WORDS * 4 * (count + 1),
                    got: cap,
                })?;
            let prev = if count == 0 { NONE } else { count as u32 - 1 };
            let next = if offs + n == text.len() {
                NONE
            } else {
                count as u32 + 1
            };
            slot.copy_from_slice(&[offs as u32, n as u32, prev, next]);
            offs += n;
            count += 1;
        }
        Ok(Symbols { s, count })
    }

    /// `[start, len, prev, next]` of symbol `i`.
    pub(crate) fn get(&self, i: u32) -> [u32; 4] {
        let b = SYM_WORDS * i as usize;
        [self.s[b], self.s[b + 1], self.s[b + 2], self.s[b + 3]]
    }

    fn set_len(&mut self, i: u32, n: u32) {
        self.s[SYM_WORDS * i as usize + 1] = n;
    }

    fn set_prev(&mut self, i: u32, p: u32) {
        self.s[SYM_WORDS * i as usize + 2] = p;
    }

    fn set_next(&mut self, i: u32, p: u32) {
        self.s[SYM_WORDS * i as usize + 3] = p;
    }

    /// Merges pairs in `order` while `key(left, right, joined)` names a
    /// merge; `heap` must hold [`ENTRIES_PER_SYM`] entries per symbol.
    pub(crate) fn merge(
        &mut self,
        text: &[u8],
        heap: &mut [u32],
        order: Order,
        key: impl Fn(&[u8], &[u8], &[u8]) -> Option<u32>,
    ) -> Result<()> {
        let mut q = Heap {
            h: heap,
            len: 0,
            order,
        };
        let slice = |a: u32, n: u32| text.get(a as usize..(a + n) as usize).unwrap_or(&[]);
        let try_add = |syms: &Symbols<'_>, q: &mut Heap<'_>, l: u32, r: u32| -> Result<()> {
            if l == NONE || r == NONE {
                return Ok(());
            }
            let (a, b) = (syms.get(l), syms.get(r));
            if let Some(k) = key(
                slice(a[0], a[1]),
                slice(b[0], b[1]),
                slice(a[0], a[1] + b[1]),
            ) {
                q.push([k, l, a[1] + b[1]])?;
            }
            Ok(())
        };
        for i in 1..self.count as u32 {
            try_add(self, &mut q, i - 1, i)?;
        }
        while let Some([_, left, size]) = q.pop() {
            let l = self.get(left);
            if l[1] == 0 || l[3] == NONE {
                continue;
            }
            let right = l[3];
            let r = self.get(right);
            if r[1] == 0 || l[1] + r[1] != size {
                continue;
            }
            self.set_len(left, size);
            self.set_len(right, 0);
            self.set_next(left, r[3]);
            if r[3] != NONE {
                self.set_prev(r[3], left);
            }
            try_add(self, &mut q, l[2], left)?;
            try_add(self, &mut q, left, r[3])?;
        }
        Ok(())
    }

    /// The final symbols in order, as `(start, len)`.
    pub(crate) fn chain(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut i = if self.count == 0 { NONE } else { 0 };
        core::iter::from_fn(move || {
            if i == NONE {
                return None;
            }
            let s = self.get(i);
            i = s[3];
            Some((s[0] as usize, s[1] as usize))
        })
    }
}

//! Code points as llama.cpp's `unicode.cpp` reads them: its lenient UTF-8
//! decoder, its re-encoder, and the categories and whitespace set of its
//! tables (generated into [`unicode_data`](super::unicode_data)).

use super::unicode_data::{
    ASCII, LETTER, MARK, NUMBER, PUNCTUATION, RANGES, SPACE, SYMBOL, WHITESPACE,
};

/// U+FFFD, what llama.cpp decodes an invalid byte to.
pub(crate) const REPLACEMENT: u32 = 0xFFFD;

/// llama.cpp's view of a code point: its category (one of `\p{L}`,
/// `\p{N}`, `\p{P}`, `\p{M}`, `\p{S}` or none of those) and whether it is
/// whitespace (`\s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Class(u8);

impl Class {
    const fn cat(self) -> u32 {
        (self.0 & 7) as u32
    }

    /// `\p{L}`.
    pub(crate) const fn letter(self) -> bool {
        self.cat() == LETTER
    }

    /// `\p{N}`.
    pub(crate) const fn number(self) -> bool {
        self.cat() == NUMBER
    }

    /// `\p{P}`.
    pub(crate) const fn punct(self) -> bool {
        self.cat() == PUNCTUATION
    }

    /// `\p{M}`.
    pub(crate) const fn mark(self) -> bool {
        self.cat() == MARK
    }

    /// `\p{S}`.
    pub(crate) const fn symbol(self) -> bool {
        self.cat() == SYMBOL
    }

    /// `\s`.
    pub(crate) const fn space(self) -> bool {
        self.0 & SPACE != 0
    }

    /// `[^\s\p{L}\p{N}]`.
    pub(crate) const fn other(self) -> bool {
        !(self.space() || self.letter() || self.number())
    }
}

/// The class of `cpt` (code points past U+10FFFF have no category).
pub(crate) fn class(cpt: u32) -> Class {
    if let Some(&a) = ASCII.get(cpt as usize) {
        return Class(a);
    }
    let space = if WHITESPACE.binary_search(&cpt).is_ok() {
        SPACE
    } else {
        0
    };
    if cpt > 0x10FFFF {
        return Class(space);
    }
    let i = RANGES.partition_point(|&r| (r >> 3) <= cpt);
    let c = match i.checked_sub(1).and_then(|i| RANGES.get(i)) {
        Some(&r) => r & 7,
        None => 0,
    };
    Class(c as u8 | space)
}

/// Length of a UTF-8 sequence from its first byte, as llama.cpp's
/// `unicode_len_utf8` guesses it (continuation bytes count as 1).
pub(crate) fn seq_len(first: u8) -> usize {
    const LEN: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LEN[(first >> 4) as usize] as usize
}

/// Decodes the code point at `text[pos]` (in range) as llama.cpp's
/// `unicode_cpts_from_utf8` does: continuation bytes are checked but not
/// overlong forms, surrogates or the range; an invalid sequence is one
/// byte of U+FFFD. Returns the code point and its byte length.
pub(crate) fn decode(text: &[u8], pos: usize) -> (u32, usize) {
    let b0 = match text.get(pos) {
        Some(&b) => b,
        None => return (REPLACEMENT, 1),
    };
    let cont = |k: usize| text.get(pos + k).is_some_and(|&b| b & 0xC0 == 0x80);
    let low = |k: usize| u32::from(text.get(pos + k).copied().unwrap_or(0) & 0x3F);
    let b = u32::from(b0);
    if b0 & 0x80 == 0 {
        (b, 1)
    } else if b0 & 0x40 == 0 {
        (REPLACEMENT, 1)
    } else if b0 & 0x20 == 0 {
        if cont(1) {
            (((b & 0x1F) << 6) | low(1), 2)
        } else {
            (REPLACEMENT, 1)
        }
    } else if b0 & 0x10 == 0 {
        if cont(1) && cont(2) {
            (((b & 0x0F) << 12) | (low(1) << 6) | low(2), 3)
        } else {
            (REPLACEMENT, 1)
        }
    } else if b0 & 0x08 == 0 {
        if cont(1) && cont(2) && cont(3) {
            (
                ((b & 0x07) << 18) | (low(1) << 12) | (low(2) << 6) | low(3),
                4,
            )
        } else {
            (REPLACEMENT, 1)
        }
    } else {
        (REPLACEMENT, 1)
    }
}

/// Encodes `cpt` (at most U+10FFFF) as UTF-8 into `out`; returns the length.
pub(crate) fn encode(cpt: u32, out: &mut [u8; 4]) -> usize {
    if cpt < 0x80 {
        out[0] = cpt as u8;
        1
    } else if cpt < 0x800 {
        out[0] = 0xC0 | (cpt >> 6) as u8;
        out[1] = 0x80 | (cpt & 0x3F) as u8;
        2
    } else if cpt < 0x10000 {
        out[0] = 0xE0 | (cpt >> 12) as u8;
        out[1] = 0x80 | ((cpt >> 6) & 0x3F) as u8;
        out[2] = 0x80 | (cpt & 0x3F) as u8;
        3
    } else {
        out[0] = 0xF0 | ((cpt >> 18) & 0x07) as u8;
        out[1] = 0x80 | ((cpt >> 12) & 0x3F) as u8;
        out[2] = 0x80 | ((cpt >> 6) & 0x3F) as u8;
        out[3] = 0x80 | (cpt & 0x3F) as u8;
        4
    }
}

const fn printable(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// GPT-2's byte-to-code-point map: printable Latin-1 bytes map to
/// themselves, the other 68 to U+0100 onwards in byte order.
const BYTE_TO_CPT: [u16; 256] = {
    let mut t = [0u16; 256];
    let (mut b, mut next) = (0usize, 256u16);
    while b < 256 {
        if printable(b as u8) {
            t[b] = b as u16;
        } else {
            t[b] = next;
            next += 1;
        }
        b += 1;
    }
    t
};

/// The bytes GPT-2 maps to U+0100 + i.
const SHIFTED: [u8; 68] = {
    let mut t = [0u8; 68];
    let (mut b, mut i) = (0usize, 0usize);
    while b < 256 {
        if !printable(b as u8) {
            t[i] = b as u8;
            i += 1;
        }
        b += 1;
    }
    t
};

/// GPT-2's byte-to-code-point map.
pub(crate) fn byte_to_cpt(b: u8) -> u32 {
    u32::from(BYTE_TO_CPT[b as usize])
}

/// The inverse of [`byte_to_cpt`].
pub(crate) fn cpt_to_byte(cpt: u32) -> Option<u8> {
    match cpt {
        0..=255 if printable(cpt as u8) => Some(cpt as u8),
        256.. => SHIFTED.get((cpt - 256) as usize).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(cpt_to_byte(byte_to_cpt(b)), Some(b));
        }
        assert_eq!(byte_to_cpt(b' '), 0x120); // "Ġ"
        assert_eq!(byte_to_cpt(b'\n'), 0x10A); // "Ċ"
    }

    #[test]
    fn classes() {
        assert!(class(u32::from('a')).letter());
        assert!(class(u32::from('7')).number());
        assert!(class(u32::from(' ')).space() && class(0x3000).space());
        assert!(class(u32::from('!')).punct() && class(u32::from('$')).symbol());
        assert!(class(u32::from('!')).other() && !class(u32::from('!')).space());
        assert!(class(0x4E2D).letter()); // 中
        assert!(class(0x0660).number()); // Arabic-Indic zero
        assert!(class(0x0301).mark()); // combining acute
        assert!(class(0x00E9).letter() && class(0x00C9).letter()); // é É
        assert!(class(0x2014).punct() && class(0x20AC).symbol()); // — €
        assert!(class(0x0085).space() && !class(0x200B).space());
        assert_eq!(class(0x110000), Class::default());
    }
}

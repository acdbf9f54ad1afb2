//! The BPE pre-tokenizers: how llama.cpp cuts a text into words before
//! merging, per `tokenizer.ggml.pre`, as hand-written scanners (no regex
//! engine) over llama.cpp's code points and Unicode categories. Each runs
//! in time linear in the text and allocates nothing.
//!
//! llama.cpp gives each pre-tokenizer a list of patterns; the first splits
//! the text, each next one splits every word of the one before. Four
//! patterns have custom scanners in llama.cpp (`unicode.cpp`: gpt2,
//! llama3, qwen2, qwen35), mirrored in [`gpt2`] and [`llama3`]; the others
//! it runs with `std::regex`, whose behaviour (backtracking order, the
//! "collapsed" categories) [`search`] and [`gpt4o`] reproduce.
//!
//! Positions are byte offsets of code points as [`decode`] reads them.

mod gpt2;
mod gpt4o;
mod llama3;
mod search;

use super::unicode::{class, decode, Class};
use super::unicode_data::{DEEPSEEK_CJK, DEEPSEEK_LETTERS, DEEPSEEK_PUNCT};
use crate::error::Result;
use llama3::Variant;

/// The callback a scanner gives each word to, as `(start, end)`.
pub(super) type Word<'w> = &'w mut dyn FnMut(usize, usize) -> Result<()>;

/// Which pre-tokenizer a BPE vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// The GPT-2 pattern (`gpt-2`, `phi-2`, `mpt`, `olmo`).
    Gpt2,
    /// Every number code point alone, then the GPT-2 pattern (`smollm`,
    /// `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`,
    /// `minerva-7b`).
    SmolLm,
    /// The Llama 3 pattern, with whole-word tokens taken before merging
    /// (`llama-bpe`, `llama3`, `llama-v3`, `falcon3`, `falcon-h1`,
    /// `pixtral`, `midm-2.0`, `lfm2`, `jina-v5-nano`).
    Llama3,
    /// The Llama 3 pattern with numbers one by one (`qwen2`, `stablelm2`,
    /// `hunyuan`, `solar-open`, `deepseek-r1-qwen`, `kormo`, `f2llmv2`,
    /// `megrez`, `grok-2`).
    Qwen2,
    /// [`Qwen2`](Self::Qwen2) with marks in letter runs (`qwen35`).
    Qwen35,
    /// DeepSeek LLM's six patterns (`deepseek-llm`).
    DeepSeekLlm,
    /// DeepSeek Coder's five patterns (`deepseek-coder`).
    DeepSeekCoder,
    /// Punctuation runs, the GPT-2 pattern, then groups of three ASCII
    /// digits (`falcon`).
    Falcon,
    /// llama.cpp's default for a vocabulary without a known pattern (no
    /// `tokenizer.ggml.pre`, or `default`: GPT-NeoX, Aquila): punctuation
    /// runs, the GPT-2 pattern, number runs, groups of three ASCII digits.
    Default,
    /// The `gpt-4o` pattern (`gpt-4o`: Phi-4-mini; `llama4`, `kanana2`,
    /// `talkie`, `minimax-m2`).
    Gpt4o,
    /// Gemma 4 (`tokenizer.ggml.model = "gemma4"`): runs of newlines and
    /// runs of anything else, merged as raw UTF-8 with spaces written as
    /// U+2581 and `<0xXX>` byte tokens.
    Gemma4,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for a BPE vocabulary whose
    /// `tokenizer.ggml.pre` is `pre` (empty if absent), if this crate
    /// implements it.
    pub fn from_name(pre: &str) -> Option<PreTokenizer> {
        use PreTokenizer::*;
        Some(match pre {
            "gpt-2" | "phi-2" | "mpt" | "olmo" => Gpt2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" => SmolLm,
            "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => Llama3,
            "qwen2" | "stablelm2" | "hunyuan" | "solar-open" | "deepseek-r1-qwen" | "kormo"
            | "f2llmv2" | "megrez" | "grok-2" => Qwen2,
            "qwen35" => Qwen35,
            "deepseek-llm" => DeepSeekLlm,
            "deepseek-coder" => DeepSeekCoder,
            "falcon" => Falcon,
            "" | "default" => Default,
            "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => Gpt4o,
            "gemma4" => Gemma4,
            _ => return None,
        })
    }

    /// llama.cpp's `ignore_merges`: a word that is a token as a whole is
    /// that token, whatever the merges would make of it.
    pub(crate) fn ignore_merges(self) -> bool {
        self == PreTokenizer::Llama3
    }

    /// Whether words go through GPT-2's byte-to-code-point map (all but
    /// Gemma 4, which merges raw UTF-8).
    pub(crate) fn byte_encode(self) -> bool {
        self != PreTokenizer::Gemma4
    }

    /// Calls `word(start, end)` for each word of `text`, in order.
    pub(crate) fn split(self, text: &[u8], word: Word<'_>) -> Result<()> {
        let end = text.len();
        let number = |c: u32| class(c).number();
        match self {
            PreTokenizer::Gpt2 => gpt2::split(text, 0, end, word),
            PreTokenizer::SmolLm => search::split(
                text,
                0,
                end,
                |t, p| search::one(t, p, number),
                &mut |a, b| gpt2::split(text, a, b, word),
            ),
            PreTokenizer::Llama3 => llama3::split(text, 0, end, Variant::LLAMA3, word),
            PreTokenizer::Qwen2 => llama3::split(text, 0, end, Variant::QWEN2, word),
            PreTokenizer::Qwen35 => llama3::split(text, 0, end, Variant::QWEN35, word),
            PreTokenizer::Gpt4o => gpt4o::split(text, 0, end, word),
            PreTokenizer::Falcon | PreTokenizer::Default => {
                let falcon = self == PreTokenizer::Falcon;
                // [\p{P}\$\+<=>\^~\|]+ (falcon adds the backtick)
                let punct = move |c: u32| {
                    let f = class(c);
                    f.punct() || (c < 0x80 && f.symbol() && (falcon || c != u32::from(b'`')))
                };
                let digits = |a: usize, b: usize, word: Word<'_>| {
                    search::split(text, a, b, search::three_digits, word)
                };
                search::split(
                    text,
                    0,
                    end,
                    |t, p| search::run(t, p, punct),
                    &mut |a, b| {
                        gpt2::split(text, a, b, &mut |a, b| {
                            if falcon {
                                digits(a, b, word)
                            } else {
                                search::split(
                                    text,
                                    a,
                                    b,
                                    |t, p| search::run(t, p, number),
                                    &mut |a, b| digits(a, b, word),
                                )
                            }
                        })
                    },
                )
            }
            PreTokenizer::DeepSeekLlm => {
                let letters = |c: u32| search::in_ranges(&DEEPSEEK_LETTERS, c);
                let punct = |c: u32| search::in_ranges(&DEEPSEEK_PUNCT, c);
                let cjk = |c: u32| search::in_ranges(&DEEPSEEK_CJK, c);
                search::chain(
                    text,
                    0,
                    end,
                    &[
                        &|t, p| search::one(t, p, is_cr_lf),
                        &|t, p| search::space_run(t, p, letters),
                        &|t, p| search::space_run(t, p, punct),
                        &search::trailing_space,
                        &|t, p| search::run(t, p, cjk),
                        &|t, p| search::run(t, p, number),
                    ],
                    word,
                )
            }
            PreTokenizer::DeepSeekCoder => {
                let letter = |c: u32| class(c).letter();
                let punct = |c: u32| class(c).punct();
                let cjk = |c: u32| search::in_ranges(&DEEPSEEK_CJK, c);
                search::chain(
                    text,
                    0,
                    end,
                    &[
                        &|t, p| search::one(t, p, is_cr_lf),
                        &|t, p| search::space_run(t, p, letter),
                        &|t, p| search::space_run(t, p, punct),
                        &|t, p| search::run(t, p, cjk),
                        &|t, p| search::one(t, p, number),
                    ],
                    word,
                )
            }
            // [^\n]+|[\n]+
            PreTokenizer::Gemma4 => {
                let mut pos = 0;
                while pos < end {
                    let nl = text[pos] == b'\n';
                    let start = pos;
                    while pos < end && (text[pos] == b'\n') == nl {
                        pos += 1;
                    }
                    word(start, pos)?;
                }
                Ok(())
            }
        }
    }
}

fn is_cr_lf(c: u32) -> bool {
    c == u32::from(b'\r') || c == u32::from(b'\n')
}

/// The code points of `text[..end]`: `at(pos)` is `None` at or past `end`.
pub(super) struct Cpts<'t> {
    text: &'t [u8],
    end: usize,
}

impl Cpts<'_> {
    fn at(&self, pos: usize) -> Option<(u32, usize)> {
        (pos < self.end).then(|| decode(self.text, pos))
    }

    fn class_at(&self, pos: usize) -> Option<Class> {
        self.at(pos).map(|(c, _)| class(c))
    }

    /// The position after the code point at `pos`.
    fn next(&self, pos: usize) -> usize {
        pos + self.at(pos).map_or(1, |(_, n)| n)
    }

    /// The end of at most `max` number code points from `pos`
    /// (`\p{N}{1,max}`).
    fn numbers(&self, mut pos: usize, max: usize) -> usize {
        for _ in 0..max {
            if !self.class_at(pos).is_some_and(Class::number) {
                break;
            }
            pos = self.next(pos);
        }
        pos
    }

    /// The end of the run of code points of a class `keep` from `pos`.
    fn run(&self, mut pos: usize, keep: impl Fn(Class) -> bool) -> usize {
        while self.class_at(pos).is_some_and(&keep) {
            pos = self.next(pos);
        }
        pos
    }

    /// The end of the run of code points `keep` from `pos`.
    fn run_cpts(&self, mut pos: usize, keep: impl Fn(u32) -> bool) -> usize {
        while let Some((c, n)) = self.at(pos) {
            if !keep(c) {
                break;
            }
            pos += n;
        }
        pos
    }

    /// The end of `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (either case if
    /// `any_case`), if there is one.
    fn contraction(&self, pos: usize, any_case: bool) -> Option<usize> {
        let (c0, n0) = self.at(pos)?;
        if c0 != u32::from(b'\'') {
            return None;
        }
        let fold = |c: u32| {
            if any_case && (u32::from(b'A')..=u32::from(b'Z')).contains(&c) {
                c + 32
            } else {
                c
            }
        };
        let (c1, n1) = self.at(pos + n0)?;
        let c1 = fold(c1);
        if b"stmd".iter().any(|&x| c1 == u32::from(x)) {
            return Some(pos + n0 + n1);
        }
        let (c2, n2) = self.at(pos + n0 + n1)?;
        let pair = (c1, fold(c2));
        let two = |a: u8, b: u8| pair == (u32::from(a), u32::from(b));
        (two(b'r', b'e') || two(b'v', b'e') || two(b'l', b'l')).then_some(pos + n0 + n1 + n2)
    }

    /// The whitespace run from `pos`: its end, where its last code point
    /// starts, and its length in code points.
    fn spaces(&self, pos: usize) -> (usize, usize, usize) {
        let (mut p, mut last, mut n) = (pos, pos, 0);
        while self.class_at(p).is_some_and(Class::space) {
            last = p;
            p = self.next(p);
            n += 1;
        }
        (p, last, n)
    }

    /// The end of the word at `pos` by the patterns' whitespace tail:
    /// `\s*[\r\n]+` (if `cr_lf`), `\s+(?!\S)`, `\s+`, or else the one code
    /// point.
    fn spaces_end(&self, pos: usize, cr_lf: bool) -> usize {
        let (end, last, n) = self.spaces(pos);
        if cr_lf {
            // The run ends after its last \r or \n, if it has one.
            let mut q = pos;
            let mut after = None;
            while q < end {
                let (c, l) = self.at(q).unwrap_or((0, 1));
                q += l;
                if is_cr_lf(c) {
                    after = Some(q);
                }
            }
            if let Some(e) = after {
                return e;
            }
        }
        if n > 1 && end < self.end {
            // Leave the last whitespace for the word that follows.
            last
        } else if n > 0 {
            end
        } else {
            self.next(pos)
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;

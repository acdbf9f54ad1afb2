#!/usr/bin/env python3
"""Generate core/src/tokenizer/unicode_data.rs from llama.cpp's own tables.

    python unicode_tables.py [--sdist llama_cpp_python-X.tar.gz] [--check]

The byte-level BPE pre-tokenizers need llama.cpp's category of each code
point (letter \\p{L}, number \\p{N}, punctuation \\p{P}, mark \\p{M},
symbol \\p{S}, anything else) and whether it is whitespace (\\s). llama.cpp
takes them from `src/unicode-data.cpp` (its `unicode_ranges_flags` and
`unicode_set_whitespace`), generated from a particular Unicode version; to
agree with it exactly we read that very file from the llama-cpp-python
source distribution `cargo xtask setup` caches (default:
<workspace>/target/vendor/cache/llama_cpp_python-*.tar.gz), not Python's
`unicodedata`, whose Unicode version may differ.

Output: one sorted array of `start << 3 | class` (class 1 letter, 2 number,
3 punctuation, 4 mark, 5 symbol, 0 anything else; a range runs to the next
start), the whitespace list and a 128-entry ASCII table (class | 8 if
whitespace). With
`--check`, compares the generated text with the committed file and exits 1
if they differ (tokenize_ref.py runs this check).
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent
OUT = WORKSPACE / "core/src/tokenizer/unicode_data.rs"

# unicode_cpt_flags in llama.cpp's unicode.h
NUMBER, LETTER, ACCENT_MARK, PUNCTUATION, SYMBOL = 0x0002, 0x0004, 0x0010, 0x0020, 0x0040
CLASS_OF_FLAG = {LETTER: 1, NUMBER: 2, PUNCTUATION: 3, ACCENT_MARK: 4, SYMBOL: 5}
SPACE_BIT = 8


def find_sdist() -> Path:
    cache = WORKSPACE / "target/vendor/cache"
    found = sorted(cache.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        raise SystemExit(f"unicode_tables: no llama_cpp_python-*.tar.gz in {cache} (run `cargo xtask setup`)")
    return found[-1]


def read_source(sdist: Path, name: str) -> str:
    """llama.cpp's `src/NAME` as vendored in the llama-cpp-python sdist."""
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            if m.name.endswith(f"vendor/llama.cpp/src/{name}"):
                f = tar.extractfile(m)
                assert f is not None
                return f.read().decode()
    raise SystemExit(f"unicode_tables: {sdist} has no vendor/llama.cpp/src/{name}")


def sources(sdist: Path) -> tuple[str, str]:
    """The two files the tables come from: unicode-data.cpp, llama-vocab.cpp."""
    return read_source(sdist, "unicode-data.cpp"), read_source(sdist, "llama-vocab.cpp")


def deepseek_llm_classes(vocab_cpp: str) -> list[list[tuple[int, int]]]:
    """The bracket classes of the deepseek-llm regexes 2, 3 and 5 (the
    letters, the punctuation and the CJK / Hangul runs), as sorted, merged
    inclusive code point ranges."""
    m = re.search(r"case LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM:\s*regex_exprs = \{(.*?)\};", vocab_cpp, re.S)
    if not m:
        raise SystemExit("unicode_tables: deepseek-llm regexes not found in llama-vocab.cpp")
    exprs = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    out = []
    for k in (1, 2, 4):
        body = re.search(r"\[(.*)\]", exprs[k]).group(1)
        cps = [ord(c) for c in body]
        ranges, i = [], 0
        while i < len(cps):
            if i + 2 < len(cps) and cps[i + 1] == ord("-"):
                ranges.append((cps[i], cps[i + 2]))
                i += 3
            else:
                ranges.append((cps[i], cps[i]))
                i += 1
        merged: list[tuple[int, int]] = []
        for a, b in sorted(ranges):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out.append(merged)
    return out


def block(src: str, name: str) -> str:
    m = re.search(name + r"\s*=\s*\{(.*?)\n\};", src, re.S)
    if not m:
        raise SystemExit(f"unicode_tables: {name} not found in unicode-data.cpp")
    return m.group(1)


def generate(src: str, vocab_cpp: str) -> str:
    flags = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+),\s*0x([0-9A-Fa-f]+)\}",
                                                               block(src, "unicode_ranges_flags"))]
    ws = [int(x, 16) for x in re.findall(r"0x([0-9A-Fa-f]+)", block(src, "unicode_set_whitespace"))]
    assert flags[0][0] == 0 and flags[-1][0] == 0x110000, "unexpected range table bounds"
    ranges: list[tuple[int, int]] = []
    for start, f in flags[:-1]:
        cls = CLASS_OF_FLAG.get(f & 0xFF, 0)
        if not ranges or ranges[-1][1] != cls:
            ranges.append((start, cls))
    ascii_row = []
    for c in range(128):
        cls = 0
        for start, k in ranges:
            if start <= c:
                cls = k
        ascii_row.append(cls | (SPACE_BIT if c in ws else 0))
    lines = [
        "//! Unicode classes as llama.cpp's `unicode-data.cpp` defines them.",
        "//!",
        "//! Generated by `tests/oracle/unicode_tables.py` from the llama-cpp-python",
        "//! source distribution; do not edit. Regenerate with",
        "//! `target/venv/bin/python tests/oracle/unicode_tables.py`.",
        "",
        "/// Class of a range: letter (`\\p{L}`).",
        "pub const LETTER: u32 = 1;",
        "/// Class of a range: number (`\\p{N}`).",
        "pub const NUMBER: u32 = 2;",
        "/// Class of a range: punctuation (`\\p{P}`).",
        "pub const PUNCTUATION: u32 = 3;",
        "/// Class of a range: mark (`\\p{M}`).",
        "pub const MARK: u32 = 4;",
        "/// Class of a range: symbol (`\\p{S}`).",
        "pub const SYMBOL: u32 = 5;",
        "/// In [`ASCII`]: the code point is whitespace.",
        "pub const SPACE: u8 = 8;",
        "",
        "/// Sorted `start << 3 | class`; a range runs to the next start, the last",
        "/// to U+10FFFF.",
        "#[rustfmt::skip]",
        f"pub static RANGES: [u32; {len(ranges)}] = [",
    ]
    row: list[str] = []
    for start, cls in ranges:
        row.append(f"0x{start << 3 | cls:07x},")
        if len(row) == 8:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append("];")
    lines.append("")
    lines.append("/// The code points llama.cpp treats as whitespace (`\\s`), sorted.")
    lines.append("#[rustfmt::skip]")
    lines.append(f"pub static WHITESPACE: [u32; {len(ws)}] = [")
    for i in range(0, len(ws), 8):
        lines.append("    " + " ".join(f"0x{c:04x}," for c in sorted(ws)[i:i + 8]))
    lines.append("];")
    lines.append("")
    lines.append("/// The class of each ASCII code point, `| SPACE` if whitespace.")
    lines.append("#[rustfmt::skip]")
    lines.append("pub static ASCII: [u8; 128] = [")
    for i in range(0, 128, 16):
        lines.append("    " + " ".join(f"{c}," for c in ascii_row[i:i + 16]))
    lines.append("];")
    names = [
        ("DEEPSEEK_LETTERS", "letters (`\\s?[A-Za-zµÀ-Ö...]+`)"),
        ("DEEPSEEK_PUNCT", "punctuation (`\\s?[!-/:-~！-／...]+`)"),
        ("DEEPSEEK_CJK", "CJK and Hangul (`[一-龥ࠀ-一가-퟿]+`)"),
    ]
    for (name, what), ranges in zip(names, deepseek_llm_classes(vocab_cpp)):
        lines.append("")
        lines.append(f"/// The deepseek-llm pre-tokenizer's {what} class, as")
        lines.append("/// llama-vocab.cpp spells it: sorted, merged, inclusive `(first, last)`.")
        lines.append("#[rustfmt::skip]")
        lines.append(f"pub static {name}: [(u32, u32); {len(ranges)}] = [")
        for i in range(0, len(ranges), 4):
            lines.append("    " + " ".join(f"(0x{a:05x}, 0x{b:05x})," for a, b in ranges[i:i + 4]))
        lines.append("];")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", type=Path, help="llama-cpp-python source distribution")
    ap.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    args = ap.parse_args()
    sdist = args.sdist or find_sdist()
    text = generate(*sources(sdist))
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"unicode_tables: {OUT} is stale; run tests/oracle/unicode_tables.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

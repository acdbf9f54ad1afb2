#!/usr/bin/env python3
"""llama.cpp's tokenizer goldens for phi-edge's tokenizer tests.

    python tokenize_ref.py --out DIR [--vocab-dir target/vendor/vocab]
                           [--smollm2 SmolLM2-135M-Instruct.Q4_1.gguf]

`make_ref.py` calls `write_goldens` (so `cargo xtask ref` regenerates
these whenever a file in tests/oracle/ changes); run by hand it writes the
same file. For each vocabulary (every SentencePiece and BPE ggml-vocab-*
of llama.cpp's test set in VOCABS, the real SmolLM2 model, and a copy of
ggml-vocab-llama-bpe with `tokenizer.ggml.pre` set to `gpt-4o` written to
DIR/models/ggml-vocab-gpt-4o.gguf, as no Phi-4-mini vocabulary is at hand) it
loads llama.cpp with `vocab_only=True` and records in DIR/tokenizer.json:

    {"vocabs": [{"name", "model" (relative to DIR), "n_vocab",
                 "bos", "eos", "eot", "eog": [ids],
                 "attrs": [[id, attr] for every token whose attr != NORMAL],
                 "pieces": [hex of token_to_piece(id, special=False)],
                 "pieces_special": [hex of token_to_piece(id, special=True)],
                 "cases": [{"text": hex, "source": "corpus"|"inp",
                            "plain": ids (add_special=False, parse_special=False),
                            "special": ids (add_special=False, parse_special=True),
                            "bos": ids (add_special=True, parse_special=True),
                            "detok": hex of the pieces of "plain" (special=False),
                            "detok_special": hex of the pieces of "special" (special=True)}]}]}

Inputs: every line of tokenizer_corpus.txt (our strings) and every case of
llama.cpp's own `<vocab>.gguf.inp` test vectors. It also checks that
core/src/tokenizer/unicode_data.rs is what unicode_tables.py generates.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import golden  # noqa: E402
import unicode_tables  # noqa: E402

CORPUS = HERE / "tokenizer_corpus.txt"
VOCABS = [
    "ggml-vocab-phi-3", "ggml-vocab-llama-spm", "ggml-vocab-gpt-2",
    # BPE, by pre-tokenizer (aquila and gpt-neox have none: llama.cpp's default)
    "ggml-vocab-llama-bpe", "ggml-vocab-qwen2", "ggml-vocab-qwen35", "ggml-vocab-deepseek-llm",
    "ggml-vocab-deepseek-coder", "ggml-vocab-falcon", "ggml-vocab-mpt", "ggml-vocab-starcoder",
    "ggml-vocab-gpt-neox", "ggml-vocab-aquila", "ggml-vocab-command-r", "ggml-vocab-refact",
    "ggml-vocab-gemma-4",
    # SentencePiece without test vectors
    "ggml-vocab-baichuan",
]
# The vocabulary the gpt-4o copy is made from: Llama 3's tiktoken-style
# merges suit gpt-4o's splits.
GPT4O_BASE = "ggml-vocab-llama-bpe"
SEP = b"\n__ggml_vocab_test__\n"


def read_corpus() -> list[bytes]:
    out = []
    for line in CORPUS.read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("#"):
            continue
        v = json.loads(line)
        out.append(bytes.fromhex(v["hex"]) if isinstance(v, dict) else v.encode("utf-8"))
    return out


def read_inp(path: Path) -> list[bytes]:
    """The inputs of a llama.cpp test-tokenizer-0 .inp file."""
    raw = path.read_bytes()
    out, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(SEP, pos)
        if nxt < 0:
            out.append(raw[pos:])
            break
        out.append(raw[pos:nxt])
        pos = nxt + len(SEP)
    return out


def gguf_with_pre(src: Path, dst: Path, pre: str) -> None:
    """Copies the tensor-less vocabulary GGUF `src` to `dst` with the
    string value of `tokenizer.ggml.pre` replaced by `pre`."""
    raw = src.read_bytes()
    key = b"tokenizer.ggml.pre"
    at = raw.find(len(key).to_bytes(8, "little") + key)
    if at < 0:
        raise RuntimeError(f"{src}: no {key.decode()}")
    pos = at + 8 + len(key)
    if int.from_bytes(raw[pos:pos + 4], "little") != 8:  # GGUF_TYPE_STRING
        raise RuntimeError(f"{src}: {key.decode()} is not a string")
    n = int.from_bytes(raw[pos + 4:pos + 12], "little")
    header_tensors = int.from_bytes(raw[8:16], "little")
    if header_tensors != 0:
        raise RuntimeError(f"{src}: has tensors; only vocabulary files can be patched")
    value = pre.encode()
    dst.write_bytes(raw[:pos + 4] + len(value).to_bytes(8, "little") + value + raw[pos + 12 + n:])


def piece(llama_cpp, vocab, tok: int, special: bool) -> bytes:
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, tok, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def tokenize(llama_cpp, vocab, text: bytes, add_special: bool, parse_special: bool) -> list[int]:
    cap = len(text) + 8
    arr = (llama_cpp.llama_token * cap)()
    n = llama_cpp.llama_tokenize(vocab, text, len(text), arr, cap, add_special, parse_special)
    if n < 0:
        cap = -n
        arr = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(vocab, text, len(text), arr, cap, add_special, parse_special)
    if n < 0:
        raise RuntimeError(f"llama_tokenize failed on {text!r}")
    return list(arr[:n])


def one_vocab(name: str, path: Path, out: Path, texts: list[tuple[str, bytes]]) -> dict:
    import llama_cpp

    m = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    v = llama_cpp.llama_model_get_vocab(m.model)
    n = llama_cpp.llama_vocab_n_tokens(v)
    normal = 1 << 2
    rec = {
        "name": name,
        "model": os.path.relpath(path, out),
        "n_vocab": n,
        "bos": llama_cpp.llama_vocab_bos(v),
        "eos": llama_cpp.llama_vocab_eos(v),
        "eot": llama_cpp.llama_vocab_eot(v),
        "eog": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(v, i)],
        "attrs": [[i, a] for i in range(n) if (a := int(llama_cpp.llama_vocab_get_attr(v, i))) != normal],
        "pieces": [piece(llama_cpp, v, i, False).hex() for i in range(n)],
        "pieces_special": [piece(llama_cpp, v, i, True).hex() for i in range(n)],
        "cases": [],
    }
    for source, text in texts:
        plain = tokenize(llama_cpp, v, text, False, False)
        special = tokenize(llama_cpp, v, text, False, True)
        rec["cases"].append({
            "text": text.hex(),
            "source": source,
            "plain": plain,
            "special": special,
            "bos": tokenize(llama_cpp, v, text, True, True),
            "detok": b"".join(piece(llama_cpp, v, t, False) for t in plain).hex(),
            "detok_special": b"".join(piece(llama_cpp, v, t, True) for t in special).hex(),
        })
    return rec


def quiet(f, *args):
    """Runs f(*args) with llama.cpp's C log (load chatter, double-BOS
    warnings) discarded; Python errors still propagate."""
    with golden.captured_stderr():
        return f(*args)


def write_goldens(out: Path, vocab_dir: Path, smollm2: Path) -> Path:
    """Writes DIR/tokenizer.json; returns its path."""
    sdist = unicode_tables.find_sdist()
    if unicode_tables.OUT.read_text() != unicode_tables.generate(*unicode_tables.sources(sdist)):
        raise RuntimeError(f"{unicode_tables.OUT} is stale: run tests/oracle/unicode_tables.py")
    corpus = [("corpus", t) for t in read_corpus()]
    vocabs = []
    for stem in VOCABS:
        inp_path = vocab_dir / f"{stem}.gguf.inp"
        inp = [("inp", t) for t in read_inp(inp_path)] if inp_path.exists() else []
        vocabs.append(quiet(one_vocab, stem, vocab_dir / f"{stem}.gguf", out, corpus + inp))
    vocabs.append(quiet(one_vocab, "smollm2", smollm2, out, corpus))
    gpt4o = out / "models" / "ggml-vocab-gpt-4o.gguf"
    gpt4o.parent.mkdir(parents=True, exist_ok=True)
    gguf_with_pre(vocab_dir / f"{GPT4O_BASE}.gguf", gpt4o, "gpt-4o")
    vocabs.append(quiet(one_vocab, "gpt-4o", gpt4o, out, corpus))
    path = out / "tokenizer.json"
    path.write_text(json.dumps({"corpus_size": len(corpus), "vocabs": vocabs}) + "\n")
    for r in vocabs:
        print(f"tokenizer goldens: {r['name']:<22}{r['n_vocab']:>7} tokens, {len(r['cases'])} cases, "
              f"eog {r['eog']}")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    workspace = HERE.parent.parent
    ap.add_argument("--vocab-dir", type=Path, default=workspace / "target/vendor/vocab")
    ap.add_argument("--smollm2", type=Path, default=workspace / "target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_goldens(args.out.resolve(), args.vocab_dir, args.smollm2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

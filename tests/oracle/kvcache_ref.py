"""KV-cache-type goldens: llama.cpp's flash-attention path with a Q8_0 and
an f16 KV cache.

llama.cpp quantizes its V cache only on its flash-attention path, so the
reference for phi-edge's `--cache-type q8_0` is llama.cpp with
`flash_attn` on and `type_k = type_v = GGML_TYPE_Q8_0`, evaluated one
token per batch (its decode path, as the other goldens). The same path with
the f16 cache is recorded too, to measure how far the f16 flash-attention
path is from the non-flash one phi-edge's f16 cache matches.

    python kvcache_ref.py --out DIR     (after make_ref.py wrote DIR)

`make_ref.py` calls `write(out, records)` with its cases; the ones in
`CASES` get goldens. Writes

    DIR/logits/kvcache-<case>-<config>.npy   float32 [n_tokens, n_vocab]
    DIR/kvcache.json
        {"configs": {name: {"flash_attn": bool, "type_k": str, "type_v": str}},
         "cases": [{"name", "model", "n_ctx", "tokens",
                    "logits": {config: npy path relative to DIR}}],
         "text": {"model", "source", "n_ctx", "tokens", "ppl": {config: PPL},
                  "kl": {config: mean KL(nofa-f16 || config)}}}

`text` scores the first `TEXT_TOKENS` tokens of `TEXT_FILE` (BOS first)
with SmolLM2 in each configuration: the perplexity of each next token
under the logits before it, and the mean KL divergence of each
configuration's next-token distribution from the non-flash f16 one (the
logits themselves are not kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import llama_cpp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import golden  # noqa: E402

#: ggml type ids (ggml.h): GGML_TYPE_F16 = 1, GGML_TYPE_Q8_0 = 8.
GGML_TYPES = {"f16": 1, "q8_0": 8}

#: name -> (flash attention, K/V cache type). `nofa-f16` is the goldens'
#: own configuration (cases.json); it is run again only for the text.
CONFIGS = {
    "fa-q8_0": (True, "q8_0"),
    "fa-f16": (True, "f16"),
}

#: make_ref.py's cases that get KV-cache goldens: the real SmolLM2 (llama,
#: GQA 9/3 heads of 64) and two synthetic phi3 (4 heads of 64; 8/2 heads
#: of 32 with partial rotary).
CASES = ["smollm2", "phi3-f32", "phi3-gqa-partial"]

#: The perplexity text: a file of the repository, its first tokens.
TEXT_FILE = "LICENSE-APACHE"
TEXT_TOKENS = 512
TEXT_CTX = 512


def run(model: Path, tokens: list[int], n_ctx: int, flash_attn: bool, kv: str) -> np.ndarray:
    """Logits [len(tokens), n_vocab] (float32), one token per batch."""
    llm = golden.load(model, n_ctx, flash_attn=flash_attn, kv_type=GGML_TYPES[kv])
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)], dtype=np.float32)
    finally:
        llm.close()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def perplexity(logits: np.ndarray, tokens: list[int]) -> float:
    """exp of the mean negative log-probability of tokens[1:] under the
    logits after the token before each."""
    lp = log_softmax(logits[:-1])
    nll = -lp[np.arange(len(tokens) - 1), tokens[1:]]
    return float(np.exp(nll.mean()))


def mean_kl(ref: np.ndarray, other: np.ndarray) -> float:
    """Mean over positions of KL(softmax(ref) || softmax(other))."""
    a, b = log_softmax(ref), log_softmax(other)
    return float((np.exp(a) * (a - b)).sum(axis=1).mean())


def write(out: Path, records: list[dict], smol_path: Path, workspace: Path) -> None:
    """The goldens for the records named in CASES, and the text scores."""
    logits_dir = out / "logits"
    cases = []
    for r in records:
        if r["name"] not in CASES:
            continue
        model = out / r["model"]
        paths = {}
        for cfg, (fa, kv) in CONFIGS.items():
            logits = run(model, r["tokens"], r["n_ctx"], fa, kv)
            if not np.isfinite(logits).all():
                raise RuntimeError(f"kvcache {r['name']} {cfg}: non-finite logits")
            npy = logits_dir / f"kvcache-{r['name']}-{cfg}.npy"
            np.save(npy, logits)
            paths[cfg] = os.path.relpath(npy, out)
        base = np.load(out / r["logits"])
        q8 = np.load(out / paths["fa-q8_0"])
        fa16 = np.load(out / paths["fa-f16"])
        print(f"  kvcache {r['name']:<18} max|fa-q8_0 - nofa-f16| {np.abs(q8 - base).max():.4g}, "
              f"max|fa-f16 - nofa-f16| {np.abs(fa16 - base).max():.4g}")
        # The goldens must test something: a q8_0 cache moves the logits,
        # and by more than the f16 flash path does.
        if not np.abs(q8 - base).max() > 0:
            raise RuntimeError(f"kvcache {r['name']}: the q8_0 cache changed no logit")
        cases.append({"name": r["name"], "model": r["model"], "n_ctx": r["n_ctx"],
                      "tokens": r["tokens"], "logits": paths})

    text = (workspace / TEXT_FILE).read_text()
    tokens = golden.tokenize(smol_path, text)[:TEXT_TOKENS]
    ppl, kl = {}, {}
    ref = run(smol_path, tokens, TEXT_CTX, False, "f16")
    ppl["nofa-f16"] = perplexity(ref, tokens)
    for cfg, (fa, kv) in CONFIGS.items():
        logits = run(smol_path, tokens, TEXT_CTX, fa, kv)
        ppl[cfg] = perplexity(logits, tokens)
        kl[cfg] = mean_kl(ref[:-1], logits[:-1])
    print(f"  kvcache text {TEXT_FILE} ({len(tokens)} tokens): PPL "
          + ", ".join(f"{k} {v:.4f}" for k, v in ppl.items())
          + "; mean KL vs nofa-f16 " + ", ".join(f"{k} {v:.3g}" for k, v in kl.items()))
    doc = {
        "configs": {k: {"flash_attn": fa, "type_k": kv, "type_v": kv} for k, (fa, kv) in CONFIGS.items()},
        "cases": cases,
        "text": {"model": os.path.relpath(smol_path, out), "source": TEXT_FILE, "n_ctx": TEXT_CTX,
                 "tokens": tokens, "ppl": ppl, "kl": kl},
    }
    (out / "kvcache.json").write_text(json.dumps(doc, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="make_ref.py's output directory")
    ap.add_argument("--smollm2", type=Path, help="SmolLM2 GGUF (default: <workspace>/target/models/)")
    args = ap.parse_args()
    workspace = HERE.parent.parent
    out = args.out.resolve()
    smol = args.smollm2 or workspace / "target/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    records = json.loads((out / "cases.json").read_text())["cases"]
    write(out, records, smol.resolve(), workspace)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate the llama.cpp goldens for phi-edge's parity tests.

    python make_ref.py --out DIR [--vocab ggml-vocab-phi-3.gguf]
                       [--smollm2 SmolLM2-135M-Instruct.Q4_1.gguf]
                       [--sdist llama_cpp_python-X.tar.gz]
                       [--scripts-hash HEX] [--only NAME[,NAME...]]

Run inside the venv that `cargo xtask setup` builds (llama-cpp-python,
gguf, numpy); `cargo xtask ref` runs it with the right paths. It writes

    DIR/models/*.gguf    synthetic models (synth.py) and their quantizations
    DIR/logits/*.npy     float32 [n_tokens, n_vocab], llama.cpp's logits for
                         every position of the case's token sequence
    DIR/cases.json       the index the Rust parity test reads (schema below)
    DIR/report.json      extra facts per case (effective n_ctx, top-1
                         probabilities, ...) for people, not for tests
    DIR/generate.json    llama.cpp's greedy continuations of a few plain and
                         chat prompts on SmolLM2 (generate_ref.py)
    DIR/chat.json        chat-template goldens (chat_ref.py: jinja2
                         renderings of the real Phi-3 and SmolLM2 templates,
                         llama.cpp's classification of its test templates);
                         written before cases.json, also with --only
    DIR/tokenizer.json   llama.cpp's token ids, pieces and attributes for
                         the tokenizer tests (tokenize_ref.py, schema there)
    DIR/quant_rows.json  ggml's row quantizers and f16/bf16 conversions on
                         chosen rows (quant_ref.py, schema there)
    DIR/perplexity.json  llama-perplexity's figures (PPL, KL statistics) on
                         llama.cpp's decode path for LICENSE-APACHE
                         (perplexity_ref.py, schema there)
    DIR/kvcache.json     llama.cpp's flash-attention logits with a q8_0 and
                         an f16 KV cache for smollm2, phi3-f32 and
                         phi3-gqa-partial, and a text's perplexity
                         (kvcache_ref.py, schema there)

cases.json:
    {"llama_cpp_python": "0.3.36", "scripts_hash": "<sha256 hex>",
     "tokenizer": "tokenizer.json",
     "cases": [{"name", "model" (relative to DIR), "arch": "phi3"|"llama",
                "class": "f32"|"f16"|"q8"|"q4", "n_ctx" (as passed to
                llama.cpp), "tokens": [...], "logits" (relative to DIR),
                "tensor_types": {tensor name: ggml type name},
                "logit_std": mean over positions of the std over the vocab}],
     "quantized": [{"model", "source" (the F32 GGUF it was made from, both
                    relative to DIR), "ftype" (pack --type name)}]}

The cases (each model is described in `MODELS` below):

    phi3-f32             4 heads x 64, no GQA, real Phi-3 vocabulary, F32
    phi3-f16, phi3-bf16  the same weights stored F16 / BF16 (1-D tensors F32)
    phi3-longrope-short  LongRoPE model (128k context, original 4096) run at
                         n_ctx 4096: llama.cpp picks rope_factors_short
    phi3-longrope-long   the same file at n_ctx 8192 (> 4096 after padding to
                         a multiple of 256): rope_factors_long
    phi3-gqa-partial     8 query heads, 2 KV heads, head_dim 32, RoPE on the
                         first 16 dims of each head only
    phi3-q8_0/q4_0/q4_k_m  phi3-f32 quantized by llama.cpp's own quantizer
    llama-gqa-tied-q4_1  llama arch, 8 heads / 2 KV heads, output tied to
                         token_embd, quantized to Q4_1 (the quantizer stores
                         the tied embedding as Q6_K)
    smollm2              the real SmolLM2-135M-Instruct Q4_1 on a 64-token
                         English prompt tokenized by llama.cpp
    {phi3,phi3-gqa-partial,llama-gqa-tied}-{q8_0,q4_0,q4_1,q4_k_m,q6_k}
                         every other quantization of the three F32 sources
                         (16 tokens each), for `pack --type` (its tensors must
                         equal these files'); the sources stay in models/,
                         as do llama.cpp's f16/bf16 conversions of phi3-f32
                         and its q6_k / q4_k_m of llama-narrow-f32 (rows of
                         96: the K-quant fallbacks)

Everything is seeded and deterministic on one machine; llama.cpp's CPU
kernels may differ in the last bits across CPUs (SIMD paths), which is why
goldens are regenerated, not compared bit-exactly across machines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate_ref  # noqa: E402
import chat_ref  # noqa: E402
import golden  # noqa: E402
import kvcache_ref  # noqa: E402
import numpy_ref  # noqa: E402
import quant_ref  # noqa: E402
import perplexity_ref  # noqa: E402
import synth  # noqa: E402
import tokenize_ref  # noqa: E402
from synth import Spec  # noqa: E402

#: The synthetic models: file stem -> (spec, storage type).
MODELS: dict[str, tuple[Spec, str]] = {}

# Phi-3-mini-4k shaped: no GQA, full rotary, no rope factors.
PHI3 = Spec(arch="phi3", seed=1, n_head=4, n_head_kv=4, name="phi-edge phi3 tiny")
MODELS["phi3-f32"] = (PHI3, "f32")
MODELS["phi3-f16"] = (PHI3, "f16")
MODELS["phi3-bf16"] = (PHI3, "bf16")
# Phi-3-mini-128k shaped: LongRoPE factors, attn_factor, 128k context.
MODELS["phi3-longrope"] = (
    Spec(arch="phi3", seed=2, n_head=4, n_head_kv=4, context_length=131072,
         original_context_length=4096, sliding_window=262144, longrope=True,
         attn_factor=1.19, name="phi-edge phi3 longrope tiny"),
    "f32",
)
# Grouped-query attention (4 query heads per KV head) and partial rotary.
MODELS["phi3-gqa-partial"] = (
    Spec(arch="phi3", seed=3, n_head=8, n_head_kv=2, n_rot=16, name="phi-edge phi3 gqa tiny"),
    "f32",
)
# Rows of 96 values (not a multiple of 256): llama.cpp's K-quant fallbacks
# (q6_k -> q8_0; q4_k_m -> q5_0, which phi-edge refuses). Not a case: only
# its quantizations' bytes and types are compared.
MODELS["llama-narrow-f32"] = (
    Spec(arch="llama", seed=5, n_embd=96, n_ff=256, n_head=3, n_head_kv=1, tied=True,
         name="phi-edge llama narrow tiny"),
    "f32",
)
# Llama arch, GQA, output tied to token_embd; F32 here (a source of
# `pack --type` tests), its quantizations are the cases.
LLAMA_TIED = Spec(arch="llama", seed=4, n_head=8, n_head_kv=2, context_length=8192,
                  rope_freq_base=100000.0, tied=True, name="phi-edge llama tied tiny")

#: Quantized models: file stem -> (source stem, quantization).
QUANTIZED = {
    "phi3-q8_0": ("phi3-f32", "q8_0"),
    "phi3-q4_0": ("phi3-f32", "q4_0"),
    "phi3-q4_k_m": ("phi3-f32", "q4_k_m"),
    "llama-gqa-tied-q4_1": ("llama-gqa-tied-f32", "q4_1"),
}
#: The F32 sources of `pack --type`'s tests: case-name prefix -> source stem.
PACK_SOURCES = {"phi3": "phi3-f32", "phi3-gqa-partial": "phi3-gqa-partial",
                "llama-gqa-tied": "llama-gqa-tied-f32"}
PACK_TYPES = ("q8_0", "q4_0", "q4_1", "q4_k_m", "q6_k")
for _prefix, _src in PACK_SOURCES.items():
    for _t in PACK_TYPES:
        QUANTIZED.setdefault(f"{_prefix}-{_t}", (_src, _t))
# Not cases: only their bytes are compared (pack --type f16/bf16).
QUANTIZED["phi3-f32-llama-f16"] = ("phi3-f32", "f16")
QUANTIZED["phi3-f32-llama-bf16"] = ("phi3-f32", "bf16")
QUANTIZED["llama-narrow-q6_k"] = ("llama-narrow-f32", "q6_k")
QUANTIZED["llama-narrow-q4_k_m"] = ("llama-narrow-f32", "q4_k_m")
#: Cases added for `pack --type`: shorter token sequences, and no numpy
#: cross-check (their layouts are the F32 cases').
PACK_TOKENS = 16

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PROMPT = (
    "The lighthouse keeper climbed the spiral stairs every evening before "
    "sunset, carrying a small lamp and a notebook. He wrote down the color "
    "of the sky, the direction of the wind, and the names of the ships that "
    "passed the rocky point. After forty years, the notebooks filled an "
    "entire wall of his cottage, and sailors from distant harbors came to "
    "read them."
)
SMOLLM2_TOKENS = 64


def token_ids(seed: int, n: int, bos: int, n_vocab: int) -> list[int]:
    """BOS then n-1 ids drawn from the ordinary pieces of the Phi-3 vocab
    (259..31999: past the 3 specials and 256 byte tokens, before the added
    chat tokens)."""
    rng = np.random.default_rng(1000 + seed)
    hi = min(32000, n_vocab)
    return [bos] + [int(t) for t in rng.integers(259, hi, n - 1)]


def scripts_hash(directory: Path = HERE) -> str:
    """sha256 over the oracle's sources: for each *.py and *.txt file in
    this directory, sorted by name: name, NUL, contents, NUL. `cargo xtask`
    computes the same digest to decide whether the goldens are stale."""
    h = hashlib.sha256()
    for p in sorted(directory.iterdir(), key=lambda p: p.name):
        if p.is_file() and p.suffix in (".py", ".txt"):
            h.update(p.name.encode())
            h.update(b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def stats(logits: np.ndarray) -> dict[str, float]:
    """Per-position statistics of a [n_tokens, n_vocab] logits matrix."""
    x = logits.astype(np.float64)
    std = x.std(axis=1)
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    top1 = p.max(axis=1)
    ent = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
    return {
        "logit_std": float(std.mean()),
        "logit_std_min": float(std.min()),
        "logit_std_max": float(std.max()),
        "top1_prob_mean": float(top1.mean()),
        "top1_prob_min": float(top1.min()),
        "entropy_mean": float(ent.mean()),
        "uniform_entropy": float(np.log(x.shape[1])),
        "distinct_argmax": int(len(set(np.argmax(x, axis=1).tolist()))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--vocab", type=Path, help="ggml-vocab-phi-3.gguf (default: <workspace>/target/vendor/vocab/)")
    ap.add_argument("--smollm2", type=Path, help=f"{SMOLLM2_FILE} (default: <workspace>/target/models/)")
    ap.add_argument("--sdist", type=Path, help="llama-cpp-python source distribution, for llama.cpp's "
                    "chat-template tests (default: <vocab dir>/../cache/llama_cpp_python-<version>.tar.gz)")
    ap.add_argument("--scripts-hash", help="digest to record (default: computed here, same algorithm)")
    ap.add_argument("--skip-numpy-check", action="store_true", help="skip the numpy_ref.py cross-check")
    ap.add_argument("--only", help="comma-separated case names (development; cases.json then holds only "
                    "these and a 'partial:' hash, so `cargo xtask ref` regenerates the full set)")
    args = ap.parse_args()

    workspace = HERE.parent.parent
    vocab_path = args.vocab or workspace / "target/vendor/vocab/ggml-vocab-phi-3.gguf"
    smol_path = args.smollm2 or workspace / "target/models" / SMOLLM2_FILE
    sdist_path = args.sdist or vocab_path.parent.parent / "cache" / f"llama_cpp_python-{golden.version()}.tar.gz"
    for p in (vocab_path, smol_path, sdist_path):
        if not p.is_file():
            print(f"make_ref: missing {p} (run `cargo xtask setup`)", file=sys.stderr)
            return 2
    digest = scripts_hash()
    if args.scripts_hash and args.scripts_hash != digest:
        print(f"make_ref: warning: xtask's scripts hash {args.scripts_hash} != {digest} computed here",
              file=sys.stderr)
    only = set(args.only.split(",")) if args.only else None

    out: Path = args.out.resolve()
    models_dir, logits_dir = out / "models", out / "logits"
    # cases.json is written last: its presence means a complete set.
    (out / "cases.json").unlink(missing_ok=True)
    for d in (models_dir, logits_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    t_all = time.monotonic()
    chat_ref.write(out / "chat.json", vocab_path, smol_path, sdist_path)
    vocab = synth.Vocab(vocab_path)
    print(f"vocab: {vocab_path.name}, {vocab.n_vocab} tokens, bos {vocab.bos}")

    # ---- models -------------------------------------------------------
    t0 = time.monotonic()
    weights_cache: dict[int, object] = {}
    for stem, (spec, dtype) in MODELS.items():
        if spec.seed not in weights_cache:
            weights_cache[spec.seed] = synth.make_weights(spec, vocab.n_vocab)
        synth.write_gguf(models_dir / f"{stem}.gguf", spec, weights_cache[spec.seed], vocab, dtype)  # type: ignore[arg-type]
    tied_base = models_dir / "llama-gqa-tied-f32.gguf"
    synth.write_gguf(tied_base, LLAMA_TIED, synth.make_weights(LLAMA_TIED, vocab.n_vocab), vocab, "f32")
    weights_cache.clear()
    print(f"wrote {len(MODELS) + 1} synthetic models in {time.monotonic() - t0:.1f}s")

    t0 = time.monotonic()
    for stem, (src, kind) in QUANTIZED.items():
        golden.quantize(models_dir / f"{src}.gguf", models_dir / f"{stem}.gguf", kind)
    print(f"quantized {len(QUANTIZED)} models in {time.monotonic() - t0:.1f}s")

    # ---- cases --------------------------------------------------------
    phi3_tokens = token_ids(1, 48, vocab.bos, vocab.n_vocab)
    # (name, model path, arch, class, n_ctx, tokens)
    cases: list[tuple[str, Path, str, str, int, list[int]]] = [
        ("phi3-f32", models_dir / "phi3-f32.gguf", "phi3", "f32", 512, phi3_tokens),
        ("phi3-f16", models_dir / "phi3-f16.gguf", "phi3", "f16", 512, phi3_tokens),
        ("phi3-bf16", models_dir / "phi3-bf16.gguf", "phi3", "f16", 512, phi3_tokens),
        ("phi3-longrope-short", models_dir / "phi3-longrope.gguf", "phi3", "f32", 4096,
         token_ids(2, 48, vocab.bos, vocab.n_vocab)),
        ("phi3-longrope-long", models_dir / "phi3-longrope.gguf", "phi3", "f32", 8192,
         token_ids(2, 48, vocab.bos, vocab.n_vocab)),
        ("phi3-gqa-partial", models_dir / "phi3-gqa-partial.gguf", "phi3", "f32", 512,
         token_ids(3, 40, vocab.bos, vocab.n_vocab)),
        ("phi3-q8_0", models_dir / "phi3-q8_0.gguf", "phi3", "q8", 512, phi3_tokens),
        ("phi3-q4_0", models_dir / "phi3-q4_0.gguf", "phi3", "q4", 512, phi3_tokens),
        ("phi3-q4_k_m", models_dir / "phi3-q4_k_m.gguf", "phi3", "q4", 512, phi3_tokens),
        ("llama-gqa-tied-q4_1", models_dir / "llama-gqa-tied-q4_1.gguf", "llama", "q4", 512,
         token_ids(4, 33, vocab.bos, vocab.n_vocab)),
    ]
    existing = {c[0] for c in cases}
    first_tokens = {"phi3": phi3_tokens, "phi3-gqa-partial": token_ids(3, 40, vocab.bos, vocab.n_vocab),
                    "llama-gqa-tied": token_ids(4, 33, vocab.bos, vocab.n_vocab)}
    pack_cases = set()
    for prefix, src in PACK_SOURCES.items():
        arch = MODELS[src][0].arch if src in MODELS else LLAMA_TIED.arch
        for t in PACK_TYPES:
            name = f"{prefix}-{t}"
            if name in existing:
                continue
            pack_cases.add(name)
            cls = "q8" if t in ("q8_0", "q6_k") else "q4"
            cases.append((name, models_dir / f"{name}.gguf", arch, cls, 512,
                          first_tokens[prefix][:PACK_TOKENS]))
    smol_tokens = golden.tokenize(smol_path, SMOLLM2_PROMPT)
    if len(smol_tokens) < SMOLLM2_TOKENS:
        raise RuntimeError(f"SmolLM2 prompt has only {len(smol_tokens)} tokens")
    cases.append(("smollm2", smol_path, "llama", "q4", 512, smol_tokens[:SMOLLM2_TOKENS]))
    if only is not None:
        unknown = only - {c[0] for c in cases} - {"generate", "perplexity"}
        if unknown:
            print(f"make_ref: unknown case(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c[0] in only]

    records, report = [], {}
    print(f"\n{'case':<22}{'n_tok':>6}{'n_ctx':>6}{'eff':>6}{'std':>7}{'std min..max':>14}"
          f"{'top1 mean':>10}{'top1 min':>9}{'H/Hmax':>8}{'argmax':>7}{'sec':>6}")
    for name, model, arch, cls, n_ctx, tokens in cases:
        t0 = time.monotonic()
        logits, n_ctx_eff = golden.run(model, tokens, n_ctx)
        dt = time.monotonic() - t0
        if not np.isfinite(logits).all():
            raise RuntimeError(f"{name}: non-finite logits")
        if logits.shape[0] != len(tokens):
            raise RuntimeError(f"{name}: {logits.shape[0]} rows of logits for {len(tokens)} tokens")
        npy = logits_dir / f"{name}.npy"
        np.save(npy, logits)
        s = stats(logits)
        types = synth.tensor_types(model)
        records.append({
            "name": name,
            "model": os.path.relpath(model, out),
            "arch": arch,
            "class": cls,
            "n_ctx": n_ctx,
            "tokens": tokens,
            "logits": os.path.relpath(npy, out),
            "tensor_types": types,
            "logit_std": round(s["logit_std"], 6),
        })
        report[name] = {"n_ctx_effective": n_ctx_eff, "n_vocab": int(logits.shape[1]),
                        "seconds": round(dt, 2), "type_counts": count_types(types), **s}
        print(f"{name:<22}{len(tokens):>6}{n_ctx:>6}{n_ctx_eff:>6}{s['logit_std']:>7.2f}"
              f"{s['logit_std_min']:>7.2f}..{s['logit_std_max']:<5.2f}{s['top1_prob_mean']:>10.3f}"
              f"{s['top1_prob_min']:>9.3f}{s['entropy_mean'] / s['uniform_entropy']:>8.2f}"
              f"{s['distinct_argmax']:>7}{dt:>6.1f}")

    sanity(records, out, report)
    if not args.skip_numpy_check:
        numpy_check([r for r in records if r["name"] not in pack_cases], out, report)
    quant_ref.write(out / "quant_rows.json")

    print("\ntensor types (quantized synthetic models: every tensor, grouped by type):")
    seen = set()
    for r in records:
        if r["model"] in seen:
            continue
        seen.add(r["model"])
        print(f"  {r['name']:<22}{fmt_counts(count_types(r['tensor_types']))}")
        if r["class"] in ("q8", "q4") and r["name"] != "smollm2":
            groups: dict[str, list[str]] = {}
            for t, ty in r["tensor_types"].items():
                groups.setdefault(ty, []).append(t.removesuffix(".weight"))
            for ty, names in sorted(groups.items()):
                print(f"      {ty:<6}{', '.join(sorted(names))}")

    tok_path = tokenize_ref.write_goldens(out, vocab_path.parent, smol_path)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if only is None or "generate" in only:
        t0 = time.monotonic()
        generate_ref.write(out, smol_path)
        print(f"greedy generation goldens in {time.monotonic() - t0:.1f}s")
    if only is None or "perplexity" in only:
        t0 = time.monotonic()
        perplexity_ref.write(out, smol_path)
        print(f"perplexity goldens in {time.monotonic() - t0:.1f}s")
    if only is None or only & set(kvcache_ref.CASES):
        t0 = time.monotonic()
        kvcache_ref.write(out, records, smol_path, workspace)
        print(f"KV cache type goldens in {time.monotonic() - t0:.1f}s")
    recorded_hash = args.scripts_hash or digest
    if only is not None:
        # A partial set must never pass for the full one in `cargo xtask ref`.
        recorded_hash = "partial:" + recorded_hash
    quantized = [{"model": f"models/{stem}.gguf", "source": f"models/{src}.gguf", "ftype": kind}
                 for stem, (src, kind) in QUANTIZED.items()]
    index = {"llama_cpp_python": golden.version(), "scripts_hash": recorded_hash,
             "tokenizer": os.path.relpath(tok_path, out), "cases": records, "quantized": quantized}
    tmp = out / "cases.json.tmp"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    tmp.replace(out / "cases.json")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"\n{len(records)} cases, {size / 2**20:.0f} MiB in {out}, {time.monotonic() - t_all:.1f}s")
    return 0


#: numpy_ref vs llama.cpp: max |diff| / logit std allowed per class, and the
#: least share of positions whose argmax must agree.
NUMPY_TOLERANCE = {"f32": (0.01, 0.95), "f16": (0.05, 0.95), "q8": (0.3, 0.85), "q4": (0.4, 0.85)}


def numpy_check(records: list[dict], out: Path, report: dict) -> None:
    """Recompute every case with numpy_ref.py (an independent reading of
    the same GGUF file) and fail if it disagrees with llama.cpp: this is
    what shows the synthetic models' layouts mean what synth.py says."""
    t0 = time.monotonic()
    print(f"\nnumpy_ref cross-check:\n  {'case':<22}{'max|d|':>9}{'mean|d|':>9}{'max/std':>9}{'argmax':>8}")
    bad = []
    for r in records:
        ref = np.load(out / r["logits"])
        got = numpy_ref.forward(out / r["model"], r["tokens"], r["n_ctx"])
        d = np.abs(ref.astype(np.float64) - got)
        rel = float(d.max() / ref.std())
        agree = float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1)))
        report[r["name"]].update({"numpy_ref_max_abs": float(d.max()), "numpy_ref_mean_abs": float(d.mean()),
                                  "numpy_ref_rel": rel, "numpy_ref_argmax_agree": agree})
        print(f"  {r['name']:<22}{d.max():>9.4f}{d.mean():>9.5f}{rel:>9.4f}{agree:>8.3f}")
        max_rel, min_agree = NUMPY_TOLERANCE[r["class"]]
        if rel > max_rel or agree < min_agree:
            bad.append(r["name"])
    print(f"  ({time.monotonic() - t0:.1f}s)")
    if bad:
        raise RuntimeError(f"numpy_ref disagrees with llama.cpp on: {', '.join(bad)}")


def count_types(types: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ty in types.values():
        counts[ty] = counts.get(ty, 0) + 1
    return counts


def fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {ty}" for ty, n in sorted(counts.items()))


def sanity(records: list[dict], out: Path, report: dict) -> None:
    """Fail loudly if the goldens do not test what they claim to."""
    by = {r["name"]: r for r in records}
    for r in records:
        if not 1.0 <= r["logit_std"] <= 12.0:
            raise RuntimeError(f"{r['name']}: logit std {r['logit_std']:.2f} out of the useful range")
        padded = -(-r["n_ctx"] // 256) * 256
        if report[r["name"]]["n_ctx_effective"] != padded:
            raise RuntimeError(f"{r['name']}: llama.cpp used n_ctx {report[r['name']]['n_ctx_effective']}, "
                               f"expected {r['n_ctx']} padded to {padded}")
    # LongRoPE: llama.cpp takes the long factors iff the (padded) context
    # exceeds rope.scaling.original_context_length (4096).
    orig = MODELS["phi3-longrope"][0].original_context_length
    for name, long in (("phi3-longrope-short", False), ("phi3-longrope-long", True)):
        if name in by and (report[name]["n_ctx_effective"] > orig) != long:
            raise RuntimeError(f"{name}: n_ctx {report[name]['n_ctx_effective']} does not select the "
                               f"{'long' if long else 'short'} factors")

    def load(name: str) -> np.ndarray:
        return np.load(out / by[name]["logits"])

    def pair(a: str, b: str, what: str, lo: float, hi: float) -> None:
        if a in by and b in by:
            d = float(np.abs(load(a) - load(b)).max())
            print(f"check: max |{a} - {b}| = {d:.4g} ({what})")
            if not lo <= d <= hi:
                raise RuntimeError(f"{a} vs {b}: max abs diff {d} not in [{lo}, {hi}] ({what})")

    pair("phi3-longrope-short", "phi3-longrope-long", "short vs long rope factors must differ", 1e-2, np.inf)
    pair("phi3-f32", "phi3-f16", "same weights, F16 rounding", 0.0, 2.0)
    pair("phi3-f32", "phi3-bf16", "same weights, BF16 rounding", 0.0, 4.0)
    pair("phi3-f32", "phi3-q8_0", "same weights, Q8_0", 0.0, 4.0)


if __name__ == "__main__":
    sys.exit(main())

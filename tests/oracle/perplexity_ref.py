"""Perplexity goldens: `llama-perplexity`'s figures on llama.cpp's decode path.

For each case in `CASES`, the text `TEXT` (a file of this repository) is
read as `llama-perplexity -f` reads it (one final newline dropped),
tokenized whole by llama.cpp with add_special (BOS only where the
vocabulary's add_bos says so; SmolLM2's does not) and cut into chunks of
n_ctx tokens, at most `chunks` of them; a chunk's first token is replaced
by BOS when add_bos is set. llama.cpp evaluates each chunk from an empty KV
cache one token per batch (its decode path, as the parity goldens; the
tool itself evaluates whole batches, whose sums run in other orders: see
`--batched`), and the logits at position j, for n_ctx/2 <= j <= n_ctx - 2,
score token j + 1.

The figures follow tools/perplexity/perplexity.cpp step for step, in numpy
with the same float / double steps: `expf` terms (single precision,
correctly rounded through double here) summed in double in order
(`cumsum`), C's `log` and `exp` (Python's math module), the base model's
log-probabilities stored in 16 bits as `--kl-divergence-base` stores them,
the KL statistics and percentiles of `--kl-divergence`. llama.cpp spreads
the per-token sums over threads; here they run in token order, as phi-edge
runs them (the difference is in the last bits of a double).

Writes DIR/perplexity.json:
    {"text": path relative to the workspace,
     "cases": [{"name", "model" (relative to DIR), "base" (relative to DIR,
                or null), "n_ctx", "chunks", "n_tokens" (the whole text),
                "add_bos", "ppl", "ppl_uncertainty", "chunk_ppl" (after each
                chunk), "kl" (null without a base, else {statistic: value};
                null for a value that is NaN)}]}

    python perplexity_ref.py --out DIR [--smollm2 GGUF] [--batched]

run alone (DIR holding the synthetic models of make_ref.py) writes the same
file; `--batched` also prints what llama.cpp's batched path (each chunk one
batch of n_ctx tokens) gives, for information.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

import golden

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent

#: The text, relative to the workspace.
TEXT = "LICENSE-APACHE"

#: (name, model, base or None, n_ctx, chunks); a model is "smollm2" or a
#: synthetic model's stem in DIR/models.
CASES: list[tuple[str, str, str | None, int, int]] = [
    ("smollm2", "smollm2", None, 256, 4),
    ("smollm2-self", "smollm2", "smollm2", 128, 2),
    ("phi3-q4_0-vs-f32", "phi3-q4_0", "phi3-f32", 128, 4),
]

F32 = np.float32


def read_text(path: Path) -> str:
    """The file as `llama-perplexity -f` reads it: one final newline dropped."""
    text = path.read_bytes().decode("utf-8")
    return text[:-1] if text.endswith("\n") else text


def expf(x: np.ndarray) -> np.ndarray:
    """Single-precision exp, correctly rounded (glibc's expf is, nearly always)."""
    return np.exp(x.astype(np.float64)).astype(F32)


def chunks_of(llm: llama_cpp.Llama, tokens: list[int], n_ctx: int, n_chunk: int) -> list[list[int]]:
    """The chunks as llama-perplexity evaluates them (BOS first if add_bos)."""
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    out = []
    for i in range(n_chunk):
        c = list(tokens[i * n_ctx:(i + 1) * n_ctx])
        if add_bos:
            c[0] = llm.token_bos()
        out.append(c)
    return out


def scored_logits(model: Path, chunks: list[list[int]], n_ctx: int, batch: int) -> np.ndarray:
    """[n_chunk, n_ctx - 1 - n_ctx/2, n_vocab] float32: llama.cpp's logits at
    the scored positions of every chunk (the last token is not evaluated:
    its logits score nothing)."""
    first = n_ctx // 2
    llm = golden.load(model, n_ctx, batch=batch)
    try:
        rows = []
        for c in chunks:
            llm.reset()
            llm.eval(c[:n_ctx - 1])
            rows.append(np.array(llm.scores[first:n_ctx - 1], dtype=F32))
        return np.stack(rows)
    finally:
        llm.close()


def row_sums(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the largest logit (f32) and sum(expf(l - max)) in double, in order."""
    mx = logits.max(axis=-1).astype(F32)
    e = expf(logits - mx[..., None]).astype(np.float64)
    return mx, np.cumsum(e, axis=-1)[..., -1]


def perplexity(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float, list[float]]:
    """perplexity(): nll and nll2 in double, the final estimate and the
    running value after each chunk."""
    nll = nll2 = 0.0
    count = 0
    chunk_ppl = []
    for c in range(logits.shape[0]):
        mx, se = row_sums(logits[c])
        for j in range(logits.shape[1]):
            lsm = float(F32(logits[c, j, targets[c, j]] - mx[j])) - math.log(float(se[j]))
            v = -lsm
            nll += v
            nll2 += v * v
            count += 1
        chunk_ppl.append(math.exp(nll / count))
    nll2 /= count
    nll /= count
    ppl = math.exp(nll)
    nll2 -= nll * nll
    if not nll2 > 0:
        raise RuntimeError("unexpected negative standard deviation of log(prob)")
    return ppl, math.sqrt(nll2 / (count - 1)) * ppl, chunk_ppl


def base_rows(logits: np.ndarray) -> list[tuple[F32, F32, np.ndarray]]:
    """The base model's 16-bit log-probabilities per row (the logits file
    of --kl-divergence-base): (scale, min_log_prob, uint16 per token)."""
    out = []
    mx, se = row_sums(logits)
    for j in range(logits.shape[0]):
        row = logits[j]
        m = mx[j]
        mn = F32(row.min())
        lo = F32(m - F32(16))
        mn = lo if mn < lo else mn
        lse = F32(math.log(float(se[j])))
        min_log_prob = F32(F32(mn - m) - lse)
        scale = F32(F32(m - mn) / F32(65535))
        if scale != 0:
            inv = F32(F32(1) / scale)
            val = (inv * (row - mn)).astype(F32) + F32(12582912)
            q = (val.astype(F32).view(np.int32) & 0x007FFFFF) - 0x00400000
            q = np.where(row > mn, q, 0).astype(np.int64).astype(np.uint16)
        else:
            q = np.zeros(row.shape, dtype=np.uint16)
        out.append((scale, min_log_prob, q))
    return out


def kl_divergence(logits: np.ndarray, base: np.ndarray, targets: np.ndarray) -> dict:
    """kl_divergence(): the sums, then the statistics it prints."""
    s = dict.fromkeys(["nll", "nll2", "nll_base", "nll_base2", "nll_nll_base", "kld", "kld2",
                       "p_diff", "p_diff2", "p_diff4"], 0.0)
    same_top = count = 0
    kld_values, p_diff_values = [], []
    for c in range(logits.shape[0]):
        mx, se = row_sums(logits[c])
        rows = base_rows(base[c])
        for j in range(logits.shape[1]):
            l = logits[c, j]
            tok = targets[c, j]
            imax = int(np.argmax(l))
            lse = F32(math.log(float(se[j])))
            scale, min_log_prob, q = rows[j]
            nll = F32(F32(mx[j] + lse) - l[tok])
            s["nll"] += float(nll)
            s["nll2"] += float(F32(nll * nll))
            nll_base = F32(-F32(F32(scale * F32(q[tok])) + min_log_prob))
            s["nll_base"] += float(nll_base)
            s["nll_base2"] += float(F32(nll_base * nll_base))
            s["nll_nll_base"] += float(F32(nll * nll_base))
            log_norm = F32(mx[j] + lse)
            p_log_base = (scale * q.astype(F32)).astype(F32) + min_log_prob
            imax_base = int(np.argmax(p_log_base))
            terms = (expf(p_log_base) * ((p_log_base - l) + log_norm)).astype(F32)
            terms = np.where(p_log_base > F32(-16), terms.astype(np.float64), 0.0)
            ksum = float(np.cumsum(terms)[-1])
            s["kld"] += ksum
            s["kld2"] += ksum * ksum
            count += 1
            same_top += imax == imax_base
            p_diff = F32(expf(np.array([-nll]))[0] - expf(np.array([-nll_base]))[0])
            s["p_diff"] += float(p_diff)
            p_diff2 = float(F32(p_diff * p_diff))
            s["p_diff2"] += p_diff2
            s["p_diff4"] += p_diff2 * p_diff2
            kld_values.append(F32(ksum))
            p_diff_values.append(p_diff)
    return statistics(s, same_top, count, sorted(kld_values), sorted(p_diff_values))


def mean_and_uncertainty(total: float, total2: float, count: int) -> tuple[float, float]:
    if count < 1:
        return 0.0, 0.0
    f = total / count
    df = total2 / count - f * f
    df = math.sqrt(df / (count - 1)) if df > 0 and count > 10 else 0.0
    return f, df


def covariance(a: float, b: float, ab: float, count: int) -> float:
    if count < 10:
        return 0.0
    return (ab / count - (a / count) * (b / count)) / (count - 1)


def csqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def percentile(values: list, fraction: float) -> float:
    fraction = F32(fraction)
    if fraction <= 0:
        return float(values[0])
    if fraction >= 1:
        return float(values[-1])
    p = F32(fraction * F32(len(values) - 1))
    ip = int(p)
    p = F32(p - F32(ip))
    return float(F32(F32(F32(1) - p) * values[ip]) + F32(p * values[min(ip + 1, len(values) - 1)]))


def median(values: list) -> float:
    n = len(values)
    if n % 2 == 0:
        return float(F32(F32(0.5) * F32(values[n // 2] + values[n // 2 - 1])))
    return float(values[n // 2])


def statistics(s: dict, same_top: int, count: int, kld: list, p_diff: list) -> dict:
    log_ppl = mean_and_uncertainty(s["nll"], s["nll2"], count)
    log_base = mean_and_uncertainty(s["nll_base"], s["nll_base2"], count)
    ppl = math.exp(log_ppl[0])
    ppl_unc = ppl * log_ppl[1]
    ppl_base = math.exp(log_base[0])
    ppl_base_unc = ppl_base * log_base[1]
    cov = covariance(s["nll"], s["nll_base"], s["nll_nll_base"], count)
    ratio = log_ppl[0] - log_base[0]
    ratio_unc = csqrt(log_ppl[1] ** 2 + log_base[1] ** 2 - 2.0 * cov)
    ppl_ratio = math.exp(ratio)
    ppl_cov = ppl * ppl_base * cov
    kl = mean_and_uncertainty(s["kld"], s["kld2"], count)
    pd = mean_and_uncertainty(s["p_diff"], s["p_diff2"], count)
    mse = mean_and_uncertainty(s["p_diff2"], s["p_diff4"], count)
    rms = math.sqrt(mse[0])
    top = same_top / count
    out = {
        "count": count,
        "ppl": ppl, "ppl_unc": ppl_unc,
        "ppl_base": ppl_base, "ppl_base_unc": ppl_base_unc,
        "log_ppl_cor": cov / (log_ppl[1] * log_base[1]) if log_ppl[1] * log_base[1] != 0 else math.nan,
        "log_ppl_ratio": ratio, "log_ppl_ratio_unc": ratio_unc,
        "ppl_ratio": ppl_ratio, "ppl_ratio_unc": ppl_ratio * ratio_unc,
        "ppl_diff": ppl - ppl_base,
        "ppl_diff_unc": csqrt(ppl_unc ** 2 + ppl_base_unc ** 2 - 2.0 * ppl_cov),
        "kld": kl[0], "kld_unc": kl[1],
        "kld_max": float(kld[-1]),
    }
    for name, f in KLD_PERCENTILES:
        out[f"kld_{name}"] = median(kld) if f is None else percentile(kld, f)
    out["kld_min"] = float(kld[0])
    out["p_diff"], out["p_diff_unc"] = pd
    out["p_diff_max"] = float(p_diff[-1])
    for name, f in P_DIFF_PERCENTILES:
        out[f"p_diff_{name}"] = median(p_diff) if f is None else percentile(p_diff, f)
    out["p_diff_min"] = float(p_diff[0])
    out["p_diff_rms"] = rms
    out["p_diff_rms_unc"] = 0.5 / rms * mse[1] if rms != 0 else math.nan
    out["same_top"] = top
    out["same_top_unc"] = csqrt(top * (1.0 - top) / (count - 1))
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


#: The percentiles llama.cpp prints (None: the median).
KLD_PERCENTILES = [("99.9", 0.999), ("99", 0.990), ("95", 0.950), ("90", 0.900), ("median", None),
                   ("10", 0.100), ("5", 0.050), ("1", 0.010), ("0.1", 0.001)]
P_DIFF_PERCENTILES = [("99.9", 0.999), ("99", 0.990), ("95", 0.950), ("90", 0.900), ("75", 0.750),
                      ("median", None), ("25", 0.250), ("10", 0.100), ("5", 0.050), ("1", 0.010),
                      ("0.1", 0.001)]


def model_path(out: Path, smollm2: Path, name: str) -> Path:
    return smollm2 if name == "smollm2" else out / "models" / f"{name}.gguf"


def case(out: Path, smollm2: Path, name: str, model: str, base: str | None, n_ctx: int,
         max_chunks: int, batch: int = 1) -> dict:
    text = read_text(WORKSPACE / TEXT)
    mpath = model_path(out, smollm2, model)
    tokens = golden.tokenize(mpath, text)
    if len(tokens) < 2 * n_ctx:
        raise RuntimeError(f"{name}: {TEXT} has {len(tokens)} tokens, fewer than 2 x {n_ctx}")
    n_chunk = min(max_chunks, len(tokens) // n_ctx)
    probe = llama_cpp.Llama(model_path=str(mpath), vocab_only=True, verbose=False)
    try:
        chunks = chunks_of(probe, tokens, n_ctx, n_chunk)
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(probe.model)))
    finally:
        probe.close()
    first = n_ctx // 2
    targets = np.array([tokens[i * n_ctx + first + 1:(i + 1) * n_ctx] for i in range(n_chunk)])
    logits = scored_logits(mpath, chunks, n_ctx, batch)
    ppl, unc, chunk_ppl = perplexity(logits, targets)
    kl = None
    bpath = None
    if base is not None:
        bpath = model_path(out, smollm2, base)
        if golden.tokenize(bpath, text) != tokens:
            raise RuntimeError(f"{name}: {base} tokenizes the text differently from {model}")
        base_logits = logits if bpath == mpath else scored_logits(bpath, chunks, n_ctx, batch)
        kl = kl_divergence(logits, base_logits, targets)
    return {
        "name": name,
        "model": os.path.relpath(mpath, out),
        "base": None if bpath is None else os.path.relpath(bpath, out),
        "n_ctx": n_ctx,
        "chunks": n_chunk,
        "n_tokens": len(tokens),
        "add_bos": add_bos,
        "ppl": ppl,
        "ppl_uncertainty": unc,
        "chunk_ppl": chunk_ppl,
        "kl": kl,
    }


def write(out: Path, smollm2: Path) -> None:
    """Runs every case on llama.cpp's decode path; writes out/perplexity.json."""
    records = []
    for name, model, base, n_ctx, chunks in CASES:
        t0 = time.monotonic()
        r = case(out, smollm2, name, model, base, n_ctx, chunks)
        kl = r["kl"]
        extra = "" if kl is None else f", KLD {kl['kld']:.6f} +/- {kl['kld_unc']:.6f}, same top {kl['same_top']:.4f}"
        print(f"perplexity {name}: {r['chunks']} x {n_ctx} tokens of {r['n_tokens']}: "
              f"PPL {r['ppl']:.6f} +/- {r['ppl_uncertainty']:.6f}{extra} ({time.monotonic() - t0:.1f}s)")
        records.append(r)
    (out / "perplexity.json").write_text(json.dumps({"text": TEXT, "cases": records}, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="the goldens' directory (with models/)")
    ap.add_argument("--smollm2", type=Path, help="SmolLM2 GGUF (default: <workspace>/target/models/)")
    ap.add_argument("--batched", action="store_true",
                    help="also print llama.cpp's batched-path figures (each chunk one batch)")
    args = ap.parse_args()
    out = args.out.resolve()
    smol = args.smollm2 or WORKSPACE / "target/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    write(out, smol)
    if args.batched:
        for name, model, base, n_ctx, chunks in CASES:
            a = case(out, smol, name, model, base, n_ctx, chunks)
            b = case(out, smol, name, model, base, n_ctx, chunks, batch=n_ctx)
            line = (f"{name}: decode path PPL {a['ppl']:.6f}, batched {b['ppl']:.6f} "
                    f"(relative {b['ppl'] / a['ppl'] - 1:+.2e})")
            if a["kl"] is not None:
                line += f"; KLD {a['kl']['kld']:.6f} vs batched {b['kl']['kld']:.6f}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

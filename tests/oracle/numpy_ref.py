"""A plain numpy forward pass for phi3 and llama GGUF files: a second,
readable opinion on what llama.cpp computes, used by make_ref.py to check
that the synthetic models mean what synth.py says they mean (fused q|k|v
row order, gate-before-up in phi3's ffn_up, NEOX vs interleaved RoPE,
partial rotary, LongRoPE factor choice and attn_factor, GQA head
grouping, tied output).

It follows llama.cpp's graph (src/models/phi3.cpp, src/models/llama.cpp,
ggml's rope and softmax) in float64 and emulates the roundings of
llama.cpp's CPU path (non-flash attention, f16 KV cache), which are part of
what "parity" means:

- K and V are stored in the f16 KV cache;
- KQ = K(f16) x Q: ggml converts Q to f16 for the dot products (the
  1/sqrt(head_dim) scale is applied to Q first, in phi3 and llama alike);
- KQV = V(f16) x softmax: the probabilities are converted to f16 too;
- a matmul against an F16 / BF16 weight first rounds the activations to
  F16 / BF16; against a quantized weight llama.cpp quantizes activations
  (Q8_0 for Q8_0/Q4_0, Q8_1 for Q4_1, Q8_K for K-quants). Only Q8_0 is
  emulated (with gguf-py's quantizer) and used for every quantized type,
  so agreement on Q4_1 and K-quant files is looser.

With that, the F32 synthetic models agree with llama.cpp to ~1e-3 of the
logit std; F16 to ~3e-3; quantized ones to ~5e-2 .. 2e-1.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def _field(reader: gguf.GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def load(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Hyperparameters (with each tensor's GGML type under "types") and
    float64 weights ([n_out, n_in]) of a GGUF file."""
    r = gguf.GGUFReader(path)
    arch = _field(r, "general.architecture")
    n_embd = _field(r, f"{arch}.embedding_length")
    n_head = _field(r, f"{arch}.attention.head_count")
    hp = {
        "arch": arch,
        "n_embd": n_embd,
        "n_layer": _field(r, f"{arch}.block_count"),
        "n_head": n_head,
        "n_head_kv": _field(r, f"{arch}.attention.head_count_kv", n_head),
        "head_dim": n_embd // n_head,
        "n_rot": _field(r, f"{arch}.rope.dimension_count", n_embd // n_head),
        "base": _field(r, f"{arch}.rope.freq_base", 10000.0),
        "eps": _field(r, f"{arch}.attention.layer_norm_rms_epsilon"),
        "ctx_train": _field(r, f"{arch}.context_length"),
        "ctx_orig": _field(r, f"{arch}.rope.scaling.original_context_length",
                           _field(r, f"{arch}.context_length")),
        "attn_factor": _field(r, f"{arch}.rope.scaling.attn_factor", 1.0),
    }
    w = {}
    types = {}
    for t in r.tensors:
        types[t.name] = t.tensor_type
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        w[t.name] = np.asarray(a, dtype=np.float64).reshape([int(x) for x in reversed(t.shape)])
    hp["types"] = types
    return hp, w


def act_round(x: np.ndarray, ty: gguf.GGMLQuantizationType) -> np.ndarray:
    """Activations as llama.cpp's CPU matmul sees them against a `ty` weight."""
    T = gguf.GGMLQuantizationType
    if ty == T.F32:
        return x
    if ty == T.F16:
        return x.astype(np.float16).astype(np.float64)
    if ty == T.BF16:
        q = gguf.quants.quantize(x.astype(np.float32), T.BF16)
        return gguf.quants.dequantize(q, T.BF16).astype(np.float64)
    q = gguf.quants.quantize(x.astype(np.float32), T.Q8_0)
    return gguf.quants.dequantize(q, T.Q8_0).astype(np.float64)


def _rms(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * g


def _rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, factors, mscale: float, neox: bool) -> np.ndarray:
    """x: [n_tok, n_heads, head_dim]; rotates the first n_rot dims of each head."""
    half = n_rot // 2
    inv = base ** (-np.arange(half) * 2.0 / n_rot)
    if factors is not None:
        inv = inv / factors
    th = pos[:, None] * inv[None, :]  # [n_tok, half]
    cos, sin = (np.cos(th) * mscale)[:, None, :], (np.sin(th) * mscale)[:, None, :]
    y = x.copy()
    if neox:  # pairs (i, i + n_rot/2)
        x0, x1 = x[..., :half], x[..., half:n_rot]
        y[..., :half] = x0 * cos - x1 * sin
        y[..., half:n_rot] = x0 * sin + x1 * cos
    else:  # pairs (2i, 2i+1)
        x0, x1 = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        y[..., 0:n_rot:2] = x0 * cos - x1 * sin
        y[..., 1:n_rot:2] = x0 * sin + x1 * cos
    return y


def forward(path: Path, tokens: list[int], n_ctx: int) -> np.ndarray:
    """Logits [len(tokens), n_vocab] for every position, positions 0..n-1."""
    hp, w = load(path)
    arch = hp["arch"]
    n, H, Hkv, hd = len(tokens), hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    pos = np.arange(n, dtype=np.float64)
    # llama.cpp pads n_ctx to a multiple of 256; long factors when it exceeds
    # the original training context.
    n_ctx_seq = -(-n_ctx // 256) * 256
    factors = None
    if "rope_factors_long.weight" in w:
        factors = w["rope_factors_long.weight" if n_ctx_seq > hp["ctx_orig"] else "rope_factors_short.weight"]
    neox = arch == "phi3"

    def f16(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float16).astype(np.float64)

    def mm(a: np.ndarray, name: str) -> np.ndarray:
        return act_round(a, hp["types"][name]) @ w[name].T

    x = w["token_embd.weight"][tokens]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for il in range(hp["n_layer"]):
        p = f"blk.{il}."
        h = _rms(x, w[p + "attn_norm.weight"], hp["eps"])
        if arch == "phi3":
            qkv = mm(h, p + "attn_qkv.weight")
            q, k, v = np.split(qkv, [H * hd, H * hd + Hkv * hd], axis=1)
        else:
            q, k, v = mm(h, p + "attn_q.weight"), mm(h, p + "attn_k.weight"), mm(h, p + "attn_v.weight")
        q, k, v = q.reshape(n, H, hd), k.reshape(n, Hkv, hd), v.reshape(n, Hkv, hd)
        q = _rope(q, pos, hp["n_rot"], hp["base"], factors, hp["attn_factor"], neox)
        k = _rope(k, pos, hp["n_rot"], hp["base"], factors, hp["attn_factor"], neox)
        k, v = f16(k), f16(v)
        out = np.empty((n, H, hd))
        for hh in range(H):
            kv = hh // (H // Hkv)  # GQA: consecutive query heads share a KV head
            s = f16(q[:, hh] / np.sqrt(hd)) @ k[:, kv].T + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, hh] = f16(s) @ v[:, kv]
        x = x + mm(out.reshape(n, H * hd), p + "attn_output.weight")
        h = _rms(x, w[p + "ffn_norm.weight"], hp["eps"])
        if arch == "phi3":
            gate, up = np.split(mm(h, p + "ffn_up.weight"), 2, axis=1)  # gate first
        else:
            gate, up = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
        x = x + mm((gate / (1.0 + np.exp(-gate)) * up), p + "ffn_down.weight")
    h = _rms(x, w["output_norm.weight"], hp["eps"])
    on = "output.weight" if "output.weight" in w else "token_embd.weight"
    return mm(h, on).astype(np.float32)

"""Synthetic GGUF models for the parity oracle, written with PyPI `gguf`.

Every model here is tiny (hidden 256, 2 layers, ffn 512) but carries the
metadata keys and tensor names that llama.cpp's own converter
(`convert_hf_to_gguf.py`, `conversion/phi.py` / `conversion/llama.py`)
writes for the architecture, so llama.cpp loads it through the same code
path as a real Phi-3 or Llama file:

phi3 (`Phi3MiniModel.set_gguf_parameters` / `generate_extra_tensors`)
    keys   phi3.context_length, phi3.rope.scaling.original_context_length,
           phi3.embedding_length, phi3.feed_forward_length, phi3.block_count,
           phi3.attention.head_count, phi3.attention.head_count_kv,
           phi3.attention.layer_norm_rms_epsilon, phi3.rope.dimension_count,
           phi3.rope.freq_base, general.file_type, phi3.attention.sliding_window
           (llama.cpp disables Phi-3 SWA at load time), and for LongRoPE
           phi3.rope.scaling.attn_factor
    tensors (rope_factors_long.weight, rope_factors_short.weight: F32,
           n_rot/2 each, one pair per model, not per layer; the converter
           yields them first), token_embd.weight, blk.N.attn_norm.weight,
           blk.N.attn_qkv.weight (rows: q | k | v), blk.N.attn_output.weight,
           blk.N.ffn_norm.weight, blk.N.ffn_up.weight (rows: gate | up,
           2*n_ff), blk.N.ffn_down.weight, output_norm.weight, output.weight

llama (`LlamaModel`)
    keys   llama.block_count, llama.context_length, llama.embedding_length,
           llama.feed_forward_length, llama.attention.head_count,
           llama.attention.head_count_kv, llama.rope.freq_base,
           llama.attention.layer_norm_rms_epsilon, general.file_type,
           llama.vocab_size, llama.rope.dimension_count
    tensors token_embd.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v,
           attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight,
           output_norm.weight, and output.weight unless tied (absent: llama.cpp
           then uses token_embd for the output projection)

The tokenizer is the real Phi-3 one: every `tokenizer.*` key copied from
llama.cpp's `models/ggml-vocab-phi-3.gguf` (SentencePiece "llama" model,
32064 tokens, bos 1, eos 32000, add_bos_token true). llama.cpp refuses a
model without a tokenizer, and sharing one vocabulary keeps the scripts
simple.

Weights come from a seeded numpy Generator and are scaled so the logits
are far from uniform (per-position std around 4 over 32064 tokens, top-1
probability in the tens of percent), attention is neither flat nor one-hot
(q.k scores with std around 2), and every layer moves the residual stream.
Numpy arrays are [rows, cols] = [n_out, n_in]; GGUF stores the reverse
(ne0 = n_in), exactly as the converter does.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path

import gguf
import numpy as np

#: general.file_type values (llama_ftype) for the float encodings we write.
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "bf16": gguf.LlamaFileType.MOSTLY_BF16,
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """Hyperparameters of one synthetic model.

    `head_dim` is always n_embd / n_head (llama.cpp derives it that way when
    no attention.key_length key is present, as for real Phi-3 files).
    """

    arch: str  # "phi3" or "llama"
    seed: int
    n_embd: int = 256
    n_layer: int = 2
    n_ff: int = 512
    n_head: int = 4
    n_head_kv: int = 4
    n_rot: int | None = None  # rope.dimension_count; None = head_dim
    context_length: int = 4096
    original_context_length: int = 4096  # phi3 only
    rope_freq_base: float = 10000.0
    rms_eps: float = 1e-5
    sliding_window: int = 2047  # phi3 only; llama.cpp ignores it for phi3
    longrope: bool = False  # phi3: write rope factors + attn_factor
    attn_factor: float = 1.19
    tied: bool = False  # no output.weight
    name: str = "phi-edge synthetic"

    @property
    def head_dim(self) -> int:
        assert self.n_embd % self.n_head == 0
        return self.n_embd // self.n_head

    @property
    def rot(self) -> int:
        return self.head_dim if self.n_rot is None else self.n_rot


class Vocab:
    """The `tokenizer.*` key/values of a llama.cpp vocab-only GGUF file."""

    def __init__(self, path: Path):
        reader = gguf.GGUFReader(path)
        self.path = path
        self.fields: list[tuple[str, object, gguf.GGUFValueType, gguf.GGUFValueType | None]] = []
        self.n_vocab = 0
        for key, field in reader.fields.items():
            if not key.startswith("tokenizer."):
                continue
            vtype = field.types[0]
            sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
            if vtype == gguf.GGUFValueType.ARRAY and sub == gguf.GGUFValueType.STRING:
                # raw bytes: token pieces need not be valid UTF-8
                value: object = [bytes(field.parts[i]) for i in field.data]
            elif vtype == gguf.GGUFValueType.ARRAY:
                value = [field.parts[i].tolist()[0] for i in field.data]
            elif vtype == gguf.GGUFValueType.STRING:
                value = bytes(field.parts[field.data[0]])
            else:
                value = field.parts[field.data[0]].tolist()[0]
            if key == "tokenizer.ggml.tokens":
                self.n_vocab = len(value)  # type: ignore[arg-type]
            self.fields.append((key, value, vtype, sub))
        if self.n_vocab == 0:
            raise ValueError(f"{path}: no tokenizer.ggml.tokens")
        self.bos = int(next(v for k, v, *_ in self.fields if k == "tokenizer.ggml.bos_token_id"))  # type: ignore[call-overload]

    def write(self, w: gguf.GGUFWriter) -> None:
        for key, value, vtype, sub in self.fields:
            w.add_key_value(key, value, vtype, sub_type=sub)


def make_weights(spec: Spec, n_vocab: int) -> "OrderedDict[str, np.ndarray]":
    """All tensors of `spec` as float32 arrays, in the converter's order."""
    rng = np.random.default_rng(spec.seed)
    e, ff, hd = spec.n_embd, spec.n_ff, spec.head_dim
    nq, nkv = spec.n_head * hd, spec.n_head_kv * hd

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def norm_w(n):
        return rng.uniform(0.8, 1.2, n).astype(np.float32)

    # Logit std ~ out_std * sqrt(n_embd) * rms(normed hidden) ~ 4.
    out_std = 4.0 / np.sqrt(e)
    # q.k / sqrt(head_dim) has std ~ qk_gain^2 ~ 2.
    qk_gain = 1.4
    w: "OrderedDict[str, np.ndarray]" = OrderedDict()
    if spec.longrope:
        # phi3: per-dimension-pair frequency divisors; one pair for the model.
        w["rope_factors_long.weight"] = rng.uniform(1.0, 8.0, spec.rot // 2).astype(np.float32)
        w["rope_factors_short.weight"] = rng.uniform(1.0, 2.0, spec.rot // 2).astype(np.float32)
    # Tied: token_embd is also the output projection, so it gets out_std.
    w["token_embd.weight"] = normal((n_vocab, e), out_std if spec.tied else 1.0)
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        wq = normal((nq, e), qk_gain / np.sqrt(e))
        wk = normal((nkv, e), qk_gain / np.sqrt(e))
        wv = normal((nkv, e), 1.0 / np.sqrt(e))
        wo = normal((e, nq), 1.0 / np.sqrt(nq))
        gate = normal((ff, e), 1.5 / np.sqrt(e))
        up = normal((ff, e), 1.0 / np.sqrt(e))
        down = normal((e, ff), 1.0 / np.sqrt(ff))
        w[p + "attn_norm.weight"] = norm_w(e)
        if spec.arch == "phi3":
            w[p + "attn_qkv.weight"] = np.concatenate([wq, wk, wv], axis=0)
            w[p + "attn_output.weight"] = wo
            w[p + "ffn_norm.weight"] = norm_w(e)
            w[p + "ffn_up.weight"] = np.concatenate([gate, up], axis=0)
            w[p + "ffn_down.weight"] = down
        else:
            w[p + "attn_q.weight"] = wq
            w[p + "attn_k.weight"] = wk
            w[p + "attn_v.weight"] = wv
            w[p + "attn_output.weight"] = wo
            w[p + "ffn_norm.weight"] = norm_w(e)
            w[p + "ffn_gate.weight"] = gate
            w[p + "ffn_up.weight"] = up
            w[p + "ffn_down.weight"] = down
    w["output_norm.weight"] = norm_w(e)
    if not spec.tied:
        w["output.weight"] = normal((n_vocab, e), out_std)
    return w


def write_gguf(path: Path, spec: Spec, weights: "OrderedDict[str, np.ndarray]", vocab: Vocab, dtype: str = "f32") -> None:
    """Write `weights` as a GGUF file; 2-D tensors stored as `dtype`
    ("f32", "f16" or "bf16"), 1-D tensors always F32 (as the converter does)."""
    a = spec.arch
    w = gguf.GGUFWriter(path, a)
    w.add_name(spec.name)
    w.add_context_length(spec.context_length)
    if a == "phi3":
        w.add_rope_scaling_orig_ctx_len(spec.original_context_length)
    w.add_embedding_length(spec.n_embd)
    w.add_feed_forward_length(spec.n_ff)
    w.add_block_count(spec.n_layer)
    w.add_head_count(spec.n_head)
    w.add_head_count_kv(spec.n_head_kv)
    w.add_layer_norm_rms_eps(spec.rms_eps)
    w.add_rope_dimension_count(spec.rot)
    w.add_rope_freq_base(spec.rope_freq_base)
    w.add_file_type(int(FILE_TYPES[dtype]))
    if a == "phi3":
        w.add_sliding_window(spec.sliding_window)
        if spec.longrope:
            w.add_rope_scaling_attn_factors(spec.attn_factor)
    else:
        w.add_vocab_size(vocab.n_vocab)
    vocab.write(w)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, t in weights.items():
        if t.ndim == 1 or dtype == "f32":
            w.add_tensor(name, t.astype(np.float32))
        elif dtype == "f16":
            w.add_tensor(name, t.astype(np.float16))
        elif dtype == "bf16":
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.BF16)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            raise ValueError(dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tensor_types(path: Path) -> dict[str, str]:
    """{tensor name: ggml type name} as ggml spells it ("f32", "q4_K", ...)."""
    reader = gguf.GGUFReader(path)
    return {t.name: t.tensor_type.name.lower().replace("_k", "_K") for t in reader.tensors}

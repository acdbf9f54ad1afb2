"""llama.cpp side of the oracle, through llama-cpp-python.

Two things only: llama.cpp's own quantizer (`llama_model_quantize`) and
the reference forward pass. The forward pass uses the non-flash-attention
path (our decoder matches that one), one sequence, the default f16 KV
cache, and logits for every position, evaluated one token per batch.

Why one token per batch: llama.cpp's result depends on the batch size
(for 2+ rows its CPU backend switches Q8_0/Q4_0/F32/F16 matmuls to
llamafile's tinyBLAS and K-quants to tiled kernels, each summing in its
own order), while phi-edge gives the same bits for any prefill chunk. The
batch-1 path is llama.cpp's decode path and the one the portable kernels
reproduce.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from pathlib import Path

import llama_cpp
import numpy as np

#: llama_ftype for each quantization the oracle asks for.
FTYPES = {
    "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1,
    "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "q6_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K,
    "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
    "bf16": llama_cpp.LLAMA_FTYPE_MOSTLY_BF16,
}

N_THREADS = 2


def quantize(src: Path, dst: Path, kind: str) -> None:
    """Quantize GGUF `src` to `dst` with llama.cpp's quantizer, default
    per-tensor policy (the one `llama-quantize` applies, e.g. Q6_K for the
    output projection of a Q4_K_M file), no importance matrix."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = N_THREADS
    with captured_stderr() as log:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        sys.stderr.write(log.read())
        raise RuntimeError(f"llama_model_quantize({src} -> {dst}, {kind}) failed: {rc}")


@contextlib.contextmanager
def captured_stderr():
    """Send file descriptor 2 (llama.cpp's C logging) to a temp file; the
    caller reads it back (e.g. to show it on failure)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield tmp
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)


def load(model: Path, n_ctx: int, *, batch: int = 1, flash_attn: bool = False,
         kv_type: int | None = None) -> llama_cpp.Llama:
    """A Llama context configured exactly as the goldens need it: the decode
    path (batch 1) without flash attention and an f16 KV cache, unless
    `batch`, `flash_attn` or `kv_type` (a GGML type id for K and V) say
    otherwise."""
    return llama_cpp.Llama(
        model_path=str(model),
        n_ctx=n_ctx,
        n_batch=batch,
        n_ubatch=batch,
        logits_all=True,
        flash_attn=flash_attn,  # without: the attention path the f16 cache matches
        type_k=kv_type,
        type_v=kv_type,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        n_gpu_layers=0,
        verbose=False,
        seed=0,
    )


def run(model: Path, tokens: list[int], n_ctx: int) -> tuple[np.ndarray, int]:
    """Logits [len(tokens), n_vocab] (float32) for every position, and the
    context size llama.cpp actually used (it pads n_ctx to a multiple of 256)."""
    llm = load(model, n_ctx)
    try:
        llm.eval(tokens)
        logits = np.array(llm.scores[: len(tokens)], dtype=np.float32)
        return logits, int(llm.n_ctx())
    finally:
        llm.close()


def tokenize(model: Path, text: str) -> list[int]:
    """Token ids for `text` by llama.cpp's tokenizer; BOS is added only if
    the model's tokenizer.ggml.add_bos_token says so."""
    with captured_stderr():  # a vocab-only context warns about n_ctx_train 0
        llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    try:
        return list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
    finally:
        llm.close()


def version() -> str:
    return str(llama_cpp.__version__)

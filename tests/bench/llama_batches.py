"""llama.cpp's logits at several batch sizes, for `cargo xtask bench
model`: how much its result depends on how the prompt is cut.

    python llama_batches.py MODEL.gguf PROMPT N_CTX N_THREADS OUT_DIR B [B ...]

Tokenizes PROMPT as `phi-edge run` does (BOS if the model's metadata asks
for it), then, for each batch size B, evaluates the whole prompt in a fresh
context with n_batch = n_ubatch = B and logits for every position (flash
attention off, N_THREADS threads), and writes them to OUT_DIR/llama-bB.npy
(float32, [tokens, n_vocab]). Prints one JSON line: {"ids": [...],
"files": {"B": path}}.
"""

import json
import sys
from pathlib import Path

import llama_cpp
import numpy as np


def main():
    model, text = sys.argv[1], sys.argv[2]
    n_ctx, n_threads = int(sys.argv[3]), int(sys.argv[4])
    out = Path(sys.argv[5])
    batches = [int(b) for b in sys.argv[6:]]
    if not batches or min(batches) < 1:
        sys.exit("give at least one batch size, each at least 1")
    files = {}
    ids = None
    for b in batches:
        llm = llama_cpp.Llama(
            model_path=model,
            n_ctx=n_ctx,
            n_batch=b,
            n_ubatch=b,
            logits_all=True,
            flash_attn=False,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_gpu_layers=0,
            verbose=False,
        )
        try:
            if ids is None:
                ids = list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            llm.eval(ids)
            logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
        finally:
            llm.close()
        path = out / f"llama-b{b}.npy"
        np.save(path, logits)
        files[str(b)] = str(path)
    print(json.dumps({"ids": ids, "files": files}))


if __name__ == "__main__":
    main()

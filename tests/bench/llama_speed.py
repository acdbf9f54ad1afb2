"""llama.cpp's speed on a model, for `cargo xtask bench`: prefill of a prompt
in one batch and greedy decoding, on one thread (phi-edge runs on one).

    python llama_speed.py MODEL.gguf PROMPT N_GEN

Prints one JSON line: {"prefill_tok_s", "decode_tok_s", "n_prompt", "n_gen"}.
The prompt is tokenized with BOS as the model's metadata says, as
`phi-edge run` does.
"""

import json
import sys
import time

import llama_cpp
import numpy as np

model, text, n_gen = sys.argv[1], sys.argv[2], int(sys.argv[3])
llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_batch=512, n_threads=1, n_threads_batch=1,
                      flash_attn=False, verbose=False, logits_all=False)
prompt = llm.tokenize(text.encode(), add_bos=True)
t0 = time.perf_counter()
llm.eval(prompt)
t1 = time.perf_counter()
for _ in range(n_gen):
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    llm.eval([tok])
t2 = time.perf_counter()
print(json.dumps({"prefill_tok_s": len(prompt) / (t1 - t0), "decode_tok_s": n_gen / (t2 - t1),
                  "n_prompt": len(prompt), "n_gen": n_gen}))

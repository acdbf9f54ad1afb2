"""llama.cpp's speed on a model, for `cargo xtask bench model`: one fresh
process, timed around its llama_decode calls only.

    python llama_speed.py MODEL.gguf PROMPT N_GEN N_THREADS N_CTX

Works through llama-cpp-python's low-level API (the C functions), so that
nothing but llama.cpp's own work is timed:

- the prompt, tokenized as `phi-edge run` does (BOS if the model's metadata
  asks for it), is one llama_decode of one batch (n_batch = n_ubatch = N_CTX,
  at least the prompt), logits for its last position only;
- then N_GEN tokens are generated greedily (argmax of the logits, outside
  the timed region), counted as `phi-edge run` counts them: the first comes
  from the prefill's logits, each later one from a llama_decode of the
  previous token, so N_GEN tokens take N_GEN - 1 single-token decodes, and
  decode tok/s is N_GEN over their total time. End of generation is not
  checked: the number of decodes never depends on the text.

n_threads = n_threads_batch = N_THREADS; flash attention off (phi-edge has
none); a context of N_CTX tokens, as `phi-edge run --ctx N_CTX`; llama.cpp's
log shows errors only.

Prints one JSON line: {"n_prompt", "n_gen", "n_decode", "prefill_s",
"decode_s", "prefill_tok_s", "decode_tok_s", "system_info"}.
"""

import ctypes
import json
import sys
import time

import llama_cpp as ll
import numpy as np

GGML_LOG_LEVEL_ERROR = 4
GGML_LOG_LEVEL_CONT = 5  # continues the previous message, at its level
last_level = 0


@ll.llama_log_callback
def log_errors(level, text, _user_data):
    global last_level
    if level != GGML_LOG_LEVEL_CONT:
        last_level = level
    if last_level == GGML_LOG_LEVEL_ERROR:
        sys.stderr.write(text.decode(errors="replace"))


def main():
    path, text = sys.argv[1], sys.argv[2]
    n_gen, n_threads, n_ctx = (int(a) for a in sys.argv[3:6])
    if n_gen < 1 or n_threads < 1:
        sys.exit("N_GEN and N_THREADS must be at least 1")
    ll.llama_log_set(log_errors, ctypes.c_void_p(0))
    ll.llama_backend_init()

    mparams = ll.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = ll.llama_model_load_from_file(path.encode(), mparams)
    if not model:
        sys.exit(f"llama.cpp cannot load {path}")
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = ll.llama_vocab_n_tokens(vocab)

    data = text.encode()
    ids = (ll.llama_token * (len(data) + 2))()
    n_prompt = ll.llama_tokenize(vocab, data, len(data), ids, len(ids), True, False)
    if n_prompt <= 0:
        sys.exit(f"llama_tokenize returned {n_prompt}")
    if n_prompt + n_gen > n_ctx:
        sys.exit(f"{n_prompt} prompt + {n_gen} generated tokens do not fit a context of {n_ctx}")

    cparams = ll.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = n_ctx
    cparams.n_ubatch = n_ctx
    cparams.n_seq_max = 1
    cparams.n_threads = n_threads
    cparams.n_threads_batch = n_threads
    cparams.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
    ctx = ll.llama_init_from_model(model, cparams)
    if not ctx:
        sys.exit("llama.cpp cannot create a context")

    def decode(tokens, n):
        """One timed llama_decode (and the wait for its result)."""
        batch = ll.llama_batch_get_one(tokens, n)
        t0 = time.perf_counter()
        rc = ll.llama_decode(ctx, batch)
        ll.llama_synchronize(ctx)
        dt = time.perf_counter() - t0
        if rc != 0:
            sys.exit(f"llama_decode returned {rc}")
        return dt

    def greedy():
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        return int(np.argmax(logits))

    prefill_s = decode(ids, n_prompt)
    decode_s = 0.0
    token = (ll.llama_token * 1)()
    token[0] = greedy()
    for _ in range(n_gen - 1):
        decode_s += decode(token, 1)
        token[0] = greedy()

    print(json.dumps({
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "n_decode": n_gen - 1,
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "prefill_tok_s": n_prompt / prefill_s,
        "decode_tok_s": n_gen / decode_s if decode_s > 0 else 0.0,
        "system_info": ll.llama_print_system_info().decode(errors="replace").strip(),
    }))
    ll.llama_free(ctx)
    ll.llama_model_free(model)


main()

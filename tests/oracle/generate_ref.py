"""Greedy-generation goldens: llama.cpp's own continuation of a few prompts.

For each prompt in `PROMPTS` (plain text, or one chat turn rendered by the
model's own Jinja template exactly as Hugging Face renders it: sandboxed
environment, `trim_blocks` and `lstrip_blocks`, `add_generation_prompt`),
llama.cpp tokenizes the text (BOS as the model's metadata says; special
tokens parsed only in chat prompts), evaluates it one token per batch (as
the parity goldens), then picks the argmax token (temperature 0) and feeds
it back until `MAX_TOKENS` tokens or an end-of-generation token.

Writes DIR/generate.json:
    {"model": path, "max_tokens": N,
     "prompts": [{"name", "chat": bool, "system": str|null, "text" (the
                  user text), "rendered" (what was tokenized), "prompt_ids",
                  "ids" (generated, including a final end-of-generation
                  token if one came), "gap_over_std" (per generated token:
                  llama.cpp's top-1 minus top-2 logit over the logits'
                  std), "perplexity" (exp of the mean negative log
                  softmax probability of the generated tokens)}]}
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import jinja2.sandbox
import llama_cpp
import numpy as np

import golden

MAX_TOKENS = 32

# (name, chat, system, text)
PROMPTS: list[tuple[str, bool, str | None, str]] = [
    ("plain-france", False, None, "The capital of France is"),
    ("plain-story", False, None, "Once upon a time, in a small village by the sea,"),
    ("plain-code", False, None, "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("chat-capital", True, None, "What is the capital of France?"),
    ("chat-recipe", True, None, "Give me three tips for baking bread."),
    ("chat-system", True, "You are a pirate. Answer in one sentence.", "Where is the treasure?"),
]


def render(template: str, system: str | None, user: str, bos: str, eos: str) -> str:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": user}
    ]
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )


def write(out: Path, model: Path, n_ctx: int = 512) -> None:
    """Runs every prompt through llama.cpp and writes out/generate.json."""
    llm = golden.load(model, n_ctx)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        template = llm.metadata["tokenizer.chat_template"]
        bos = llm.detokenize([llm.token_bos()], special=True).decode()
        eos = llm.detokenize([llm.token_eos()], special=True).decode()
        records = []
        for name, chat, system, text in PROMPTS:
            rendered = render(template, system, text, bos, eos) if chat else text
            prompt = llm.tokenize(rendered.encode(), add_bos=True, special=chat)
            llm.reset()
            llm.eval(prompt)
            ids, gaps, nll = [], [], 0.0
            while len(ids) < MAX_TOKENS:
                logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
                top2 = np.sort(logits)[-2:]
                tok = int(np.argmax(logits))  # the first maximum, as llama.cpp's greedy sampler
                top = logits.max()
                nll -= logits[tok] - top - np.log(np.exp(logits - top).sum())
                ids.append(tok)
                gaps.append(float((top2[1] - top2[0]) / logits.std()))
                if llama_cpp.llama_vocab_is_eog(vocab, ctypes.c_int32(tok)):
                    break
                llm.eval([tok])
            records.append({
                "name": name, "chat": chat, "system": system, "text": text, "rendered": rendered,
                "prompt_ids": prompt, "ids": ids, "gap_over_std": gaps,
                "perplexity": float(np.exp(nll / len(ids))),
            })
            print(f"  generate {name:<14} {len(prompt):>3} prompt tokens -> {len(ids)} tokens: "
                  f"{llm.detokenize(ids).decode(errors='replace')!r}")
    finally:
        llm.close()
    doc = {"model": str(model), "n_ctx": n_ctx, "max_tokens": MAX_TOKENS, "prompts": records}
    (out / "generate.json").write_text(json.dumps(doc, indent=1) + "\n")

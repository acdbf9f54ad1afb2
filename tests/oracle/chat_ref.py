#!/usr/bin/env python3
"""Chat-template goldens: jinja2 renderings of the real Phi-3 and ChatML
templates, and llama.cpp's classification of every template in its test
suite.

    python chat_ref.py --out DIR/chat.json --vocab ggml-vocab-phi-3.gguf
                       --smollm2 SmolLM2-135M-Instruct.Q4_1.gguf
                       --sdist llama_cpp_python-X.tar.gz

`make_ref.py` calls `write()`; this entry point is for development.

The templates (exact text, from the files named):
    smollm2           tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf
                      (ChatML with a default system message)
    phi3-vocab        tokenizer.chat_template of llama.cpp's ggml-vocab-phi-3.gguf
    phi3-mini, phi3-small, phi3-medium, phi3-vision
                      the "Phi-3-*" cases of llama.cpp's tests/test-chat-template.cpp
    phi3.5-mini       llama.cpp's models/templates/microsoft-Phi-3.5-mini-instruct.jinja
    phi3-mini-2024    PHI3_MINI_2024 below: microsoft/Phi-3-mini-4k-instruct's
                      tokenizer_config.json since May 2024 (system role added)
The last three come from the llama-cpp-python source distribution that
`cargo xtask setup` caches in target/vendor/cache/.

Rendering is what llama.cpp's Jinja path (`common_chat_templates_apply`)
does with these templates, done here with jinja2 the way transformers and
llama-cpp-python do (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, add_generation_prompt=True):
  - a template that ignores a system message (llama.cpp's capability probe:
    a system message's content does not reach the output) gets it merged
    into the next message as "{system}\\n{content}" (llama.cpp's
    `system_message_not_supported`);
  - a leading bos_token text is removed when the tokenizer adds BOS
    (`add_bos_token`), so BOS comes from tokenization only.
Both are checked against llama.cpp's own expectations (`expected_output_jinja`
in test-chat-template.cpp) before any golden is written.

chat.json:
    {"templates": {name: {"source", "text", "bos_token", "eos_token", "add_bos"}},
     "cases": [{"template", "system": str|null,
                "turns": [[user, assistant|null], ...],
                "renders": [the rendering of the conversation up to and
                            including user turn i, with the generation
                            prompt, for each i]}],
     "detect": [{"name", "text", "family": "phi3"|"chatml"|"other"}]}

"detect" classifies every template of test-chat-template.cpp plus the ones
above with llama.cpp itself: its built-in renderer (llama_chat_apply_template,
which detects the template by substring) on a probe conversation gives the
same text as the built-in "phi3" or "chatml" template, or neither.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import tarfile
from pathlib import Path

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: microsoft/Phi-3-mini-4k-instruct, tokenizer_config.json "chat_template"
#: (revision of 2024-05 onwards; the same text in Phi-3-mini-128k-instruct).
PHI3_MINI_2024 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] "
    "+ '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}"
    "{% endif %}"
)

#: test-chat-template.cpp case name -> our template name.
TEST_FILE_PHI3 = {"Phi-3-mini": "phi3-mini", "Phi-3-small": "phi3-small",
                  "Phi-3-medium": "phi3-medium", "Phi-3-vision": "phi3-vision"}

UNICODE_SYS = "Tu es un assistant serviable. 你好 🌍"
UNICODE_USER = "Ça va ? Ünïcödé — 日本語 😀 \u00a0\u200b"

#: (system, [(user, assistant reply or None for the last turn)]).
CASES: list[tuple[str | None, list[tuple[str, str | None]]]] = [
    (None, [("Hello", None)]),
    ("You are a helpful assistant", [("Hello", None)]),
    ("", [("Hi", None)]),
    (None, [("", None)]),
    ("", [("", None)]),
    (UNICODE_SYS, [(UNICODE_USER, None)]),
    ("Line one\nLine two\n", [("first\n\nsecond\n", None)]),
    ("  padded  ", [("\n  leading and trailing  \n", None)]),
    (None, [("special text <|end|> <|im_end|> <|user|> <s> inside", None)]),
    (None, [("Hello", "Hi there"), ("Who are you", "   I am an assistant   "), ("Another question", None)]),
    ("You are terse.", [("2+2?", "4"), ("And 3+3?", "6\n"), (UNICODE_USER, ""), ("Thanks", None)]),
    ("", [("a", "b"), ("c", None)]),
    (UNICODE_SYS, [("line\nbreaks\n", "reply\nwith\nlines"), ("", "empty user above"), ("bye", None)]),
]


def gguf_meta(path: Path) -> dict:
    """chat template, BOS/EOS token text and add_bos_token of a GGUF file."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))

    def field(key: str):
        f = r.fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    tokens = r.fields["tokenizer.ggml.tokens"]

    def token(key: str) -> str:
        tid = int(field(key)[0])
        return bytes(tokens.parts[tokens.data[tid]]).decode()

    add_bos = field("tokenizer.ggml.add_bos_token")
    return {
        "text": bytes(field("tokenizer.chat_template")).decode(),
        "bos_token": token("tokenizer.ggml.bos_token_id"),
        "eos_token": token("tokenizer.ggml.eos_token_id"),
        "add_bos": bool(add_bos[0]) if add_bos is not None else False,
    }


def c_string(src: str, i: int) -> tuple[str, int]:
    """The C/C++ string literal (with adjacent literals concatenated)
    starting at or after src[i]; returns its value and the index after it."""
    out = []
    while True:
        while src[i] in " \t\r\n":
            i += 1
        if src.startswith("U8C(", i):
            i += 4
            continue
        if src.startswith("u8", i):
            i += 2
        if src[i] != '"':
            break
        i += 1
        while src[i] != '"':
            if src[i] == "\\":
                esc = src[i + 1]
                out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}[esc])
                i += 2
            else:
                out.append(src[i])
                i += 1
        i += 1
    return "".join(out), i


def test_file_cases(cpp: str) -> list[dict]:
    """Every {name, template_str, expected_output, expected_output_jinja,
    bos_token, eos_token} case of test-chat-template.cpp's main table."""
    cases = []
    pos = 0
    while (at := cpp.find("/* .name= */", pos)) >= 0:
        case = {}
        name, pos = c_string(cpp, at + len("/* .name= */"))
        case["name"] = name
        nxt = cpp.find("/* .name= */", pos)
        nxt = len(cpp) if nxt < 0 else nxt
        for key in ("template_str", "expected_output", "expected_output_jinja", "bos_token", "eos_token"):
            for marker in (f"/* .{key}= */", f"/* .{key} */"):
                k = cpp.find(marker, pos, nxt)
                if k >= 0:
                    case[key], _ = c_string(cpp, k + len(marker))
                    break
        if "template_str" in case:
            cases.append(case)
    return cases


def env() -> ImmutableSandboxedEnvironment:
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg: str):
        raise TemplateError(msg)

    e.globals["raise_exception"] = raise_exception
    return e


def supports_system(text: str, bos: str, eos: str) -> bool:
    """llama.cpp's capability probe: does a system message reach the output?"""
    msgs = [{"role": "system", "content": "System message"}, {"role": "user", "content": "User message"}]
    out = env().from_string(text).render(messages=msgs, add_generation_prompt=True, bos_token=bos, eos_token=eos)
    return "System message" in out


def render(t: dict, messages: list[dict]) -> str:
    """The prompt llama.cpp's Jinja path renders for `messages`."""
    msgs = [dict(m) for m in messages]
    if msgs and msgs[0]["role"] == "system" and not supports_system(t["text"], t["bos_token"], t["eos_token"]):
        first = msgs.pop(0)
        if msgs:
            msgs[0]["content"] = first["content"] + "\n" + msgs[0]["content"]
    out = env().from_string(t["text"]).render(messages=msgs, add_generation_prompt=True,
                                              bos_token=t["bos_token"], eos_token=t["eos_token"])
    if t["add_bos"] and t["bos_token"] and out.startswith(t["bos_token"]):
        out = out[len(t["bos_token"]):]
    return out


def conversation(system: str | None, turns: list[tuple[str, str | None]], upto: int) -> list[dict]:
    """system?, u1, a1, .., u_upto (1-based), as chat messages."""
    msgs = [] if system is None else [{"role": "system", "content": system}]
    for i, (user, reply) in enumerate(turns[:upto]):
        msgs.append({"role": "user", "content": user})
        if i + 1 < upto:
            msgs.append({"role": "assistant", "content": reply})
    return msgs


def llama_family(text: str) -> str:
    """llama.cpp's built-in classification of a template, by rendering a
    probe conversation with it and with the built-in phi3 / chatml."""
    import llama_cpp

    probe = [("system", "You are a helpful assistant"), ("user", "Hello"), ("assistant", "Hi there"),
             ("user", "Who are you")]
    arr = (llama_cpp.llama_chat_message * len(probe))(
        *[llama_cpp.llama_chat_message(r.encode(), c.encode()) for r, c in probe])

    def apply(tmpl: bytes) -> bytes | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_chat_apply_template(tmpl, arr, len(probe), True, buf, len(buf))
        return None if n < 0 else buf.raw[:n]

    got = apply(text.encode())
    if got is None:
        return "other"
    for family in ("phi3", "chatml"):
        if got == apply(family.encode()):
            return family
    return "other"


def sdist_file(sdist: Path, suffix: str) -> str:
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            if m.name.endswith(suffix):
                return tar.extractfile(m).read().decode()  # type: ignore[union-attr]
    raise RuntimeError(f"{sdist} has no file ending in {suffix}")


def write(out: Path, vocab: Path, smollm2: Path, sdist: Path) -> None:
    """Builds chat.json at `out`; raises if the oracle disagrees with
    llama.cpp's own expectations."""
    phi3 = gguf_meta(vocab)
    smol = gguf_meta(smollm2)
    cpp = sdist_file(sdist, "/vendor/llama.cpp/tests/test-chat-template.cpp")
    tests = test_file_cases(cpp)
    if len(tests) < 20:
        raise RuntimeError(f"parsed only {len(tests)} cases from test-chat-template.cpp")

    def tmpl(source: str, text: str, like: dict) -> dict:
        return {"source": source, "text": text, "bos_token": like["bos_token"],
                "eos_token": like["eos_token"], "add_bos": like["add_bos"]}

    templates = {
        "smollm2": tmpl(smollm2.name, smol["text"], smol),
        "phi3-vocab": tmpl(vocab.name, phi3["text"], phi3),
    }
    by_name = {c["name"]: c for c in tests}
    for case, name in TEST_FILE_PHI3.items():
        templates[name] = tmpl(f"test-chat-template.cpp: {case}", by_name[case]["template_str"], phi3)
    templates["phi3.5-mini"] = tmpl(
        "models/templates/microsoft-Phi-3.5-mini-instruct.jinja",
        sdist_file(sdist, "/vendor/llama.cpp/models/templates/microsoft-Phi-3.5-mini-instruct.jinja"), phi3)
    templates["phi3-mini-2024"] = tmpl("microsoft/Phi-3-mini-4k-instruct tokenizer_config.json",
                                       PHI3_MINI_2024, phi3)

    # The rendering pipeline must reproduce llama.cpp's expected Jinja output
    # on its own test conversation, with the test's bos/eos tokens.
    test_conv = [{"role": "system", "content": "You are a helpful assistant"},
                 {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"},
                 {"role": "user", "content": "Who are you"},
                 {"role": "assistant", "content": "   I am an assistant   "},
                 {"role": "user", "content": "Another question"}]
    for case in TEST_FILE_PHI3:
        c = by_name[case]
        expected = c.get("expected_output_jinja") or c["expected_output"]
        t = {"text": c["template_str"], "bos_token": c.get("bos_token", ""),
             "eos_token": c.get("eos_token", ""), "add_bos": False}
        got = render(t, test_conv)
        if got != expected:
            raise RuntimeError(f"chat_ref: {case}: rendering {got!r} != llama.cpp's expected {expected!r}")

    cases = []
    for name, t in templates.items():
        for system, turns in CASES:
            renders = [render(t, conversation(system, turns, i + 1)) for i in range(len(turns))]
            for i in range(1, len(renders)):
                if not renders[i].startswith(renders[i - 1] + turns[i - 1][1]):
                    print(f"chat_ref: warning: {name}: turn {i + 1} does not extend turn {i}", file=sys.stderr)
            cases.append({"template": name, "system": system, "turns": [list(t) for t in turns],
                          "renders": renders})

    detect = [{"name": c["name"], "text": c["template_str"], "family": llama_family(c["template_str"])}
              for c in tests]
    detect += [{"name": n, "text": t["text"], "family": llama_family(t["text"])} for n, t in templates.items()]
    for n in templates:
        fam = next(d["family"] for d in detect if d["name"] == n)
        if fam != ("chatml" if n == "smollm2" else "phi3"):
            raise RuntimeError(f"chat_ref: llama.cpp classifies {n} as {fam}")

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"templates": templates, "cases": cases, "detect": detect},
                              indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    fams = {f: sum(d["family"] == f for d in detect) for f in ("phi3", "chatml", "other")}
    print(f"chat: {len(templates)} templates, {len(cases)} conversations, "
          f"{len(detect)} templates classified by llama.cpp {fams} -> {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--vocab", required=True, type=Path)
    ap.add_argument("--smollm2", required=True, type=Path)
    ap.add_argument("--sdist", required=True, type=Path)
    a = ap.parse_args()
    write(a.out, a.vocab, a.smollm2, a.sdist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

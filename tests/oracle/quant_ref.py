"""Row-quantizer goldens from ggml's own C code (`quant_rows.json`).

`llama_model_quantize` quantizes each row with `ggml_quantize_chunk`
(no importance matrix: the `quantize_row_*_ref` reference quantizers, and
`ggml_fp32_to_fp16_row` / `ggml_fp32_to_bf16_row_ref` for F16 / BF16), then
checks the result with `ggml_validate_row_data`. This calls exactly those
exported functions of the oracle's libggml-base through ctypes on chosen
rows (zeros, ties, huge and tiny magnitudes, one-sided rows, outliers,
random rows) and records the bytes and the validity. gguf-py's numpy
quantizers are not used: the C code is the truth.

    {"rows": [{"name": str, "x": hex of f32 little-endian values,
               "out": {type: {"hex": hex bytes, "valid": bool}}}],
     "fp16": {"x": hex f32, "out": hex f16},   # ggml_fp32_to_fp16_row
     "bf16": {"x": hex f32, "out": hex bf16}}  # ggml_fp32_to_bf16_row_ref

Run alone: target/venv/bin/python tests/oracle/quant_ref.py --out target/ref
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
from pathlib import Path

import numpy as np

from golden import captured_stderr

#: ggml_type ids of the types phi-edge writes.
TYPES = {"f16": 1, "bf16": 30, "q4_0": 2, "q4_1": 3, "q8_0": 8, "q4_K": 12, "q6_K": 14}


def _lib() -> ctypes.CDLL:
    import llama_cpp

    g = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    g.ggml_quantize_chunk.restype = ctypes.c_size_t
    g.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    g.ggml_row_size.restype = ctypes.c_size_t
    g.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    g.ggml_validate_row_data.restype = ctypes.c_bool
    g.ggml_validate_row_data.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    g.ggml_fp32_to_fp16_row.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    g.ggml_fp32_to_bf16_row_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return g


def rows(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """256-value rows (one K-quant super-block, eight 32-blocks)."""
    n = 256
    out: list[tuple[str, np.ndarray]] = []
    add = lambda name, x: out.append((name, np.asarray(x, dtype=np.float32).reshape(n)))  # noqa: E731
    add("zeros", np.zeros(n))
    add("negative zeros", np.full(n, -0.0))
    add("constant", np.full(n, 0.75))
    add("constant negative", np.full(n, -3.0))
    # ties: amax 127 (q8_0 d = 1), amax 8 (q4_0 d = -1), halves everywhere
    add("q8_0 ties", np.tile(np.concatenate([[127.0], np.arange(-15.5, 15.5, 1.0)]), n // 32))
    add("q4_0 ties", np.tile(np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)]), n // 32))
    add("q4_1 ties", np.tile(np.concatenate([[0.0, 15.0], np.arange(0.5, 15.5, 0.5)]), n // 32))
    add("halves", (np.arange(n) - 128) * 0.5)
    add("quarters", (np.arange(n) - 128) * 0.25)
    add("ramp", np.linspace(-1, 1, n))
    add("positive only", rng.uniform(0.5, 2.0, n))
    add("negative only", -rng.uniform(0.5, 2.0, n))
    add("one-hot", np.eye(1, n, 77).ravel() * 3.5)
    add("one negative", np.eye(1, n, 200).ravel() * -0.01)
    x = rng.standard_normal(n) * 0.02
    x[5] = 4.0
    x[150] = -6.0
    add("outliers", x)
    x = rng.standard_normal(n)
    x[rng.random(n) < 0.8] = 0.0
    add("sparse", x)
    add("huge", rng.standard_normal(n) * 1e4)
    add("huge max f16", np.clip(rng.standard_normal(n) * 3e4, -65504, 65504))
    add("too huge for f16 scales", rng.standard_normal(n) * 1e7)
    add("f32 extremes", rng.standard_normal(n) * 1e37)
    add("tiny", rng.standard_normal(n) * 1e-6)
    add("f16 subnormal scales", rng.standard_normal(n) * 1e-5)
    add("below f16", rng.standard_normal(n) * 1e-9)
    add("f32 tiny normal", rng.standard_normal(n) * 1e-30)
    add("f32 subnormal", rng.standard_normal(n) * 1e-40)
    x = np.zeros(n)
    x[::32] = 1e-38
    add("almost zero blocks", x)
    x = rng.standard_normal(n)
    x[:128] *= 1e-20
    add("mixed scales", x)
    for seed in range(6):
        add(f"normal {seed}", rng.standard_normal(n) * (0.01 * 10 ** (seed % 3)))
    for seed in range(3):
        add(f"uniform {seed}", rng.uniform(-1, 1, n) + (seed - 1) * 0.5)
    add("student-t", rng.standard_t(2, n))
    return out


def conversions(rng: np.random.Generator) -> np.ndarray:
    """f32 bit patterns for the f16/bf16 conversions: random bits, every
    f16/bf16 rounding boundary near a few exponents, NaNs, infinities."""
    bits = [rng.integers(0, 2**32, 4000, dtype=np.uint64)]
    special = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
               0xFF812345, 0x7FBFFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x00800000, 0x477FE000,
               0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000, 0x33000001, 0x32FFFFFF, 0x33800000,
               0x387FC000, 0x387FE000, 0x38800000]
    bits.append(np.array(special, dtype=np.uint64))
    for e in (0x33, 0x38, 0x3F, 0x47, 0x7F, 0x00):
        base = np.uint64(e << 24)
        for low in (0x0FFF, 0x1000, 0x1001, 0x3000, 0x7FFF, 0x8000, 0x8001, 0x18000):
            bits.append(np.array([base | np.uint64(low), base | np.uint64(0x80000000 | low)], dtype=np.uint64))
    return np.concatenate(bits).astype(np.uint32).view(np.float32)


def write(path: Path) -> None:
    g = _lib()
    rng = np.random.default_rng(16)
    records = []
    for name, x in rows(rng):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = {}
        for tname, t in TYPES.items():
            size = g.ggml_row_size(t, x.size)
            buf = np.zeros(size, dtype=np.uint8)
            got = g.ggml_quantize_chunk(t, x.ctypes.data, buf.ctypes.data, 0, 1, x.size, None)
            if got != size:
                raise RuntimeError(f"{name} {tname}: ggml_quantize_chunk wrote {got} of {size} bytes")
            with captured_stderr():  # it prints what it finds invalid
                valid = bool(g.ggml_validate_row_data(t, buf.ctypes.data, size))
            out[tname] = {"hex": buf.tobytes().hex(), "valid": valid}
        records.append({"name": name, "x": x.tobytes().hex(), "out": out})
    xs = np.ascontiguousarray(conversions(rng))
    h = np.zeros(xs.size, dtype=np.uint16)
    b = np.zeros(xs.size, dtype=np.uint16)
    g.ggml_fp32_to_fp16_row(xs.ctypes.data, h.ctypes.data, xs.size)
    g.ggml_fp32_to_bf16_row_ref(xs.ctypes.data, b.ctypes.data, xs.size)
    doc = {"rows": records,
           "fp16": {"x": xs.tobytes().hex(), "out": h.tobytes().hex()},
           "bf16": {"x": xs.tobytes().hex(), "out": b.tobytes().hex()}}
    path.write_text(json.dumps(doc, indent=0) + "\n")
    invalid = sum(not o["valid"] for r in records for o in r["out"].values())
    print(f"row quantizer goldens: {len(records)} rows x {len(TYPES)} types ({invalid} invalid), "
          f"{xs.size} f16/bf16 conversions -> {path.name}")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "quant_rows.json")

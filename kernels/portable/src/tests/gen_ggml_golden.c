// Emits src/tests/ggml_golden.rs: outputs of ggml's reference quantizers,
// dequantizers and generic dot products (and of the x86 AVX2 Q8_0 / Q8_1
// activation quantizers) on inputs the Rust test regenerates from a seed.
//
// Not part of the build. To regenerate, with G = llama.cpp's ggml directory
// (vendor/llama.cpp/ggml in the llama-cpp-python 0.3.36 sdist):
//
//   I="-I$G/include -I$G/src -I$G/src/ggml-cpu"
//   gcc -O2 -ffp-contract=off $I -c $G/src/ggml-quants.c -o ref.o
//   gcc -O2 -ffp-contract=off $I -c $G/src/ggml-cpu/quants.c -o generic.o
//   gcc -O2 -march=native $I -c $G/src/ggml-cpu/arch/x86/quants.c -o x86.o
//   gcc -O2 -ffp-contract=off $I gen_ggml_golden.c ref.o generic.o x86.o -lm -o gen
//   ./gen > ggml_golden.rs
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ggml.h"
#include "ggml-impl.h"
#include "ggml-quants.h"
#include "ggml-cpu/quants.h"

// The x86 AVX2 builds of the Q8_0 / Q8_1 activation quantizers
// (ggml-cpu/arch/x86/quants.c, compiled with -march=native).
void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_q8_1(const float *x, void *y, int64_t k);

float ggml_table_f32_f16[1 << 16];
float ggml_table_f32_e8m0_half[256];
float ggml_table_f32_ue4m3[256];
void ggml_abort(const char *file, int line, const char *fmt, ...) { abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { abort(); }
const char *ggml_type_name(enum ggml_type t) { return "?"; }
size_t ggml_type_size(enum ggml_type t) { abort(); }

static uint64_t st;
static uint64_t rnd(void) {
    st += 0x9e3779b97f4a7c15ull; uint64_t z = st;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float unif(float lo, float hi) { return lo + (hi - lo) * ((float)(rnd() >> 40) / 16777216.0f); }
static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = p; uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}
enum { T_Q8_0 = 3, T_Q4_0 = 4, T_Q4_1 = 5, T_Q4K = 6, T_Q6K = 7 };

int main(void) {
    for (int i = 0; i < 65536; i++) ggml_table_f32_f16[i] = ggml_compute_fp16_to_fp32((ggml_fp16_t)i);
    printf("// @generated from llama.cpp (llama-cpp-python 0.3.36) ggml-quants.c and\n");
    printf("// ggml-cpu/quants.c (generic, -ffp-contract=off) by gen_ggml_golden.c.\n");
    printf("// Each row: (dtype tag, k, seed, fnv64 of the activation bytes, fnv64 of\n");
    printf("// the dequantized weights, f32 bits of the dot product).\n\n");
    printf("pub(super) const CASES: &[(u8, usize, u64, u64, u64, u32)] = &[\n");
    int types[5] = {T_Q8_0, T_Q4_0, T_Q4_1, T_Q4K, T_Q6K};
    float mags[4] = {1e-3f, 0.5f, 1.0f, 300.0f};
    int nbs[4] = {1, 2, 3, 5};
    for (int c = 0; c < 100; c++) {
        uint64_t seed = 1000 + c; st = seed;
        int t = types[c % 5];
        int qk = (t == T_Q4K || t == T_Q6K) ? 256 : 32;
        int nb = nbs[(c / 5) % 4], k = nb * qk;
        float mag = mags[(c / 20) % 4];
        static float x[5 * 256], wf[5 * 256], deq[5 * 256];
        static uint8_t w[5 * 210], a[5 * 292];
        memset(a, 0, sizeof a);
        for (int i = 0; i < k; i++) x[i] = unif(-mag, mag);
        if (c % 7 == 0) { for (int i = 0; i < k; i++) x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; x[0] = 127.0f; }
        if (c % 11 == 0) memset(x, 0, qk * sizeof(float));
        size_t wb = 0, ab = 0; float dot = 0;
        if (t == T_Q8_0 || t == T_Q4_0 || t == T_Q4_1) for (int i = 0; i < k; i++) wf[i] = unif(-1, 1);
        switch (t) {
        case T_Q8_0: wb = nb * 34; ab = nb * 34; quantize_row_q8_0_ref(wf, (void *)w, k); quantize_row_q8_0_ref(x, (void *)a, k);
            dequantize_row_q8_0((void *)w, deq, k); ggml_vec_dot_q8_0_q8_0_generic(k, &dot, 0, w, 0, a, 0, 1); break;
        case T_Q4_0: wb = nb * 18; ab = nb * 34; quantize_row_q4_0_ref(wf, (void *)w, k); quantize_row_q8_0_ref(x, (void *)a, k);
            dequantize_row_q4_0((void *)w, deq, k); ggml_vec_dot_q4_0_q8_0_generic(k, &dot, 0, w, 0, a, 0, 1); break;
        case T_Q4_1: wb = nb * 20; ab = nb * 36; quantize_row_q4_1_ref(wf, (void *)w, k); quantize_row_q8_1_ref(x, (void *)a, k);
            dequantize_row_q4_1((void *)w, deq, k); ggml_vec_dot_q4_1_q8_1_generic(k, &dot, 0, w, 0, a, 0, 1); break;
        case T_Q4K: wb = nb * 144; ab = nb * 292;
            for (size_t i = 0; i < wb; i++) w[i] = (uint8_t)rnd();
            for (int b = 0; b < nb; b++) { block_q4_K *q = (block_q4_K *)w + b; q->d = GGML_FP32_TO_FP16(unif(1e-3f, 1e-2f)); q->dmin = GGML_FP32_TO_FP16(unif(1e-3f, 1e-2f)); }
            quantize_row_q8_K_ref(x, (void *)a, k);
            dequantize_row_q4_K((void *)w, deq, k); ggml_vec_dot_q4_K_q8_K_generic(k, &dot, 0, w, 0, a, 0, 1); break;
        case T_Q6K: wb = nb * 210; ab = nb * 292;
            for (size_t i = 0; i < wb; i++) w[i] = (uint8_t)rnd();
            for (int b = 0; b < nb; b++) ((block_q6_K *)w + b)->d = GGML_FP32_TO_FP16(unif(1e-4f, 1e-3f));
            quantize_row_q8_K_ref(x, (void *)a, k);
            dequantize_row_q6_K((void *)w, deq, k); ggml_vec_dot_q6_K_q8_K_generic(k, &dot, 0, w, 0, a, 0, 1); break;
        }
        uint32_t db; memcpy(&db, &dot, 4);
        printf("    (%d, %d, %llu, 0x%016llx, 0x%016llx, 0x%08x),\n", t, k, (unsigned long long)seed,
               (unsigned long long)fnv(a, ab), (unsigned long long)fnv(deq, k * 4), db);
    }
    printf("];\n\n");

    // K-quant blocks from ggml's own quantizers (real scale/min patterns),
    // with a fixed Q8_K activation, as raw bytes.
    st = 77;
    static float wf[512], x[512], deq[512]; static uint8_t w4[288], w6[420], a[584];
    for (int i = 0; i < 512; i++) { wf[i] = unif(-1, 1) * (i % 37 == 0 ? 4.0f : 1.0f); x[i] = unif(-2, 2); }
    quantize_row_q4_K_ref(wf, (void *)w4, 512); quantize_row_q6_K_ref(wf, (void *)w6, 512); quantize_row_q8_K_ref(x, (void *)a, 512);
    float d4, d6; ggml_vec_dot_q4_K_q8_K_generic(512, &d4, 0, w4, 0, a, 0, 1); ggml_vec_dot_q6_K_q8_K_generic(512, &d6, 0, w6, 0, a, 0, 1);
    printf("/// Two Q4_K blocks made by `quantize_row_q4_K_ref`.\npub(super) const Q4K_REF: [u8; 288] = [");
    for (int i = 0; i < 288; i++) printf("%s%d", i ? ", " : "", w4[i]);
    printf("];\n/// Two Q6_K blocks made by `quantize_row_q6_K_ref`.\npub(super) const Q6K_REF: [u8; 420] = [");
    for (int i = 0; i < 420; i++) printf("%s%d", i ? ", " : "", w6[i]);
    printf("];\n/// Seed of the Q8_K activation input: for each of 512 values, one draw for\n/// the weight input, then `x = uniform(-2, 2)`.\n");
    printf("pub(super) const KREF_SEED: u64 = 77;\n");
    dequantize_row_q4_K((void *)w4, deq, 512); uint64_t h4 = fnv(deq, 2048);
    dequantize_row_q6_K((void *)w6, deq, 512); uint64_t h6 = fnv(deq, 2048);
    uint32_t b4, b6; memcpy(&b4, &d4, 4); memcpy(&b6, &d6, 4);
    printf("/// (fnv64 of the Q8_K activation, of the dequantized Q4_K and Q6_K rows,\n/// dot bits Q4_K, dot bits Q6_K).\n");
    printf("pub(super) const KREF: (u64, u64, u64, u32, u32) = (0x%016llx, 0x%016llx, 0x%016llx, 0x%08x, 0x%08x);\n\n",
           (unsigned long long)fnv(a, 584), (unsigned long long)h4, (unsigned long long)h6, b4, b6);

    // x86 AVX2 Q8_0 / Q8_1 activation quantizers (127 / amax, ties to even).
    printf("/// (seed, k, fnv64 of llama.cpp's x86 AVX2 `quantize_row_q8_0` bytes, fnv64 of\n");
    printf("/// its `quantize_row_q8_1` bytes). Inputs as for `CASES` with the same seed.\n");
    printf("pub(super) const X86_Q8: &[(u64, usize, u64, u64)] = &[\n");
    for (int c = 0; c < 60; c++) {
        uint64_t seed = 5000 + c; st = seed;
        int k = 32 * (1 + c % 8);
        float mag = mags[c % 4];
        static float x[256]; static uint8_t q0[8 * 34], q1[8 * 36];
        for (int i = 0; i < k; i++) x[i] = unif(-mag, mag);
        if (c % 3 == 0) { for (int i = 0; i < k; i++) x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; x[0] = 127.0f; }
        if (c % 5 == 0) memset(x, 0, 32 * sizeof(float));
        quantize_row_q8_0(x, q0, k); quantize_row_q8_1(x, q1, k);
        printf("    (%llu, %d, 0x%016llx, 0x%016llx),\n", (unsigned long long)seed, k,
               (unsigned long long)fnv(q0, k / 32 * 34), (unsigned long long)fnv(q1, k / 32 * 36));
    }
    printf("];\n\n");

    // Conversions: fnv64 over 200k random f32 bit patterns.
    st = 5; uint64_t hb = 0xcbf29ce484222325ull, hh = 0xcbf29ce484222325ull;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rnd(); float f; memcpy(&f, &u, 4);
        uint16_t b = ggml_compute_fp32_to_bf16(f).bits;
        hb = (hb ^ (b & 0xff)) * 0x100000001b3ull; hb = (hb ^ (b >> 8)) * 0x100000001b3ull;
        if (isnan(f)) continue;
        uint16_t h = ggml_compute_fp32_to_fp16(f);
        hh = (hh ^ (h & 0xff)) * 0x100000001b3ull; hh = (hh ^ (h >> 8)) * 0x100000001b3ull;
    }
    printf("/// fnv64 of ggml's f32 -> bf16 of 200k random bit patterns (seed 5), and\n/// of f32 -> f16 of the non-NaN ones.\n");
    printf("pub(super) const CONV: (u64, u64) = (0x%016llx, 0x%016llx);\n", (unsigned long long)hb, (unsigned long long)hh);
    return 0;
}

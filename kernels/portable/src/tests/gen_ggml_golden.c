// Emits src/tests/ggml_golden.rs: outputs of llama.cpp's own C code on
// inputs the Rust test regenerates from a seed:
//
// - ggml's reference quantizers and dequantizers (`CASES`, `KREF`,
//   `CONV`);
// - the x86 AVX2 Q8_0 / Q8_1 activation quantizers (`X86_Q8`);
// - the dot products of llama.cpp's x86 AVX2 CPU backend at batch size 1
//   (`DOTS`, `KREF`): `ggml_vec_dot_*` from ggml-cpu/arch/x86/quants.c
//   for every quantized type, and for Q4_0 / Q4_K also the repacked path
//   (ggml-cpu/repack.cpp's repack + arch/x86/repack.cpp's
//   `ggml_gemv_*_8x8_*`, through gen_ggml_golden_repack.cpp).
//
// Everything is built as the oracle llama.cpp is: AVX2, FMA, F16C, BMI2,
// no AVX-512, no AVX-VNNI, no FMA contraction of scalar code (never
// -march=native, which selects the AVX-512 paths on an AVX-512 host).
//
// Not part of the build. To regenerate, from this directory, with
// G = llama.cpp's ggml directory (vendor/llama.cpp/ggml in the
// llama-cpp-python 0.3.36 sdist):
//
//   I="-I$G/include -I$G/src -I$G/src/ggml-cpu"
//   F="-O2 -mavx -mavx2 -mfma -mf16c -mbmi2 -msse4.2 -ffp-contract=off"
//   gcc $F $I -c $G/src/ggml-quants.c -o ref.o
//   gcc $F $I -c $G/src/ggml-cpu/quants.c -o generic.o
//   gcc $F $I -c $G/src/ggml-cpu/arch/x86/quants.c -o x86.o
//   g++ -std=c++17 $F $I -c $G/src/ggml-cpu/arch/x86/repack.cpp -o x86_repack.o
//   g++ -std=c++17 $F $I -ffunction-sections -fdata-sections \
//       -c gen_ggml_golden_repack.cpp -o repack.o
//   gcc $F $I -c gen_ggml_golden.c -o gen.o
//   g++ -Wl,--gc-sections gen.o repack.o x86_repack.o x86.o generic.o ref.o -lm -o gen
//   ./gen > ggml_golden.rs
//
// The output is left as printed (`#[rustfmt::skip]` on its module).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ggml.h"
#include "ggml-impl.h"
#include "ggml-quants.h"
#include "ggml-cpu/quants.h"

// The x86 AVX2 builds (ggml-cpu/arch/x86/quants.c) of the activation
// quantizers (quantize_row_q8_K is quantize_row_q8_K_ref there) and dot
// products: what ggml-cpu's type traits use as from_float and vec_dot.
void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_q8_1(const float *x, void *y, int64_t k);
void quantize_row_q8_K(const float *x, void *y, int64_t k);
typedef void (*vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
void ggml_vec_dot_q8_0_q8_0(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_0_q8_0(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_1_q8_1(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_K_q8_K(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q6_K_q8_K(int, float *, size_t, const void *, size_t, const void *, size_t, int);
// gen_ggml_golden_repack.cpp: repack 8 rows of k values, multiply them with
// one activation row, write the 8 results.
void golden_gemv_q4_0(int k, const void *w, const void *act, float *out);
void golden_gemv_q4_K(int k, const void *w, const void *act, float *out);

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

// Random K-quant blocks with model-like scales: random bytes, then d (and
// dmin) drawn in order per block.
static void random_k_blocks(int t, uint8_t *w, int nb) {
    size_t bb = t == T_Q4K ? 144 : 210;
    for (size_t i = 0; i < nb * bb; i++) w[i] = (uint8_t)rnd();
    for (int b = 0; b < nb; b++) {
        if (t == T_Q4K) { block_q4_K *q = (block_q4_K *)w + b; q->d = GGML_FP32_TO_FP16(unif(1e-3f, 1e-2f)); q->dmin = GGML_FP32_TO_FP16(unif(1e-3f, 1e-2f)); }
        else ((block_q6_K *)w + b)->d = GGML_FP32_TO_FP16(unif(1e-4f, 1e-3f));
    }
}

// The DOTS table: eight weight rows times one activation row, through
// llama.cpp's x86 AVX2 batch-1 paths.
static void dots(void) {
    static const float mags[4] = {1e-3f, 0.5f, 1.0f, 300.0f};
    static const int types[5] = {T_Q8_0, T_Q4_0, T_Q4_1, T_Q4K, T_Q6K};
    static const int nbs32[6] = {1, 2, 3, 5, 7, 128}, nbsk[6] = {1, 2, 3, 5, 7, 16};
    static const int wbytes[8] = {0, 0, 0, 34, 18, 20, 144, 210};
    printf("/// (dtype tag, k, seed, fnv64 of the activation bytes, f32 bits of the eight\n");
    printf("/// rows' dots as llama.cpp computes a tied embedding (`ggml_vec_dot_*`), and\n");
    printf("/// as it computes a projection (the repacked `ggml_gemv_*_8x8_*` for Q4_0 and\n");
    printf("/// Q4_K, `ggml_vec_dot_*` otherwise)). Inputs: see `regenerate_dot` in ggml.rs.\n");
    printf("pub(super) type Dots = (u8, usize, u64, u64, [u32; 8], [u32; 8]);\n");
    printf("pub(super) const DOTS: &[Dots] = &[\n");
    for (int c = 0; c < 120; c++) {
        uint64_t seed = 2000 + c; st = seed;
        int t = types[c % 5];
        int kq = t == T_Q4K || t == T_Q6K;
        int qk = kq ? 256 : 32;
        int nb = (kq ? nbsk : nbs32)[(c / 5) % 6], k = nb * qk;
        float mag = mags[c % 4];
        int extreme = c % 13 == 6;
        static float x[4096], wf[4096];
        static uint8_t w[8 * 4352], a[4672];
        size_t rb = (size_t)nb * wbytes[t];
        for (int i = 0; i < k; i++) x[i] = unif(-mag, mag);
        if (c % 7 == 0) { for (int i = 0; i < k; i++) x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; x[0] = 127.0f; }
        if (c % 11 == 0) memset(x, 0, qk * sizeof(float));
        if (extreme) for (int i = 0; i < k; i++) x[i] = mag;
        for (int r = 0; r < 8; r++) {
            uint8_t *row = w + r * rb;
            if (!kq) {
                for (int i = 0; i < k; i++) wf[i] = extreme ? 1.0f : unif(-1, 1);
                if (t == T_Q8_0) quantize_row_q8_0_ref(wf, (void *)row, k);
                else if (t == T_Q4_0) quantize_row_q4_0_ref(wf, (void *)row, k);
                else quantize_row_q4_1_ref(wf, (void *)row, k);
            } else {
                random_k_blocks(t, row, nb);
                // Largest quants and scales: integer lanes above 2^24.
                for (int b = 0; extreme && b < nb; b++) {
                    if (t == T_Q4K) { block_q4_K *q = (block_q4_K *)row + b; memset(q->scales, 0xff, 12); memset(q->qs, 0xff, 128); }
                    else { block_q6_K *q = (block_q6_K *)row + b; memset(q->ql, 0xff, 128); memset(q->qh, 0xff, 64);
                           for (int j = 0; j < 16; j++) q->scales[j] = j % 2 ? -128 : 127; }
                }
            }
        }
        size_t ab; vec_dot_t vd;
        memset(a, 0, sizeof a); // quantize_row_q8_K leaves an all-zero block's bsums unwritten
        switch (t) {
        case T_Q8_0: ab = nb * 34; quantize_row_q8_0(x, a, k); vd = ggml_vec_dot_q8_0_q8_0; break;
        case T_Q4_0: ab = nb * 34; quantize_row_q8_0(x, a, k); vd = ggml_vec_dot_q4_0_q8_0; break;
        case T_Q4_1: ab = nb * 36; quantize_row_q8_1(x, a, k); vd = ggml_vec_dot_q4_1_q8_1; break;
        case T_Q4K: ab = nb * 292; quantize_row_q8_K(x, a, k); vd = ggml_vec_dot_q4_K_q8_K; break;
        default: ab = nb * 292; quantize_row_q8_K(x, a, k); vd = ggml_vec_dot_q6_K_q8_K; break;
        }
        float tied[8], proj[8];
        for (int r = 0; r < 8; r++) vd(k, &tied[r], 0, w + r * rb, 0, a, 0, 1);
        if (t == T_Q4_0) golden_gemv_q4_0(k, w, a, proj);
        else if (t == T_Q4K) golden_gemv_q4_K(k, w, a, proj);
        else memcpy(proj, tied, sizeof tied);
        printf("    (%d, %d, %llu, 0x%016llx, [", t, k, (unsigned long long)seed, (unsigned long long)fnv(a, ab));
        for (int r = 0; r < 8; r++) { uint32_t b; memcpy(&b, &tied[r], 4); printf("%s0x%08x", r ? ", " : "", b); }
        printf("], [");
        for (int r = 0; r < 8; r++) { uint32_t b; memcpy(&b, &proj[r], 4); printf("%s0x%08x", r ? ", " : "", b); }
        printf("]),\n");
    }
    printf("];\n\n");
}

int main(void) {
    for (int i = 0; i < 65536; i++) ggml_table_f32_f16[i] = ggml_compute_fp16_to_fp32((ggml_fp16_t)i);
    printf("// @generated by gen_ggml_golden.c from llama.cpp (llama-cpp-python 0.3.36):\n");
    printf("// ggml-quants.c and the x86 AVX2 build of ggml-cpu (quants.c, repack.cpp).\n\n");
    printf("/// (dtype tag, k, seed, fnv64 of the activation bytes of ggml's reference\n");
    printf("/// quantizer, fnv64 of the dequantized weights).\n");
    printf("pub(super) const CASES: &[(u8, usize, u64, u64, u64)] = &[\n");
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
        size_t ab = 0;
        if (t == T_Q8_0 || t == T_Q4_0 || t == T_Q4_1) for (int i = 0; i < k; i++) wf[i] = unif(-1, 1);
        switch (t) {
        case T_Q8_0: ab = nb * 34; quantize_row_q8_0_ref(wf, (void *)w, k); quantize_row_q8_0_ref(x, (void *)a, k);
            dequantize_row_q8_0((void *)w, deq, k); break;
        case T_Q4_0: ab = nb * 34; quantize_row_q4_0_ref(wf, (void *)w, k); quantize_row_q8_0_ref(x, (void *)a, k);
            dequantize_row_q4_0((void *)w, deq, k); break;
        case T_Q4_1: ab = nb * 36; quantize_row_q4_1_ref(wf, (void *)w, k); quantize_row_q8_1_ref(x, (void *)a, k);
            dequantize_row_q4_1((void *)w, deq, k); break;
        case T_Q4K: ab = nb * 292; random_k_blocks(t, w, nb);
            quantize_row_q8_K_ref(x, (void *)a, k); dequantize_row_q4_K((void *)w, deq, k); break;
        case T_Q6K: ab = nb * 292; random_k_blocks(t, w, nb);
            quantize_row_q8_K_ref(x, (void *)a, k); dequantize_row_q6_K((void *)w, deq, k); break;
        }
        printf("    (%d, %d, %llu, 0x%016llx, 0x%016llx),\n", t, k, (unsigned long long)seed,
               (unsigned long long)fnv(a, ab), (unsigned long long)fnv(deq, k * 4));
    }
    printf("];\n\n");

    // K-quant blocks from ggml's own quantizers (real scale/min patterns),
    // with a fixed Q8_K activation, as raw bytes.
    st = 77;
    static float wf[512], x[512], deq[512]; static uint8_t w4[288], w6[420], a[584];
    for (int i = 0; i < 512; i++) { wf[i] = unif(-1, 1) * (i % 37 == 0 ? 4.0f : 1.0f); x[i] = unif(-2, 2); }
    quantize_row_q4_K_ref(wf, (void *)w4, 512); quantize_row_q6_K_ref(wf, (void *)w6, 512); quantize_row_q8_K_ref(x, (void *)a, 512);
    float d4, d6, g4[8]; static uint8_t w4x8[8 * 288];
    ggml_vec_dot_q4_K_q8_K(512, &d4, 0, w4, 0, a, 0, 1); ggml_vec_dot_q6_K_q8_K(512, &d6, 0, w6, 0, a, 0, 1);
    for (int r = 0; r < 8; r++) memcpy(w4x8 + 288 * r, w4, 288);
    golden_gemv_q4_K(512, w4x8, a, g4);
    for (int r = 1; r < 8; r++) if (memcmp(&g4[r], &g4[0], 4)) abort();
    printf("/// Two Q4_K blocks made by `quantize_row_q4_K_ref`.\npub(super) const Q4K_REF: [u8; 288] = [");
    for (int i = 0; i < 288; i++) printf("%s%d", i ? ", " : "", w4[i]);
    printf("];\n/// Two Q6_K blocks made by `quantize_row_q6_K_ref`.\npub(super) const Q6K_REF: [u8; 420] = [");
    for (int i = 0; i < 420; i++) printf("%s%d", i ? ", " : "", w6[i]);
    printf("];\n/// Seed of the Q8_K activation input: for each of 512 values, one draw for\n/// the weight input, then `x = uniform(-2, 2)`.\n");
    printf("pub(super) const KREF_SEED: u64 = 77;\n");
    dequantize_row_q4_K((void *)w4, deq, 512); uint64_t h4 = fnv(deq, 2048);
    dequantize_row_q6_K((void *)w6, deq, 512); uint64_t h6 = fnv(deq, 2048);
    uint32_t b4, p4, b6; memcpy(&b4, &d4, 4); memcpy(&p4, &g4[0], 4); memcpy(&b6, &d6, 4);
    printf("/// (fnv64 of the Q8_K activation, of the dequantized Q4_K and Q6_K rows;\n");
    printf("/// f32 bits of the x86 AVX2 dots: Q4_K `ggml_vec_dot_q4_K_q8_K`, Q4_K repacked\n");
    printf("/// `ggml_gemv_q4_K_8x8_q8_K` (eight copies of the row), Q6_K `ggml_vec_dot_q6_K_q8_K`).\n");
    printf("pub(super) const KREF: (u64, u64, u64, u32, u32, u32) = (0x%016llx, 0x%016llx, 0x%016llx, 0x%08x, 0x%08x, 0x%08x);\n\n",
           (unsigned long long)fnv(a, 584), (unsigned long long)h4, (unsigned long long)h6, b4, p4, b6);

    dots();

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

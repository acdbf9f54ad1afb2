// Emits src/tests/float_golden.rs: outputs of llama.cpp's x86 AVX2 float
// kernels (ggml-cpu/vec.cpp and vec.h) on inputs the Rust test regenerates
// from a seed: ggml_vec_dot_f32 / _f16 / _bf16, ggml_vec_swiglu_f32,
// ggml_v_expf / ggml_v_silu, F16C f32 -> f16 conversion, and one attention
// head (non-flash, f16 KV cache, batch size 1).
//
// The attention chain is composed here from ggml's own vec functions in
// the order ggml-cpu/ops.cpp and ggml-cpu.c run them (mul_mat(k, q) with q
// converted to f16, ggml_compute_forward_soft_max_f32, mul_mat(v, kq) with
// V transposed and kq converted to f16), over the KV length llama.cpp pads
// to (a multiple of 256, padding cells masked with -inf, K and V zero).
//
// Not part of the build. To regenerate, with G = llama.cpp's ggml directory
// (vendor/llama.cpp/ggml in the llama-cpp-python 0.3.36 sdist), on an x86-64
// machine with AVX2 and FMA:
//
//   F="-O2 -mavx -mavx2 -mfma -mf16c -mbmi2 -msse4.2 -ffp-contract=off"
//   I="-I$G/include -I$G/src -I$G/src/ggml-cpu"
//   g++ $F $I -c $G/src/ggml-cpu/vec.cpp -o vec.o
//   g++ $F $I gen_float_golden.cpp vec.o -lm -o gen
//   ./gen > float_golden.rs && rustfmt --edition 2021 float_golden.rs
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <vector>
#include "vec.h"

#if defined(__AVX512F__) || !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "build with -mavx2 -mfma -mf16c and without AVX-512 (see the header)"
#endif

float ggml_table_f32_f16[1 << 16];

static uint64_t st;
static uint64_t rnd(void) {
    st += 0x9e3779b97f4a7c15ull; uint64_t z = st;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float unif(float lo, float hi) { return lo + (hi - lo) * ((float)(rnd() >> 40) / 16777216.0f); }
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint64_t fnv_step(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}
static const uint64_t FNV0 = 0xcbf29ce484222325ull;
// fnv64 of f32 bits, every NaN written as 0x7fc00000.
static uint64_t fnv_f32(const float *x, size_t n) {
    uint64_t h = FNV0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = isnan(x[i]) ? 0x7fc00000u : bits(x[i]);
        h = fnv_step(h, &u, 4);
    }
    return h;
}
// ggml_cpu_fp32_to_fp16 with F16C: _mm256_cvtps_ph / _cvtss_sh, both
// round to nearest even.
static ggml_fp16_t to_f16(float x) { return GGML_CPU_FP32_TO_FP16(x); }
static float f16(ggml_fp16_t h) { return GGML_CPU_FP16_TO_FP32(h); }

// A row of n values: uniform in [-mag, mag), and when `spread`, each
// scaled by 2^e with e uniform in -12..=12.
static void fill(float *x, int n, float mag, int spread) {
    for (int i = 0; i < n; i++) {
        x[i] = unif(-mag, mag);
        if (spread) x[i] = ldexpf(x[i], (int)(rnd() % 25) - 12);
    }
}

static void dots(void) {
    printf("/// (ggml type id, n, seed, magnitude bits, spread, f32 bits of the dot).\n");
    printf("pub(super) const DOTS: &[(u8, usize, u64, u32, bool, u32)] = &[\n");
    const int ns[] = {1, 7, 8, 31, 32, 33, 64, 95, 96, 100, 257, 1000, 3072};
    const float mags[] = {1e-3f, 1.0f, 300.0f};
    const uint8_t tags[] = {0, 1, 30}; // F32, F16, BF16 as ggml type ids
    int c = 0;
    for (int t = 0; t < 3; t++) {
        for (int ni = 0; ni < 13; ni++) {
            for (int v = 0; v < 2; v++, c++) {
                int n = ns[ni];
                float mag = mags[(ni + v) % 3];
                int spread = v;
                // BF16 with tiny values: products underflow in f32.
                if (tags[t] == 30 && ni % 3 == 2) mag = 1e-19f;
                // F16: keep values finite (|x| < 65504).
                if (tags[t] == 1 && spread && mag > 1.0f) mag = 1.0f;
                uint64_t seed = 7000 + c; st = seed;
                std::vector<float> x(n), y(n);
                fill(x.data(), n, mag, spread);
                fill(y.data(), n, mag, spread);
                float dot = 0;
                if (tags[t] == 0) {
                    ggml_vec_dot_f32(n, &dot, 0, x.data(), 0, y.data(), 0, 1);
                } else if (tags[t] == 1) {
                    std::vector<ggml_fp16_t> xh(n), yh(n);
                    for (int i = 0; i < n; i++) { xh[i] = to_f16(x[i]); yh[i] = to_f16(y[i]); }
                    ggml_vec_dot_f16(n, &dot, 0, xh.data(), 0, yh.data(), 0, 1);
                } else {
                    std::vector<ggml_bf16_t> xb(n), yb(n);
                    for (int i = 0; i < n; i++) { xb[i] = GGML_FP32_TO_BF16(x[i]); yb[i] = GGML_FP32_TO_BF16(y[i]); }
                    ggml_vec_dot_bf16(n, &dot, 0, xb.data(), 0, yb.data(), 0, 1);
                }
                printf("    (%u, %d, %llu, 0x%08x, %s, 0x%08x),\n", tags[t], n,
                       (unsigned long long)seed, bits(mag), spread ? "true" : "false", bits(dot));
            }
        }
    }
    printf("];\n\n");
}

static void swiglu(void) {
    printf("/// (n, seed, fnv64 of the output bits): gate in [-30, 30), some\n");
    printf("/// entries replaced by specials, up in [-3, 3). Widths are multiples of\n");
    printf("/// 8 (a tail takes the C library's expf, which phi-edge does not copy).\n");
    printf("pub(super) const SWIGLU: &[(usize, u64, u64)] = &[\n");
    const int ns[] = {8, 16, 24, 64, 104, 1000, 1536, 2048, 8192};
    const float specials[] = {0.0f, -0.0f, 88.0f, 89.0f, -88.0f, -89.0f, -104.0f, 120.0f, -200.0f, 1e-30f, -1e-30f};
    for (int c = 0; c < 9; c++) {
        int n = ns[c];
        uint64_t seed = 8000 + c; st = seed;
        std::vector<float> g(n), u(n), y(n);
        fill(g.data(), n, 30.0f, 0);
        fill(u.data(), n, 3.0f, 0);
        for (int i = 0; i < n; i++) {
            if (rnd() % 8 == 0) g[i] = specials[rnd() % 11];
        }
        ggml_vec_swiglu_f32(n, y.data(), g.data(), u.data());
        printf("    (%d, %llu, 0x%016llx),\n", n, (unsigned long long)seed, (unsigned long long)fnv_f32(y.data(), n));
    }
    printf("];\n\n");
}

// Inputs of the expf checks: 4096 groups of 8, uniform in [-110, 100),
// then every f32 bit pattern with a stride, then the specials.
static std::vector<float> exp_inputs(void) {
    std::vector<float> x;
    st = 9000;
    for (int i = 0; i < 4096 * 8; i++) x.push_back(unif(-110.0f, 100.0f));
    for (uint64_t u = 0; u < (1ull << 32); u += 65521) x.push_back(from_bits((uint32_t)u));
    const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, 0x1.62e42ep6f, 0x1.62e430p6f,
                        -0x1.9fe368p6f, -0x1.9fe36ap6f, -87.33f, -87.34f, -103.9f, 87.3365f, -87.3365f};
    for (float v : sp) x.push_back(v);
    while (x.size() % 8) x.push_back(1.0f);
    return x;
}

static void expf_checks(void) {
    std::vector<float> x = exp_inputs(), b(x.size());
    for (size_t i = 0; i < x.size(); i += 8) _mm256_storeu_ps(&b[i], ggml_v_expf(_mm256_loadu_ps(&x[i])));
    printf("/// Number of expf inputs (see `exp_inputs`) and fnv64 of ggml's AVX2\n");
    printf("/// `ggml_v_expf` over them.\n");
    printf("pub(super) const V_EXPF: (usize, u64) = (%zu, 0x%016llx);\n\n", x.size(),
           (unsigned long long)fnv_f32(b.data(), b.size()));
    for (size_t i = 0; i < x.size(); i += 8) _mm256_storeu_ps(&b[i], ggml_v_silu(_mm256_loadu_ps(&x[i])));
    printf("/// fnv64 of ggml's AVX2 `ggml_v_silu` over the expf inputs.\n");
    printf("pub(super) const V_SILU: u64 = 0x%016llx;\n\n", (unsigned long long)fnv_f32(b.data(), b.size()));
}

static void conversions(void) {
    // f32 -> f16 of random bit patterns (NaNs included), 8 at a time with
    // _mm256_cvtps_ph as ggml_cpu_fp32_to_fp16 does.
    st = 9100;
    uint64_t h = FNV0;
    for (int i = 0; i < 200000; i += 8) {
        float x[8]; uint16_t y[8];
        for (int l = 0; l < 8; l++) x[l] = from_bits((uint32_t)rnd());
        _mm_storeu_si128((__m128i *)y, _mm256_cvtps_ph(_mm256_loadu_ps(x), _MM_FROUND_TO_NEAREST_INT));
        h = fnv_step(h, y, sizeof y);
    }
    printf("/// fnv64 of F16C's f32 -> f16 of 200000 random bit patterns (seed 9100).\n");
    printf("pub(super) const F16C: u64 = 0x%016llx;\n\n", (unsigned long long)h);
}

static void attention(void) {
    printf("/// (head_dim, n_kv, seed, query magnitude bits, scale bits, fnv64 of the\n");
    printf("/// scores `kq`, of the softmax output before its f16 rounding, of the f16\n");
    printf("/// probabilities, and of the output; the hashes cover the n_kv real cells).\n");
    printf("pub(super) type AttentionCase = (usize, usize, u64, u32, u32, u64, u64, u64, u64);\n\n");
    printf("/// The attention cases.\n");
    printf("pub(super) const ATTENTION: &[AttentionCase] = &[\n");
    struct { int hd, n_kv; float amp; } cases[] = {
        {64, 1, 2.0f}, {64, 5, 2.0f}, {96, 33, 2.0f}, {128, 200, 2.0f}, {96, 256, 2.0f},
        {80, 300, 2.0f}, {64, 257, 4.0f}, {100, 40, 1.0f}, {96, 70, 40.0f}, {128, 9, 200.0f},
        {600, 7, 1.0f}, {32, 513, 3.0f}, {64, 1000, 8.0f}, {96, 1500, 30.0f},
    };
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        const int hd = cases[c].hd, n_kv = cases[c].n_kv, stride = hd + 16;
        const int n_pad = (n_kv + 255) / 256 * 256;
        const float scale = 1.0f / sqrtf((float)hd);
        uint64_t seed = 9200 + c; st = seed;
        std::vector<float> q(hd);
        fill(q.data(), hd, cases[c].amp, 0);
        // The cache: rows j < n_kv hold random f16 values, padding rows zero.
        std::vector<ggml_fp16_t> k((size_t)n_pad * stride, 0), v((size_t)n_pad * stride, 0);
        for (int i = 0; i < n_kv * stride; i++) k[i] = to_f16(unif(-1.0f, 1.0f));
        for (int i = 0; i < n_kv * stride; i++) v[i] = to_f16(unif(-1.0f, 1.0f));

        // kq = mul_mat(k, q): q converted to f16, one ggml_vec_dot_f16 per cell.
        std::vector<ggml_fp16_t> qh(hd);
        for (int d = 0; d < hd; d++) qh[d] = to_f16(q[d]);
        std::vector<float> kq(n_pad), wp(n_pad), dp(n_pad);
        for (int j = 0; j < n_pad; j++) ggml_vec_dot_f16(hd, &kq[j], 0, &k[(size_t)j * stride], 0, qh.data(), 0, 1);

        // ggml_compute_forward_soft_max_f32 with the KQ mask (slope 1).
        ggml_vec_cpy_f32(n_pad, wp.data(), kq.data());
        ggml_vec_scale_f32(n_pad, wp.data(), scale);
        for (int i = 0; i < n_pad; i++) wp[i] += 1.0f * (i < n_kv ? 0.0f : -INFINITY);
        float max = -INFINITY;
        ggml_vec_max_f32(n_pad, &max, wp.data());
        ggml_float sum = ggml_vec_soft_max_f32(n_pad, dp.data(), wp.data(), max);
        sum = 1.0 / sum;
        ggml_vec_scale_f32(n_pad, dp.data(), sum);

        // kqv = mul_mat(v, kq): kq converted to f16, V transposed, one
        // ggml_vec_dot_f16 per output dimension over the n_pad cells.
        std::vector<ggml_fp16_t> ph(n_pad), vt(n_pad);
        std::vector<float> p(n_kv), out(hd);
        for (int j = 0; j < n_pad; j++) ph[j] = to_f16(dp[j]);
        for (int j = 0; j < n_kv; j++) p[j] = f16(ph[j]);
        for (int d = 0; d < hd; d++) {
            for (int j = 0; j < n_pad; j++) vt[j] = v[(size_t)j * stride + d];
            ggml_vec_dot_f16(n_pad, &out[d], 0, vt.data(), 0, ph.data(), 0, 1);
        }
        printf("    (%d, %d, %llu, 0x%08x, 0x%08x, 0x%016llx, 0x%016llx, 0x%016llx, 0x%016llx),\n", hd, n_kv,
               (unsigned long long)seed, bits(cases[c].amp), bits(scale),
               (unsigned long long)fnv_f32(kq.data(), n_kv), (unsigned long long)fnv_f32(dp.data(), n_kv),
               (unsigned long long)fnv_f32(p.data(), n_kv), (unsigned long long)fnv_f32(out.data(), hd));
    }
    printf("];\n");
}

int main(void) {
    for (int i = 0; i < 65536; i++) ggml_table_f32_f16[i] = ggml_compute_fp16_to_fp32((ggml_fp16_t)i);
    printf("// @generated by gen_float_golden.cpp from llama.cpp (llama-cpp-python\n");
    printf("// 0.3.36) ggml-cpu/vec.cpp and vec.h, built for x86 AVX2+FMA+F16C without\n");
    printf("// AVX-512, -ffp-contract=off. Inputs are regenerated by float.rs.\n\n");
    dots();
    swiglu();
    expf_checks();
    conversions();
    attention();
    return 0;
}

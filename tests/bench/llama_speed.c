/*
 * llama.cpp's speed on a model inside an emulated guest, for `cargo xtask
 * bench arm` and `cargo xtask bench riscv`: the C twin of llama_speed.py
 * (same measurement, same JSON line), linked statically against the
 * pinned llama.cpp cross-built for the guest's ISA.
 *
 *     llama_speed MODEL.gguf PROMPT N_GEN N_THREADS N_CTX
 *
 * - The prompt, tokenized as `phi-edge run` does (BOS if the model's
 *   metadata asks for it), is one llama_decode of one batch (n_batch =
 *   n_ubatch = N_CTX), logits for its last position only.
 * - Then N_GEN tokens are generated greedily (argmax, outside the timed
 *   region): the first from the prefill's logits, each later one from a
 *   llama_decode of the previous token, so N_GEN tokens take N_GEN - 1
 *   single-token decodes.
 * - Each llama_decode (and llama_synchronize) is timed with
 *   CLOCK_MONOTONIC. Under `qemu-system -icount shift=0` the guest clock
 *   advances one nanosecond per executed instruction, so the nanoseconds
 *   printed are instructions.
 *
 * n_threads = n_threads_batch = N_THREADS; flash attention off (phi-edge
 * has none); llama.cpp's log shows errors only.
 *
 * Prints one JSON line: {"n_prompt", "n_gen", "n_decode", "prefill_ns",
 * "decode_ns", "prefill_tok_s", "decode_tok_s", "tokens", "system_info"},
 * where "tokens" are the generated token ids.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

/* Whether the last message's level (continuations inherit it) is an error. */
static int last_is_error;

static void log_errors(enum ggml_log_level level, const char *text, void *user_data) {
    (void)user_data;
    if (level != GGML_LOG_LEVEL_CONT) {
        last_is_error = level == GGML_LOG_LEVEL_ERROR;
    }
    if (last_is_error) {
        fputs(text, stderr);
    }
}

static void fail(const char *what, long value) {
    fprintf(stderr, "llama_speed: %s (%ld)\n", what, value);
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A whole number of at least 1, or exit. */
static long positive(const char *arg, const char *name) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end != '\0' || v < 1) {
        fprintf(stderr, "llama_speed: %s must be a whole number of at least 1, got `%s`\n", name, arg);
        exit(2);
    }
    return v;
}

/* One timed llama_decode (and the wait for its result); its nanoseconds. */
static int64_t timed_decode(struct llama_context *ctx, llama_token *tokens, int32_t n) {
    struct llama_batch batch = llama_batch_get_one(tokens, n);
    int64_t t0 = now_ns();
    int32_t rc = llama_decode(ctx, batch);
    llama_synchronize(ctx);
    int64_t dt = now_ns() - t0;
    if (rc != 0) {
        fail("llama_decode failed", rc);
    }
    return dt;
}

/* The argmax of the last position's logits (the first on ties). */
static llama_token greedy(struct llama_context *ctx, int32_t n_vocab) {
    const float *logits = llama_get_logits_ith(ctx, -1);
    llama_token best = 0;
    for (int32_t i = 1; i < n_vocab; i++) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: llama_speed MODEL.gguf PROMPT N_GEN N_THREADS N_CTX\n");
        return 2;
    }
    const char *path = argv[1], *text = argv[2];
    long n_gen = positive(argv[3], "N_GEN");
    long n_threads = positive(argv[4], "N_THREADS");
    long n_ctx = positive(argv[5], "N_CTX");

    llama_log_set(log_errors, NULL);
    llama_backend_init();

    struct llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(path, mparams);
    if (!model) {
        fprintf(stderr, "llama_speed: llama.cpp cannot load %s\n", path);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int32_t n_vocab = llama_vocab_n_tokens(vocab);

    int32_t len = (int32_t)strlen(text);
    llama_token *ids = malloc(sizeof(llama_token) * (size_t)(len + 2));
    if (!ids) {
        fail("out of memory", len);
    }
    int32_t n_prompt = llama_tokenize(vocab, text, len, ids, len + 2, true, false);
    if (n_prompt <= 0) {
        fail("llama_tokenize failed", n_prompt);
    }
    if (n_prompt + n_gen > n_ctx) {
        fail("the prompt and the generated tokens do not fit the context", n_prompt + n_gen);
    }

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t)n_ctx;
    cparams.n_batch = (uint32_t)n_ctx;
    cparams.n_ubatch = (uint32_t)n_ctx;
    cparams.n_seq_max = 1;
    cparams.n_threads = (int32_t)n_threads;
    cparams.n_threads_batch = (int32_t)n_threads;
    cparams.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cparams);
    if (!ctx) {
        fail("llama.cpp cannot create a context", n_ctx);
    }

    llama_token *generated = malloc(sizeof(llama_token) * (size_t)n_gen);
    if (!generated) {
        fail("out of memory", n_gen);
    }
    int64_t prefill_ns = timed_decode(ctx, ids, n_prompt);
    int64_t decode_ns = 0;
    generated[0] = greedy(ctx, n_vocab);
    for (long i = 1; i < n_gen; i++) {
        llama_token token = generated[i - 1];
        decode_ns += timed_decode(ctx, &token, 1);
        generated[i] = greedy(ctx, n_vocab);
    }

    printf("{\"n_prompt\": %d, \"n_gen\": %ld, \"n_decode\": %ld, \"prefill_ns\": %lld, \"decode_ns\": %lld, ",
           n_prompt, n_gen, n_gen - 1, (long long)prefill_ns, (long long)decode_ns);
    printf("\"prefill_tok_s\": %.6f, \"decode_tok_s\": %.6f, \"tokens\": [",
           n_prompt * 1e9 / (double)prefill_ns, decode_ns > 0 ? n_gen * 1e9 / (double)decode_ns : 0.0);
    for (long i = 0; i < n_gen; i++) {
        printf(i ? ", %d" : "%d", generated[i]);
    }
    /* The system info has no quotes or backslashes to escape. */
    printf("], \"system_info\": \"%s\"}\n", llama_print_system_info());

    free(generated);
    free(ids);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

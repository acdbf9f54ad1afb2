/*
 * phi-edge-generate: the greedy continuation of a raw prompt, through the
 * phi-edge C API.
 *
 *     phi-edge-generate MODEL.phi PROMPT MAX_TOKENS
 *
 * Reads the image into memory, opens and verifies it, sizes an arena for
 * the prompt, makes a generator in it, sets the prompt (no chat template;
 * BOS as the model says) and writes the generated text to stdout as it
 * comes, then one newline: byte for byte what
 *
 *     phi-edge run --temp 0 --max-tokens MAX_TOKENS --model MODEL.phi --prompt PROMPT
 *
 * prints on stdout. Errors go to stderr, with exit status 1 (2 for bad
 * arguments). The library allocates nothing: the two malloc calls here,
 * for the image and the arena, are the program's own; firmware would use
 * memory-mapped flash and a static arena instead.
 *
 * Build: cargo xtask c-example [--target aarch64-unknown-linux-gnu]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi_edge.h"

/* Prints "error: WHAT: STATUS MESSAGE (DETAIL)" on stderr. */
static void report(const char *what, phi_edge_status status, const char *detail)
{
    fprintf(stderr, "error: %s: %s", what, phi_edge_strerror(status));
    if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, " (%s)", detail);
    fputc('\n', stderr);
}

/* Reports an error of a call on the model, with its details. */
static int model_failed(phi_edge_model *model, const char *what, phi_edge_status status)
{
    char detail[256];
    if (phi_edge_model_error(model, detail, sizeof detail) != PHI_EDGE_STATUS_OK)
        detail[0] = '\0';
    report(what, status, detail);
    return 1;
}

/* Reports an error of a call on the generator, with its details. */
static int generator_failed(phi_edge_generator *gen, const char *what, phi_edge_status status)
{
    char detail[256];
    if (phi_edge_generator_error(gen, detail, sizeof detail) != PHI_EDGE_STATUS_OK)
        detail[0] = '\0';
    report(what, status, detail);
    return 1;
}

/* Reads the whole file at PATH into a malloc'ed buffer. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    uint8_t *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "error: cannot size %s: %s\n", path, strerror(errno));
    } else if ((data = malloc(size > 0 ? (size_t)size : 1)) == NULL) {
        fprintf(stderr, "error: no memory for %ld bytes of %s\n", size, path);
    } else if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "error: cannot read %s\n", path);
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* Writes LEN bytes of generated text to stdout at once. */
static void emit(const char *text, size_t len)
{
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* Generates up to MAX_TOKENS tokens; 0 on success. */
static int generate(phi_edge_generator *gen, unsigned long max_tokens)
{
    char piece[PHI_EDGE_TEXT_CAP];
    size_t len = 0;
    for (unsigned long i = 0; i < max_tokens; i++) {
        phi_edge_status s = phi_edge_next(gen, piece, sizeof piece, &len);
        if (s == PHI_EDGE_STATUS_OK) {
            emit(piece, len);
            continue;
        }
        if (s == PHI_EDGE_STATUS_DONE || s == PHI_EDGE_STATUS_CONTEXT_FULL) {
            emit(piece, len);
            emit("\n", 1);
            if (s == PHI_EDGE_STATUS_CONTEXT_FULL) {
                report("generation stopped", s, NULL);
                return 1;
            }
            return 0;
        }
        emit("\n", 1);
        return generator_failed(gen, "cannot generate", s);
    }
    /* Stopped on our own limit: flush an incomplete UTF-8 character. */
    phi_edge_status s = phi_edge_finish(gen, piece, sizeof piece, &len);
    if (s != PHI_EDGE_STATUS_OK)
        return generator_failed(gen, "cannot finish", s);
    emit(piece, len);
    emit("\n", 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.phi PROMPT MAX_TOKENS\n", argc > 0 ? argv[0] : "phi-edge-generate");
        return 2;
    }
    const char *prompt = argv[2];
    char *end = NULL;
    errno = 0;
    unsigned long max_tokens = strtoul(argv[3], &end, 10);
    if (errno != 0 || end == argv[3] || *end != '\0' || argv[3][0] == '-') {
        fprintf(stderr, "error: MAX_TOKENS must be a number, not %s\n", argv[3]);
        return 2;
    }
    size_t prompt_len = strlen(prompt);
    if (prompt_len > UINT32_MAX) {
        fprintf(stderr, "error: the prompt is too long\n");
        return 2;
    }

    size_t image_len = 0;
    uint8_t *image = read_file(argv[1], &image_len);
    if (image == NULL)
        return 1;

    int rc = 1;
    uint8_t *arena = NULL;
    phi_edge_model model;
    phi_edge_status s = phi_edge_open(&model, image, image_len);
    if (s != PHI_EDGE_STATUS_OK) {
        rc = model_failed(&model, "cannot open the model", s);
        goto out;
    }
    s = phi_edge_verify(&model);
    if (s != PHI_EDGE_STATUS_OK) {
        rc = model_failed(&model, "the model is corrupted", s);
        goto out;
    }

    /* Greedy, the model's context (at most 4096 tokens, as phi-edge run),
     * room for exactly this prompt. */
    phi_edge_options opts = phi_edge_options_default();
    opts.max_prompt_bytes = prompt_len > 0 ? (uint32_t)prompt_len : 1;
    size_t arena_len = 0;
    s = phi_edge_arena_bytes(&model, &opts, &arena_len);
    if (s != PHI_EDGE_STATUS_OK) {
        rc = model_failed(&model, "cannot plan the arena", s);
        goto out;
    }
    arena = malloc(arena_len);
    if (arena == NULL) {
        fprintf(stderr, "error: no memory for an arena of %zu bytes\n", arena_len);
        goto out;
    }
    phi_edge_generator *gen = NULL;
    s = phi_edge_generator_new(&model, &opts, arena, arena_len, &gen);
    if (s != PHI_EDGE_STATUS_OK) {
        rc = model_failed(&model, "cannot make a generator", s);
        goto out;
    }
    s = phi_edge_prompt(gen, prompt, prompt_len);
    if (s != PHI_EDGE_STATUS_OK) {
        rc = generator_failed(gen, "cannot set the prompt", s);
        goto out;
    }
    rc = generate(gen, max_tokens);

out:
    /* The generator lives in the arena: nothing else to release. */
    free(arena);
    free(image);
    return rc;
}

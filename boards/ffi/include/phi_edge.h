/*
 * phi-edge C API: run Phi-3 class language models from C, with no
 * allocation: one model image in memory, one arena you provide.
 * See boards/ffi/README.md and boards/ffi/examples/generate.c.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

#ifndef PHI_EDGE_H
#define PHI_EDGE_H

/* Generated from boards/ffi/src by `cargo xtask c-header`: do not edit. */

#include <stddef.h>
#include <stdint.h>

/**
 * Bytes a text buffer of `phi_edge_next` and `phi_edge_finish` must
 * have: the longest piece of text one call gives, and its NUL.
 */
#define PHI_EDGE_TEXT_CAP 261

/**
 * 64-bit words of a `phi_edge_model` (1 KiB; the library needs about
 * half, the rest is room to grow without changing the ABI).
 */
#define PHI_EDGE_MODEL_WORDS 128

/**
 * The alignment a generator's arena is planned for; an arena at another
 * address needs up to `PHI_EDGE_ARENA_ALIGN - 1` more bytes.
 */
#define PHI_EDGE_ARENA_ALIGN 64

/**
 * The options' `cache_type`: the KV cache holds f16 values, as
 * llama.cpp's default cache (the default).
 */
#define PHI_EDGE_CACHE_F16 0

/**
 * The options' `cache_type`: the KV cache holds ggml's Q8_0 blocks,
 * 34 bytes per 32 values (53% of f16), as llama.cpp's `--cache-type-k
 * q8_0 --cache-type-v q8_0` with flash attention. The head width must be
 * a multiple of 32.
 */
#define PHI_EDGE_CACHE_Q8_0 1

/**
 * What a call did. `PHI_EDGE_STATUS_OK` (0) is success; the positive
 * codes say why generation stopped (they are not errors: the text of the
 * call is valid); the negative codes are errors, each with a message from
 * `phi_edge_strerror`.
 */
enum phi_edge_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Success; from `phi_edge_next`: a token was generated.
   */
  PHI_EDGE_STATUS_OK = 0,
  /**
   * Generation ended: the model drew an end-of-generation token (its
   * text is not shown).
   */
  PHI_EDGE_STATUS_DONE = 1,
  /**
   * Generation stopped: the context has no room for the next token.
   */
  PHI_EDGE_STATUS_CONTEXT_FULL = 2,
  /**
   * A pointer argument is NULL.
   */
  PHI_EDGE_STATUS_NULL_POINTER = -1,
  /**
   * An argument is out of range: a length past `PTRDIFF_MAX`, a pointer
   * not aligned for its type, an arena that overlaps the image.
   */
  PHI_EDGE_STATUS_BAD_ARGUMENT = -2,
  /**
   * An output buffer is too small: text buffers need
   * `PHI_EDGE_TEXT_CAP` bytes, so that no piece of text is ever cut.
   */
  PHI_EDGE_STATUS_BUFFER_TOO_SMALL = -3,
  /**
   * The handle is not an opened model or a generator: not opened, its
   * open failed, or an earlier call on it failed inside the library.
   */
  PHI_EDGE_STATUS_BAD_HANDLE = -4,
  /**
   * A text argument is not valid UTF-8.
   */
  PHI_EDGE_STATUS_BAD_UTF8 = -5,
  /**
   * Not a phi-edge image (bad magic).
   */
  PHI_EDGE_STATUS_NOT_AN_IMAGE = -6,
  /**
   * The image was written by another, incompatible format version.
   */
  PHI_EDGE_STATUS_UNSUPPORTED_VERSION = -7,
  /**
   * The image is truncated or malformed.
   */
  PHI_EDGE_STATUS_BAD_IMAGE = -8,
  /**
   * A checksum of the image does not match: it is corrupted.
   */
  PHI_EDGE_STATUS_CHECKSUM = -9,
  /**
   * The model needs something this build does not implement (a
   * byte-level BPE pre-tokenizer).
   */
  PHI_EDGE_STATUS_UNSUPPORTED_MODEL = -10,
  /**
   * The model has no tokenizer.
   */
  PHI_EDGE_STATUS_NO_TOKENIZER = -11,
  /**
   * The options do not work with this model.
   */
  PHI_EDGE_STATUS_BAD_OPTIONS = -12,
  /**
   * The arena is smaller than `phi_edge_arena_bytes` says it must be.
   */
  PHI_EDGE_STATUS_ARENA_TOO_SMALL = -13,
  /**
   * The prompt is longer than the options' `max_prompt_bytes`.
   */
  PHI_EDGE_STATUS_PROMPT_TOO_LONG = -14,
  /**
   * The prompt's tokens do not fit the context.
   */
  PHI_EDGE_STATUS_PROMPT_TOO_MANY_TOKENS = -15,
  /**
   * The prompt gives no tokens.
   */
  PHI_EDGE_STATUS_EMPTY_PROMPT = -16,
  /**
   * A token was asked for before any prompt.
   */
  PHI_EDGE_STATUS_NO_PROMPT = -17,
  /**
   * The text has a character the model's vocabulary cannot encode.
   */
  PHI_EDGE_STATUS_UNENCODABLE_TEXT = -18,
  /**
   * A token id is outside the vocabulary.
   */
  PHI_EDGE_STATUS_BAD_TOKEN = -19,
  /**
   * The image could not be read where its tables say.
   */
  PHI_EDGE_STATUS_READ_FAILED = -20,
  /**
   * An error inside the library (a bug): the handle is unusable.
   */
  PHI_EDGE_STATUS_INTERNAL = -21,
  /**
   * The model asks for more than the library's limits allow (an
   * oversized vocabulary, manifest or chat template).
   */
  PHI_EDGE_STATUS_OVER_LIMIT = -22,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum phi_edge_status phi_edge_status;
#else
typedef int32_t phi_edge_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * A generator: a model's session, tokenizer, chat template and sampler,
 * all in the arena given to `phi_edge_generator_new`, which it lives in.
 * There is nothing to free: when you are done with it, reuse the arena.
 */
typedef struct phi_edge_generator phi_edge_generator;

/**
 * An opened model image: storage the caller provides (on the stack, in a
 * static, anywhere) and `phi_edge_open` fills. Its contents are private
 * to the library. It refers to the image, which must stay in place and
 * unchanged while the model or any generator made from it is used.
 */
typedef struct {
  /**
   * Private to the library.
   */
  uint64_t opaque[PHI_EDGE_MODEL_WORDS];
} phi_edge_model;

/**
 * What a generator is planned for: its context, its longest prompt and
 * its sampling. Start from `phi_edge_options_default()` and change what
 * you need. The C API runs a generator on the calling thread alone (the
 * output does not depend on the number of threads) and reads the weights
 * in place from the image in memory.
 */
typedef struct {
  /**
   * Context length in tokens: prompt and generated tokens of every turn
   * since the last reset. 0: the model's trained context, at most 4096
   * (as the `phi-edge` command does). It also decides Phi-3's LongRoPE
   * factors, as llama.cpp's `n_ctx` does.
   */
  uint32_t n_ctx;
  /**
   * Longest prompt one `phi_edge_prompt` or `phi_edge_chat` call may
   * take, in bytes; for a chat turn, the rendered turn (the template's
   * markers, a system message on the first turn, the user's text).
   */
  uint32_t max_prompt_bytes;
  /**
   * Prompt tokens evaluated together (each weight read serves this
   * many); 0: the default, 16.
   */
  uint32_t prefill_chunk;
  /**
   * Softmax temperature; 0 (or less) picks the most likely token.
   */
  float temperature;
  /**
   * Keep the `top_k` most likely tokens; 0 keeps all.
   */
  uint32_t top_k;
  /**
   * Nucleus sampling mass, in (0, 1]; 1 keeps all.
   */
  float top_p;
  /**
   * Minimum probability relative to the most likely token, in [0, 1];
   * 0 keeps all.
   */
  float min_p;
  /**
   * Repetition penalty, > 0; 1 is off.
   */
  float repeat_penalty;
  /**
   * How many of the last tokens the penalty looks at; 0 is off.
   */
  uint32_t repeat_last_n;
  /**
   * Seed of the random number generator (same seed, same text, on
   * every machine).
   */
  uint64_t seed;
  /**
   * The KV cache's element type: `PHI_EDGE_CACHE_F16` (0, the default)
   * or `PHI_EDGE_CACHE_Q8_0`.
   */
  uint32_t cache_type;
} phi_edge_options;

/**
 * What the current turn did (`phi_edge_get_stats`).
 */
typedef struct {
  /**
   * Tokens of the turn's prompt (BOS included).
   */
  uint32_t prompt_tokens;
  /**
   * Tokens generated this turn (an end-of-generation token included).
   */
  uint32_t generated;
  /**
   * Tokens the context still has room for.
   */
  uint32_t room;
  /**
   * The context length.
   */
  uint32_t n_ctx;
  /**
   * Perplexity of the generated tokens under the model's raw logits (1
   * before any).
   */
  double perplexity;
  /**
   * CRC-32 of the logits every generated token was drawn from: equal on
   * two machines only if every logit is bit-identical.
   */
  uint32_t logits_crc;
} phi_edge_stats;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Makes a generator in `arena` (`arena_len` bytes, at least what
 * `phi_edge_arena_bytes` says for the same model and options) and writes
 * its pointer to `*generator`. The generator refers to the image and lives
 * in the arena: keep both in place while it is used. Kernels are picked
 * for this CPU (environment variable `PHI_EDGE_KERNELS=portable` forces
 * the portable set); the output is the same with every set. Errors go to
 * `phi_edge_model_error`.
 *
 * # Safety
 *
 * `model` must be NULL or point to a `phi_edge_model`; `options` NULL or
 * a `phi_edge_options`; `arena` NULL or `arena_len` writable bytes, used
 * for nothing else while the generator is; `generator` NULL or writable.
 */
phi_edge_status phi_edge_generator_new(phi_edge_model *model,
                                       const phi_edge_options *options,
                                       void *arena,
                                       size_t arena_len,
                                       phi_edge_generator **generator);

/**
 * Sets a raw prompt of `len` bytes of UTF-8 `text` (no chat template;
 * special-token text such as `<|im_start|>` stays text), continuing the
 * context: BOS as the model says if the context is empty. The next
 * `phi_edge_next` evaluates it. A prompt longer than the options'
 * `max_prompt_bytes` is `PHI_EDGE_STATUS_PROMPT_TOO_LONG`; one whose
 * tokens do not fit the context `PHI_EDGE_STATUS_PROMPT_TOO_MANY_TOKENS`
 * (the context is left as it was).
 *
 * # Safety
 *
 * `generator` must be NULL or from `phi_edge_generator_new`, its arena
 * and image in place; `text` NULL (with `len` 0) or `len` readable bytes.
 */
phi_edge_status phi_edge_prompt(phi_edge_generator *generator, const char *text, size_t len);

/**
 * Sets one chat turn, continuing the conversation: on an empty context
 * the model's chat template's start with the system message (`system`
 * NULL: the template's default, if it has one) and the user's message;
 * later, the close of the previous reply and the next user turn (`system`
 * is ignored). The template's markers go in as their special tokens; the
 * messages are tokenized as plain text, so a message that spells
 * `<|im_start|>` cannot start a turn of its own. Errors as
 * `phi_edge_prompt`.
 *
 * # Safety
 *
 * `generator` as for `phi_edge_prompt`; `system` NULL or `system_len`
 * readable bytes; `user` NULL (with `user_len` 0) or `user_len` bytes.
 */
phi_edge_status phi_edge_chat(phi_edge_generator *generator,
                              const char *system,
                              size_t system_len,
                              const char *user,
                              size_t user_len);

/**
 * Generates the next token and writes its text to `buf` (NUL-terminated;
 * `*len` gets its length without the NUL). `cap` must be at least
 * `PHI_EDGE_TEXT_CAP`, so no text is ever cut (a smaller `cap` is
 * `PHI_EDGE_STATUS_BUFFER_TOO_SMALL` before anything is generated).
 * Evaluates the prompt first, or the token generated last.
 *
 * Returns `PHI_EDGE_STATUS_OK` for a token (its text may be empty while a
 * UTF-8 character is incomplete), `PHI_EDGE_STATUS_DONE` when the model
 * ends its answer, `PHI_EDGE_STATUS_CONTEXT_FULL` when the context has no
 * room left; with these two, `buf` holds the last bytes of text, if any,
 * and later calls stop the same way until the next prompt. Before any
 * prompt: `PHI_EDGE_STATUS_NO_PROMPT`. On an error `*len` is 0.
 *
 * # Safety
 *
 * `generator` as for `phi_edge_prompt`; `buf` NULL or `cap` writable
 * bytes; `len` NULL or writable.
 */
phi_edge_status phi_edge_next(phi_edge_generator *generator, char *buf, size_t cap, size_t *len);

/**
 * Writes the text the generator still holds back (the bytes of an
 * incomplete UTF-8 character, shown as U+FFFD) to `buf`, as
 * `phi_edge_next` does: for a caller that stops on its own token limit.
 * Returns `PHI_EDGE_STATUS_OK`.
 *
 * # Safety
 *
 * As `phi_edge_next`.
 */
phi_edge_status phi_edge_finish(phi_edge_generator *generator, char *buf, size_t cap, size_t *len);

/**
 * Starts a new conversation: an empty context, fresh sampler history.
 *
 * # Safety
 *
 * As `phi_edge_prompt`'s `generator`.
 */
phi_edge_status phi_edge_reset(phi_edge_generator *generator);

/**
 * Writes what the current turn did to `*stats`.
 *
 * # Safety
 *
 * As `phi_edge_prompt`'s `generator`; `stats` NULL or writable.
 */
phi_edge_status phi_edge_get_stats(phi_edge_generator *generator, phi_edge_stats *stats);

/**
 * Writes the name of the kernel set the generator runs on ("avx2",
 * "neon+dotprod", "rvv (VLEN 256)", "portable", ...) to `buf` as a
 * NUL-terminated string, cut to `cap` bytes (32 are enough).
 *
 * # Safety
 *
 * As `phi_edge_prompt`'s `generator`; `buf` NULL or `cap` writable bytes.
 */
phi_edge_status phi_edge_kernels(phi_edge_generator *generator, char *buf, size_t cap);

/**
 * Writes the description of the last error of a call on `generator` to
 * `buf` as a NUL-terminated string, cut to `cap` bytes (an empty string
 * if there was none), e.g. "the prompt is 5000 bytes; the generator was
 * planned for at most 4096".
 *
 * # Safety
 *
 * As `phi_edge_prompt`'s `generator`; `buf` NULL or `cap` writable bytes.
 */
phi_edge_status phi_edge_generator_error(phi_edge_generator *generator, char *buf, size_t cap);

/**
 * Opens the image of `image_len` bytes at `image`: checks its header, its
 * manifest's CRC and every tensor record against the hyperparameters
 * (not the tensor data: see `phi_edge_verify`). Fills `*model`, which
 * then refers to the image: keep the image in place and unchanged while
 * the model or a generator made from it is in use. The image may be at
 * any address (flash, RAM, a file read into memory).
 *
 * On failure `*model` records the error (`phi_edge_model_error`) and
 * every call on it returns `PHI_EDGE_STATUS_BAD_HANDLE`.
 *
 * # Safety
 *
 * `model` must be NULL or point to writable storage for a
 * `phi_edge_model`; `image` must be NULL or point to `image_len` readable
 * bytes that stay unchanged while `*model` and its generators are used.
 */
phi_edge_status phi_edge_open(phi_edge_model *model, const void *image, size_t image_len);

/**
 * Checks the CRC-32 of every tensor of an opened model: reads the whole
 * image once. `PHI_EDGE_STATUS_CHECKSUM` if the image is corrupted.
 *
 * # Safety
 *
 * `model` must be NULL or point to a `phi_edge_model` (opened or not).
 */
phi_edge_status phi_edge_verify(phi_edge_model *model);

/**
 * Writes to `*bytes` the size of the arena `phi_edge_generator_new` needs
 * for this model and these options, for an arena at any address (one
 * aligned to `PHI_EDGE_ARENA_ALIGN` needs `PHI_EDGE_ARENA_ALIGN - 1`
 * fewer). The generator and all its buffers (KV cache, activations,
 * sampler, prompt) live in it; nothing else is allocated.
 *
 * # Safety
 *
 * `model` must be NULL or point to a `phi_edge_model`; `options` NULL or
 * a `phi_edge_options`; `bytes` NULL or writable.
 */
phi_edge_status phi_edge_arena_bytes(phi_edge_model *model,
                                     const phi_edge_options *options,
                                     size_t *bytes);

/**
 * Writes to `*max_prompt_bytes` the `max_prompt_bytes` option chat turns
 * need whose messages (system and user text together) take
 * `message_bytes` bytes on this model: the messages, the chat template's
 * own text and its default system message. A raw prompt needs just its
 * length.
 *
 * # Safety
 *
 * `model` must be NULL or point to a `phi_edge_model`;
 * `max_prompt_bytes` NULL or writable.
 */
phi_edge_status phi_edge_turn_bytes(phi_edge_model *model,
                                    size_t message_bytes,
                                    uint32_t *max_prompt_bytes);

/**
 * Writes the description of the last error of a call on `model` to
 * `buf` as a NUL-terminated string, cut to `cap` bytes (an empty string
 * if there was none), e.g. "tensor 12 checksum mismatch".
 *
 * # Safety
 *
 * `model` must be NULL or point to a `phi_edge_model`; `buf` NULL or
 * `cap` writable bytes.
 */
phi_edge_status phi_edge_model_error(phi_edge_model *model, char *buf, size_t cap);

/**
 * The default options: greedy decoding (temperature 0; the other sampling
 * settings are llama.cpp's defaults), the model's trained context capped
 * at 4096 tokens, prompts of up to 4096 bytes, prefill chunks of 16, an
 * f16 KV cache.
 */
phi_edge_options phi_edge_options_default(void);

/**
 * The message of a status code, a static NUL-terminated string (never
 * NULL; an unknown code gives "unknown status code").
 */
const char *phi_edge_strerror(int32_t code);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PHI_EDGE_H */

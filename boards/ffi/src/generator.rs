//! A generator in the caller's arena: prompts, chat turns, text.
//!
//! The arena holds, from its first 64-byte boundary on, the handle (a
//! magic word, the last error and the core's `Generator`), padded to a
//! multiple of 64 bytes, then the core generator's own arena: KV cache,
//! activations, sampler, prompt and tokenizer buffers. The C side sees a
//! pointer to the handle.

use core::ffi::{c_char, c_void};
use core::mem::{align_of, size_of};
use core::panic::AssertUnwindSafe;

use phi_edge::{Error, Generator, Kernels, Mapped, Step, Stop};
use phi_edge_auto::AutoKernels;

use crate::args::{self, Checked};
use crate::model::{self, Last, PhiEdgeModel, PHI_EDGE_ARENA_ALIGN};
use crate::options::PhiEdgeOptions;
use crate::status::PhiEdgeStatus;

/// Bytes a text buffer of `phi_edge_next` and `phi_edge_finish` must
/// have: the longest piece of text one call gives, and its NUL.
pub const PHI_EDGE_TEXT_CAP: usize = 261;

/// A generator: a model's session, tokenizer, chat template and sampler,
/// all in the arena given to `phi_edge_generator_new`, which it lives in.
/// There is nothing to free: when you are done with it, reuse the arena.
pub struct PhiEdgeGenerator {
    _private: [u8; 0],
}

/// What the current turn did (`phi_edge_get_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhiEdgeStats {
    /// Tokens of the turn's prompt (BOS included).
    pub prompt_tokens: u32,
    /// Tokens generated this turn (an end-of-generation token included).
    pub generated: u32,
    /// Tokens the context still has room for.
    pub room: u32,
    /// The context length.
    pub n_ctx: u32,
    /// Perplexity of the generated tokens under the model's raw logits (1
    /// before any).
    pub perplexity: f64,
    /// CRC-32 of the logits every generated token was drawn from: equal on
    /// two machines only if every logit is bit-identical.
    pub logits_crc: u32,
}

/// The core generator of the C API: run-time kernels, weights in place,
/// one thread.
type Gen = Generator<'static, 'static, AutoKernels, Mapped<'static>>;

/// "phigener": a live generator.
const MAGIC: u64 = u64::from_le_bytes(*b"phigener");

/// What a `phi_edge_generator *` points to.
#[repr(C)]
struct Handle {
    /// [`MAGIC`] while usable (first, so it can be read alone).
    magic: u64,
    /// The last error of a call on it.
    last: Last,
    gen: Gen,
}

const _: () = assert!(align_of::<Handle>() <= PHI_EDGE_ARENA_ALIGN);

/// Arena bytes of the handle: a multiple of the arena alignment, so the
/// core generator's part starts aligned.
pub(crate) const HANDLE_BYTES: usize = size_of::<Handle>().next_multiple_of(PHI_EDGE_ARENA_ALIGN);

/// Runs `f` on the generator `p` points to, turning a panic into
/// `PHI_EDGE_STATUS_INTERNAL` and an unusable handle.
///
/// # Safety
///
/// If `p` is not NULL and aligned, it must point to at least 8 readable
/// bytes; if they hold the magic word, to a generator made by
/// `phi_edge_generator_new` whose arena and image are still in place, not
/// used by another thread during the call.
unsafe fn with_handle(
    p: *mut PhiEdgeGenerator,
    f: impl FnOnce(&mut Handle) -> PhiEdgeStatus,
) -> PhiEdgeStatus {
    let p: *mut Handle = p.cast();
    if p.is_null() {
        return PhiEdgeStatus::NullPointer;
    }
    if !p.is_aligned() {
        return PhiEdgeStatus::BadHandle;
    }
    // SAFETY: not NULL, aligned, and at least a word readable (the
    // caller's contract); the magic word is the handle's first field.
    if unsafe { p.cast::<u64>().read() } != MAGIC {
        return PhiEdgeStatus::BadHandle;
    }
    // SAFETY: the magic word says `phi_edge_generator_new` wrote a
    // `Handle` here, and the caller gives it to us for the call.
    let h = unsafe { &mut *p };
    match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut *h))) {
        Ok(s) => s,
        Err(_) => {
            // Its state is unknown: no further calls.
            h.magic = 0;
            PhiEdgeStatus::Internal
        }
    }
}

impl Handle {
    /// Records `e` and returns its status.
    fn note(&mut self, e: Error) -> PhiEdgeStatus {
        self.last.record(e)
    }
}

/// Makes a generator in `arena` (`arena_len` bytes, at least what
/// `phi_edge_arena_bytes` says for the same model and options) and writes
/// its pointer to `*generator`. The generator refers to the image and lives
/// in the arena: keep both in place while it is used. Kernels are picked
/// for this CPU (environment variable `PHI_EDGE_KERNELS=portable` forces
/// the portable set); the output is the same with every set. Errors go to
/// `phi_edge_model_error`.
///
/// # Safety
///
/// `model` must be NULL or point to a `phi_edge_model`; `options` NULL or
/// a `phi_edge_options`; `arena` NULL or `arena_len` writable bytes, used
/// for nothing else while the generator is; `generator` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_generator_new(
    model: *mut PhiEdgeModel,
    options: *const PhiEdgeOptions,
    arena: *mut c_void,
    arena_len: usize,
    generator: *mut *mut PhiEdgeGenerator,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract, for each pointer.
    let (m, options, out) = match unsafe {
        (
            model::for_generator(model),
            args::input(options),
            args::output(generator),
        )
    } {
        (Ok(m), Ok(o), Ok(g)) => (m, o, g),
        (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => return s,
    };
    let (model, image, last) = m;
    let status = crate::guard(|| {
        let arena: *mut u8 = arena.cast();
        let opts = match options.gen_options(model.config()) {
            Ok(opts) => opts,
            Err(e) => {
                let status = PhiEdgeStatus::of(&e);
                *last = Last::Core(e);
                return status;
            }
        };
        let at = match placement(image, arena, arena_len) {
            Ok(at) => at,
            Err(s) => {
                *last = Last::Status(s);
                return s;
            }
        };
        // The whole arena at this address: the handle, the core's part.
        let need = (at + HANDLE_BYTES).saturating_add(opts.arena_bytes(model.config()));
        if arena_len < need {
            *last = Last::Core(Error::ArenaTooSmall {
                need,
                got: arena_len,
            });
            return PhiEdgeStatus::ArenaTooSmall;
        }
        // SAFETY: `placement` checked that `arena..arena + arena_len` is a
        // valid range, and `at + HANDLE_BYTES <= need <= arena_len`; the
        // caller gives us those bytes for as long as the generator is used
        // ('static here).
        let (handle, rest): (*mut Handle, &'static mut [u8]) = unsafe {
            let h = arena.add(at);
            (
                h.cast(),
                core::slice::from_raw_parts_mut(h.add(HANDLE_BYTES), arena_len - at - HANDLE_BYTES),
            )
        };
        // SAFETY: `handle` is 64-byte aligned with `HANDLE_BYTES` of the
        // arena reserved for it, apart from `rest`. Until the generator is
        // written, a stale pointer to an earlier generator in this arena
        // is no handle.
        unsafe { handle.cast::<u64>().write(0) };
        match Gen::new(&model, AutoKernels::detect(), Mapped(image), rest, &opts) {
            Ok(gen) => {
                let h = Handle {
                    magic: MAGIC,
                    last: Last::Nothing,
                    gen,
                };
                // SAFETY: as above.
                unsafe { handle.write(h) };
                *out = handle.cast();
                PhiEdgeStatus::Ok
            }
            Err(e) => last.record(e),
        }
    });
    if status != PhiEdgeStatus::Ok {
        *out = core::ptr::null_mut();
    }
    status
}

/// Where the handle goes in the arena: the offset of its first 64-byte
/// boundary, once the arena is checked: not NULL, not wrapping, apart from
/// the image. (Whether it has room is the caller's check.)
fn placement(image: &[u8], arena: *mut u8, arena_len: usize) -> Checked<usize> {
    if arena.is_null() {
        return Err(PhiEdgeStatus::NullPointer);
    }
    let start = arena as usize;
    let end = start
        .checked_add(arena_len)
        .ok_or(PhiEdgeStatus::BadArgument)?;
    if arena_len > isize::MAX as usize {
        return Err(PhiEdgeStatus::BadArgument);
    }
    let (i0, i1) = (
        image.as_ptr() as usize,
        image.as_ptr() as usize + image.len(),
    );
    if start < i1 && i0 < end {
        return Err(PhiEdgeStatus::BadArgument);
    }
    Ok(arena
        .align_offset(PHI_EDGE_ARENA_ALIGN)
        .min(PHI_EDGE_ARENA_ALIGN))
}

/// Sets a raw prompt of `len` bytes of UTF-8 `text` (no chat template;
/// special-token text such as `<|im_start|>` stays text), continuing the
/// context: BOS as the model says if the context is empty. The next
/// `phi_edge_next` evaluates it. A prompt longer than the options'
/// `max_prompt_bytes` is `PHI_EDGE_STATUS_PROMPT_TOO_LONG`; one whose
/// tokens do not fit the context `PHI_EDGE_STATUS_PROMPT_TOO_MANY_TOKENS`
/// (the context is left as it was).
///
/// # Safety
///
/// `generator` must be NULL or from `phi_edge_generator_new`, its arena
/// and image in place; `text` NULL (with `len` 0) or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_prompt(
    generator: *mut PhiEdgeGenerator,
    text: *const c_char,
    len: usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let text = unsafe { args::text(text.cast(), len) };
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| match text {
            Err(s) => s,
            Ok(t) => h
                .gen
                .prompt(t)
                .map_or_else(|e| h.note(e), |()| PhiEdgeStatus::Ok),
        })
    }
}

/// Sets one chat turn, continuing the conversation: on an empty context
/// the model's chat template's start with the system message (`system`
/// NULL: the template's default, if it has one) and the user's message;
/// later, the close of the previous reply and the next user turn (`system`
/// is ignored). The template's markers go in as their special tokens; the
/// messages are tokenized as plain text, so a message that spells
/// `<|im_start|>` cannot start a turn of its own. Errors as
/// `phi_edge_prompt`.
///
/// # Safety
///
/// `generator` as for `phi_edge_prompt`; `system` NULL or `system_len`
/// readable bytes; `user` NULL (with `user_len` 0) or `user_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_chat(
    generator: *mut PhiEdgeGenerator,
    system: *const c_char,
    system_len: usize,
    user: *const c_char,
    user_len: usize,
) -> PhiEdgeStatus {
    let system = if system.is_null() && system_len == 0 {
        Ok(None)
    } else {
        // SAFETY: the caller's contract.
        unsafe { args::text(system.cast(), system_len) }.map(Some)
    };
    // SAFETY: the caller's contract.
    let user = unsafe { args::text(user.cast(), user_len) };
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| match (system, user) {
            (Err(s), _) | (_, Err(s)) => s,
            (Ok(system), Ok(user)) => h
                .gen
                .chat(system, user)
                .map_or_else(|e| h.note(e), |()| PhiEdgeStatus::Ok),
        })
    }
}

/// Generates the next token and writes its text to `buf` (NUL-terminated;
/// `*len` gets its length without the NUL). `cap` must be at least
/// `PHI_EDGE_TEXT_CAP`, so no text is ever cut (a smaller `cap` is
/// `PHI_EDGE_STATUS_BUFFER_TOO_SMALL` before anything is generated).
/// Evaluates the prompt first, or the token generated last.
///
/// Returns `PHI_EDGE_STATUS_OK` for a token (its text may be empty while a
/// UTF-8 character is incomplete), `PHI_EDGE_STATUS_DONE` when the model
/// ends its answer, `PHI_EDGE_STATUS_CONTEXT_FULL` when the context has no
/// room left; with these two, `buf` holds the last bytes of text, if any,
/// and later calls stop the same way until the next prompt. Before any
/// prompt: `PHI_EDGE_STATUS_NO_PROMPT`. On an error `*len` is 0.
///
/// # Safety
///
/// `generator` as for `phi_edge_prompt`; `buf` NULL or `cap` writable
/// bytes; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_next(
    generator: *mut PhiEdgeGenerator,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    unsafe { text_call(generator, buf, cap, len, next) }
}

/// The status and text of one token.
fn next(gen: &mut Gen) -> Result<(PhiEdgeStatus, &str), Error> {
    Ok(match gen.next_token()? {
        Step::Token { text, .. } => (PhiEdgeStatus::Ok, text),
        Step::Stopped {
            stop: Stop::ContextFull,
            text,
        } => (PhiEdgeStatus::ContextFull, text),
        Step::Stopped { text, .. } => (PhiEdgeStatus::Done, text),
    })
}

/// Writes the text the generator still holds back (the bytes of an
/// incomplete UTF-8 character, shown as U+FFFD) to `buf`, as
/// `phi_edge_next` does: for a caller that stops on its own token limit.
/// Returns `PHI_EDGE_STATUS_OK`.
///
/// # Safety
///
/// As `phi_edge_next`.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_finish(
    generator: *mut PhiEdgeGenerator,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    unsafe {
        text_call(generator, buf, cap, len, |gen| {
            Ok((PhiEdgeStatus::Ok, gen.finish()?))
        })
    }
}

/// A call that writes text: checks the buffer, runs `f`, copies its text.
///
/// # Safety
///
/// As `phi_edge_next`.
unsafe fn text_call(
    generator: *mut PhiEdgeGenerator,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
    f: impl FnOnce(&mut Gen) -> Result<(PhiEdgeStatus, &str), Error>,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract, for each pointer.
    let (buf, len) = match unsafe { (args::buffer(buf.cast(), cap), args::output(len)) } {
        (Ok(b), Ok(l)) => (b, l),
        (Err(s), _) | (_, Err(s)) => return s,
    };
    *len = 0;
    if cap < PHI_EDGE_TEXT_CAP {
        if let Some(b) = buf.first_mut() {
            *b = 0;
        }
        return PhiEdgeStatus::BufferTooSmall;
    }
    buf[0] = 0;
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| match f(&mut h.gen) {
            Ok((status, text)) if text.len() < PHI_EDGE_TEXT_CAP => {
                *len = args::put_str(buf, text);
                status
            }
            Ok(_) => {
                h.last = Last::Status(PhiEdgeStatus::Internal);
                PhiEdgeStatus::Internal
            }
            Err(e) => h.note(e),
        })
    }
}

/// Starts a new conversation: an empty context, fresh sampler history.
///
/// # Safety
///
/// As `phi_edge_prompt`'s `generator`.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_reset(generator: *mut PhiEdgeGenerator) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| {
            h.gen.reset();
            PhiEdgeStatus::Ok
        })
    }
}

/// Writes what the current turn did to `*stats`.
///
/// # Safety
///
/// As `phi_edge_prompt`'s `generator`; `stats` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_get_stats(
    generator: *mut PhiEdgeGenerator,
    stats: *mut PhiEdgeStats,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let out = match unsafe { args::output(stats) } {
        Ok(o) => o,
        Err(s) => return s,
    };
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| {
            let s = h.gen.stats();
            let c32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            *out = PhiEdgeStats {
                prompt_tokens: c32(s.prompt_tokens),
                generated: c32(s.generated),
                room: c32(h.gen.room()),
                n_ctx: c32(h.gen.n_ctx()),
                perplexity: s.perplexity,
                logits_crc: s.logits_crc,
            };
            PhiEdgeStatus::Ok
        })
    }
}

/// Writes the name of the kernel set the generator runs on ("avx2",
/// "neon+dotprod", "rvv (VLEN 256)", "portable", ...) to `buf` as a
/// NUL-terminated string, cut to `cap` bytes (32 are enough).
///
/// # Safety
///
/// As `phi_edge_prompt`'s `generator`; `buf` NULL or `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_kernels(
    generator: *mut PhiEdgeGenerator,
    buf: *mut c_char,
    cap: usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let buf = match unsafe { args::text_buffer(buf.cast(), cap) } {
        Ok(b) => b,
        Err(s) => return s,
    };
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| {
            args::put_str(buf, h.gen.session().kernels().name());
            PhiEdgeStatus::Ok
        })
    }
}

/// Writes the description of the last error of a call on `generator` to
/// `buf` as a NUL-terminated string, cut to `cap` bytes (an empty string
/// if there was none), e.g. "the prompt is 5000 bytes; the generator was
/// planned for at most 4096".
///
/// # Safety
///
/// As `phi_edge_prompt`'s `generator`; `buf` NULL or `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_generator_error(
    generator: *mut PhiEdgeGenerator,
    buf: *mut c_char,
    cap: usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let buf = match unsafe { args::text_buffer(buf.cast(), cap) } {
        Ok(b) => b,
        Err(s) => return s,
    };
    // SAFETY: the caller's contract.
    unsafe {
        with_handle(generator, |h| {
            h.last.describe(buf);
            PhiEdgeStatus::Ok
        })
    }
}

//! Opening and verifying an image in memory, and sizing the arena.

use core::ffi::{c_char, c_void};
use core::mem::{align_of, size_of};

use phi_edge::{Error, Mapped, Model};

use crate::args::{self, Checked};
use crate::generator::HANDLE_BYTES;
use crate::guard;
use crate::options::PhiEdgeOptions;
use crate::status::PhiEdgeStatus;

/// 64-bit words of a `phi_edge_model` (1 KiB; the library needs about
/// half, the rest is room to grow without changing the ABI).
pub const PHI_EDGE_MODEL_WORDS: usize = 128;

/// The alignment a generator's arena is planned for; an arena at another
/// address needs up to `PHI_EDGE_ARENA_ALIGN - 1` more bytes.
pub const PHI_EDGE_ARENA_ALIGN: usize = 64;

const _: () = assert!(PHI_EDGE_ARENA_ALIGN == phi_edge::plan::ARENA_ALIGN);

/// An opened model image: storage the caller provides (on the stack, in a
/// static, anywhere) and `phi_edge_open` fills. Its contents are private
/// to the library. It refers to the image, which must stay in place and
/// unchanged while the model or any generator made from it is used.
#[repr(C)]
pub struct PhiEdgeModel {
    /// Private to the library.
    pub opaque: [u64; PHI_EDGE_MODEL_WORDS],
}

impl PhiEdgeModel {
    /// Storage for [`phi_edge_open`] to fill.
    pub const fn new() -> PhiEdgeModel {
        PhiEdgeModel {
            opaque: [0; PHI_EDGE_MODEL_WORDS],
        }
    }
}

impl Default for PhiEdgeModel {
    fn default() -> Self {
        Self::new()
    }
}

/// "phimodel": a `phi_edge_model` that `phi_edge_open` has filled.
const MAGIC: u64 = u64::from_le_bytes(*b"phimodel");

/// What a `phi_edge_model` holds.
#[repr(C)]
struct Opened {
    /// [`MAGIC`] once opened (first, so it can be read alone).
    magic: u64,
    /// The image.
    image: &'static [u8],
    /// The model, if it opened.
    model: Option<Model<'static>>,
    /// The last error of a call on this model.
    last: Last,
}

const _: () = assert!(size_of::<Opened>() <= size_of::<PhiEdgeModel>());
const _: () = assert!(align_of::<Opened>() <= align_of::<PhiEdgeModel>());

/// The last error of a call on a handle, for `phi_edge_*_error`.
#[derive(Clone, Copy, Debug)]
pub enum Last {
    /// None yet.
    Nothing,
    /// An argument error.
    Status(PhiEdgeStatus),
    /// An error of the core, with its details.
    Core(Error),
}

impl Last {
    /// Records the core's error `e` and returns its status.
    pub fn record(&mut self, e: Error) -> PhiEdgeStatus {
        *self = Last::Core(e);
        PhiEdgeStatus::of(&e)
    }

    /// Writes the description to `buf` (NUL-terminated, cut to fit).
    pub fn describe(&self, buf: &mut [u8]) -> usize {
        match self {
            Last::Nothing => args::put_str(buf, ""),
            Last::Status(s) => args::put_str(buf, s.message().to_str().unwrap_or("")),
            Last::Core(e) => args::put_display(buf, e),
        }
    }
}

/// The model `p` points to, if `phi_edge_open` filled it.
///
/// # Safety
///
/// If `p` is not NULL and aligned, it must point to a `phi_edge_model`
/// (any contents) not accessed otherwise during the call.
unsafe fn opened<'a>(p: *mut PhiEdgeModel) -> Checked<&'a mut Opened> {
    // SAFETY: the caller's contract.
    let m = unsafe { args::output(p) }?;
    if m.opaque[0] != MAGIC {
        return Err(PhiEdgeStatus::BadHandle);
    }
    let p: *mut Opened = (m as *mut PhiEdgeModel).cast();
    // SAFETY: the magic word says `phi_edge_open` wrote an `Opened` here
    // (it fits and is aligned: see the assertions above), and the caller
    // keeps the storage to us for the call.
    Ok(unsafe { &mut *p })
}

impl Opened {
    /// The model, or the status of a model that did not open.
    fn model(&mut self) -> Checked<Model<'static>> {
        self.model.ok_or(PhiEdgeStatus::BadHandle)
    }

    /// Records `r`'s error and returns its status.
    fn note(&mut self, r: Result<(), Error>) -> PhiEdgeStatus {
        r.map_or_else(|e| self.last.record(e), |()| PhiEdgeStatus::Ok)
    }
}

/// Opens the image of `image_len` bytes at `image`: checks its header, its
/// manifest's CRC and every tensor record against the hyperparameters
/// (not the tensor data: see `phi_edge_verify`). Fills `*model`, which
/// then refers to the image: keep the image in place and unchanged while
/// the model or a generator made from it is in use. The image may be at
/// any address (flash, RAM, a file read into memory).
///
/// On failure `*model` records the error (`phi_edge_model_error`) and
/// every call on it returns `PHI_EDGE_STATUS_BAD_HANDLE`.
///
/// # Safety
///
/// `model` must be NULL or point to writable storage for a
/// `phi_edge_model`; `image` must be NULL or point to `image_len` readable
/// bytes that stay unchanged while `*model` and its generators are used.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_open(
    model: *mut PhiEdgeModel,
    image: *const c_void,
    image_len: usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let slot = match unsafe { args::output(model) } {
        Ok(s) => s,
        Err(s) => return s,
    };
    let opened = Opened {
        magic: MAGIC,
        image: &[],
        model: None,
        last: Last::Nothing,
    };
    let p: *mut Opened = (slot as *mut PhiEdgeModel).cast();
    // SAFETY: `p` is valid for writes of an `Opened` (it fits and is
    // aligned: see the assertions above), and the storage is ours for the
    // call.
    unsafe { p.write(opened) };
    // SAFETY: initialized just above.
    let o = unsafe { &mut *p };
    // SAFETY: the caller's contract: the image stays for as long as the
    // model is used, which is what the `'static` stands for.
    let image: &'static [u8] = match unsafe { args::bytes(image.cast(), image_len) } {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => {
            o.last = Last::Core(Error::BadMagic);
            return PhiEdgeStatus::NotAnImage;
        }
        Err(s) => {
            o.last = Last::Status(s);
            return s;
        }
    };
    guard(|| {
        o.image = image;
        match Model::open_mapped(image) {
            Ok(m) => {
                o.model = Some(m);
                PhiEdgeStatus::Ok
            }
            Err(e) => o.note(Err(e)),
        }
    })
}

/// Checks the CRC-32 of every tensor of an opened model: reads the whole
/// image once. `PHI_EDGE_STATUS_CHECKSUM` if the image is corrupted.
///
/// # Safety
///
/// `model` must be NULL or point to a `phi_edge_model` (opened or not).
#[no_mangle]
pub unsafe extern "C" fn phi_edge_verify(model: *mut PhiEdgeModel) -> PhiEdgeStatus {
    // SAFETY: the caller's contract.
    let o = match unsafe { opened(model) } {
        Ok(o) => o,
        Err(s) => return s,
    };
    guard(|| {
        let m = match o.model() {
            Ok(m) => m,
            Err(s) => return s,
        };
        let r = m.verify(&mut Mapped(o.image), &mut []);
        o.note(r)
    })
}

/// Writes to `*bytes` the size of the arena `phi_edge_generator_new` needs
/// for this model and these options, for an arena at any address (one
/// aligned to `PHI_EDGE_ARENA_ALIGN` needs `PHI_EDGE_ARENA_ALIGN - 1`
/// fewer). The generator and all its buffers (KV cache, activations,
/// sampler, prompt) live in it; nothing else is allocated.
///
/// # Safety
///
/// `model` must be NULL or point to a `phi_edge_model`; `options` NULL or
/// a `phi_edge_options`; `bytes` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_arena_bytes(
    model: *mut PhiEdgeModel,
    options: *const PhiEdgeOptions,
    bytes: *mut usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract, for each pointer.
    let (o, options, bytes) =
        match unsafe { (opened(model), args::input(options), args::output(bytes)) } {
            (Ok(o), Ok(opt), Ok(b)) => (o, opt, b),
            (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => return s,
        };
    guard(|| {
        let m = match o.model() {
            Ok(m) => m,
            Err(s) => return s,
        };
        match arena_bytes(&m, options) {
            Ok(n) => {
                *bytes = n;
                PhiEdgeStatus::Ok
            }
            Err(e) => o.note(Err(e)),
        }
    })
}

/// Writes to `*max_prompt_bytes` the `max_prompt_bytes` option chat turns
/// need whose messages (system and user text together) take
/// `message_bytes` bytes on this model: the messages, the chat template's
/// own text and its default system message. A raw prompt needs just its
/// length.
///
/// # Safety
///
/// `model` must be NULL or point to a `phi_edge_model`;
/// `max_prompt_bytes` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_turn_bytes(
    model: *mut PhiEdgeModel,
    message_bytes: usize,
    max_prompt_bytes: *mut u32,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract, for each pointer.
    let (o, out) = match unsafe { (opened(model), args::output(max_prompt_bytes)) } {
        (Ok(o), Ok(b)) => (o, b),
        (Err(s), _) | (_, Err(s)) => return s,
    };
    let m = match o.model() {
        Ok(m) => m,
        Err(s) => return s,
    };
    match u32::try_from(phi_edge::generate::turn_bytes(&m, message_bytes)) {
        Ok(n) => {
            *out = n;
            PhiEdgeStatus::Ok
        }
        Err(_) => {
            o.last = Last::Status(PhiEdgeStatus::BadArgument);
            PhiEdgeStatus::BadArgument
        }
    }
}

/// The arena bytes for `model` and `options`, at any address: the
/// generator's handle, then the core generator's arena.
pub(crate) fn arena_bytes(model: &Model<'_>, options: &PhiEdgeOptions) -> Result<usize, Error> {
    let opts = options.gen_options(model.config())?;
    // Checks the options against the model (context, chunk).
    phi_edge::Plan::new(model.config(), &opts.run)?;
    let core = opts.arena_bytes(model.config());
    (PHI_EDGE_ARENA_ALIGN - 1)
        .checked_add(HANDLE_BYTES)
        .and_then(|n| n.checked_add(core))
        .filter(|&n| n < usize::MAX)
        .ok_or(Error::BadOptions {
            what: "the arena would not fit the address space",
        })
}

/// Writes the description of the last error of a call on `model` to
/// `buf` as a NUL-terminated string, cut to `cap` bytes (an empty string
/// if there was none), e.g. "tensor 12 checksum mismatch".
///
/// # Safety
///
/// `model` must be NULL or point to a `phi_edge_model`; `buf` NULL or
/// `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn phi_edge_model_error(
    model: *mut PhiEdgeModel,
    buf: *mut c_char,
    cap: usize,
) -> PhiEdgeStatus {
    // SAFETY: the caller's contract, for each pointer.
    let (o, buf) = match unsafe { (opened(model), args::text_buffer(buf.cast(), cap)) } {
        (Ok(o), Ok(b)) => (o, b),
        (Err(s), _) | (_, Err(s)) => return s,
    };
    o.last.describe(buf);
    PhiEdgeStatus::Ok
}

/// The model of an opened `phi_edge_model`, for `phi_edge_generator_new`:
/// the model, the image, and where to note errors.
///
/// # Safety
///
/// As [`opened`].
pub(crate) unsafe fn for_generator<'a>(
    p: *mut PhiEdgeModel,
) -> Checked<(Model<'static>, &'static [u8], &'a mut Last)> {
    // SAFETY: the caller's contract.
    let o = unsafe { opened(p) }?;
    let m = o.model()?;
    Ok((m, o.image, &mut o.last))
}

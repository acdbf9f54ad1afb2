//! The C API of phi-edge (`include/phi_edge.h`, generated from this crate
//! by `cargo xtask c-header`): open a model image that is in memory,
//! verify it, size an arena, make a generator in it, give it a prompt or
//! chat turns, and take the generated text piece by piece.
//!
//! ```c
//! phi_edge_model model;
//! phi_edge_open(&model, image, image_len);          // header and manifest
//! phi_edge_verify(&model);                          // every tensor's CRC-32
//! phi_edge_options opts = phi_edge_options_default(); // greedy
//! size_t bytes;
//! phi_edge_arena_bytes(&model, &opts, &bytes);
//! phi_edge_generator *gen;
//! phi_edge_generator_new(&model, &opts, arena, bytes, &gen);
//! phi_edge_prompt(gen, "Once upon a time", 16);
//! char piece[PHI_EDGE_TEXT_CAP];
//! size_t len;
//! while (phi_edge_next(gen, piece, sizeof piece, &len) == PHI_EDGE_STATUS_OK)
//!     fwrite(piece, 1, len, stdout);
//! ```
//!
//! - **No allocation, no global state.** The model handle is storage the
//!   caller provides; the generator and every buffer it uses live in the
//!   caller's arena (the generator at its first 64-byte boundary, its
//!   buffers after it). Nothing needs freeing. Calls on different
//!   generators may run on different threads at once; one generator is
//!   used by one thread at a time.
//! - **One thread.** A generator runs on the calling thread; the output
//!   does not depend on the number of threads, so it equals `phi-edge
//!   run`'s with any `--threads`.
//! - **Kernels picked at run time**, as the `phi-edge` command does
//!   (`phi-edge-auto`): AVX-512/AVX2 on x86-64, NEON with or without sdot
//!   on aarch64, RVV on riscv64, portable otherwise;
//!   `PHI_EDGE_KERNELS=portable` forces the portable set.
//! - **Every argument is checked.** A NULL pointer, a length past
//!   `PTRDIFF_MAX`, a misaligned pointer, a buffer too small, text that is
//!   not UTF-8 or a handle that is not one is a status code, never a
//!   crash; so is every malformed image. `phi_edge_strerror` names a code;
//!   `phi_edge_model_error` and `phi_edge_generator_error` give the
//!   details of the last error (which tensor, how many bytes).
//! - A panic inside the library (a bug) is caught at the boundary: the call
//!   returns `PHI_EDGE_STATUS_INTERNAL` and the generator is unusable.
//!
//! The crate builds a static library (`libphi_edge_ffi.a`, for C programs
//! and firmware on a Linux or other std target) and, on the host, a shared
//! one. `examples/generate.c` is a complete program; `cargo xtask
//! c-example` builds it.
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod args;
mod generator;
mod model;
mod options;
mod status;

pub use generator::{
    phi_edge_chat, phi_edge_finish, phi_edge_generator_error, phi_edge_generator_new,
    phi_edge_get_stats, phi_edge_kernels, phi_edge_next, phi_edge_prompt, phi_edge_reset,
    PhiEdgeGenerator, PhiEdgeStats, PHI_EDGE_TEXT_CAP,
};
pub use model::{
    phi_edge_arena_bytes, phi_edge_model_error, phi_edge_open, phi_edge_turn_bytes,
    phi_edge_verify, PhiEdgeModel, PHI_EDGE_ARENA_ALIGN, PHI_EDGE_MODEL_WORDS,
};
pub use options::{
    phi_edge_options_default, PhiEdgeOptions, PHI_EDGE_CACHE_F16, PHI_EDGE_CACHE_Q8_0,
};
pub use status::{phi_edge_strerror, PhiEdgeStatus};

/// Runs `f`, turning a panic (a bug in the library) into
/// `PHI_EDGE_STATUS_INTERNAL` instead of an abort at the C boundary.
fn guard(f: impl FnOnce() -> PhiEdgeStatus) -> PhiEdgeStatus {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(PhiEdgeStatus::Internal)
}

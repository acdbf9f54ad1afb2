//! What phi-edge's bare-metal board images share, with each other and with
//! the host tools that drive them.
//!
//! - [`Request`]: the blob that carries the prompt and the generation
//!   settings to a board image. The host writes it with
//!   [`Request::encode`] (see `examples/request.rs`); the boot chain puts
//!   it in the board's memory beside the model (under QEMU a second
//!   `-device loader`), and the board reads it with [`Request::decode`].
//! - [`generate::run`]: the generation loop every board runs once it has
//!   found the model, the request and its RAM: model check, prompt,
//!   prefill, token by token output, and the `prompt_ids:` / `ids:` /
//!   `stats:` lines, through the board's [`Console`] and [`Clock`].
//! - `log` (feature `semihosting-log`): the boards' defmt logger over the
//!   semihosting console.
#![no_std]
#![deny(missing_docs, unsafe_code)]

pub mod error;
pub mod generate;
#[cfg(feature = "semihosting-log")]
#[allow(unsafe_code)]
pub mod log;
pub mod request;

pub use error::RunError;
pub use generate::{Clock, Console, Progress, Stats};
pub use request::{Request, RequestError};

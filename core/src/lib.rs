//! phi-edge: a `no_std` decoder core for Phi-3 class language models.
//!
//! The core reads a phi-edge image (see [`image`]), plans one fixed arena
//! for a session (see [`plan`]), streams or maps weights from a
//! [`source::WeightSource`], and runs the decoder with a set of
//! [`kernels::Kernels`]. It never allocates: every working byte lives in the
//! caller's arena.
//!
//! Feature `std` adds the host tooling: the GGUF reader (module `gguf`)
//! and the image writer (module `pack`). Feature `defmt` implements
//! `defmt::Format` for [`Error`]; feature `embedded-storage` adds
//! `NorFlash`, a [`ReadAt`] over any `embedded-storage` `ReadNorFlash`
//! device.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_endian = "little"))]
compile_error!("phi-edge images and kernels are little-endian only");

pub mod chat;
pub mod config;
pub mod crc;
pub mod dtype;
pub mod error;
pub mod generate;
pub mod image;
pub mod kernels;
mod math;
pub mod parallel;
pub mod plan;
pub mod rope;
pub mod sample;
pub mod session;
pub mod source;
pub mod tokenizer;

#[cfg(feature = "std")]
pub mod gguf;
#[cfg(feature = "std")]
pub mod pack;

pub use chat::{ChatTemplate, Phi3System};
pub use config::{Arch, Config};
pub use dtype::{ActFormat, DType};
pub use error::{Error, Result};
pub use generate::{GenOptions, Generator, Step, Stop};
pub use image::Model;
pub use kernels::{AttnArgs, Kernels, MatOut, MatmulArgs, WeightUse};
pub use parallel::{Parallel, Serial};
pub use plan::{Plan, RunOptions};
pub use sample::{Candidate, Sampler, SamplerConfig};
pub use session::Session;
pub use source::{Mapped, ReadAt, Streamed, WeightSource};
#[cfg(feature = "embedded-storage")]
pub use source::NorFlash;
pub use tokenizer::{Tokenizer, Utf8Decoder};

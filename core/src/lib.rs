//! phi-edge: a `no_std` decoder core for Phi-3 class language models.
//!
//! The core reads a phi-edge image (see [`image`]), plans one fixed arena
//! for a session (see [`plan`]), streams or maps weights from a
//! [`source::WeightSource`], and runs the decoder with a set of
//! [`kernels::Kernels`]. It never allocates: every working byte lives in the
//! caller's arena.
//!
//! # Quick start
//!
//! A [`Generator`] does the whole job: tokenizer, chat template, session,
//! sampler and UTF-8 streaming over one arena whose size is a `const fn`
//! ([`GenOptions::arena_bytes`]). `boards/firmware-example` in the
//! repository is the same as a complete `no_std` program with a `static`
//! arena.
//!
//! ```
//! use core::fmt::Write;
//!
//! use phi_edge::{GenOptions, Generator, Kernels, Mapped, Model};
//!
//! /// Answers `question` with the model in `image`, greedily, writing the
//! /// text to `out`. `arena` holds `opts.arena_bytes(model.config())`
//! /// bytes (63 more if it is not 64-byte aligned).
//! fn answer<K: Kernels>(
//!     image: &[u8],
//!     kernels: K,
//!     arena: &mut [u8],
//!     question: &str,
//!     out: &mut impl Write,
//! ) -> phi_edge::Result<()> {
//!     let model = Model::open_mapped(image)?; // header, manifest, tensor table
//!     model.verify(&mut Mapped(image), &mut [])?; // every tensor's CRC-32
//!     let opts = GenOptions::greedy(512, 1024); // context, longest prompt
//!     let mut g = Generator::new(&model, kernels, Mapped(image), arena, &opts)?;
//!     g.chat(None, question)?; // the model's chat template, BOS as it says
//!     g.generate(64, |text| {
//!         let _ = out.write_str(text);
//!     })?;
//!     Ok(())
//! }
//! ```
//!
//! Feature `std` adds the host tooling: the GGUF reader (module `gguf`)
//! and the image writer (module `pack`). Feature `defmt` implements
//! `defmt::Format` for [`Error`]; feature `embedded-storage` adds
//! `NorFlash`, a [`ReadAt`] over any `embedded-storage` `ReadNorFlash`
//! device.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

#[cfg(not(target_endian = "little"))]
compile_error!("phi-edge images and kernels are little-endian only");

pub mod chat;
pub mod config;
pub mod crc;
pub mod dtype;
pub mod error;
pub mod generate;
mod hadamard;
pub mod image;
pub mod kernels;
pub mod limits;
mod math;
pub mod parallel;
pub mod perplexity;
pub mod plan;
pub mod quant;
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
pub use kernels::{AttnArgs, AttnQ8Args, Kernels, MatOut, MatmulArgs, WeightUse};
pub use limits::{Limit, Limits};
pub use parallel::{Parallel, Serial};
pub use plan::{KvType, Plan, RunOptions};
pub use sample::{Candidate, Sampler, SamplerConfig};
pub use session::Session;
#[cfg(feature = "embedded-storage")]
pub use source::NorFlash;
pub use source::{Mapped, ReadAt, Streamed, WeightSource};
pub use tokenizer::{Tokenizer, Utf8Decoder};

//! What phi-edge's bare-metal board images share with the host tools that
//! drive them.
//!
//! For now that is one thing: the [`Request`] blob, which carries the
//! prompt and the generation settings to a board image. The host writes it
//! with [`Request::encode`] (see `examples/request.rs`); the boot chain puts
//! it in the board's memory beside the model (under QEMU a second
//! `-device loader`), and the board reads it with [`Request::decode`].
#![no_std]
#![deny(missing_docs, unsafe_code)]

pub mod request;

pub use request::{Request, RequestError};

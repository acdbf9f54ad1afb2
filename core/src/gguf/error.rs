//! The GGUF reader's error type.

use std::fmt;

/// Everything that can be wrong with a GGUF file, or with a typed lookup
/// into one. Every variant says where: the key, the tensor name, or the
/// byte offset in the file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    BadMagic,
    /// The format version is not 2 or 3 (v1 used 32-bit counts; a
    /// byte-swapped 3 means a big-endian file).
    UnsupportedVersion(u32),
    /// The input ends inside a fixed-size field (or the padding before the
    /// tensor data).
    Truncated {
        /// The field being read.
        what: String,
        /// Byte offset of the field.
        offset: u64,
    },
    /// A count or length claims more items than the rest of the input could
    /// hold even at the smallest possible item size. Checked before anything
    /// is allocated or read.
    CountTooLarge {
        /// What was counted.
        what: String,
        /// The count found in the file.
        count: u64,
        /// Byte offset of the count field.
        offset: u64,
        /// Bytes left in the input after the count field.
        available: u64,
    },
    /// A key, string value or tensor name is not valid UTF-8.
    BadUtf8 {
        /// Which string.
        what: String,
        /// Byte offset of the string's bytes.
        offset: u64,
    },
    /// A key is the empty string (llama.cpp rejects these too).
    EmptyKey {
        /// Byte offset of the key's length field.
        offset: u64,
    },
    /// The same key appears twice.
    DuplicateKey(String),
    /// A value (or array element) type id is not a GGUF value type.
    BadValueType {
        /// The key whose value it is.
        key: String,
        /// The type id found.
        type_id: u32,
    },
    /// An array whose elements are arrays. The spec allows these, but no
    /// model uses them and llama.cpp rejects them; so do we.
    NestedArray {
        /// The key of the outer array.
        key: String,
    },
    /// A bool value (or array element) is neither 0 nor 1.
    BadBool {
        /// The key.
        key: String,
        /// Byte offset of the bad byte.
        offset: u64,
        /// The byte found.
        byte: u8,
    },
    /// `general.alignment` is zero or not a power of two.
    BadAlignment(u32),
    /// A key (or array) holds a different type than the one asked for.
    WrongType {
        /// The key.
        key: String,
        /// The type asked for, e.g. `u32` or `array<str>`.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An integer value does not fit the type asked for (e.g. a negative
    /// `i32` read with `get_u32`).
    OutOfRange {
        /// The key.
        key: String,
        /// The value found.
        value: i128,
        /// The type asked for.
        target: &'static str,
    },
    /// Two tensors share a name.
    DuplicateTensor(String),
    /// A tensor's dimension count is 0 or more than 4.
    BadNDims {
        /// The tensor.
        tensor: String,
        /// The count found.
        n_dims: u32,
    },
    /// A tensor dimension is zero.
    BadDim {
        /// The tensor.
        tensor: String,
        /// Which dimension (0 = innermost, `ne0`).
        index: u32,
        /// Its value.
        dim: u64,
    },
    /// A tensor's ggml type id is not one llama.cpp knows (or one it has
    /// removed, such as the old Q4_0_4_4 repacks).
    UnknownTensorType {
        /// The tensor.
        tensor: String,
        /// The type id found.
        type_id: u32,
    },
    /// A tensor's row length (`ne0`) is not a whole number of blocks of its
    /// type.
    PartialBlock {
        /// The tensor.
        tensor: String,
        /// The row length.
        ne0: u64,
        /// The type's block length.
        block_len: u32,
    },
    /// A tensor's element count or byte size does not fit in 64 bits.
    TensorTooLarge {
        /// The tensor.
        tensor: String,
    },
    /// A tensor's offset is not a multiple of the file's alignment.
    MisalignedTensor {
        /// The tensor.
        tensor: String,
        /// Its offset, relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's bytes `[offset, offset + n_bytes)` do not lie inside the
    /// data section (including when the sum wraps).
    TensorOutOfBounds {
        /// The tensor.
        tensor: String,
        /// Its offset, relative to the data section.
        offset: u64,
        /// Its size in bytes.
        n_bytes: u64,
        /// Bytes in the data section.
        data_len: u64,
    },
    /// Two tensors' bytes overlap.
    TensorOverlap {
        /// The tensor at the lower offset.
        first: String,
        /// The tensor that starts inside it.
        second: String,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufError::BadMagic => f.write_str("not a GGUF file (bad magic)"),
            GgufError::UnsupportedVersion(v) => {
                write!(f, "unsupported GGUF version {v} (only 2 and 3 are read)")
            }
            GgufError::Truncated { what, offset } => {
                write!(f, "GGUF truncated: {what} at byte {offset} runs past the end")
            }
            GgufError::CountTooLarge { what, count, offset, available } => write!(
                f,
                "{what} {count} (at byte {offset}) cannot fit in the {available} bytes left"
            ),
            GgufError::BadUtf8 { what, offset } => {
                write!(f, "{what} at byte {offset} is not valid UTF-8")
            }
            GgufError::EmptyKey { offset } => write!(f, "empty key at byte {offset}"),
            GgufError::DuplicateKey(key) => write!(f, "duplicate key '{key}'"),
            GgufError::BadValueType { key, type_id } => {
                write!(f, "key '{key}' has unknown value type {type_id}")
            }
            GgufError::NestedArray { key } => {
                write!(f, "key '{key}' is an array of arrays (not supported)")
            }
            GgufError::BadBool { key, offset, byte } => {
                write!(f, "key '{key}': bool at byte {offset} is {byte}, not 0 or 1")
            }
            GgufError::BadAlignment(a) => {
                write!(f, "general.alignment {a} is not a non-zero power of two")
            }
            GgufError::WrongType { key, expected, found } => {
                write!(f, "key '{key}' is {found}, expected {expected}")
            }
            GgufError::OutOfRange { key, value, target } => {
                write!(f, "key '{key}': value {value} does not fit {target}")
            }
            GgufError::DuplicateTensor(name) => write!(f, "duplicate tensor '{name}'"),
            GgufError::BadNDims { tensor, n_dims } => {
                write!(f, "tensor '{tensor}' has {n_dims} dimensions (must be 1..=4)")
            }
            GgufError::BadDim { tensor, index, dim } => {
                write!(f, "tensor '{tensor}' dimension {index} is {dim} (must be > 0)")
            }
            GgufError::UnknownTensorType { tensor, type_id } => {
                write!(f, "tensor '{tensor}' has unknown ggml type {type_id}")
            }
            GgufError::PartialBlock { tensor, ne0, block_len } => write!(
                f,
                "tensor '{tensor}' row length {ne0} is not a multiple of its block length {block_len}"
            ),
            GgufError::TensorTooLarge { tensor } => {
                write!(f, "tensor '{tensor}' size overflows 64 bits")
            }
            GgufError::MisalignedTensor { tensor, offset, alignment } => write!(
                f,
                "tensor '{tensor}' offset {offset} is not a multiple of the alignment {alignment}"
            ),
            GgufError::TensorOutOfBounds { tensor, offset, n_bytes, data_len } => write!(
                f,
                "tensor '{tensor}' bytes [{offset}, {offset} + {n_bytes}) lie outside the \
                 {data_len}-byte data section"
            ),
            GgufError::TensorOverlap { first, second } => {
                write!(f, "tensors '{first}' and '{second}' overlap")
            }
        }
    }
}

impl std::error::Error for GgufError {}

//! Weight and activation element types, bit-compatible with GGUF/ggml.
//!
//! Every quantized type stores its values in blocks; a row of `n` values is
//! `n / block_len` blocks of `block_bytes` each. The byte layouts of the
//! blocks are documented on each variant and mirror ggml exactly, so a GGUF
//! tensor can be copied into an image unchanged.

use serde::{Deserialize, Serialize};

/// A weight type the core can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum DType {
    /// 32-bit IEEE float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// bfloat16.
    BF16 = 2,
    /// 32 values: `d: f16`, `qs: [i8; 32]`; value = d * q.
    Q8_0 = 3,
    /// 32 values: `d: f16`, `qs: [u8; 16]` (low nibbles are values 0..16,
    /// high nibbles 16..32); value = d * (q - 8).
    Q4_0 = 4,
    /// 32 values: `d: f16`, `m: f16`, `qs: [u8; 16]`; value = d * q + m.
    Q4_1 = 5,
    /// 256 values: `d: f16`, `dmin: f16`, `scales: [u8; 12]` (8 packed 6-bit
    /// scale/min pairs), `qs: [u8; 128]`.
    Q4K = 6,
    /// 256 values: `ql: [u8; 128]`, `qh: [u8; 64]`, `scales: [i8; 16]`,
    /// `d: f16`.
    Q6K = 7,
}

impl DType {
    /// Every supported type, in tag order.
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q4K,
        DType::Q6K,
    ];

    /// The ggml type id (`enum ggml_type`) of this type.
    pub const fn ggml_id(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q4_1 => 3,
            DType::Q8_0 => 8,
            DType::Q4K => 12,
            DType::Q6K => 14,
            DType::BF16 => 30,
        }
    }

    /// The type with ggml type id `id`, if the core supports it.
    pub const fn from_ggml_id(id: u32) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            3 => DType::Q4_1,
            8 => DType::Q8_0,
            12 => DType::Q4K,
            14 => DType::Q6K,
            30 => DType::BF16,
            _ => return None,
        })
    }

    /// The type with image tag `tag` (the `repr(u8)` discriminant).
    pub const fn from_tag(tag: u8) -> Option<DType> {
        if (tag as usize) < Self::ALL.len() {
            Some(Self::ALL[tag as usize])
        } else {
            None
        }
    }

    /// The ggml name of the type, as llama.cpp prints it.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q4K => "q4_K",
            DType::Q6K => "q6_K",
        }
    }

    /// Values per block.
    pub const fn block_len(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 => 32,
            DType::Q4K | DType::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q4K => 144,
            DType::Q6K => 210,
        }
    }

    /// Bytes in a row of `n` values, or `None` if `n` is not a whole number
    /// of blocks or the size overflows.
    pub const fn row_bytes(self, n: usize) -> Option<usize> {
        if n % self.block_len() != 0 {
            return None;
        }
        (n / self.block_len()).checked_mul(self.block_bytes())
    }

    /// The activation format llama.cpp quantizes the other operand to when
    /// it multiplies a weight of this type (ggml's `vec_dot_type`).
    pub const fn act_format(self) -> ActFormat {
        match self {
            DType::F32 => ActFormat::F32,
            DType::F16 => ActFormat::F16,
            DType::BF16 => ActFormat::BF16,
            DType::Q8_0 | DType::Q4_0 => ActFormat::Q8_0,
            DType::Q4_1 => ActFormat::Q8_1,
            DType::Q4K | DType::Q6K => ActFormat::Q8K,
        }
    }
}

/// The format of an activation row handed to a dot-product kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActFormat {
    /// Plain f32 values.
    F32,
    /// f16 values (round to nearest even).
    F16,
    /// bf16 values (round to nearest even, as ggml converts).
    BF16,
    /// 32 values: `d: f16`, `qs: [i8; 32]`; `d = amax / 127`,
    /// `q = x * (127 / amax)` rounded half to even (llama.cpp's x86 build,
    /// which the parity goldens come from; every kernel set must match it
    /// bit for bit).
    Q8_0,
    /// 32 values: `d: f16`, `s: f16` (= d * sum(qs)), `qs: [i8; 32]`;
    /// quants as [`ActFormat::Q8_0`].
    Q8_1,
    /// 256 values: `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]` (sums of
    /// each 16 quants).
    Q8K,
}

impl ActFormat {
    /// Every activation format.
    pub const ALL: [ActFormat; 6] = [
        ActFormat::F32,
        ActFormat::F16,
        ActFormat::BF16,
        ActFormat::Q8_0,
        ActFormat::Q8_1,
        ActFormat::Q8K,
    ];

    /// Values per block.
    pub const fn block_len(self) -> usize {
        match self {
            ActFormat::F32 | ActFormat::F16 | ActFormat::BF16 => 1,
            ActFormat::Q8_0 | ActFormat::Q8_1 => 32,
            ActFormat::Q8K => 256,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            ActFormat::F32 => 4,
            ActFormat::F16 | ActFormat::BF16 => 2,
            ActFormat::Q8_0 => 34,
            ActFormat::Q8_1 => 36,
            ActFormat::Q8K => 292,
        }
    }

    /// Bytes in a row of `n` values, or `None` if `n` is not a whole number
    /// of blocks.
    pub const fn row_bytes(self, n: usize) -> Option<usize> {
        if n % self.block_len() != 0 {
            return None;
        }
        (n / self.block_len()).checked_mul(self.block_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags_round_trip() {
        for t in DType::ALL {
            assert_eq!(DType::from_ggml_id(t.ggml_id()), Some(t));
            assert_eq!(DType::from_tag(t as u8), Some(t));
        }
        assert_eq!(DType::from_ggml_id(6), None, "q5_0 is not supported");
        assert_eq!(DType::from_tag(8), None);
    }

    #[test]
    fn row_bytes_rejects_partial_blocks() {
        assert_eq!(DType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(DType::Q4_0.row_bytes(40), None);
        assert_eq!(DType::Q4K.row_bytes(512), Some(288));
        assert_eq!(ActFormat::Q8K.row_bytes(256), Some(292));
        assert_eq!(DType::F32.row_bytes(usize::MAX), None);
    }
}

//! The ggml tensor type table: block length and block size of every type
//! llama.cpp can store in a GGUF file.
//!
//! Numbers checked against llama.cpp's `type_traits` (ggml.c) and the
//! `static_assert`s on the block structs (ggml-common.h). Ids 4, 5 and
//! 31..=33, 36..=38 are types llama.cpp has removed; they are unknown here.

/// Storage layout of one ggml tensor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlTypeInfo {
    /// The `enum ggml_type` id stored in GGUF tensor infos.
    pub id: u32,
    /// The name llama.cpp prints (`ggml_type_name`).
    pub name: &'static str,
    /// Values per block.
    pub block_len: u32,
    /// Bytes per block.
    pub block_bytes: u32,
}

const fn t(id: u32, name: &'static str, block_len: u32, block_bytes: u32) -> GgmlTypeInfo {
    GgmlTypeInfo {
        id,
        name,
        block_len,
        block_bytes,
    }
}

/// Every ggml tensor type llama.cpp knows, in id order.
pub const GGML_TYPES: &[GgmlTypeInfo] = &[
    t(0, "f32", 1, 4),
    t(1, "f16", 1, 2),
    t(2, "q4_0", 32, 18),
    t(3, "q4_1", 32, 20),
    t(6, "q5_0", 32, 22),
    t(7, "q5_1", 32, 24),
    t(8, "q8_0", 32, 34),
    t(9, "q8_1", 32, 36),
    t(10, "q2_K", 256, 84),
    t(11, "q3_K", 256, 110),
    t(12, "q4_K", 256, 144),
    t(13, "q5_K", 256, 176),
    t(14, "q6_K", 256, 210),
    t(15, "q8_K", 256, 292),
    t(16, "iq2_xxs", 256, 66),
    t(17, "iq2_xs", 256, 74),
    t(18, "iq3_xxs", 256, 98),
    t(19, "iq1_s", 256, 50),
    t(20, "iq4_nl", 32, 18),
    t(21, "iq3_s", 256, 110),
    t(22, "iq2_s", 256, 82),
    t(23, "iq4_xs", 256, 136),
    t(24, "i8", 1, 1),
    t(25, "i16", 1, 2),
    t(26, "i32", 1, 4),
    t(27, "i64", 1, 8),
    t(28, "f64", 1, 8),
    t(29, "iq1_m", 256, 56),
    t(30, "bf16", 1, 2),
    t(34, "tq1_0", 256, 54),
    t(35, "tq2_0", 256, 66),
    t(39, "mxfp4", 32, 17),
    t(40, "nvfp4", 64, 36),
    t(41, "q1_0", 128, 18),
    t(42, "q2_0", 64, 18),
];

/// The layout of ggml type `id`, or `None` if llama.cpp does not know it.
pub fn ggml_type_info(id: u32) -> Option<GgmlTypeInfo> {
    GGML_TYPES.iter().find(|t| t.id == id).copied()
}

/// Bytes of a tensor of ggml type `ggml_type` with shape `dims` (`ne0`
/// first). `None` if the type is unknown, `dims` is empty or has a zero,
/// `ne0` is not a whole number of blocks, or the size overflows `u64`.
pub fn tensor_n_bytes(dims: &[u64], ggml_type: u32) -> Option<u64> {
    let info = ggml_type_info(ggml_type)?;
    let (&ne0, rest) = dims.split_first()?;
    let block_len = u64::from(info.block_len);
    if ne0 == 0 || ne0.checked_rem(block_len)? != 0 {
        return None;
    }
    let row = ne0
        .checked_div(block_len)?
        .checked_mul(u64::from(info.block_bytes))?;
    rest.iter().try_fold(
        row,
        |acc, &d| if d == 0 { None } else { acc.checked_mul(d) },
    )
}

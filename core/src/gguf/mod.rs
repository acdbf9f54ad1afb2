//! GGUF v2/v3 reader (host only).
//!
//! [`Gguf::parse`] validates the whole file up front, borrowing from the
//! input bytes: header, every key/value pair (strings' lengths and UTF-8,
//! array lengths, bool bytes), every tensor info (dimension count and
//! sizes, type, byte size), the alignment, and that every tensor's bytes
//! lie inside the data section, aligned and without overlap. After that
//! the accessors cannot fail on content, only on a caller asking for the
//! wrong type.
//!
//! Every length, offset and count read from the file is checked with
//! checked arithmetic against the bytes that remain before it is used, and
//! no allocation is sized from an unchecked count: a count is first bounded
//! by `remaining bytes / smallest possible record`. Bad input gets a typed
//! [`GgufError`] that names the key, tensor or byte offset; nothing panics.
//!
//! [`GgufWriter`] builds small v3 files for tests and tooling, including
//! deliberately malformed ones.
//!
//! Layout (little-endian): `"GGUF"`, `u32` version, `u64` tensor count,
//! `u64` key/value count, the key/value pairs, the tensor infos, padding to
//! `general.alignment` (default 32), the tensor data.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

mod error;
mod reader;
mod types;
mod value;
mod write;

#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;

pub use error::GgufError;
pub use types::{ggml_type_info, tensor_n_bytes, GgmlTypeInfo, GGML_TYPES};
pub use value::{Array, Value, ValueType};
pub use write::GgufWriter;

use reader::Reader;

/// The four bytes every GGUF file starts with (`u32` 0x46554747).
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Alignment of the data section and of tensor offsets when the file has
/// no `general.alignment` key.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The key that sets the alignment (must be `u32`).
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Smallest key/value record: key length (8), one key byte, value type
/// (4), one value byte.
const MIN_KV_BYTES: usize = 8 + 1 + 4 + 1;

/// Smallest tensor info: name length (8), `n_dims` (4), one dim (8), type
/// (4), offset (8).
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 8 + 4 + 8;

/// Most records reserved up front. Counts are already bounded by the bytes
/// left, but a record in memory is several times its smallest encoding, so
/// a hostile count could still reserve a few times the file size before
/// parsing fails; beyond this, vectors grow only as records actually parse.
const MAX_PREALLOC: usize = 4096;

/// Where one tensor is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: &'a str,
    /// Shape, `ne0` (the contiguous row length) first; dimensions past
    /// `n_dims` are 1, as in ggml.
    pub dims: [u64; 4],
    /// Number of dimensions stored in the file (1..=4).
    pub n_dims: u32,
    /// The ggml type id; see [`ggml_type_info`] and
    /// [`crate::dtype::DType::from_ggml_id`].
    pub ggml_type: u32,
    /// Offset of the tensor's bytes from the start of the data section.
    pub offset: u64,
    /// Size of the tensor's bytes.
    pub n_bytes: u64,
}

impl TensorInfo<'_> {
    /// Number of values (product of the dimensions; saturates at
    /// `u64::MAX` for an info that did not come from [`Gguf::parse`]).
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// The ggml type name (`q4_K`, `f32`, ...), or `"unknown"` for an id
    /// that is not in [`GGML_TYPES`].
    pub fn type_name(&self) -> &'static str {
        self.type_info().map_or("unknown", |t| t.name)
    }

    /// Block layout of the tensor's type.
    pub fn type_info(&self) -> Option<GgmlTypeInfo> {
        ggml_type_info(self.ggml_type)
    }

    /// The stored dimensions, `dims[..n_dims]`.
    pub fn shape(&self) -> &[u64] {
        let n = usize::try_from(self.n_dims).unwrap_or(usize::MAX);
        self.dims.get(..n).unwrap_or(&self.dims)
    }
}

/// A parsed, fully validated GGUF file, borrowing the file bytes.
pub struct Gguf<'a> {
    bytes: &'a [u8],
    version: u32,
    alignment: u64,
    data_offset: u64,
    kvs: Kvs<'a>,
    kv_index: Index<'a>,
    tensors: Vec<TensorInfo<'a>>,
    tensor_index: Index<'a>,
}

impl fmt::Debug for Gguf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("version", &self.version)
            .field("len", &self.bytes.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("n_kv", &self.kvs.len())
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}

impl<'a> Gguf<'a> {
    /// Parses and validates a whole GGUF v2 or v3 file.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, GgufError> {
        let mut r = Reader::new(bytes);

        // Header.
        let magic: [u8; 4] = r.array(|| "magic".into())?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic);
        }
        let version = r.u32(|| "version".into())?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let n_tensors_offset = r.offset();
        let n_tensors = r.u64(|| "tensor count".into())?;
        let n_kv_offset = r.offset();
        let n_kv = r.u64(|| "key/value count".into())?;
        let n_kv = r.count(n_kv, MIN_KV_BYTES, n_kv_offset, || "key/value count".into())?;
        // Loose bound now (gives a precise error early); tight bound below.
        r.count(n_tensors, MIN_TENSOR_INFO_BYTES, n_tensors_offset, || {
            "tensor count".into()
        })?;

        let (kvs, kv_index) = read_kvs(&mut r, n_kv)?;
        let alignment = alignment_of(&kvs, &kv_index)?;

        let n_tensors = r.count(n_tensors, MIN_TENSOR_INFO_BYTES, n_tensors_offset, || {
            "tensor count".into()
        })?;
        let (tensors, tensor_index) = read_tensor_infos(&mut r, n_tensors)?;

        // Data section: starts at the end of the infos rounded up to the
        // alignment. A file without tensors may end before that padding
        // (llama.cpp does not require it then).
        let file_len = bytes.len() as u64;
        let infos_end = r.offset();
        let data_offset = match align_up(infos_end, alignment) {
            Some(d) if d <= file_len => d,
            _ if tensors.is_empty() => file_len,
            _ => {
                return Err(GgufError::Truncated {
                    what: "padding before the tensor data".into(),
                    offset: infos_end,
                })
            }
        };
        check_layout(&tensors, alignment, file_len.saturating_sub(data_offset))?;

        Ok(Gguf {
            bytes,
            version,
            alignment,
            data_offset,
            kvs,
            kv_index,
            tensors,
            tensor_index,
        })
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section and tensor offsets.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the data section. In a file without tensors
    /// that ends before the alignment padding, this is the file length.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// All key/value pairs, in file order.
    pub fn kvs(&self) -> &[(&'a str, Value<'a>)] {
        &self.kvs
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.kv_index
            .get(key)
            .and_then(|&i| self.kvs.get(i))
            .map(|(_, v)| v)
    }

    fn wrong_type(key: &str, expected: &'static str, found: &Value<'_>) -> GgufError {
        GgufError::WrongType {
            key: key.to_owned(),
            expected,
            found: found.type_name(),
        }
    }

    /// The value under `key` as `u32`: any integer type whose value fits
    /// (llama.cpp writes `u32`, files in the wild use `i32` or `u64`).
    /// `Ok(None)` if absent; [`GgufError::WrongType`] for a non-integer,
    /// [`GgufError::OutOfRange`] for an integer that does not fit.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = v.as_int().ok_or_else(|| Self::wrong_type(key, "u32", v))?;
        u32::try_from(n)
            .map(Some)
            .map_err(|_| GgufError::OutOfRange {
                key: key.to_owned(),
                value: n,
                target: "u32",
            })
    }

    /// The value under `key` as `f32` (an `f64` is narrowed).
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x)),
            #[allow(clippy::cast_possible_truncation)] // narrowing f64 is the documented intent
            Some(Value::F64(x)) => Ok(Some(*x as f32)),
            Some(v) => Err(Self::wrong_type(key, "f32", v)),
        }
    }

    /// The string under `key`.
    pub fn get_str(&self, key: &str) -> Result<Option<&'a str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(*s)),
            Some(v) => Err(Self::wrong_type(key, "str", v)),
        }
    }

    /// The bool under `key`.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Self::wrong_type(key, "bool", v)),
        }
    }

    /// The array under `key` (of any element type; the [`Array`] accessors
    /// check that).
    pub fn get_array(&self, key: &str) -> Result<Option<&Array<'a>>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(Self::wrong_type(key, "array", v)),
        }
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }

    /// The bytes of tensor `t` (bounds were checked at parse). An info that
    /// did not come from this file and points outside it gets an empty
    /// slice.
    pub fn tensor_data(&self, t: &TensorInfo<'a>) -> &'a [u8] {
        let range = self
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.n_bytes)?)))
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range.and_then(|r| self.bytes.get(r)).unwrap_or(&[])
    }
}

/// Key (or tensor name) to position.
type Index<'a> = HashMap<&'a str, usize>;

/// Key/value pairs in file order.
type Kvs<'a> = Vec<(&'a str, Value<'a>)>;

/// Reads `n_kv` key/value pairs (`n_kv` already bounded by the input).
fn read_kvs<'a>(r: &mut Reader<'a>, n_kv: usize) -> Result<(Kvs<'a>, Index<'a>), GgufError> {
    let mut kvs = Vec::with_capacity(n_kv.min(MAX_PREALLOC));
    let mut index = HashMap::with_capacity(n_kv.min(MAX_PREALLOC));
    for i in 0..n_kv {
        let key_offset = r.offset();
        let key = r.string(|| format!("key {i}"))?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey { offset: key_offset });
        }
        match index.entry(key) {
            Entry::Occupied(_) => return Err(GgufError::DuplicateKey(key.to_owned())),
            Entry::Vacant(slot) => {
                slot.insert(kvs.len());
            }
        }
        let type_id = r.u32(|| format!("value type of key '{key}'"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
            key: key.to_owned(),
            type_id,
        })?;
        let value = read_value(r, key, ty)?;
        kvs.push((key, value));
    }
    Ok((kvs, index))
}

/// `general.alignment`: absent means 32; present must be a `u32` that is a
/// non-zero power of two (llama.cpp accepts no other type).
fn alignment_of(kvs: &[(&str, Value<'_>)], index: &Index<'_>) -> Result<u64, GgufError> {
    match index.get(ALIGNMENT_KEY).and_then(|&i| kvs.get(i)) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(&(_, Value::U32(a))) if a != 0 && a.is_power_of_two() => Ok(u64::from(a)),
        Some(&(_, Value::U32(a))) => Err(GgufError::BadAlignment(a)),
        Some((key, other)) => Err(GgufError::WrongType {
            key: (*key).to_owned(),
            expected: "u32",
            found: other.type_name(),
        }),
    }
}

/// Reads `n` tensor infos (`n` already bounded by the input).
fn read_tensor_infos<'a>(
    r: &mut Reader<'a>,
    n: usize,
) -> Result<(Vec<TensorInfo<'a>>, Index<'a>), GgufError> {
    let mut tensors = Vec::with_capacity(n.min(MAX_PREALLOC));
    let mut index = HashMap::with_capacity(n.min(MAX_PREALLOC));
    for i in 0..n {
        let info = read_tensor_info(r, i)?;
        match index.entry(info.name) {
            Entry::Occupied(_) => return Err(GgufError::DuplicateTensor(info.name.to_owned())),
            Entry::Vacant(slot) => {
                slot.insert(tensors.len());
            }
        }
        tensors.push(info);
    }
    Ok((tensors, index))
}

/// Checks every tensor is aligned, lies inside the `data_len`-byte data
/// section, and shares no byte with another.
fn check_layout(
    tensors: &[TensorInfo<'_>],
    alignment: u64,
    data_len: u64,
) -> Result<(), GgufError> {
    let mut spans = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.offset.checked_rem(alignment) != Some(0) {
            return Err(GgufError::MisalignedTensor {
                tensor: t.name.to_owned(),
                offset: t.offset,
                alignment,
            });
        }
        match t.offset.checked_add(t.n_bytes) {
            Some(end) if end <= data_len => spans.push((t.offset, end, t.name)),
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: t.name.to_owned(),
                    offset: t.offset,
                    n_bytes: t.n_bytes,
                    data_len,
                })
            }
        }
    }
    // Sorted by start, any overlap shows up between neighbours.
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if let [(_, first_end, first), (second_start, _, second)] = pair {
            if second_start < first_end {
                return Err(GgufError::TensorOverlap {
                    first: (*first).to_owned(),
                    second: (*second).to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// `x` rounded up to a multiple of `align` (a non-zero power of two).
fn align_up(x: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(x.checked_add(mask)? & !mask)
}

/// Reads one value of type `ty` for `key`.
fn read_value<'a>(r: &mut Reader<'a>, key: &'a str, ty: ValueType) -> Result<Value<'a>, GgufError> {
    let what = || format!("value of key '{key}'");
    Ok(match ty {
        ValueType::U8 => Value::U8(u8::from_le_bytes(r.array(what)?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(r.array(what)?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(r.array(what)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(r.array(what)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(r.array(what)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(r.array(what)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(r.array(what)?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(r.array(what)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(r.array(what)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(r.array(what)?)),
        ValueType::Bool => {
            let offset = r.offset();
            let [b] = r.array(what)?;
            Value::Bool(check_bool(key, offset, b)?)
        }
        ValueType::Str => Value::Str(r.string(what)?),
        ValueType::Array => Value::Array(read_array(r, key)?),
    })
}

fn check_bool(key: &str, offset: u64, byte: u8) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(GgufError::BadBool {
            key: key.to_owned(),
            offset,
            byte,
        }),
    }
}

/// Reads an array value (after its `Array` type id) for `key`.
fn read_array<'a>(r: &mut Reader<'a>, key: &'a str) -> Result<Array<'a>, GgufError> {
    let type_id = r.u32(|| format!("array element type of key '{key}'"))?;
    let elem = ValueType::from_id(type_id).ok_or_else(|| GgufError::BadValueType {
        key: key.to_owned(),
        type_id,
    })?;
    if elem == ValueType::Array {
        return Err(GgufError::NestedArray {
            key: key.to_owned(),
        });
    }
    let count_offset = r.offset();
    let count = r.u64(|| format!("array length of key '{key}'"))?;
    let n = r.count(count, elem.min_size(), count_offset, || {
        format!("array length of key '{key}'")
    })?;
    let start = r.pos();
    match elem.fixed_size() {
        Some(size) => {
            let elems_offset = r.offset();
            let what = || format!("elements of array '{key}'");
            // `n <= remaining / size`, so this cannot overflow; checked anyway.
            let n_bytes = n
                .checked_mul(size)
                .ok_or_else(|| GgufError::CountTooLarge {
                    what: what(),
                    count,
                    offset: count_offset,
                    available: r.remaining() as u64,
                })?;
            let raw = r.take(n_bytes, what)?;
            if elem == ValueType::Bool {
                if let Some(j) = raw.iter().position(|&b| b > 1) {
                    let offset = elems_offset.saturating_add(j as u64);
                    let byte = raw.get(j).copied().unwrap_or(0);
                    return Err(GgufError::BadBool {
                        key: key.to_owned(),
                        offset,
                        byte,
                    });
                }
            }
        }
        None => {
            for j in 0..n {
                r.string(|| format!("element {j} of array '{key}'"))?;
            }
        }
    }
    Ok(Array::new(key, elem, n, r.since(start)))
}

/// Reads and checks tensor info number `index`; alignment and bounds are
/// checked by the caller once the data section is known.
fn read_tensor_info<'a>(r: &mut Reader<'a>, index: usize) -> Result<TensorInfo<'a>, GgufError> {
    let name = r.string(|| format!("name of tensor {index}"))?;
    let n_dims = r.u32(|| format!("n_dims of tensor '{name}'"))?;
    if !(1..=4).contains(&n_dims) {
        return Err(GgufError::BadNDims {
            tensor: name.to_owned(),
            n_dims,
        });
    }
    let mut dims = [1u64; 4];
    for (d, slot) in (0u32..).zip(dims.iter_mut()).take(n_dims as usize) {
        let dim = r.u64(|| format!("dimension {d} of tensor '{name}'"))?;
        if dim == 0 {
            return Err(GgufError::BadDim {
                tensor: name.to_owned(),
                index: d,
                dim,
            });
        }
        *slot = dim;
    }
    let type_id = r.u32(|| format!("type of tensor '{name}'"))?;
    let info = ggml_type_info(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.to_owned(),
        type_id,
    })?;
    let [ne0, ne1, ne2, ne3] = dims;
    let block_len = u64::from(info.block_len);
    if ne0.checked_rem(block_len) != Some(0) {
        return Err(GgufError::PartialBlock {
            tensor: name.to_owned(),
            ne0,
            block_len: info.block_len,
        });
    }
    let too_large = || GgufError::TensorTooLarge {
        tensor: name.to_owned(),
    };
    // Both the element count and the byte size must fit u64.
    [ne1, ne2, ne3]
        .iter()
        .try_fold(ne0, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    let n_bytes = ne0
        .checked_div(block_len)
        .and_then(|blocks| blocks.checked_mul(u64::from(info.block_bytes)))
        .and_then(|row| {
            [ne1, ne2, ne3]
                .iter()
                .try_fold(row, |acc, &d| acc.checked_mul(d))
        })
        .ok_or_else(too_large)?;
    let offset = r.u64(|| format!("offset of tensor '{name}'"))?;
    Ok(TensorInfo {
        name,
        dims,
        n_dims,
        ggml_type: type_id,
        offset,
        n_bytes,
    })
}

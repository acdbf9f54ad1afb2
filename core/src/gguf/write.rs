//! A small GGUF v3 writer for tests and tooling.
//!
//! It writes what it is told, including things the reader must reject:
//! raw key/value bytes, any version or header counts, tensor offsets,
//! dimension counts and types that do not match the data. It does not
//! validate anything; [`Gguf::parse`](super::Gguf::parse) does.
// Lengths here come from the caller's own in-memory data, not from a file.
#![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]

use super::value::ValueType;
use super::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};

struct PendingTensor {
    name: Vec<u8>,
    dims: Vec<u64>,
    n_dims: Option<u32>,
    ggml_type: u32,
    offset: Option<u64>,
    data: Vec<u8>,
}

/// Builds a GGUF file in memory.
///
/// Tensors are laid out in the order added, each at the next multiple of
/// the alignment; their offsets, `n_dims` and types can be overridden
/// afterwards to build malformed files. The data bytes are written as
/// given and are not checked against the shape.
///
/// ```
/// use phi_edge::gguf::{Gguf, GgufWriter};
/// let mut w = GgufWriter::new();
/// w.add_str("general.architecture", "llama");
/// w.add_tensor("t", &[4], 0, &[0u8; 16]);
/// let bytes = w.finish();
/// let g = Gguf::parse(&bytes).unwrap();
/// assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
/// ```
pub struct GgufWriter {
    magic: [u8; 4],
    version: u32,
    n_kv_override: Option<u64>,
    n_tensors_override: Option<u64>,
    layout_alignment: u64,
    kv_bytes: Vec<u8>,
    n_kv: u64,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn pad_to(out: &mut Vec<u8>, align: u64) {
    while (out.len() as u64) % align != 0 {
        out.push(0);
    }
}

impl GgufWriter {
    /// An empty v3 file with the default alignment (32) and no
    /// `general.alignment` key.
    pub fn new() -> Self {
        GgufWriter {
            magic: GGUF_MAGIC,
            version: 3,
            n_kv_override: None,
            n_tensors_override: None,
            layout_alignment: DEFAULT_ALIGNMENT,
            kv_bytes: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }

    /// Writes `magic` instead of `GGUF`.
    pub fn set_magic(&mut self, magic: [u8; 4]) -> &mut Self {
        self.magic = magic;
        self
    }

    /// Writes `version` instead of 3.
    pub fn set_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Writes `n` as the key/value count instead of the real count.
    pub fn set_n_kv(&mut self, n: u64) -> &mut Self {
        self.n_kv_override = Some(n);
        self
    }

    /// Writes `n` as the tensor count instead of the real count.
    pub fn set_n_tensors(&mut self, n: u64) -> &mut Self {
        self.n_tensors_override = Some(n);
        self
    }

    /// Adds a `general.alignment` `u32` key with value `align` and, if it
    /// is a non-zero power of two, lays the data out with it (otherwise the
    /// layout keeps the default 32). Adding the key with
    /// [`add_u32`](Self::add_u32) or [`add_raw_kv`](Self::add_raw_kv)
    /// does not change the layout.
    pub fn set_alignment(&mut self, align: u32) -> &mut Self {
        if align.is_power_of_two() {
            self.layout_alignment = u64::from(align);
        }
        self.add_u32(ALIGNMENT_KEY, align)
    }

    /// Adds a key/value pair with any type id and any value bytes (written
    /// verbatim after the type id). `key` may be invalid UTF-8.
    pub fn add_raw_kv(&mut self, key: impl AsRef<[u8]>, type_id: u32, value: &[u8]) -> &mut Self {
        put_str(&mut self.kv_bytes, key.as_ref());
        self.kv_bytes.extend_from_slice(&type_id.to_le_bytes());
        self.kv_bytes.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    fn add_typed(&mut self, key: &str, ty: ValueType, value: &[u8]) -> &mut Self {
        self.add_raw_kv(key, ty.id(), value)
    }

    /// Adds a `u8` value.
    pub fn add_u8(&mut self, key: &str, v: u8) -> &mut Self {
        self.add_typed(key, ValueType::U8, &v.to_le_bytes())
    }

    /// Adds an `i8` value.
    pub fn add_i8(&mut self, key: &str, v: i8) -> &mut Self {
        self.add_typed(key, ValueType::I8, &v.to_le_bytes())
    }

    /// Adds a `u16` value.
    pub fn add_u16(&mut self, key: &str, v: u16) -> &mut Self {
        self.add_typed(key, ValueType::U16, &v.to_le_bytes())
    }

    /// Adds an `i16` value.
    pub fn add_i16(&mut self, key: &str, v: i16) -> &mut Self {
        self.add_typed(key, ValueType::I16, &v.to_le_bytes())
    }

    /// Adds a `u32` value.
    pub fn add_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.add_typed(key, ValueType::U32, &v.to_le_bytes())
    }

    /// Adds an `i32` value.
    pub fn add_i32(&mut self, key: &str, v: i32) -> &mut Self {
        self.add_typed(key, ValueType::I32, &v.to_le_bytes())
    }

    /// Adds a `u64` value.
    pub fn add_u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.add_typed(key, ValueType::U64, &v.to_le_bytes())
    }

    /// Adds an `i64` value.
    pub fn add_i64(&mut self, key: &str, v: i64) -> &mut Self {
        self.add_typed(key, ValueType::I64, &v.to_le_bytes())
    }

    /// Adds an `f32` value.
    pub fn add_f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.add_typed(key, ValueType::F32, &v.to_le_bytes())
    }

    /// Adds an `f64` value.
    pub fn add_f64(&mut self, key: &str, v: f64) -> &mut Self {
        self.add_typed(key, ValueType::F64, &v.to_le_bytes())
    }

    /// Adds a bool value.
    pub fn add_bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.add_typed(key, ValueType::Bool, &[u8::from(v)])
    }

    /// Adds a string value.
    pub fn add_str(&mut self, key: &str, v: &str) -> &mut Self {
        let mut value = Vec::with_capacity(8 + v.len());
        put_str(&mut value, v.as_bytes());
        self.add_typed(key, ValueType::Str, &value)
    }

    fn add_array(&mut self, key: &str, elem: ValueType, len: usize, elems: &[u8]) -> &mut Self {
        let mut value = Vec::with_capacity(12 + elems.len());
        value.extend_from_slice(&elem.id().to_le_bytes());
        value.extend_from_slice(&(len as u64).to_le_bytes());
        value.extend_from_slice(elems);
        self.add_typed(key, ValueType::Array, &value)
    }

    /// Adds an array of strings.
    pub fn add_array_str(&mut self, key: &str, v: &[&str]) -> &mut Self {
        let mut elems = Vec::new();
        for s in v {
            put_str(&mut elems, s.as_bytes());
        }
        self.add_array(key, ValueType::Str, v.len(), &elems)
    }

    /// Adds an array of `f32`.
    pub fn add_array_f32(&mut self, key: &str, v: &[f32]) -> &mut Self {
        let elems: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add_array(key, ValueType::F32, v.len(), &elems)
    }

    /// Adds an array of `i32`.
    pub fn add_array_i32(&mut self, key: &str, v: &[i32]) -> &mut Self {
        let elems: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add_array(key, ValueType::I32, v.len(), &elems)
    }

    /// Adds an array of `u32`.
    pub fn add_array_u32(&mut self, key: &str, v: &[u32]) -> &mut Self {
        let elems: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add_array(key, ValueType::U32, v.len(), &elems)
    }

    /// Adds a tensor and returns its index (for the `set_tensor_*`
    /// overrides). `name` may be invalid UTF-8; `dims` (`ne0` first) are
    /// written as given, and `n_dims` is `dims.len()` unless overridden.
    pub fn add_tensor(
        &mut self,
        name: impl AsRef<[u8]>,
        dims: &[u64],
        ggml_type: u32,
        data: &[u8],
    ) -> usize {
        self.tensors.push(PendingTensor {
            name: name.as_ref().to_vec(),
            dims: dims.to_vec(),
            n_dims: None,
            ggml_type,
            offset: None,
            data: data.to_vec(),
        });
        self.tensors.len() - 1
    }

    /// Writes `offset` as tensor `index`'s offset (its data stays where
    /// the layout put it). Does nothing for an unknown index.
    pub fn set_tensor_offset(&mut self, index: usize, offset: u64) -> &mut Self {
        if let Some(t) = self.tensors.get_mut(index) {
            t.offset = Some(offset);
        }
        self
    }

    /// Writes `n_dims` as tensor `index`'s dimension count (the dims
    /// written stay those given to [`add_tensor`](Self::add_tensor)).
    pub fn set_tensor_n_dims(&mut self, index: usize, n_dims: u32) -> &mut Self {
        if let Some(t) = self.tensors.get_mut(index) {
            t.n_dims = Some(n_dims);
        }
        self
    }

    /// Writes `ggml_type` as tensor `index`'s type.
    pub fn set_tensor_type(&mut self, index: usize, ggml_type: u32) -> &mut Self {
        if let Some(t) = self.tensors.get_mut(index) {
            t.ggml_type = ggml_type;
        }
        self
    }

    /// The data-section offset the layout gives each tensor, in order.
    fn layout(&self) -> Vec<u64> {
        let align = self.layout_alignment;
        let mut cursor = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let at = cursor.div_ceil(align) * align;
            offsets.push(at);
            cursor = at + t.data.len() as u64;
        }
        offsets
    }

    /// The file bytes.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        let n_tensors = self.n_tensors_override.unwrap_or(self.tensors.len() as u64);
        out.extend_from_slice(&n_tensors.to_le_bytes());
        out.extend_from_slice(&self.n_kv_override.unwrap_or(self.n_kv).to_le_bytes());
        out.extend_from_slice(&self.kv_bytes);

        let offsets = self.layout();
        for (t, &at) in self.tensors.iter().zip(&offsets) {
            put_str(&mut out, &t.name);
            let n_dims = t.n_dims.unwrap_or(t.dims.len() as u32);
            out.extend_from_slice(&n_dims.to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.to_le_bytes());
            out.extend_from_slice(&t.offset.unwrap_or(at).to_le_bytes());
        }

        if !self.tensors.is_empty() {
            pad_to(&mut out, self.layout_alignment);
            let data_start = out.len();
            for (t, &at) in self.tensors.iter().zip(&offsets) {
                out.resize(data_start + at as usize, 0);
                out.extend_from_slice(&t.data);
            }
            pad_to(&mut out, self.layout_alignment);
        }
        out
    }
}

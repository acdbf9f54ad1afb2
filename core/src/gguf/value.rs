//! GGUF metadata values.

use std::fmt;

use super::error::GgufError;
use super::reader::split_str;

/// A GGUF metadata value type (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `u8`.
    U8 = 0,
    /// `i8`.
    I8 = 1,
    /// `u16`.
    U16 = 2,
    /// `i16`.
    I16 = 3,
    /// `u32`.
    U32 = 4,
    /// `i32`.
    I32 = 5,
    /// `f32`.
    F32 = 6,
    /// One byte, 0 or 1.
    Bool = 7,
    /// `u64` byte length, then UTF-8.
    Str = 8,
    /// Element type `u32`, `u64` count, then the elements.
    Array = 9,
    /// `u64`.
    U64 = 10,
    /// `i64`.
    I64 = 11,
    /// `f64`.
    F64 = 12,
}

impl ValueType {
    /// The type with GGUF id `id`.
    pub const fn from_id(id: u32) -> Option<ValueType> {
        Some(match id {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::Str,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return None,
        })
    }

    /// The GGUF id of this type.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Short name (`u32`, `str`, ...), as llama.cpp prints it.
    pub const fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::Str => "str",
            ValueType::Array => "arr",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }

    /// Name of an array with elements of this type (`array<str>`, ...).
    pub const fn array_name(self) -> &'static str {
        match self {
            ValueType::U8 => "array<u8>",
            ValueType::I8 => "array<i8>",
            ValueType::U16 => "array<u16>",
            ValueType::I16 => "array<i16>",
            ValueType::U32 => "array<u32>",
            ValueType::I32 => "array<i32>",
            ValueType::F32 => "array<f32>",
            ValueType::Bool => "array<bool>",
            ValueType::Str => "array<str>",
            ValueType::Array => "array<arr>",
            ValueType::U64 => "array<u64>",
            ValueType::I64 => "array<i64>",
            ValueType::F64 => "array<f64>",
        }
    }

    /// Encoded size of one value, for the fixed-size types.
    pub const fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::Str | ValueType::Array => None,
        }
    }

    /// Smallest encoding of one value: a string is at least its 8-byte
    /// length, an array its 4-byte type and 8-byte count.
    pub(super) const fn min_size(self) -> usize {
        match self.fixed_size() {
            Some(n) => n,
            None => match self {
                ValueType::Array => 12,
                _ => 8,
            },
        }
    }

    const fn is_int(self) -> bool {
        matches!(
            self,
            ValueType::U8
                | ValueType::I8
                | ValueType::U16
                | ValueType::I16
                | ValueType::U32
                | ValueType::I32
                | ValueType::U64
                | ValueType::I64
        )
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowing strings and array bytes from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string.
    Str(&'a str),
    /// An array (never of arrays).
    Array(Array<'a>),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's type.
    pub const fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::Str,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Name of the value's type; arrays say their element type
    /// (`array<str>`).
    pub const fn type_name(&self) -> &'static str {
        match self {
            Value::Array(a) => a.elem_type.array_name(),
            v => v.value_type().name(),
        }
    }

    /// The value as an integer, if it is one of the integer types.
    pub const fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }
}

/// An array value: element type, length, and the raw element bytes as they
/// are in the file. Parsing has already checked every string's length and
/// UTF-8 and every bool's byte, so the accessors cannot fail on content.
#[derive(Clone, Copy, PartialEq)]
pub struct Array<'a> {
    key: &'a str,
    elem_type: ValueType,
    len: usize,
    raw: &'a [u8],
}

impl fmt::Debug for Array<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array({}; {})", self.elem_type.array_name(), self.len)
    }
}

impl<'a> Array<'a> {
    /// Builds an array over `raw`; the caller (the parser) has validated it.
    pub(super) fn new(key: &'a str, elem_type: ValueType, len: usize, raw: &'a [u8]) -> Self {
        Array {
            key,
            elem_type,
            len,
            raw,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element type (never [`ValueType::Array`]).
    pub fn elem_type(&self) -> ValueType {
        self.elem_type
    }

    /// The key this array is stored under.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The element bytes exactly as stored (little-endian values, or
    /// length-prefixed strings).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    fn wrong_type(&self, expected: &'static str) -> GgufError {
        GgufError::WrongType {
            key: self.key.to_owned(),
            expected,
            found: self.elem_type.array_name(),
        }
    }

    /// The elements of a string array.
    pub fn strings(&self) -> Result<impl Iterator<Item = &'a str> + Clone + 'a, GgufError> {
        if self.elem_type != ValueType::Str {
            return Err(self.wrong_type("array<str>"));
        }
        let mut rest = self.raw;
        Ok(std::iter::from_fn(move || {
            let (s, tail) = split_str(rest)?;
            rest = tail;
            Some(s)
        }))
    }

    /// The elements of an `f32` array (an `f64` array is narrowed).
    pub fn f32s(&self) -> Result<impl Iterator<Item = f32> + Clone + 'a, GgufError> {
        let size = match self.elem_type {
            ValueType::F32 => 4,
            ValueType::F64 => 8,
            _ => return Err(self.wrong_type("array<f32>")),
        };
        #[allow(clippy::cast_possible_truncation)] // narrowing f64 is the documented intent
        Ok(self
            .raw
            .chunks_exact(size)
            .map(move |c| match c.first_chunk::<8>() {
                Some(b) if size == 8 => f64::from_le_bytes(*b) as f32,
                _ => c.first_chunk::<4>().map_or(0.0, |b| f32::from_le_bytes(*b)),
            }))
    }

    /// The elements of an integer array whose values all fit `i32` (token
    /// types are written as `i32`).
    pub fn i32s(&self) -> Result<impl Iterator<Item = i32> + Clone + 'a, GgufError> {
        self.check_ints("array<i32>", "i32", |v| i32::try_from(v).is_ok())?;
        Ok(self.ints().map(|v| i32::try_from(v).unwrap_or(0)))
    }

    /// The elements of an integer array whose values all fit `u32`
    /// (typically `u32`, or `i32` with no negative values).
    pub fn u32s(&self) -> Result<impl Iterator<Item = u32> + Clone + 'a, GgufError> {
        self.check_ints("array<u32>", "u32", |v| u32::try_from(v).is_ok())?;
        Ok(self.ints().map(|v| u32::try_from(v).unwrap_or(0)))
    }

    /// Checks the element type is an integer type and every value passes
    /// `fits`.
    fn check_ints(
        &self,
        expected: &'static str,
        target: &'static str,
        fits: impl Fn(i128) -> bool,
    ) -> Result<(), GgufError> {
        if !self.elem_type.is_int() {
            return Err(self.wrong_type(expected));
        }
        match self.ints().find(|&v| !fits(v)) {
            Some(value) => Err(GgufError::OutOfRange {
                key: self.key.to_owned(),
                value,
                target,
            }),
            None => Ok(()),
        }
    }

    /// Integer elements widened to `i128` (empty for non-integer arrays).
    fn ints(&self) -> impl Iterator<Item = i128> + Clone + 'a {
        let ty = self.elem_type;
        let size = if ty.is_int() {
            ty.fixed_size().unwrap_or(1)
        } else {
            1
        };
        let raw = if ty.is_int() { self.raw } else { &[] };
        raw.chunks_exact(size).map(move |c| decode_int(ty, c))
    }
}

/// Decodes one little-endian integer of type `ty` from the front of `c`
/// (0 if `c` is too short, which the callers rule out).
fn decode_int(ty: ValueType, c: &[u8]) -> i128 {
    fn le<const N: usize>(c: &[u8]) -> [u8; N] {
        c.first_chunk::<N>().copied().unwrap_or([0; N])
    }
    match ty {
        ValueType::U8 => i128::from(u8::from_le_bytes(le(c))),
        ValueType::I8 => i128::from(i8::from_le_bytes(le(c))),
        ValueType::U16 => i128::from(u16::from_le_bytes(le(c))),
        ValueType::I16 => i128::from(i16::from_le_bytes(le(c))),
        ValueType::U32 => i128::from(u32::from_le_bytes(le(c))),
        ValueType::I32 => i128::from(i32::from_le_bytes(le(c))),
        ValueType::U64 => i128::from(u64::from_le_bytes(le(c))),
        ValueType::I64 => i128::from(i64::from_le_bytes(le(c))),
        _ => 0,
    }
}

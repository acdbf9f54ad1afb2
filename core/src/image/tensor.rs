//! The tensor table: one fixed-size record per tensor, in forward order.
//!
//! The order is fixed by the architecture (see [`TensorLayout`]), so the
//! decoder finds any tensor by arithmetic, without a search or a map:
//! the rope factors (if any), `token_embd`, each layer's tensors in the
//! order the forward pass reads them, `output_norm`, and `output` (unless
//! tied).

use crate::config::{Arch, Config};
use crate::dtype::DType;
use crate::error::{Error, Result, Section};

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Role {
    /// `rope_factors_short.weight` (LongRoPE, f32, `n_rot/2`).
    RopeFactorsShort = 0,
    /// `rope_factors_long.weight` (LongRoPE, f32, `n_rot/2`).
    RopeFactorsLong = 1,
    /// `token_embd.weight`.
    TokenEmbd = 2,
    /// `blk.N.attn_norm.weight`.
    AttnNorm = 3,
    /// `blk.N.attn_qkv.weight` (phi3: q, k and v rows stacked).
    AttnQkv = 4,
    /// `blk.N.attn_q.weight`.
    AttnQ = 5,
    /// `blk.N.attn_k.weight`.
    AttnK = 6,
    /// `blk.N.attn_v.weight`.
    AttnV = 7,
    /// `blk.N.attn_output.weight`.
    AttnOut = 8,
    /// `blk.N.ffn_norm.weight`.
    FfnNorm = 9,
    /// `blk.N.ffn_gate.weight` (llama).
    FfnGate = 10,
    /// `blk.N.ffn_up.weight` (phi3: gate rows then up rows).
    FfnUp = 11,
    /// `blk.N.ffn_down.weight`.
    FfnDown = 12,
    /// `output_norm.weight`.
    OutputNorm = 13,
    /// `output.weight`.
    Output = 14,
    /// The RoPE table, made by the packer (not in GGUF files): one row per
    /// position, `n_rot / 2` (cos, sin) pairs, f32.
    RopeCache = 15,
}

impl Role {
    const ALL: [Role; 16] = [
        Role::RopeFactorsShort,
        Role::RopeFactorsLong,
        Role::TokenEmbd,
        Role::AttnNorm,
        Role::AttnQkv,
        Role::AttnQ,
        Role::AttnK,
        Role::AttnV,
        Role::AttnOut,
        Role::FfnNorm,
        Role::FfnGate,
        Role::FfnUp,
        Role::FfnDown,
        Role::OutputNorm,
        Role::Output,
        Role::RopeCache,
    ];

    /// The role with image tag `tag`.
    pub fn from_tag(tag: u8) -> Option<Role> {
        Self::ALL.get(tag as usize).copied()
    }

    /// The GGUF tensor name; `N` stands for the layer in per-layer names.
    pub const fn gguf_name(self) -> &'static str {
        match self {
            Role::RopeFactorsShort => "rope_factors_short.weight",
            Role::RopeFactorsLong => "rope_factors_long.weight",
            Role::TokenEmbd => "token_embd.weight",
            Role::AttnNorm => "blk.N.attn_norm.weight",
            Role::AttnQkv => "blk.N.attn_qkv.weight",
            Role::AttnQ => "blk.N.attn_q.weight",
            Role::AttnK => "blk.N.attn_k.weight",
            Role::AttnV => "blk.N.attn_v.weight",
            Role::AttnOut => "blk.N.attn_output.weight",
            Role::FfnNorm => "blk.N.ffn_norm.weight",
            Role::FfnGate => "blk.N.ffn_gate.weight",
            Role::FfnUp => "blk.N.ffn_up.weight",
            Role::FfnDown => "blk.N.ffn_down.weight",
            Role::OutputNorm => "output_norm.weight",
            Role::Output => "output.weight",
            Role::RopeCache => "rope_cache",
        }
    }

    /// Whether the tensor exists once per layer.
    pub const fn per_layer(self) -> bool {
        matches!(
            self,
            Role::AttnNorm
                | Role::AttnQkv
                | Role::AttnQ
                | Role::AttnK
                | Role::AttnV
                | Role::AttnOut
                | Role::FfnNorm
                | Role::FfnGate
                | Role::FfnUp
                | Role::FfnDown
        )
    }

    /// Whether the tensor must be stored as f32 (norm weights and rope
    /// factors, which the decoder reads as plain floats).
    pub const fn needs_f32(self) -> bool {
        matches!(
            self,
            Role::AttnNorm
                | Role::FfnNorm
                | Role::OutputNorm
                | Role::RopeFactorsShort
                | Role::RopeFactorsLong
                | Role::RopeCache
        )
    }
}

/// Size of one encoded tensor record.
pub const RECORD_LEN: usize = 32;

/// One entry of the tensor table.
///
/// A tensor is `rows` rows of `cols` values each (GGUF `ne[0]` = `cols`,
/// `ne[1]` = `rows`; vectors have one row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// What the tensor is.
    pub role: Role,
    /// Element type.
    pub dtype: DType,
    /// Layer, or 0 for tensors outside the layers.
    pub layer: u16,
    /// Values per row.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
    /// Byte offset inside the data section (a multiple of 64).
    pub offset: u64,
    /// Byte length (`rows * dtype.row_bytes(cols)`).
    pub len: u64,
    /// CRC-32 of the tensor's bytes.
    pub crc: u32,
}

impl TensorEntry {
    /// The error for a failed read of this tensor's bytes at absolute
    /// image `offset`.
    pub fn read_error(&self, offset: u64) -> Error {
        Error::WeightRead {
            name: self.role.gguf_name(),
            layer: self.role.per_layer().then_some(self.layer),
            offset,
        }
    }

    /// Encodes the record (32 bytes, little-endian).
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = self.role as u8;
        b[1] = self.dtype as u8;
        b[2..4].copy_from_slice(&self.layer.to_le_bytes());
        b[4..8].copy_from_slice(&self.cols.to_le_bytes());
        b[8..12].copy_from_slice(&self.rows.to_le_bytes());
        b[12..20].copy_from_slice(&self.offset.to_le_bytes());
        b[20..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..32].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Decodes record `index`, checking only that the tags are known.
    pub fn decode(b: &[u8; RECORD_LEN], index: u32) -> Result<TensorEntry> {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
        Ok(TensorEntry {
            role: Role::from_tag(b[0]).ok_or(Error::BadTensor {
                index,
                what: "unknown role",
            })?,
            dtype: DType::from_tag(b[1]).ok_or(Error::BadTensor {
                index,
                what: "unknown type",
            })?,
            layer: u16::from_le_bytes([b[2], b[3]]),
            cols: u32_at(4),
            rows: u32_at(8),
            offset: u64_at(12),
            len: u64_at(20),
            crc: u32_at(28),
        })
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        // Checked when the table is validated; cannot fail afterwards.
        self.dtype.row_bytes(self.cols as usize).unwrap_or(0)
    }
}

/// Where each tensor of an architecture sits in the table, and the shape
/// it must have.
#[derive(Clone, Copy, Debug)]
pub struct TensorLayout {
    config: Config,
}

impl TensorLayout {
    /// The layout for `config`.
    pub const fn new(config: Config) -> Self {
        TensorLayout { config }
    }

    /// The per-layer roles of the architecture, in forward order.
    pub const fn layer_roles(&self) -> &'static [Role] {
        match self.config.arch {
            Arch::Phi3 => &[
                Role::AttnNorm,
                Role::AttnQkv,
                Role::AttnOut,
                Role::FfnNorm,
                Role::FfnUp,
                Role::FfnDown,
            ],
            Arch::Llama => &[
                Role::AttnNorm,
                Role::AttnQ,
                Role::AttnK,
                Role::AttnV,
                Role::AttnOut,
                Role::FfnNorm,
                Role::FfnGate,
                Role::FfnUp,
                Role::FfnDown,
            ],
        }
    }

    /// Index of the first layer's first tensor: after the rope factors,
    /// the rope table and `token_embd`.
    fn first_layer_index(&self) -> usize {
        2 * usize::from(self.config.has_rope_factors) + usize::from(self.has_rope_cache()) + 1
    }

    /// Whether the image has a RoPE table.
    fn has_rope_cache(&self) -> bool {
        self.config.rope_cache_rows > 0
    }

    /// Index of the first tensor after the layers (`output_norm`).
    fn after_layers_index(&self) -> usize {
        self.first_layer_index() + self.config.n_layer as usize * self.layer_roles().len()
    }

    /// Number of tensors the table must hold.
    pub fn count(&self) -> usize {
        self.after_layers_index() + if self.config.tied_output { 1 } else { 2 }
    }

    /// The `(role, layer)` of table entry `index`.
    pub fn at(&self, index: usize) -> Option<(Role, u16)> {
        let roles = self.layer_roles();
        let first = self.first_layer_index();
        let after_layers = self.after_layers_index();
        if self.config.has_rope_factors && index < 2 {
            return Some(([Role::RopeFactorsShort, Role::RopeFactorsLong][index], 0));
        }
        if self.has_rope_cache() && index == first - 2 {
            return Some((Role::RopeCache, 0));
        }
        if index == first - 1 {
            return Some((Role::TokenEmbd, 0));
        }
        if index < after_layers {
            let i = index - first;
            return Some((roles[i % roles.len()], (i / roles.len()) as u16));
        }
        match index - after_layers {
            0 => Some((Role::OutputNorm, 0)),
            1 if !self.config.tied_output => Some((Role::Output, 0)),
            _ => None,
        }
    }

    /// The table index of `(role, layer)`, if the architecture has it.
    pub fn index(&self, role: Role, layer: u16) -> Option<usize> {
        let c = &self.config;
        let first = self.first_layer_index();
        let roles = self.layer_roles();
        let after_layers = self.after_layers_index();
        match role {
            Role::RopeFactorsShort if c.has_rope_factors => Some(0),
            Role::RopeFactorsLong if c.has_rope_factors => Some(1),
            Role::RopeCache if self.has_rope_cache() => Some(first - 2),
            Role::TokenEmbd => Some(first - 1),
            Role::OutputNorm => Some(after_layers),
            Role::Output if !c.tied_output => Some(after_layers + 1),
            r if r.per_layer() && (layer as u32) < c.n_layer => roles
                .iter()
                .position(|&x| x == r)
                .map(|p| first + layer as usize * roles.len() + p),
            _ => None,
        }
    }

    /// The `(cols, rows)` shape `role` must have.
    pub fn shape(&self, role: Role) -> (u32, u32) {
        let c = &self.config;
        let q = c.n_head * c.head_dim;
        let kv = c.n_head_kv * c.head_dim;
        match role {
            Role::RopeFactorsShort | Role::RopeFactorsLong => (c.n_rot / 2, 1),
            Role::RopeCache => (c.n_rot, c.rope_cache_rows),
            Role::TokenEmbd | Role::Output => (c.n_embd, c.n_vocab),
            Role::AttnNorm | Role::FfnNorm | Role::OutputNorm => (c.n_embd, 1),
            Role::AttnQkv => (c.n_embd, q + 2 * kv),
            Role::AttnQ => (c.n_embd, q),
            Role::AttnK | Role::AttnV => (c.n_embd, kv),
            Role::AttnOut => (q, c.n_embd),
            Role::FfnGate => (c.n_embd, c.n_ff),
            Role::FfnUp if c.arch == Arch::Phi3 => (c.n_embd, 2 * c.n_ff),
            Role::FfnUp => (c.n_embd, c.n_ff),
            Role::FfnDown => (c.n_ff, c.n_embd),
        }
    }

    /// Checks one decoded entry against its expected place, shape and
    /// type, and that it lies inside `data_len` bytes after `min_offset`
    /// (the end of the previous tensor).
    pub fn check(
        &self,
        index: usize,
        e: &TensorEntry,
        min_offset: u64,
        data_len: u64,
    ) -> Result<()> {
        let i = index as u32;
        let bad = |what| Err(Error::BadTensor { index: i, what });
        let Some((role, layer)) = self.at(index) else {
            return bad("more tensors than the architecture has");
        };
        if e.role != role || e.layer != layer {
            return bad("tensor out of forward order");
        }
        if (e.cols, e.rows) != self.shape(role) {
            return bad("shape does not match the hyperparameters");
        }
        if role.needs_f32() && e.dtype != DType::F32 {
            return bad("norm weights and rope factors must be f32");
        }
        let Some(row) = e.dtype.row_bytes(e.cols as usize) else {
            return bad("row length is not a whole number of blocks");
        };
        if (row as u64).checked_mul(u64::from(e.rows)) != Some(e.len) {
            return bad("byte length does not match shape and type");
        }
        if e.offset % super::header::TENSOR_ALIGN != 0 {
            return bad("offset is not 64-byte aligned");
        }
        if e.offset < min_offset {
            return bad("tensor overlaps the previous one");
        }
        match e.offset.checked_add(e.len) {
            Some(end) if end <= data_len => Ok(()),
            _ => Err(Error::Malformed {
                section: Section::TensorTable,
                what: "tensor extends past the data",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::tiny_phi3;

    #[test]
    fn index_and_at_agree() {
        for (rope, arch, tied) in [
            (false, Arch::Phi3, false),
            (true, Arch::Phi3, false),
            (false, Arch::Llama, true),
            (false, Arch::Llama, false),
        ] {
            let mut c = tiny_phi3();
            c.arch = arch;
            c.has_rope_factors = rope;
            c.tied_output = tied;
            let l = TensorLayout::new(c);
            for i in 0..l.count() {
                let (role, layer) = l.at(i).unwrap();
                assert_eq!(l.index(role, layer), Some(i), "{role:?} {layer}");
            }
            assert_eq!(l.at(l.count()), None);
        }
    }

    #[test]
    fn records_round_trip() {
        let e = TensorEntry {
            role: Role::FfnDown,
            dtype: DType::Q4K,
            layer: 31,
            cols: 8192,
            rows: 3072,
            offset: 1 << 33,
            len: 3072 * 4608,
            crc: 0xDEAD_BEEF,
        };
        assert_eq!(TensorEntry::decode(&e.encode(), 0), Ok(e));
        let mut b = e.encode();
        b[0] = 99;
        assert!(TensorEntry::decode(&b, 0).is_err());
    }
}

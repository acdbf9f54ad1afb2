//! Which type each tensor gets for a file type: llama.cpp's
//! `llama-quantize` policy (`llama_tensor_get_type` in
//! `src/llama-quant.cpp`) for the file types phi-edge writes, on the
//! `phi3` and `llama` architectures, without an importance matrix or
//! overrides.
//!
//! - Only 2-D tensors whose names end in `weight` and are not norms are
//!   converted; 1-D tensors (norms, rope factors) keep their type.
//! - The output projection, and `token_embd` when it is tied to it (no
//!   `output.weight`), become Q6_K, unless the file type is Q8_0 (kept
//!   Q8_0) or its rows are not a multiple of the type's block (Q8_0).
//! - Q4_K_M: `attn_v` (and phi3's fused `attn_qkv`) and `ffn_down` become
//!   Q6_K on the `use_more_bits` layers: the first and last eighth and
//!   every third layer in between; a Llama 70B's other `attn_v` are Q5_K.
//! - A K-quant whose rows are not a multiple of 256 falls back to a
//!   32-block type (Q4_K to Q5_0, Q6_K to Q8_0), and any type to F16 when
//!   the rows are not a multiple of 32 either.
//!
//! llama.cpp visits the tensors sorted by layer, then name
//! ([`llama_order`]), and counts `attn_v` and `ffn_down` as it goes;
//! [`Policy::choose`] must be called in that order.

use core::cmp::Ordering;

use crate::dtype::DType;

/// A file type of `pack --type` (llama.cpp's `llama_ftype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `MOSTLY_Q8_0`.
    Q8_0,
    /// `MOSTLY_Q4_0`.
    Q4_0,
    /// `MOSTLY_Q4_1`.
    Q4_1,
    /// `MOSTLY_Q4_K_M`: Q4_K with Q6_K on the sensitive tensors.
    Q4KM,
    /// `MOSTLY_Q6_K`.
    Q6K,
    /// `MOSTLY_F16`.
    F16,
    /// `MOSTLY_BF16`.
    BF16,
}

impl FileType {
    /// Every file type, in `--type` listing order.
    pub const ALL: [FileType; 7] = [
        FileType::Q4_0,
        FileType::Q4_1,
        FileType::Q8_0,
        FileType::Q4KM,
        FileType::Q6K,
        FileType::F16,
        FileType::BF16,
    ];

    /// The name `--type` takes (as `llama-quantize` spells it, lower case).
    pub const fn name(self) -> &'static str {
        match self {
            FileType::Q8_0 => "q8_0",
            FileType::Q4_0 => "q4_0",
            FileType::Q4_1 => "q4_1",
            FileType::Q4KM => "q4_k_m",
            FileType::Q6K => "q6_k",
            FileType::F16 => "f16",
            FileType::BF16 => "bf16",
        }
    }

    /// The file type named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<FileType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The type most tensors get (`llama_ftype_get_default_type`).
    pub const fn default_type(self) -> DType {
        match self {
            FileType::Q8_0 => DType::Q8_0,
            FileType::Q4_0 => DType::Q4_0,
            FileType::Q4_1 => DType::Q4_1,
            FileType::Q4KM => DType::Q4K,
            FileType::Q6K => DType::Q6K,
            FileType::F16 => DType::F16,
            FileType::BF16 => DType::BF16,
        }
    }
}

/// What a tensor becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// It keeps its type (1-D tensors, norms).
    Keep,
    /// It is stored as this type.
    To(DType),
    /// llama.cpp would store it as this ggml type, which phi-edge does not
    /// run (Q5_0 and Q5_K from fallbacks and the Llama 70B rule).
    Unsupported(&'static str),
}

/// The type of each tensor for one file type and model.
#[derive(Clone, Debug)]
pub struct Policy {
    ftype: FileType,
    tied: bool,
    llama_70b: bool,
    n_attn_v: u32,
    n_layer: u32,
    i_attn_v: u32,
    i_ffn_down: u32,
}

/// What [`Policy::choose`] reads of a tensor.
#[derive(Clone, Copy, Debug)]
pub struct TensorDesc<'a> {
    /// The GGUF name.
    pub name: &'a str,
    /// Values per row (`ne[0]`).
    pub cols: u64,
    /// ggml's `ggml_n_dims`: 1 + the index of the last dimension above 1.
    pub n_dims: u32,
}

/// The model facts the policy depends on.
#[derive(Clone, Copy, Debug)]
pub struct ModelDesc {
    /// `{arch}.block_count`.
    pub n_layer: u32,
    /// llama.cpp classifies the model as a Llama 70B (arch `llama`, 80
    /// layers, grouped-query attention).
    pub llama_70b: bool,
}

/// Tensor categories, as llama.cpp matches them in names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnV,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if name.contains("attn_qkv.weight")
        || name.contains("attn_kv_b.weight")
        || name.contains("attn_v.weight")
    {
        Category::AttnV
    } else if name.contains("attn_k.weight")
        || name.contains("attn_q.weight")
        || name.contains("attn_output.weight")
        || name.contains("ffn_up")
        || name.contains("ffn_gate")
    {
        Category::Other
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// The layer of `blk.N.` names (as `sscanf("blk.%d.")` reads it), or -1.
fn layer_of(name: &str) -> i64 {
    let Some(rest) = name.strip_prefix("blk.") else {
        return -1;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match (rest[..digits].parse::<i64>(), rest.as_bytes().get(digits)) {
        (Ok(n), Some(b'.')) => n,
        _ => -1,
    }
}

/// llama.cpp's tensor order (`weight_name_comparer`): by layer (non-layer
/// tensors first), then by name.
pub fn llama_order(a: &str, b: &str) -> Ordering {
    layer_of(a).cmp(&layer_of(b)).then_with(|| a.cmp(b))
}

/// Whether layer `i` of `n` gets more bits (`use_more_bits`).
fn use_more_bits(i: u32, n: u32) -> bool {
    let (i, n) = (i64::from(i), i64::from(n));
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

impl Policy {
    /// The policy for `ftype` on a model whose tensors are named `names`.
    pub fn new<'a>(
        ftype: FileType,
        model: ModelDesc,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Policy {
        let mut tied = true;
        let mut n_attn_v = 0;
        for name in names {
            match category(name) {
                Category::AttnV => n_attn_v += 1,
                Category::Output => tied = false,
                _ => {}
            }
        }
        Policy {
            ftype,
            tied,
            llama_70b: model.llama_70b,
            n_attn_v,
            n_layer: model.n_layer,
            i_attn_v: 0,
            i_ffn_down: 0,
        }
    }

    /// The type of tensor `t`; call for every tensor in [`llama_order`].
    pub fn choose(&mut self, t: &TensorDesc<'_>) -> Choice {
        let quantizable =
            t.n_dims >= 2 && t.name.ends_with("weight") && !t.name.contains("_norm.weight");
        if !quantizable {
            return Choice::Keep;
        }
        let default = self.ftype.default_type();
        if matches!(self.ftype, FileType::F16 | FileType::BF16) {
            return Choice::To(default);
        }
        let cat = category(t.name);
        let cols = t.cols;
        let fits = |ty: DType| cols % ty.block_len() as u64 == 0;
        let mut ty: Result<DType, &'static str> = Ok(default);
        if cat == Category::Output || (self.tied && cat == Category::TokenEmbd) {
            if !fits(default) {
                ty = Ok(DType::Q8_0);
            } else if default != DType::Q8_0 {
                ty = Ok(DType::Q6K);
            }
        } else if cat == Category::TokenEmbd {
            // The untied embedding keeps the default for these file types.
        } else if cat == Category::AttnV {
            if self.ftype == FileType::Q4KM {
                if use_more_bits(self.i_attn_v, self.n_attn_v) {
                    ty = Ok(DType::Q6K);
                } else if self.llama_70b {
                    ty = Err("q5_K");
                }
            }
            self.i_attn_v += 1;
        } else if cat == Category::FfnDown {
            if self.ftype == FileType::Q4KM && use_more_bits(self.i_ffn_down, self.n_layer) {
                ty = Ok(DType::Q6K);
            }
            self.i_ffn_down += 1;
        }
        match ty {
            Ok(t) if fits(t) => Choice::To(t),
            Ok(DType::Q4K) if cols % 32 == 0 => Choice::Unsupported("q5_0"),
            Ok(DType::Q6K) if cols % 32 == 0 => Choice::To(DType::Q8_0),
            Ok(_) => Choice::To(DType::F16),
            Err(name) => {
                // Q5_K's fallback would be Q5_1; both are unsupported.
                if cols % 256 == 0 {
                    Choice::Unsupported(name)
                } else if cols % 32 == 0 {
                    Choice::Unsupported("q5_1")
                } else {
                    Choice::To(DType::F16)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_more_bits_layers() {
        // 32 layers (Phi-3-mini): 0..4, 28..32, and 6, 9, ..., 27.
        let got: heapless::Vec<u32, 32> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            got.as_slice(),
            &[0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
    }

    #[test]
    fn order_is_by_layer_then_name() {
        assert_eq!(llama_order("blk.2.a", "blk.10.a"), Ordering::Less);
        assert_eq!(llama_order("output.weight", "blk.0.a"), Ordering::Less);
        assert_eq!(llama_order("blk.1.b", "blk.1.a"), Ordering::Greater);
    }
}

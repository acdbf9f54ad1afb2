//! `matmul`: every weight type times a batch of activation rows.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant::{run, Format, Maddubs, Q4K, Q4KRepacked, Q4_0, Q4_0Repacked, Q4_1, Q6K, Q8_0};

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`), each
/// product in the portable set's order for `(dtype, usage)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn matmul(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let k = m.k;
    let proj = m.usage == WeightUse::Projection;
    match m.dtype {
        DType::F32 => run_rows(m, out, |w, a| dot_f32(k, w, a)),
        DType::F16 => run_rows(m, out, |w, a| dot_f16(k, w, a)),
        DType::BF16 => run_rows(m, out, |w, a| dot_bf16(k, w, a)),
        DType::Q8_0 => quant::<Q8_0>(m, out),
        DType::Q4_0 if proj => quant::<Q4_0Repacked>(m, out),
        DType::Q4_0 => quant::<Q4_0>(m, out),
        DType::Q4_1 => quant::<Q4_1>(m, out),
        DType::Q4K if proj => quant::<Q4KRepacked>(m, out),
        DType::Q4K => quant::<Q4K>(m, out),
        DType::Q6K => quant::<Q6K>(m, out),
    }
}

/// One quantized format's tiles, compiled for AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
fn quant<F: Format>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    // SAFETY: this function runs only on a CPU with the enabled features.
    unsafe { run::<F, Maddubs>(m, out) }
}

//! `matmul`: every weight type times a batch of activation rows, for the
//! AVX2 set and, with `vpdpbusd` quad sums, the AVX-512 VNNI set.

use phi_edge::kernels::{MatOut, MatmulArgs};
use phi_edge::{DType, WeightUse};
use phi_edge_portable::matmul::run_rows;

use super::float::{dot_bf16, dot_f16, dot_f32};
use super::quant::{
    run, Maddubs, Q4KRepacked, Q4_0Repacked, Quads, Vnni, Q4K, Q4_0, Q4_1, Q6K, Q8_0,
};

/// `out.token(t)[r] = dot(w[r], act[t])` (see `Kernels::matmul`), each
/// product in the portable set's order for `(dtype, usage)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn matmul(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    // SAFETY: the enabled features are those `by_type::<Maddubs>` needs.
    unsafe { by_type::<Maddubs>(m, out) }
}

/// [`matmul`] with AVX-512 VNNI quad sums (and AVX-512VL's 32 vector
/// registers): the same products, bit for bit.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn matmul_vnni(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    // SAFETY: the enabled features are those `by_type::<Vnni>` needs.
    unsafe { by_type::<Vnni>(m, out) }
}

/// The dot product for `(dtype, usage)`: the portable set's table.
///
/// # Safety
/// The CPU has AVX2, FMA, F16C and the features of `I`.
#[inline(always)]
unsafe fn by_type<I: Quads>(m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
    let k = m.k;
    let proj = m.usage == WeightUse::Projection;
    // SAFETY: the caller guarantees the features of every callee.
    unsafe {
        match m.dtype {
            DType::F32 => run_rows(m, out, |w, a| dot_f32(k, w, a)),
            DType::F16 => run_rows(m, out, |w, a| dot_f16(k, w, a)),
            DType::BF16 => run_rows(m, out, |w, a| dot_bf16(k, w, a)),
            DType::Q8_0 => run::<Q8_0, I>(m, out),
            DType::Q4_0 if proj => run::<Q4_0Repacked, I>(m, out),
            DType::Q4_0 => run::<Q4_0, I>(m, out),
            DType::Q4_1 => run::<Q4_1, I>(m, out),
            DType::Q4K if proj => run::<Q4KRepacked, I>(m, out),
            DType::Q4K => run::<Q4K, I>(m, out),
            DType::Q6K => run::<Q6K, I>(m, out),
        }
    }
}

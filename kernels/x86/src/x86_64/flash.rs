//! `attention_q8_0`: one head over a Q8_0 KV cache (llama.cpp's flash
//! attention), bit-identical to the portable set: the scores of four
//! cached rows at a time from the Q8_0 matmul tile (each the portable
//! `vec_dot_q8_0_q8_0`'s float order), the online softmax as portable
//! (scalar, with its `expf`), and the value pass eight lanes at a time
//! (`q * d` is exact, then one FMA per value, as portable's `fmaf`).

use core::arch::x86_64::*;

use phi_edge::kernels::AttnQ8Args;
use phi_edge_portable::flash::{check_q8_args, finish, online_step};
use phi_edge_portable::float::f16_to_f32;
use phi_edge_portable::quant::act::Q8_0_BYTES;

use super::quant::{Format, Maddubs, Q8_0};
use super::simd::{arr_mut, ld8, st8};

/// Cached rows scored together.
const ROWS: usize = 4;

/// See the module documentation and the portable `attention_q8_0`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attention_q8_0(a: &AttnQ8Args<'_>, out: &mut [f32]) {
    let row = check_q8_args(a, out);
    let nb = out.len() / 32;
    out.fill(0.0);
    let (mut m, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    let q = a.q.as_ptr();
    let mut j = 0;
    while j < a.n_kv {
        let n = (a.n_kv - j).min(ROWS);
        // `check_q8_args` checked that row `n_kv - 1` (and so every row
        // before it) lies inside `k`.
        let p = |i: usize| a.k[(j + i) * a.stride..][..row].as_ptr();
        let mut s = [0.0f32; ROWS];
        if n == ROWS {
            let w = [p(0), p(1), p(2), p(3)];
            // SAFETY: AVX2, FMA and F16C as the caller guarantees; each
            // pointer is at `nb` readable blocks (rows of `k`, and `q`,
            // checked); the prefetch addresses are the rows themselves.
            s = unsafe { Q8_0::tile::<Maddubs, ROWS, 1>(w, [q], nb, w) }[0];
        } else {
            for (i, s) in s.iter_mut().enumerate().take(n) {
                // SAFETY: as above, one row.
                *s = unsafe { Q8_0::tile::<Maddubs, 1, 1>([p(i)], [q], nb, [p(i)]) }[0][0];
            }
        }
        for (i, &s) in s.iter().enumerate().take(n) {
            let (ms, vs) = online_step(&mut m, s * a.scale + 0.0);
            if let Some(ms) = ms {
                scale(out, ms);
            }
            let at = (j + i) * a.stride;
            mad(&a.v[at..at + row], vs, out);
            sum = sum * ms.unwrap_or(1.0) + vs;
        }
        j += n;
    }
    finish(sum, out);
}

/// `acc *= m`, eight at a time (`acc.len()` is a multiple of 32).
#[target_feature(enable = "avx2,fma,f16c")]
fn scale(acc: &mut [f32], m: f32) {
    let vm = _mm256_set1_ps(m);
    for c in acc.chunks_exact_mut(8) {
        let c: &mut [f32; 8] = arr_mut(c, 0);
        st8(c, _mm256_mul_ps(ld8(c), vm));
    }
}

/// `acc[d] = fma(q[d] * scale, w, acc[d])` over the Q8_0 blocks of `v`.
#[target_feature(enable = "avx2,fma,f16c")]
fn mad(v: &[u8], w: f32, acc: &mut [f32]) {
    let vw = _mm256_set1_ps(w);
    for (b, o) in v.chunks_exact(Q8_0_BYTES).zip(acc.chunks_exact_mut(32)) {
        let d = _mm256_set1_ps(f16_to_f32(u16::from_le_bytes([b[0], b[1]])));
        for (qs, o) in b[2..].chunks_exact(8).zip(o.chunks_exact_mut(8)) {
            let o: &mut [f32; 8] = arr_mut(o, 0);
            let q8 = i64::from_le_bytes(qs.try_into().unwrap());
            let q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(q8)));
            st8(o, _mm256_fmadd_ps(_mm256_mul_ps(q, d), vw, ld8(o)));
        }
    }
}

//! `quantize_act`: f32 activations to Q8_0, Q8_1, Q8_K and the float
//! formats, byte-identical to the portable set: Q8_0 / Q8_1 as llama.cpp's
//! AVX2 `quantize_row_q8_0` / `q8_1` (`127 / amax`, `vroundps` to nearest
//! even), Q8_K as `quantize_row_q8_K_ref`.

use core::arch::x86_64::*;

use phi_edge::ActFormat;
use phi_edge_portable::convert::act_out;
use phi_edge_portable::float::quantize_row_f32;
use phi_edge_portable::quant::act::{
    q8_k_iscale, quantize_row_q8_0, quantize_row_q8_1, Q8_0_BYTES, Q8_1_BYTES, Q8_K_BYTES,
};

use super::float::{f32_to_bf16_bytes, f32_to_f16_bytes};
use super::simd::{arr, arr_mut, hmax_epi32, hsum_epi32, ld8, st32_bytes};

/// Converts `x` to `fmt` in the first `fmt.row_bytes(x.len())` bytes of
/// `out` (see `Kernels::quantize_act`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn quantize_act(fmt: ActFormat, x: &[f32], out: &mut [u8]) {
    let out = act_out(fmt, x.len(), out);
    match fmt {
        ActFormat::F32 => quantize_row_f32(x, out),
        ActFormat::F16 => f32_to_f16_bytes(x, out),
        ActFormat::BF16 => f32_to_bf16_bytes(x, out),
        ActFormat::Q8_0 => q8_row::<false>(x, out),
        ActFormat::Q8_1 => q8_row::<true>(x, out),
        ActFormat::Q8K => {
            for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
                q8_k_block(arr(xb, 0), arr_mut(ob, 0));
            }
        }
    }
}

/// The largest `|x|` of `x`, eight at a time on the bits: with the sign
/// cleared, f32 values order as their bit patterns read as i32, NaN above
/// infinity above every finite value, so an integer max neither loses a
/// NaN (as `maxps` would) nor depends on the order. The result is NaN or
/// infinite if any value is.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn amax_bits(x: &[f32]) -> f32 {
    let mask = _mm256_set1_epi32(0x7fff_ffff);
    let mut m = _mm256_setzero_si256();
    for c in x.chunks_exact(8) {
        m = _mm256_max_epi32(
            m,
            _mm256_and_si256(_mm256_castps_si256(ld8(arr(c, 0))), mask),
        );
    }
    f32::from_bits(hmax_epi32(m) as u32)
}

/// `round(x * m)` to nearest even as i32 (`vroundps`, then an exact
/// `vcvtps2dq`), eight values per vector.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn round_mul32(x: &[f32; 32], m: __m256) -> [__m256i; 4] {
    let mut q = [_mm256_setzero_si256(); 4];
    for (j, qj) in q.iter_mut().enumerate() {
        let v = _mm256_mul_ps(ld8(arr(x, 8 * j)), m);
        *qj = _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(v));
    }
    q
}

/// Packs four vectors of i32 in `-128..=127` to 32 bytes in element order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pack_i8(q: &[__m256i; 4]) -> __m256i {
    // Each pack works within 128-bit halves: the 4-byte groups come out as
    // elements 0-3, 8-11, 16-19, 24-27, 4-7, 12-15, 20-23, 28-31.
    let p = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// One Q8_0 / Q8_1 block as the portable x86 quantizer: `d = amax / 127`,
/// `q = rint(x * (127 / amax))`; returns `d` and the sum of the quants.
/// Returns `None`, writing nothing, where the portable quantizer must
/// decide: if a value is NaN or infinite (the order of ggml's max loop
/// matters) or `127 / amax` overflows (its saturating casts do).
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_block(x: &[f32; 32], qs: &mut [u8; 32]) -> Option<(f32, i32)> {
    let amax = amax_bits(x);
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    if !(amax.is_finite() && id.is_finite()) {
        return None;
    }
    let q = round_mul32(x, _mm256_set1_ps(id));
    st32_bytes(qs, pack_i8(&q));
    let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    Some((amax / 127.0, hsum_epi32(s)))
}

/// Q8_0 (`SUM = false`: `d`, quants) or Q8_1 (`SUM = true`: `d`, `s`,
/// quants) blocks as the portable `quantize_row_q8_0` / `q8_1`: the quants
/// and `d` by [`q8_block`], `s = sum(q) * d`, both stored as f16 by F16C
/// (round to nearest even, as the portable set's `half` conversion); a
/// block [`q8_block`] declines is quantized by the portable quantizer.
/// `out` holds exactly the row's blocks (`act_out`).
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_row<const SUM: bool>(x: &[f32], out: &mut [u8]) {
    let (bytes, head) = if SUM {
        (Q8_1_BYTES, 4)
    } else {
        (Q8_0_BYTES, 2)
    };
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(bytes)) {
        let Some((d, sum)) = q8_block(arr(xb, 0), arr_mut(ob, head)) else {
            if SUM {
                quantize_row_q8_1(xb, ob);
            } else {
                quantize_row_q8_0(xb, ob);
            }
            continue;
        };
        // [d, sum * d] to f16 in the low 32 bits.
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_setr_ps(d, sum as f32 * d, 0.0, 0.0));
        let ds = (_mm_cvtsi128_si32(h) as u32).to_le_bytes();
        ob[..head].copy_from_slice(&ds[..head]);
    }
}

/// One Q8_K block as the portable `quantize_row_q8_k`
/// (`quantize_row_q8_K_ref`): `q = min(127, nearest_int(iscale * x))`
/// (ties to even, as `vroundps`), `bsums` per 16, `d = 1 / iscale`. The
/// block prologue is the portable `q8_k_iscale`; a block whose `iscale`
/// overflows (a subnormal `max`) is left to the portable quantizer.
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_k_block(x: &[f32; 256], ob: &mut [u8; Q8_K_BYTES]) {
    let Some(iscale) = q8_k_iscale(x, amax_bits(x), ob) else {
        return;
    };
    let m = _mm256_set1_ps(iscale);
    let cap = _mm256_set1_epi32(127);
    let (head, bsums) = ob.split_at_mut(4 + 256);
    for (c, (qc, sc)) in x.chunks_exact(32).zip(
        head[4..]
            .chunks_exact_mut(32)
            .zip(bsums.chunks_exact_mut(4)),
    ) {
        let mut q = round_mul32(arr(c, 0), m);
        for qj in &mut q {
            *qj = _mm256_min_epi32(*qj, cap);
        }
        st32_bytes(arr_mut(qc, 0), pack_i8(&q));
        let s0 = hsum_epi32(_mm256_add_epi32(q[0], q[1])) as i16;
        let s1 = hsum_epi32(_mm256_add_epi32(q[2], q[3])) as i16;
        sc[..2].copy_from_slice(&s0.to_le_bytes());
        sc[2..].copy_from_slice(&s1.to_le_bytes());
    }
    head[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

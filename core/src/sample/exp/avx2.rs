//! [`super::exp_neg`] four at a time in AVX2: the same IEEE operations on
//! the same values (`vroundpd` truncates where the portable code emulates
//! it; no FMA), so the same bits, in the instructions the compiler's
//! vectorization of the portable code falls short of.

use core::arch::x86_64::*;

use super::{
    add_weights, slow_weights, BIAS, INVLN2, LN2HI, LN2LO, LOWEST, P1, P2, P3, P4, P5, REDUCE_FROM,
    TINY_BELOW,
};

/// `exp_neg` of each lane of `x` (all in `[LOWEST, 0]`).
#[target_feature(enable = "avx2")]
#[inline]
fn exp4(x: __m256d) -> __m256d {
    let ax = _mm256_sub_pd(_mm256_setzero_pd(), x);
    let t = _mm256_sub_pd(
        _mm256_mul_pd(_mm256_set1_pd(INVLN2), x),
        _mm256_set1_pd(0.5),
    );
    let truncated = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(t);
    let k = _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GE_OQ>(ax, _mm256_set1_pd(REDUCE_FROM)),
        truncated,
    );
    let hi = _mm256_sub_pd(x, _mm256_mul_pd(k, _mm256_set1_pd(LN2HI)));
    let lo = _mm256_mul_pd(k, _mm256_set1_pd(LN2LO));
    let r = _mm256_sub_pd(hi, lo);
    let xx = _mm256_mul_pd(r, r);
    let mut p = _mm256_add_pd(_mm256_set1_pd(P4), _mm256_mul_pd(xx, _mm256_set1_pd(P5)));
    p = _mm256_add_pd(_mm256_set1_pd(P3), _mm256_mul_pd(xx, p));
    p = _mm256_add_pd(_mm256_set1_pd(P2), _mm256_mul_pd(xx, p));
    p = _mm256_add_pd(_mm256_set1_pd(P1), _mm256_mul_pd(xx, p));
    let c = _mm256_sub_pd(r, _mm256_mul_pd(xx, p));
    let q = _mm256_div_pd(_mm256_mul_pd(r, c), _mm256_sub_pd(_mm256_set1_pd(2.0), c));
    let y = _mm256_add_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_sub_pd(q, lo), hi));
    let biased = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(BIAS)));
    let scaled = _mm256_mul_pd(y, _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased)));
    let tiny = _mm256_cmp_pd::<_CMP_LT_OQ>(ax, _mm256_set1_pd(TINY_BELOW));
    _mm256_blendv_pd(scaled, _mm256_add_pd(_mm256_set1_pd(1.0), x), tiny)
}

/// `l - max` in f64 for four logits, and whether all four are in
/// `exp4`'s range (false for NaN).
#[target_feature(enable = "avx2")]
#[inline]
fn diffs(l: &[f32; 4], max: __m256d) -> (__m256d, bool) {
    // SAFETY: reads the four f32 of `l`; no alignment needed.
    let l = unsafe { _mm_loadu_ps(l.as_ptr()) };
    let d = _mm256_sub_pd(_mm256_cvtps_pd(l), max);
    let ok = _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GE_OQ>(d, _mm256_set1_pd(LOWEST)),
        _mm256_cmp_pd::<_CMP_LE_OQ>(d, _mm256_setzero_pd()),
    );
    (d, _mm256_movemask_pd(ok) == 0xF)
}

/// Four f64 as an array.
#[target_feature(enable = "avx2")]
#[inline]
fn store(v: __m256d) -> [f64; 4] {
    let mut a = [0.0; 4];
    // SAFETY: writes the four f64 of `a`; no alignment needed.
    unsafe { _mm256_storeu_pd(a.as_mut_ptr(), v) };
    a
}

/// `sum + Σ weight(l, max)` over `logits`, left to right.
#[target_feature(enable = "avx2")]
pub(super) fn weight_sum(mut sum: f64, logits: &[f32], max: f32) -> f64 {
    let m = _mm256_set1_pd(f64::from(max));
    let mut quads = logits.chunks_exact(4);
    for q in &mut quads {
        let (d, ok) = diffs(q.try_into().expect("chunks of 4"), m);
        if ok {
            for w in store(exp4(d)) {
                sum += w;
            }
        } else {
            sum = add_weights(sum, q, max);
        }
    }
    add_weights(sum, quads.remainder(), max)
}

/// `out[i] = weight(logits[i], max)`; `out` as long as `logits`.
#[target_feature(enable = "avx2")]
pub(super) fn weights(logits: &[f32], max: f32, out: &mut [f64]) {
    let m = _mm256_set1_pd(f64::from(max));
    let mut quads = logits.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (q, o) in (&mut quads).zip(&mut outs) {
        let (d, ok) = diffs(q.try_into().expect("chunks of 4"), m);
        if ok {
            o.copy_from_slice(&store(exp4(d)));
        } else {
            slow_weights(q, max, o);
        }
    }
    slow_weights(quads.remainder(), max, outs.into_remainder());
}

//! The softmax weights `exp(l - max)` of a whole vocabulary and their sum,
//! in f64, with the same bits as [`libm::exp`] one logit after another and
//! a left-to-right sum, several times faster.
//!
//! [`exp_neg`] is `libm::exp` (FreeBSD's `e_exp.c` as the `libm` crate
//! ports it) for arguments in `[-708, 0]`, with its branches turned into
//! selects: the same IEEE operations on the same values in the same order,
//! so the same result, and straight-line code the compiler vectorizes
//! (with feature `std` on x86-64 CPUs with AVX2, the same written in AVX2
//! intrinsics, [`avx2`]). Arguments outside that range (huge logit spreads,
//! NaN, infinities) go through `libm::exp` itself. The sum keeps the plain
//! left-to-right order.

// libm's constants, by their bits (as its source gives them).
/// `ln 2` split in a high part with trailing zeros and the rest.
const LN2HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1 / ln 2`.
const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
/// The rational approximation's coefficients.
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);
/// libm reduces the argument when the high word of `|x|` exceeds
/// `0x3fd62e42` (`|x| > ln2 / 2`), i.e. from this value on.
const REDUCE_FROM: f64 = f64::from_bits(0x3fd6_2e43_0000_0000);
/// libm returns `1 + x` when the high word of `|x|` is at most
/// `0x3e300000` (`|x| <= 2^-28`), i.e. below this value.
const TINY_BELOW: f64 = f64::from_bits(0x3e30_0001_0000_0000);
/// Adding and subtracting `1.5 * 2^52` rounds an f64 below `2^51` in
/// magnitude to an integer.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// `2^52 + 1023`: `k + BIAS` has the biased exponent `k + 1023` in its low
/// mantissa bits, for integers `k` in `[-1022, 0]`.
const BIAS: f64 = 4_503_599_627_370_496.0 + 1023.0;
/// The fast path's argument range (libm's normal path, and `k >= -1022`
/// so that its `scalbn` is one multiplication).
const LOWEST: f64 = -708.0;

/// `libm::exp(x)` for `x` in `[LOWEST, 0]` (`-0.0` included), bit for bit.
#[inline(always)]
fn exp_neg(x: f64) -> f64 {
    let ax = -x;
    // k = (int)(invln2 * x - 0.5) for x < 0, a truncation towards zero;
    // libm's own k = -1 for |x| < 1.5 ln2 is what this gives there too.
    let t = INVLN2 * x - 0.5;
    let rounded = (t + ROUND) - ROUND;
    let truncated = if rounded < t { rounded + 1.0 } else { rounded };
    let k = if ax >= REDUCE_FROM { truncated } else { 0.0 };
    // With k = 0 these give hi = x, lo = 0 exactly, as libm's middle case.
    let hi = x - k * LN2HI;
    let lo = k * LN2LO;
    let r = hi - lo;
    let xx = r * r;
    let c = r - xx * (P1 + xx * (P2 + xx * (P3 + xx * (P4 + xx * P5))));
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // scalbn(y, k) for k in [-1022, 0] is y * 2^k (exactly y when k = 0).
    let scale = f64::from_bits((k + BIAS).to_bits() << 52);
    if ax < TINY_BELOW {
        1.0 + x
    } else {
        y * scale
    }
}

/// `exp(logit - max)` as the sampler defines it (1 for the maximum itself).
fn weight(logit: f32, max: f32) -> f64 {
    super::weight(logit, max)
}

/// Logits per block: their weights are computed together, then added in
/// order.
const BLOCK: usize = 16;

/// The weights of one block into `w`, through [`exp_neg`]; false (`w`
/// then unspecified) if some argument is outside its range.
#[inline(always)]
fn block_weights(b: &[f32], m: f64, w: &mut [f64; BLOCK]) -> bool {
    let mut d = [0.0f64; BLOCK];
    for (d, &l) in d.iter_mut().zip(b) {
        *d = f64::from(l) - m;
    }
    // False for NaN too. `d == 0` exactly when `l == max` (for finite
    // values), and exp_neg(0) = 1 = weight(max, max). (`&`, not the
    // short-circuiting `contains`, so that the check vectorizes.)
    #[allow(clippy::manual_range_contains)]
    let in_range = d
        .iter()
        .fold(true, |ok, &d| ok & (d >= LOWEST) & (d <= 0.0));
    for (w, &d) in w.iter_mut().zip(&d) {
        *w = exp_neg(d);
    }
    in_range
}

/// `sum + Σ weight(l, max)` over `logits`, left to right.
#[inline(always)]
fn sum_generic(mut sum: f64, logits: &[f32], max: f32) -> f64 {
    let m = f64::from(max);
    let mut blocks = logits.chunks_exact(BLOCK);
    let mut w = [0.0f64; BLOCK];
    for b in &mut blocks {
        if block_weights(b, m, &mut w) {
            for w in w {
                sum += w;
            }
        } else {
            sum = add_weights(sum, b, max);
        }
    }
    add_weights(sum, blocks.remainder(), max)
}

/// `out[i] = weight(logits[i], max)`.
#[inline(always)]
fn weights_generic(logits: &[f32], max: f32, out: &mut [f64]) {
    let m = f64::from(max);
    let mut blocks = logits.chunks_exact(BLOCK);
    let mut outs = out.chunks_exact_mut(BLOCK);
    for (b, o) in (&mut blocks).zip(&mut outs) {
        let o: &mut [f64; BLOCK] = o.try_into().expect("chunks_exact_mut gives BLOCK values");
        if !block_weights(b, m, o) {
            slow_weights(b, max, o);
        }
    }
    slow_weights(blocks.remainder(), max, outs.into_remainder());
}

/// `sum` plus the weights of `logits` through `libm::exp`, in order.
#[cold]
#[inline(never)]
fn add_weights(mut sum: f64, logits: &[f32], max: f32) -> f64 {
    for &l in logits {
        sum += weight(l, max);
    }
    sum
}

/// The weights of `logits` through `libm::exp`.
#[cold]
#[inline(never)]
fn slow_weights(logits: &[f32], max: f32, out: &mut [f64]) {
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = weight(l, max);
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx2;

/// Whether this CPU runs the AVX2 code.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// `sum + Σ weight(l, max)` over `logits`, left to right, with the bits of
/// the plain loop.
pub(super) fn weight_sum(sum: f64, logits: &[f32], max: f32) -> f64 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if has_avx2() {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::weight_sum(sum, logits, max) };
    }
    sum_generic(sum, logits, max)
}

/// `out[i] = weight(logits[i], max)` for every pair, with the bits of
/// `libm::exp`. Panics if `out` is shorter than `logits`.
pub(super) fn weights(logits: &[f32], max: f32, out: &mut [f64]) {
    let out = &mut out[..logits.len()];
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if has_avx2() {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::weights(logits, max, out) };
    }
    weights_generic(logits, max, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn exp_neg_is_libm_exp_bit_for_bit() {
        let check = |x: f64| {
            if (LOWEST..=0.0).contains(&x) {
                assert_eq!(exp_neg(x).to_bits(), libm::exp(x).to_bits(), "exp({x:e})");
            }
        };
        let mut s = 0x1234_5678_9abc_def1u64;
        let unit = |s: &mut u64| (xorshift(s) >> 11) as f64 / (1u64 << 53) as f64;
        for _ in 0..300_000 {
            check(-unit(&mut s) * 708.0);
            check(-unit(&mut s) * 2.0);
            check(-unit(&mut s) * 1e-6);
            check(-f64::from_bits(xorshift(&mut s) >> 2));
        }
        // Around every threshold of libm's branches, and the ends.
        let edges: [u64; 8] = [
            0x3fd6_2e42_fefa_39ef, // ln2 / 2
            0x3fd6_2e43_0000_0000,
            0x3ff0_a2b2_0000_0000, // about 1.5 ln2
            0x3ff0_a2b2_3f3b_ab73,
            0x3e30_0000_0000_0000, // 2^-28
            0x3e30_0001_0000_0000,
            0x4086_2000_0000_0000, // 708
            0,
        ];
        for e in edges {
            for d in -3000i64..3000 {
                check(-f64::from_bits(
                    e.wrapping_add(d as u64) & 0x7fff_ffff_ffff_ffff,
                ));
            }
        }
        check(-0.0);
        for k in -1100..=0 {
            check(k as f64 * core::f64::consts::LN_2);
            check(k as f64 * core::f64::consts::LN_2 + 0.5 * core::f64::consts::LN_2);
        }
    }

    /// The sum as it was written before this module: one `libm::exp` per
    /// logit, left to right. (`Iterator::sum` starts from -0.0 in recent
    /// Rust: the same result once one weight, never -0.0, is added;
    /// `log_prob` never sums an empty vocabulary.)
    fn plain(logits: &[f32], max: f32) -> f64 {
        logits.iter().fold(0.0, |s, &l| s + weight(l, max))
    }

    #[test]
    fn weight_sum_is_the_plain_sum_bit_for_bit() {
        let mut s = 42u64;
        let mut logits = [0f32; 1000];
        for case in 0..200 {
            let spread = [1.0f32, 10.0, 40.0, 800.0, 2000.0][case % 5];
            for l in &mut logits {
                *l = ((xorshift(&mut s) >> 40) as f32 / (1u64 << 24) as f32 - 0.7) * spread;
            }
            let n = [1000, 999, 17, 16, 15, 1, 0][case % 7];
            let mut v = &mut logits[..n];
            match case % 11 {
                3 if n > 5 => v[3] = f32::NAN,
                4 if n > 5 => v[4] = f32::INFINITY,
                5 if n > 5 => v[5] = f32::NEG_INFINITY,
                6 => v.iter_mut().for_each(|l| *l = 2.5),
                7 if n > 9 => {
                    v[9] = -0.0;
                    v[8] = 0.0;
                    v = &mut v[7..];
                }
                _ => {}
            }
            let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let want = plain(v, max);
            assert_eq!(
                weight_sum(0.0, v, max).to_bits(),
                want.to_bits(),
                "case {case}"
            );
            assert_eq!(
                sum_generic(0.0, v, max).to_bits(),
                want.to_bits(),
                "case {case}"
            );
            let half = v.len() / 2;
            let (a, b) = v.split_at(half);
            assert_eq!(
                weight_sum(weight_sum(0.0, a, max), b, max).to_bits(),
                want.to_bits(),
                "case {case}"
            );
            let mut w = [0f64; 1000];
            weights(v, max, &mut w);
            for (i, (&w, &l)) in w.iter().zip(v.iter()).enumerate() {
                assert_eq!(
                    w.to_bits(),
                    weight(l, max).to_bits(),
                    "case {case}, logit {i}"
                );
            }
            let mut w2 = [0f64; 1000];
            weights_generic(v, max, &mut w2[..v.len()]);
            assert!(
                w[..v.len()]
                    .iter()
                    .zip(&w2)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {case}"
            );
        }
    }
}

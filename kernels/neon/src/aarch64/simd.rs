//! NEON building blocks: loads from fixed-size arrays (so no load can
//! leave its slice), f16 conversions, the 4-product integer dot, ggml's
//! horizontal sums.
//!
//! Every function is `#[target_feature(enable = "neon")]`; this module is
//! only compiled when the target has NEON (see the crate root), so callers
//! inside the crate may call them freely.

use core::arch::aarch64::*;
use core::arch::asm;

/// `b[o..o + N]` as an array reference; with a constant `o` on a
/// fixed-size `b` the bounds check folds away.
#[inline(always)]
pub(crate) fn arr<const N: usize>(b: &[u8], o: usize) -> &[u8; N] {
    b[o..o + N].try_into().unwrap()
}

/// 16 bytes.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_u8(b: &[u8; 16]) -> uint8x16_t {
    // SAFETY: reads exactly the 16 bytes of `b`; no alignment needed.
    unsafe { vld1q_u8(b.as_ptr()) }
}

/// 16 bytes as signed.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_i8(b: &[u8; 16]) -> int8x16_t {
    vreinterpretq_s8_u8(ld_u8(b))
}

/// 16 bytes as four little-endian f32.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_f32_bytes(b: &[u8; 16]) -> float32x4_t {
    vreinterpretq_f32_u8(ld_u8(b))
}

/// 16 bytes as eight little-endian u16.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_u16_bytes(b: &[u8; 16]) -> uint16x8_t {
    vreinterpretq_u16_u8(ld_u8(b))
}

/// Four f32.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_f32(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: reads exactly the 4 values of `x`.
    unsafe { vld1q_f32(x.as_ptr()) }
}

/// Stores four f32.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn st_f32(x: &mut [f32; 4], v: float32x4_t) {
    // SAFETY: writes exactly the 4 values of `x`.
    unsafe { vst1q_f32(x.as_mut_ptr(), v) }
}

/// Eight u16.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_u16(x: &[u16; 8]) -> uint16x8_t {
    // SAFETY: reads exactly the 8 values of `x`.
    unsafe { vld1q_u16(x.as_ptr()) }
}

/// Four u16.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn ld_u16x4(x: &[u16; 4]) -> uint16x4_t {
    // SAFETY: reads exactly the 4 values of `x`.
    unsafe { vld1_u16(x.as_ptr()) }
}

/// Stores 16 bytes.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn st_u8(b: &mut [u8; 16], v: uint8x16_t) {
    // SAFETY: writes exactly the 16 bytes of `b`.
    unsafe { vst1q_u8(b.as_mut_ptr(), v) }
}

/// Eight f16 to two f32x4 (low half, high half), exactly (`fcvtl`,
/// `fcvtl2`: base ARMv8 SIMD; NaN inputs become quiet NaNs).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn f16x8_to_f32(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let lo: float32x4_t;
    let hi: float32x4_t;
    // SAFETY: register-only conversions, available on every ARMv8-A core
    // with Advanced SIMD.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (lo, hi)
}

/// Four f16 to f32, exactly (`fcvtl`).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    let o: float32x4_t;
    // SAFETY: a register-only conversion of base ARMv8 SIMD.
    unsafe {
        asm!(
            "fcvtl {o:v}.4s, {h:v}.4h",
            h = in(vreg) h,
            o = out(vreg) o,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    o
}

/// Two f32x4 to eight f16, rounding to nearest even (`fcvtn`, `fcvtn2`,
/// with the default FPCR rounding mode; a NaN keeps its sign and top
/// payload bits and becomes quiet, as F16C and `half` do).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn f32_to_f16x8(lo: float32x4_t, hi: float32x4_t) -> uint16x8_t {
    let o: uint16x8_t;
    // SAFETY: register-only conversions of base ARMv8 SIMD.
    unsafe {
        asm!(
            "fcvtn {o:v}.4h, {lo:v}.4s",
            "fcvtn2 {o:v}.8h, {hi:v}.4s",
            lo = in(vreg) lo,
            hi = in(vreg) hi,
            o = out(vreg) o,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    o
}

/// f32 values rounded to f16 and back.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn round_f16x4(x: float32x4_t) -> float32x4_t {
    let h = f32_to_f16x8(x, x);
    f16x4_to_f32(vget_low_u16(h))
}

/// `acc + (lane l: a[4l..4l + 4] . b[4l..4l + 4])`, the partition of both
/// `sdot` and the AVX2 `maddubs`/`madd` pair the oracle follows. With
/// `SDOT` one `sdot` instruction; otherwise widening multiplies and
/// pairwise adds. Exact for all i8 inputs either way.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn dot4<const SDOT: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    if SDOT {
        let mut acc = acc;
        // SAFETY: `SDOT` is only instantiated by `NeonDot`, which can only
        // be constructed on a CPU with the dot product extension
        // (`NeonDot::new_unchecked`'s contract). Register-only.
        unsafe {
            asm!(
                ".arch_extension dotprod",
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    } else {
        let p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let p1 = vmull_high_s8(a, b);
        vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)))
    }
}

/// [`dot4`] where every product `a[i] * b[i]` has magnitude below 2^14
/// (`a` a 4- or 6-bit quant, `b` any i8): the same lanes, with the
/// baseline set summing pairs of products in i16 first (exact: a pair
/// stays below 2^15), 4 instructions instead of 5.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn dot4_small<const SDOT: bool>(
    acc: int32x4_t,
    a: int8x16_t,
    b: int8x16_t,
) -> int32x4_t {
    if SDOT {
        dot4::<SDOT>(acc, a, b)
    } else {
        let p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let p1 = vmull_high_s8(a, b);
        // [p0 + p1, p2 + p3, ..] in i16, then lane l = products 4l..4l + 4.
        vpadalq_s16(acc, vpaddq_s16(p0, p1))
    }
}

/// ggml's x86 `hsum_float_8` of the eight lanes `lo ++ hi`:
/// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))`.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn hsum_float_8(lo: float32x4_t, hi: float32x4_t) -> f32 {
    let s = vaddq_f32(hi, lo);
    let t = vadd_f32(vget_low_f32(s), vget_high_f32(s)); // [s0 + s2, s1 + s3]
    vget_lane_f32::<0>(t) + vget_lane_f32::<1>(t)
}

/// `(t0 + t1) + (t2 + t3)` of `t = lo + hi`: the tail of ggml's
/// `GGML_F32x8_REDUCE` (two `hadd`s).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn hsum_hadd(lo: float32x4_t, hi: float32x4_t) -> f32 {
    let t = vaddq_f32(lo, hi);
    let p = vpadd_f32(vget_low_f32(t), vget_high_f32(t)); // [t0 + t1, t2 + t3]
    vget_lane_f32::<0>(p) + vget_lane_f32::<1>(p)
}

/// The per-lane pairing of ggml's 32-lane reductions: from accumulators
/// `a[i]` (lanes `4i..4i + 4`), the eight lanes
/// `(acc[l] + acc[16 + l]) + (acc[8 + l] + acc[24 + l])` as two vectors.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn pair_lanes(a: &[float32x4_t; 8]) -> (float32x4_t, float32x4_t) {
    (
        vaddq_f32(vaddq_f32(a[0], a[4]), vaddq_f32(a[2], a[6])),
        vaddq_f32(vaddq_f32(a[1], a[5]), vaddq_f32(a[3], a[7])),
    )
}

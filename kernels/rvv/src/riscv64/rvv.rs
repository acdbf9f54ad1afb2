//! RVV building blocks: the capability token [`V`], the [`vasm!`] macro
//! every vector asm block goes through, shared asm snippets (f16 <-> f32
//! with integer operations, ggml's `v_expf`), and scalar helpers.
//!
//! Vector registers cannot be asm operands in Rust (they are clobber-only),
//! so every asm block is self-contained: it loads its inputs from memory,
//! computes, and stores its outputs; no vector state crosses blocks.

use core::arch::asm;

/// Proof that the CPU implements V and that vector instructions are
/// enabled. Every function that runs vector code takes one; only
/// [`V::new`] (unsafe) makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct V(());

impl V {
    /// # Safety
    ///
    /// The CPU must implement RVV 1.0 (V, so VLEN >= 128) with vector
    /// instructions enabled (`mstatus.VS` not Off).
    pub(crate) unsafe fn new() -> Self {
        V(())
    }
}

/// `asm!` with the vector extension enabled for the template and all 32
/// vector registers clobbered: `vasm!([templates...], operands...,)`
/// (operands end with a comma). A leading `f16in`, `f16out` or `f16both`
/// adds the constant operands of [`f16_to_f32!`] and / or [`f32_to_f16!`].
macro_rules! vasm {
    (f16in [$($t:expr),* $(,)?], $($op:tt)*) => {
        vasm!([$($t),*], $($op)*
            h400 = in(reg) 0x400usize,
            h70 = in(reg) 0x7000_0000usize,
            h3f = in(reg) 0x3f00_0000usize,
            f2m112 = in(freg) f32::from_bits(0x0780_0000),
            fhalf = in(freg) 0.5f32,
        )
    };
    (f16out [$($t:expr),* $(,)?], $($op:tt)*) => {
        vasm!([$($t),*], $($op)*
            cnorm = in(reg) 0xc800_0fffusize,
            c3880 = in(reg) 0x3880_0000usize,
            h3f = in(reg) 0x3f00_0000usize,
            c4780 = in(reg) 0x4780_0000usize,
            h7c00 = in(reg) 0x7c00usize,
            cinf = in(reg) 0x7f80_0000usize,
            h7e00 = in(reg) 0x7e00usize,
            fhalf = in(freg) 0.5f32,
        )
    };
    // Both: `f16out`'s operands plus those of `f16in` it lacks.
    (f16both [$($t:expr),* $(,)?], $($op:tt)*) => {
        vasm!(f16out [$($t),*], $($op)*
            h400 = in(reg) 0x400usize,
            h70 = in(reg) 0x7000_0000usize,
            f2m112 = in(freg) f32::from_bits(0x0780_0000),
        )
    };
    ([$($t:expr),* $(,)?], $($op:tt)*) => {
        core::arch::asm!(
            ".option push",
            ".option arch, +v",
            $($t,)*
            ".option pop",
            $($op)*
            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack),
        )
    };
}

/// f16 bits to f32, exactly as the portable `f16_to_f32` (branch-free,
/// integer and one multiply; no Zvfh): `$x` holds the f16 bits
/// zero-extended to 32 bits (destroyed), `$s` is a temporary, the result
/// is in `$n`; uses `v0`. SEW must be 32. Needs the `f16in` constants.
macro_rules! f16_to_f32 {
    ($x:literal, $s:literal, $n:literal) => {
        concat!(
            "vsrl.vi ",
            $s,
            ", ",
            $x,
            ", 15\n",
            "vsll.vi ",
            $s,
            ", ",
            $s,
            ", 31\n", // sign
            "vsll.vi ",
            $x,
            ", ",
            $x,
            ", 17\n",
            "vsrl.vi ",
            $x,
            ", ",
            $x,
            ", 17\n", // exponent and mantissa
            "vmsltu.vx v0, ",
            $x,
            ", {h400}\n", // subnormal
            "vsll.vi ",
            $n,
            ", ",
            $x,
            ", 13\n",
            "vadd.vx ",
            $n,
            ", ",
            $n,
            ", {h70}\n",
            "vfmul.vf ",
            $n,
            ", ",
            $n,
            ", {f2m112}\n", // normal, inf, NaN
            "vor.vx ",
            $x,
            ", ",
            $x,
            ", {h3f}\n",
            "vfsub.vf ",
            $x,
            ", ",
            $x,
            ", {fhalf}\n", // subnormal: (0.5 + m 2^-24) - 0.5
            "vmerge.vvm ",
            $n,
            ", ",
            $n,
            ", ",
            $x,
            ", v0\n",
            "vor.vv ",
            $n,
            ", ",
            $n,
            ", ",
            $s,
            "\n",
        )
    };
}

/// f32 to f16 bits, round to nearest even, as `half`'s conversion (NaN:
/// sign, `0x7e00` and the top 10 payload bits): `$x` holds the f32 values
/// (kept), `$a`, `$s`, `$t` are temporaries, the f16 bits land in the low
/// half of each 32-bit element of `$r`; uses `v0`. SEW must be 32. Needs
/// the `f16out` constants.
macro_rules! f32_to_f16 {
    ($x:literal, $a:literal, $s:literal, $t:literal, $r:literal) => {
        concat!(
            "vsrl.vi ",
            $s,
            ", ",
            $x,
            ", 31\n",
            "vsll.vi ",
            $s,
            ", ",
            $s,
            ", 15\n", // sign, in f16 position
            "vsll.vi ",
            $a,
            ", ",
            $x,
            ", 1\n",
            "vsrl.vi ",
            $a,
            ", ",
            $a,
            ", 1\n", // |x| bits
            // Normal: rebias, round to nearest even at bit 13.
            "vsrl.vi ",
            $t,
            ", ",
            $a,
            ", 13\n",
            "vand.vi ",
            $t,
            ", ",
            $t,
            ", 1\n",
            "vadd.vx ",
            $r,
            ", ",
            $a,
            ", {cnorm}\n",
            "vadd.vv ",
            $r,
            ", ",
            $r,
            ", ",
            $t,
            "\n",
            "vsrl.vi ",
            $r,
            ", ",
            $r,
            ", 13\n",
            // Subnormal or zero: let the FPU round |x| + 0.5.
            "vmsltu.vx v0, ",
            $a,
            ", {c3880}\n",
            "vfadd.vf ",
            $t,
            ", ",
            $a,
            ", {fhalf}\n",
            "vsub.vx ",
            $t,
            ", ",
            $t,
            ", {h3f}\n",
            "vmerge.vvm ",
            $r,
            ", ",
            $r,
            ", ",
            $t,
            ", v0\n",
            // Overflow and infinity; then NaN.
            "vmsgeu.vx v0, ",
            $a,
            ", {c4780}\n",
            "vmerge.vxm ",
            $r,
            ", ",
            $r,
            ", {h7c00}, v0\n",
            "vmsgtu.vx v0, ",
            $a,
            ", {cinf}\n",
            "vsll.vi ",
            $t,
            ", ",
            $a,
            ", 9\n",
            "vsrl.vi ",
            $t,
            ", ",
            $t,
            ", 22\n",
            "vor.vx ",
            $t,
            ", ",
            $t,
            ", {h7e00}\n",
            "vmerge.vvm ",
            $r,
            ", ",
            $r,
            ", ",
            $t,
            ", v0\n",
            "vor.vv ",
            $r,
            ", ",
            $r,
            ", ",
            $s,
            "\n",
        )
    };
}

/// ggml's AVX2+FMA `ggml_v_expf`, operation for operation as the portable
/// `v_expf`: input in `v4` (LMUL 2, SEW 32), result in `v20`; uses
/// `v0`, `v1`, `v6`..`v29` and a scratch register `{t}`. Needs the
/// [`expf_consts`] operands.
macro_rules! v_expf {
    () => {
        concat!(
            "vfmv.v.f v6, {fr}\n",
            "vfmacc.vf v6, {flog2e}, v4\n", // z = fma(x, log2e, 0x1.8p23)
            "vfsub.vf v8, v6, {fr}\n",      // n = z - 0x1.8p23
            "vmv.v.v v10, v4\n",
            "vfnmsac.vf v10, {fln2hi}, v8\n",
            "vfnmsac.vf v10, {fln2lo}, v8\n", // b = fma(-n, lo, fma(-n, hi, x))
            "vsll.vi v6, v6, 23\n",           // e
            "vadd.vx v12, v6, {hone}\n",      // k = 2^n
            "vfmul.vv v14, v10, v10\n",       // u = b * b
            "vfmv.v.f v16, {fc4}\n",
            "vfmacc.vf v16, {fc5}, v10\n",
            "vfmv.v.f v18, {fc2}\n",
            "vfmacc.vf v18, {fc3}, v10\n",
            "vfmadd.vv v16, v14, v18\n",
            "vfmul.vf v18, v10, {fc1}\n",
            "vfmadd.vv v16, v14, v18\n", // j
            "vmv.v.v v20, v12\n",
            "vfmacc.vv v20, v16, v12\n", // fma(j, k, k)
            "vfabs.v v22, v8\n",
            "vmfgt.vf v1, v22, {f126}\n",
            "vcpop.m {t}, v1\n",
            "beqz {t}, 9f\n",
            // |n| > 126: the scale in two factors; |n| > 192 saturates.
            "vmfle.vf v0, v8, {fzero}\n",
            "vmv.v.i v24, 0\n",
            "vmerge.vxm v24, v24, {h82}, v0\n", // g
            "vsub.vv v26, v6, v24\n",           // s2 = e - g
            "vadd.vx v24, v24, {h7f}\n",        // s1 = g + 0x7f000000
            "vfmul.vv v28, v24, v24\n",
            "vfmacc.vv v26, v26, v16\n", // fma(s2, j, s2)
            "vfmul.vv v26, v26, v24\n",
            "vmfgt.vf v0, v22, {f192}\n",
            "vmerge.vvm v26, v26, v28, v0\n",
            "vmand.mm v0, v1, v1\n",
            "vmerge.vvm v20, v20, v26, v0\n",
            "9:\n",
        )
    };
}

/// The constant operands of [`v_expf!`], as arguments to an `asm!`
/// invocation written inline (a macro cannot expand to operands).
macro_rules! expf_asm {
    ([$($t:expr),* $(,)?], $($op:tt)*) => {
        vasm!([$($t),*], $($op)*
            fr = in(freg) f32::from_bits(0x4b40_0000),
            flog2e = in(freg) f32::from_bits(0x3fb8_aa3b),
            fln2hi = in(freg) f32::from_bits(0x3f31_7200),
            fln2lo = in(freg) f32::from_bits(0x35bf_be8e),
            fc1 = in(freg) f32::from_bits(0x3f7f_fff6),
            fc2 = in(freg) f32::from_bits(0x3eff_fedb),
            fc3 = in(freg) f32::from_bits(0x3e2a_af33),
            fc4 = in(freg) f32::from_bits(0x3d2b_9f17),
            fc5 = in(freg) f32::from_bits(0x3c07_2010),
            f126 = in(freg) 126.0f32,
            f192 = in(freg) 192.0f32,
            fzero = in(freg) 0.0f32,
            hone = in(reg) 0x3f80_0000usize,
            h82 = in(reg) 0x8200_0000usize,
            h7f = in(reg) 0x7f00_0000usize,
            t = out(reg) _,
        )
    };
}

/// The vector register length in bytes.
pub(crate) fn vlenb(_v: V) -> usize {
    let n: usize;
    // SAFETY: `V` proves the CPU has V with vector instructions enabled;
    // reading `vlenb` has no other effect.
    unsafe {
        asm!(
            ".option push",
            ".option arch, +v",
            "csrr {n}, vlenb",
            ".option pop",
            n = out(reg) n,
            options(nomem, nostack, preserves_flags)
        );
    }
    n
}

/// `a * b + c` rounded once (`fmadd.s`, base F extension).
#[inline(always)]
pub(crate) fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    let r: f32;
    // SAFETY: a register-only instruction of the F extension, which every
    // riscv64gc target has.
    unsafe {
        asm!(
            "fmadd.s {r}, {a}, {b}, {c}",
            r = lateout(freg) r,
            a = in(freg) a,
            b = in(freg) b,
            c = in(freg) c,
            options(pure, nomem, nostack)
        );
    }
    r
}

/// The f32 value of the little-endian f16 at `b[o..o + 2]`.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], o: usize) -> f32 {
    phi_edge_portable::float::f16_to_f32(u16::from_le_bytes([b[o], b[o + 1]]))
}

/// ggml's x86 `hsum_float_8`:
/// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))`.
#[inline(always)]
pub(crate) fn hsum_float_8(x: &[f32; 8]) -> f32 {
    let s = [x[4] + x[0], x[5] + x[1], x[6] + x[2], x[7] + x[3]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// `(acc[l] + acc[16 + l]) + (acc[8 + l] + acc[24 + l])`: the per-lane
/// pairing of ggml's 32-lane reductions.
#[inline(always)]
pub(crate) fn pair_lanes(acc: &[f32; 32]) -> [f32; 8] {
    let mut v = [0.0f32; 8];
    for (l, o) in v.iter_mut().enumerate() {
        *o = (acc[l] + acc[16 + l]) + (acc[8 + l] + acc[24 + l]);
    }
    v
}

//! Float dot products (F32, F16, BF16 rows), f32 to f16 / bf16 rows and
//! the f16 rounding of f32 values, bit-identical to the portable set.
//!
//! ggml's AVX2 loops keep 32 f32 lanes (element `i` in lane `i % 32`).
//! Here the lanes are one register group with `vl = 32` (F32: SEW 32,
//! LMUL 8) or two with `vl = 16` (F16 and BF16, whose widening needs room:
//! LMUL 4), which hold them at VLEN 128 and at any larger VLEN; the
//! per-lane operations are the oracle's, and the reductions are the
//! oracle's scalar code on the stored lanes. The tails past `k & !31`
//! are the oracle's scalar code too. f16 and bf16 are widened with integer
//! operations, so no Zvfh / Zvfbfmin is needed. Byte rows are loaded with
//! `vle8` (no alignment needed) and reinterpreted in-register.

use phi_edge_portable::float::{add_tail_16, bf16_to_f32, f16_to_f32, hsum8, reduce_hadd};

use super::rvv::{pair_lanes, V};

/// Elements per pass of the 32-lane loops.
const LANES: usize = 32;

/// ggml_vec_dot_f32: 32 lanes with FMA, reduced as `GGML_F32x8_REDUCE`,
/// then the tail in f32.
pub(crate) fn dot_f32(_v: V, k: usize, w: &[u8], a: &[u8]) -> f32 {
    assert!(w.len() == 4 * k && a.len() == 4 * k);
    let np = k / LANES;
    let mut acc = [0.0f32; LANES];
    if np > 0 {
        // SAFETY: `V` proves the CPU has V. Pass `i < np` reads bytes
        // `128i .. 128i + 128` of `w` and `a` (`128 np <= 4k`, checked);
        // the 32 lanes are written to `acc`.
        unsafe {
            vasm!(
                [
                    "vsetvli zero, {n32}, e32, m8, ta, ma",
                    "vmv.v.i v24, 0",
                    "1:",
                    "vsetvli zero, {n128}, e8, m8, ta, ma",
                    "vle8.v v8, ({w})",
                    "vle8.v v16, ({a})",
                    "vsetvli zero, {n32}, e32, m8, ta, ma",
                    "vfmacc.vv v24, v8, v16",
                    "addi {w}, {w}, 128",
                    "addi {a}, {a}, 128",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b",
                    "vse32.v v24, ({acc})",
                ],
                w = inout(reg) w.as_ptr() => _,
                a = inout(reg) a.as_ptr() => _,
                n = inout(reg) np => _,
                acc = in(reg) acc.as_mut_ptr(),
                n32 = in(reg) 32usize,
                n128 = in(reg) 128usize,
            );
        }
    }
    let mut sum = reduce_hadd(&acc);
    let t = 4 * LANES * np;
    for (x, y) in w[t..].chunks_exact(4).zip(a[t..].chunks_exact(4)) {
        sum += f32::from_le_bytes([x[0], x[1], x[2], x[3]])
            * f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
    }
    sum
}

/// One half (16 lanes) of a 32-value f16 pass: 32 bytes of `w` and `a`
/// widened to f32 (`v8`, `v12`) and multiplied into `$acc`. Products of
/// f16 values are exact in f32, so FMA rounds as the oracle's
/// multiply-add.
macro_rules! f16_half {
    ($acc:literal) => {
        concat!(
            "vsetvli zero, {n32}, e8, m2, ta, ma\n",
            "vle8.v v2, ({w})\n",
            "vle8.v v4, ({a})\n",
            "addi {w}, {w}, 32\n",
            "addi {a}, {a}, 32\n",
            "vsetivli zero, 16, e32, m4, ta, ma\n",
            "vzext.vf2 v16, v2\n",
            f16_to_f32!("v16", "v20", "v8"),
            "vzext.vf2 v16, v4\n",
            f16_to_f32!("v16", "v20", "v12"),
            "vfmacc.vv ",
            $acc,
            ", v8, v12\n",
        )
    };
}

/// ggml_vec_dot_f16: 32 lanes, `GGML_F32x8_REDUCE` widened to f64, the
/// tail added in f64, rounded to f32.
pub(crate) fn dot_f16(_v: V, k: usize, w: &[u8], a: &[u8]) -> f32 {
    assert!(w.len() == 2 * k && a.len() == 2 * k);
    let np = k / LANES;
    let mut acc = [0.0f32; LANES];
    if np > 0 {
        // SAFETY: `V` proves the CPU has V. Pass `i < np` reads bytes
        // `64i .. 64i + 64` of `w` and `a` (`64 np <= 2k`, checked); the
        // 32 lanes are written to `acc`.
        unsafe {
            vasm!(f16in
                [
                    "vsetivli zero, 16, e32, m4, ta, ma",
                    "vmv.v.i v24, 0",
                    "vmv.v.i v28, 0",
                    "1:",
                    f16_half!("v24"),
                    f16_half!("v28"),
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b",
                    "vse32.v v24, ({acc})",
                    "addi {acc}, {acc}, 64",
                    "vse32.v v28, ({acc})",
                ],
                w = inout(reg) w.as_ptr() => _,
                a = inout(reg) a.as_ptr() => _,
                n = inout(reg) np => _,
                acc = inout(reg) acc.as_mut_ptr() => _,
                n32 = in(reg) 32usize,
            );
        }
    }
    let sum = f64::from(reduce_hadd(&acc));
    let t = 2 * LANES * np;
    add_tail_16(sum, &w[t..], &a[t..], f16_to_f32) as f32
}

/// `ggml_vec_dot_f16` of f16 values `x` and f16-valued f32 `y` (the
/// attention scores against the f16-rounded query).
pub(crate) fn dot_f16_row(_v: V, x: &[u16], y: &[f32]) -> f32 {
    assert!(x.len() == y.len());
    let np = x.len() / LANES;
    let mut acc = [0.0f32; LANES];
    if np > 0 {
        // SAFETY: `V` proves the CPU has V. Pass `i < np` reads values
        // `32i .. 32i + 32` of `x` and `y` (`32 np <= len`); the 32 lanes
        // are written to `acc`.
        unsafe {
            vasm!(f16in
                [
                    "vsetivli zero, 16, e32, m4, ta, ma",
                    "vmv.v.i v24, 0",
                    "vmv.v.i v28, 0",
                    "1:",
                    "vle16.v v4, ({x})",
                    "vzext.vf2 v16, v4",
                    f16_to_f32!("v16", "v20", "v8"),
                    "vle32.v v12, ({y})",
                    "vfmacc.vv v24, v8, v12",
                    "addi {x}, {x}, 32",
                    "addi {y}, {y}, 64",
                    "vle16.v v4, ({x})",
                    "vzext.vf2 v16, v4",
                    f16_to_f32!("v16", "v20", "v8"),
                    "vle32.v v12, ({y})",
                    "vfmacc.vv v28, v8, v12",
                    "addi {x}, {x}, 32",
                    "addi {y}, {y}, 64",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b",
                    "vse32.v v24, ({acc})",
                    "addi {acc}, {acc}, 64",
                    "vse32.v v28, ({acc})",
                ],
                x = inout(reg) x.as_ptr() => _,
                y = inout(reg) y.as_ptr() => _,
                n = inout(reg) np => _,
                acc = inout(reg) acc.as_mut_ptr() => _,
            );
        }
    }
    let mut sum = f64::from(reduce_hadd(&acc));
    let t = LANES * np;
    for (&a, &b) in x[t..].iter().zip(&y[t..]) {
        sum += f64::from(f16_to_f32(a) * b);
    }
    sum as f32
}

/// One half (16 lanes) of a 32-value bf16 pass: `acc += w * a` with the
/// product rounded (no FMA), as the oracle.
macro_rules! bf16_half {
    ($acc:literal) => {
        concat!(
            "vsetvli zero, {n32}, e8, m2, ta, ma\n",
            "vle8.v v2, ({w})\n",
            "vle8.v v4, ({a})\n",
            "addi {w}, {w}, 32\n",
            "addi {a}, {a}, 32\n",
            "vsetivli zero, 16, e32, m4, ta, ma\n",
            "vzext.vf2 v8, v2\n",
            "vsll.vi v8, v8, 16\n",
            "vzext.vf2 v12, v4\n",
            "vsll.vi v12, v12, 16\n",
            "vfmul.vv v8, v8, v12\n",
            "vfadd.vv ",
            $acc,
            ", ",
            $acc,
            ", v8\n",
        )
    };
}

/// ggml_vec_dot_bf16: 32 lanes, `acc += x * y` with the product rounded,
/// `(c1 + c3) + (c2 + c4)` and `hsum8` widened to f64, the tail in f64.
pub(crate) fn dot_bf16(_v: V, k: usize, w: &[u8], a: &[u8]) -> f32 {
    assert!(w.len() == 2 * k && a.len() == 2 * k);
    let np = k / LANES;
    let mut acc = [0.0f32; LANES];
    if np > 0 {
        // SAFETY: `V` proves the CPU has V. Pass `i < np` reads bytes
        // `64i .. 64i + 64` of `w` and `a` (`64 np <= 2k`, checked); the
        // 32 lanes are written to `acc`.
        unsafe {
            vasm!(
                [
                    "vsetivli zero, 16, e32, m4, ta, ma",
                    "vmv.v.i v24, 0",
                    "vmv.v.i v28, 0",
                    "1:",
                    bf16_half!("v24"),
                    bf16_half!("v28"),
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b",
                    "vse32.v v24, ({acc})",
                    "addi {acc}, {acc}, 64",
                    "vse32.v v28, ({acc})",
                ],
                w = inout(reg) w.as_ptr() => _,
                a = inout(reg) a.as_ptr() => _,
                n = inout(reg) np => _,
                acc = inout(reg) acc.as_mut_ptr() => _,
                n32 = in(reg) 32usize,
            );
        }
    }
    let sum = f64::from(hsum8(&pair_lanes(&acc)));
    let t = 2 * LANES * np;
    add_tail_16(sum, &w[t..], &a[t..], bf16_to_f32) as f32
}

/// f32 values to little-endian f16 bytes (`dst.len() == 2 * src.len()`),
/// round to nearest even, as the portable `f32_to_f16` (NaN payloads
/// included); strip-mined.
pub(crate) fn f32_to_f16_bytes(_v: V, src: &[f32], dst: &mut [u8]) {
    assert!(2 * src.len() == dst.len());
    if src.is_empty() {
        return;
    }
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads
    // `vl` values of `src` and writes `2 vl` bytes of `dst` at the same
    // position; the loop ends after `n = src.len()` values.
    unsafe {
        vasm!(f16out
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m4, ta, ma",
                "vle32.v v8, ({s})",
                f32_to_f16!("v8", "v12", "v16", "v20", "v24"),
                "vsetvli zero, {vl}, e16, m2, ta, ma",
                "vnsrl.wi v4, v24, 0",
                "slli {t}, {vl}, 1",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "vse8.v v4, ({d})",
                "add {d}, {d}, {t}",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {s}, {s}, {t}",
                "bnez {n}, 1b",
            ],
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) src.len() => _,
            vl = out(reg) _,
            t = out(reg) _,
        );
    }
}

/// f32 values to little-endian bf16 bytes as `ggml_compute_fp32_to_bf16`:
/// round to nearest even, NaN quieted with its top bits kept.
pub(crate) fn f32_to_bf16_bytes(_v: V, src: &[f32], dst: &mut [u8]) {
    assert!(2 * src.len() == dst.len());
    if src.is_empty() {
        return;
    }
    // SAFETY: as `f32_to_f16_bytes`: strips of `vl` values read `src` and
    // write `2 vl` bytes of `dst` at the same position, `n` values in all.
    unsafe {
        vasm!(
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m4, ta, ma",
                "vle32.v v8, ({s})",
                "vsll.vi v12, v8, 1",
                "vsrl.vi v12, v12, 1",
                "vmsgtu.vx v0, v12, {cinf}",
                "vsrl.vi v16, v8, 16",
                "vand.vi v20, v16, 1",
                "vadd.vx v24, v8, {h7fff}",
                "vadd.vv v24, v24, v20",
                "vsrl.vi v24, v24, 16",
                "vor.vx v16, v16, {h40}",
                "vmerge.vvm v24, v24, v16, v0",
                "vsetvli zero, {vl}, e16, m2, ta, ma",
                "vnsrl.wi v4, v24, 0",
                "slli {t}, {vl}, 1",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "vse8.v v4, ({d})",
                "add {d}, {d}, {t}",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {s}, {s}, {t}",
                "bnez {n}, 1b",
            ],
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) src.len() => _,
            vl = out(reg) _,
            t = out(reg) _,
            cinf = in(reg) 0x7f80_0000usize,
            h7fff = in(reg) 0x7fffusize,
            h40 = in(reg) 0x40usize,
        );
    }
}

/// Rounds f32 values to f16 and back, in place (the portable
/// `round_f16`).
pub(crate) fn round_f16_in_place(_v: V, x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads and
    // writes the same range of `x`; the loop ends after `x.len()` values.
    unsafe {
        vasm!(f16both
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m4, ta, ma",
                "vle32.v v8, ({x})",
                f32_to_f16!("v8", "v12", "v16", "v20", "v24"),
                f16_to_f32!("v24", "v16", "v12"),
                "vse32.v v12, ({x})",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {x}, {x}, {t}",
                "bnez {n}, 1b",
            ],
            x = inout(reg) x.as_mut_ptr() => _,
            n = inout(reg) x.len() => _,
            vl = out(reg) _,
            t = out(reg) _,
        );
    }
}

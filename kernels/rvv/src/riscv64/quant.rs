//! Quantized dot products, bit-identical to the portable set.
//!
//! llama.cpp's AVX2 code sums each 32-value group in eight i32 lanes, lane
//! `l` holding the four products `4l..4l + 4`. A unit-stride segment load
//! `vlseg4e8` with `vl = 8` splits 32 bytes into exactly those lanes
//! (field `j` of segment `l` is byte `4l + j`), so the eight lanes are four
//! widening multiplies and three adds away, at any VLEN: every integer
//! step runs with `vl = 8` at a fractional or small LMUL that holds 8
//! elements at VLEN 128. The float steps are then the oracle's: for the
//! 32-value types `vfmacc.vf` on eight f32 lanes (`vl = 8`, LMUL 2), one
//! block after the other inside one asm loop, with the per-block scales
//! `dw * da` computed in scalar code beforehand; for the K types, whose
//! blocks hold 256 values, the per-block f32 steps run in scalar FMA. The
//! repacked Q4_0 / Q4_K projections sum each block to one integer first,
//! as `ggml_gemv_*_8x8_*` does.
//!
//! Each function takes one weight row and one activation row of exactly
//! `k` values (the caller slices them).

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES, Q8_K_BYTES};
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::rvv::{f16_at, fmaf, hsum_float_8, V};

/// Blocks whose scales are computed ahead of one asm loop.
const CHUNK: usize = 64;

/// Q8_0 quants: weights to `v4..v7`, activations to `v8..v11`, lane `l` of
/// field `j` holding value `4l + j`.
macro_rules! load_q8 {
    () => {
        concat!(
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "vlseg4e8.v v4, ({w})\n",
            "vlseg4e8.v v8, ({a})\n",
        )
    };
}

/// Q4_0 / Q4_1 nibbles: byte `i` holds value `i` (low nibble) and
/// `i + 16` (high); `vlseg4e8` with `vl = 4` splits the 16 bytes into
/// lanes 0..4 of `v4..v7`, and the high nibbles slide up into lanes 4..8.
/// `$off` follows each split (the Q4_0 offset of 8, or nothing).
macro_rules! load_q4 {
    ($off:expr) => {
        concat!(
            "vsetivli zero, 4, e8, mf2, ta, ma\n",
            "vlseg4e8.v v4, ({w})\n",
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "vlseg4e8.v v8, ({a})\n",
            "vsrl.vi v12, v4, 4\n",
            "vand.vi v4, v4, 15\n",
            "vslideup.vi v4, v12, 4\n",
            "vsrl.vi v13, v5, 4\n",
            "vand.vi v5, v5, 15\n",
            "vslideup.vi v5, v13, 4\n",
            "vsrl.vi v14, v6, 4\n",
            "vand.vi v6, v6, 15\n",
            "vslideup.vi v6, v14, 4\n",
            "vsrl.vi v15, v7, 4\n",
            "vand.vi v7, v7, 15\n",
            "vslideup.vi v7, v15, 4\n",
            $off,
        )
    };
}

/// Subtracts Q4_0's offset of 8 from the nibbles in `v4..v7`.
macro_rules! minus8 {
    () => {
        concat!(
            "vadd.vi v4, v4, -8\n",
            "vadd.vi v5, v5, -8\n",
            "vadd.vi v6, v6, -8\n",
            "vadd.vi v7, v7, -8\n",
        )
    };
}

/// The eight i32 lanes of `v4..v7` (weights) times `v8..v11`
/// (activations) into `v16` (SEW 32, LMUL 2, `vl = 8`); `$mul` is
/// `vwmul.vv` (signed weights) or `vwmulsu.vv` (unsigned).
macro_rules! quads {
    ($mul:literal) => {
        concat!(
            $mul,
            " v12, v8, v4\n",
            $mul,
            " v13, v9, v5\n",
            $mul,
            " v14, v10, v6\n",
            $mul,
            " v15, v11, v7\n",
            "vsetivli zero, 8, e16, m1, ta, ma\n",
            "vwadd.vv v16, v12, v13\n",
            "vwadd.vv v18, v14, v15\n",
            "vsetivli zero, 8, e32, m2, ta, ma\n",
            "vadd.vv v16, v16, v18\n",
        )
    };
}

/// An asm loop over `ds.len()` blocks of a 32-value type: per block the
/// eight i32 lanes, then `acc[l] = fma(ds[b], lane[l], acc[l])`.
macro_rules! lanes_fn {
    ($name:ident, $wb:expr, $wo:expr, $ab:expr, $ao:expr, $load:expr, $mul:literal) => {
        fn $name(_v: V, w: &[u8], a: &[u8], ds: &[f32], acc: &mut [f32; 8]) {
            let n = ds.len();
            assert!(n > 0 && w.len() == n * $wb && a.len() == n * $ab);
            // SAFETY: `V` proves the CPU has V. Block `b < n` reads bytes
            // `b * WB + WO ..` (32 quants, or 16 packed bytes) of `w`,
            // `b * AB + AO ..` (32 quants) of `a` and `ds[b]`, all inside
            // the slices checked above; `acc` is read and written whole.
            unsafe {
                vasm!(
                    [
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vle32.v v24, ({acc})",
                        "1:",
                        $load,
                        quads!($mul),
                        "vfcvt.f.x.v v16, v16",
                        "flw {f}, 0({d})",
                        "vfmacc.vf v24, {f}, v16",
                        "addi {w}, {w}, {wb}",
                        "addi {a}, {a}, {ab}",
                        "addi {d}, {d}, 4",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vse32.v v24, ({acc})",
                    ],
                    w = inout(reg) w.as_ptr().add($wo) => _,
                    a = inout(reg) a.as_ptr().add($ao) => _,
                    d = inout(reg) ds.as_ptr() => _,
                    n = inout(reg) n => _,
                    acc = in(reg) acc.as_mut_ptr(),
                    f = out(freg) _,
                    wb = const $wb,
                    ab = const $ab,
                );
            }
        }
    };
}

lanes_fn!(
    lanes_q8_0,
    Q8_0_BYTES,
    2,
    Q8_0_BYTES,
    2,
    load_q8!(),
    "vwmul.vv"
);
lanes_fn!(
    lanes_q4_0,
    Q4_0_BYTES,
    2,
    Q8_0_BYTES,
    2,
    load_q4!(minus8!()),
    "vwmul.vv"
);
lanes_fn!(
    lanes_q4_1,
    Q4_1_BYTES,
    4,
    Q8_1_BYTES,
    4,
    load_q4!(""),
    "vwmulsu.vv"
);

/// Q8_0 x Q8_0 (`ggml_vec_dot_q8_0_q8_0`).
pub(crate) fn q8_0(v: V, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ds = [0.0f32; CHUNK];
    for (wc, ac) in w
        .chunks(CHUNK * Q8_0_BYTES)
        .zip(a.chunks(CHUNK * Q8_0_BYTES))
    {
        let n = wc.len() / Q8_0_BYTES;
        for ((d, wb), ab) in ds
            .iter_mut()
            .zip(wc.chunks_exact(Q8_0_BYTES))
            .zip(ac.chunks_exact(Q8_0_BYTES))
        {
            *d = f16_at(wb, 0) * f16_at(ab, 0);
        }
        lanes_q8_0(v, wc, ac, &ds[..n], &mut acc);
    }
    hsum_float_8(&acc)
}

/// Q4_0 x Q8_0 in plain rows (`ggml_vec_dot_q4_0_q8_0`: a tied
/// embedding).
pub(crate) fn q4_0(v: V, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ds = [0.0f32; CHUNK];
    for (wc, ac) in w
        .chunks(CHUNK * Q4_0_BYTES)
        .zip(a.chunks(CHUNK * Q8_0_BYTES))
    {
        let n = wc.len() / Q4_0_BYTES;
        for ((d, wb), ab) in ds
            .iter_mut()
            .zip(wc.chunks_exact(Q4_0_BYTES))
            .zip(ac.chunks_exact(Q8_0_BYTES))
        {
            *d = f16_at(wb, 0) * f16_at(ab, 0);
        }
        lanes_q4_0(v, wc, ac, &ds[..n], &mut acc);
    }
    hsum_float_8(&acc)
}

/// Q4_1 x Q8_1 (`ggml_vec_dot_q4_1_q8_1`): the lanes as Q8_0, plus
/// `summs += m * s` in f32, added after the horizontal sum.
pub(crate) fn q4_1(v: V, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ds = [0.0f32; CHUNK];
    let mut summs = 0.0f32;
    for (wc, ac) in w
        .chunks(CHUNK * Q4_1_BYTES)
        .zip(a.chunks(CHUNK * Q8_1_BYTES))
    {
        let n = wc.len() / Q4_1_BYTES;
        for ((d, wb), ab) in ds
            .iter_mut()
            .zip(wc.chunks_exact(Q4_1_BYTES))
            .zip(ac.chunks_exact(Q8_1_BYTES))
        {
            summs += f16_at(wb, 2) * f16_at(ab, 2);
            *d = f16_at(wb, 0) * f16_at(ab, 0);
        }
        lanes_q4_1(v, wc, ac, &ds[..n], &mut acc);
    }
    hsum_float_8(&acc) + summs
}

/// Q4_0 x Q8_0 in the repacked projection order
/// (`ggml_gemv_q4_0_8x8_q8_0`): per block the exact sum of the lanes,
/// then `acc = fma(sumi, dw * da, acc)` (scalar `fmadd.s` in the loop).
pub(crate) fn q4_0_repacked(v: V, w: &[u8], a: &[u8]) -> f32 {
    let _ = v;
    let mut acc = 0.0f32;
    let mut ds = [0.0f32; CHUNK];
    for (wc, ac) in w
        .chunks(CHUNK * Q4_0_BYTES)
        .zip(a.chunks(CHUNK * Q8_0_BYTES))
    {
        let n = wc.len() / Q4_0_BYTES;
        assert!(n > 0 && ac.len() == n * Q8_0_BYTES);
        for ((d, wb), ab) in ds
            .iter_mut()
            .zip(wc.chunks_exact(Q4_0_BYTES))
            .zip(ac.chunks_exact(Q8_0_BYTES))
        {
            *d = f16_at(wb, 0) * f16_at(ab, 0);
        }
        // SAFETY: `V` proves the CPU has V. Block `b < n` reads bytes
        // `18b + 2 .. 18b + 18` of `wc`, `34b + 2 .. 34b + 34` of `ac` and
        // `ds[b]`, all inside the slices (checked above).
        unsafe {
            vasm!(
                [
                    "1:",
                    load_q4!(minus8!()),
                    quads!("vwmul.vv"),
                    "vmv.s.x v18, zero",
                    "vredsum.vs v18, v16, v18",
                    "vmv.x.s {t}, v18",
                    "fcvt.s.w {fs}, {t}",
                    "flw {fd}, 0({d})",
                    "fmadd.s {acc}, {fs}, {fd}, {acc}",
                    "addi {w}, {w}, {wb}",
                    "addi {a}, {a}, {ab}",
                    "addi {d}, {d}, 4",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b",
                ],
                w = inout(reg) wc.as_ptr().add(2) => _,
                a = inout(reg) ac.as_ptr().add(2) => _,
                d = inout(reg) ds.as_ptr() => _,
                n = inout(reg) n => _,
                acc = inout(freg) acc,
                t = out(reg) _,
                fs = out(freg) _,
                fd = out(freg) _,
                wb = const Q4_0_BYTES,
                ab = const Q8_0_BYTES,
            );
        }
    }
    acc
}

/// A Q8_K block split: `d`, quants, and the 16 block sums.
#[inline(always)]
fn q8_k(ab: &[u8]) -> (f32, &[u8; 256], [i32; 16]) {
    let ab: &[u8; Q8_K_BYTES] = ab.try_into().unwrap();
    let d = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
    let bs: [i32; 16] =
        core::array::from_fn(|i| i32::from(i16::from_le_bytes([ab[260 + 2 * i], ab[261 + 2 * i]])));
    (d, ab[4..260].try_into().unwrap(), bs)
}

/// The eight i32 lanes of one Q4_K block times one Q8_K block:
/// `sum_s sc[s] * (products of sub-block s in lane l)`. Per 32-byte chunk
/// `c`, low nibbles are sub-block `2c`, high nibbles `2c + 1`; their quads
/// fit i16 (`4 * 15 * 128`), so they accumulate with `vwmaccsu` at SEW 8
/// and meet their scale in `vwmacc.vx` at SEW 16.
fn q4_k_lanes(_v: V, qs: &[u8; 128], q8: &[u8; 256], sc: &[u8; 8]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    // SAFETY: `V` proves the CPU has V. Chunk `c < 4` reads `qs[32c..][..32]`,
    // `q8[64c..][..64]` and `sc[2c..][..2]`; the lanes are written to
    // `lanes` (32 bytes).
    unsafe {
        vasm!(
            [
                "vsetivli zero, 8, e32, m2, ta, ma",
                "vmv.v.i v24, 0",
                "li {c}, 4",
                "1:",
                "vsetivli zero, 8, e8, mf2, ta, ma",
                "vlseg4e8.v v4, ({q})",
                "vlseg4e8.v v8, ({y})",
                "addi {t}, {y}, 32",
                "vlseg4e8.v v12, ({t})",
                "vand.vi v16, v4, 15",
                "vand.vi v17, v5, 15",
                "vand.vi v18, v6, 15",
                "vand.vi v19, v7, 15",
                "vsrl.vi v20, v4, 4",
                "vsrl.vi v21, v5, 4",
                "vsrl.vi v22, v6, 4",
                "vsrl.vi v23, v7, 4",
                "vwmulsu.vv v1, v8, v16",
                "vwmaccsu.vv v1, v9, v17",
                "vwmaccsu.vv v1, v10, v18",
                "vwmaccsu.vv v1, v11, v19",
                "vwmulsu.vv v2, v12, v20",
                "vwmaccsu.vv v2, v13, v21",
                "vwmaccsu.vv v2, v14, v22",
                "vwmaccsu.vv v2, v15, v23",
                "lbu {s0}, 0({sc})",
                "lbu {s1}, 1({sc})",
                "vsetivli zero, 8, e16, m1, ta, ma",
                "vwmacc.vx v24, {s0}, v1",
                "vwmacc.vx v24, {s1}, v2",
                "addi {q}, {q}, 32",
                "addi {y}, {y}, 64",
                "addi {sc}, {sc}, 2",
                "addi {c}, {c}, -1",
                "bnez {c}, 1b",
                "vsetivli zero, 8, e32, m2, ta, ma",
                "vse32.v v24, ({out})",
            ],
            q = inout(reg) qs.as_ptr() => _,
            y = inout(reg) q8.as_ptr() => _,
            sc = inout(reg) sc.as_ptr() => _,
            out = in(reg) lanes.as_mut_ptr(),
            c = out(reg) _,
            t = out(reg) _,
            s0 = out(reg) _,
            s1 = out(reg) _,
        );
    }
    lanes
}

/// A Q4_K block's scales and mins (`get_scale_min_k4`).
#[inline(always)]
fn scales_mins(wb: &[u8; Q4_K_BYTES]) -> ([u8; 8], [u8; 8]) {
    let packed: &[u8; 12] = wb[4..16].try_into().unwrap();
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = scale_min_k4(j, packed);
    }
    (sc, m)
}

/// Q4_K x Q8_K in plain rows (`ggml_vec_dot_q4_K_q8_K`: a tied
/// embedding).
pub(crate) fn q4_k(v: V, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut acc_m = [0.0f32; 4];
    for (wb, ab) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q4_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, bsums) = q8_k(ab);
        let d = da * f16_at(wb, 0);
        let dmin = -da * f16_at(wb, 2);
        let (sc, m) = scales_mins(wb);
        for (i, am) in acc_m.iter_mut().enumerate() {
            let t = i32::from(m[2 * i]) * (bsums[4 * i] + bsums[4 * i + 1])
                + i32::from(m[2 * i + 1]) * (bsums[4 * i + 2] + bsums[4 * i + 3]);
            *am = fmaf(dmin, t as f32, *am);
        }
        let lanes = q4_k_lanes(v, wb[16..].try_into().unwrap(), q8, &sc);
        for (s, &x) in acc.iter_mut().zip(&lanes) {
            *s = fmaf(d, x as f32, *s);
        }
    }
    hsum_float_8(&acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))
}

/// Q4_K x Q8_K in the repacked projection order
/// (`ggml_gemv_q4_K_8x8_q8_K`): exact `isum` and `imin` per block, two
/// scalar FMA chains, `acc - acc_m`.
pub(crate) fn q4_k_repacked(v: V, w: &[u8], a: &[u8]) -> f32 {
    let (mut acc, mut acc_m) = (0.0f32, 0.0f32);
    for (wb, ab) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q4_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, bsums) = q8_k(ab);
        let (sc, m) = scales_mins(wb);
        let lanes = q4_k_lanes(v, wb[16..].try_into().unwrap(), q8, &sc);
        let isum: i32 = lanes.iter().sum();
        let mut imin = 0i32;
        for (j, &mj) in m.iter().enumerate() {
            imin += i32::from(mj) * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        acc = fmaf(isum as f32, f16_at(wb, 0) * da, acc);
        acc_m = fmaf(imin as f32, f16_at(wb, 2) * da, acc_m);
    }
    acc - acc_m
}

/// The 6-bit quants of one 32-value chunk into `v16..v19` (lane split as
/// `vlseg4e8`): the low 4 bits from `$l0..$l3` (`$nib` `$imm`: `vand.vi
/// .., 15` for the low nibble, `vsrl.vi .., 4` for the high one), the top 2
/// bits from `v12..v15` shifted right by `$shr`.
macro_rules! q6_quants {
    ($nib:literal, $imm:literal, $shr:literal, $l0:literal, $l1:literal, $l2:literal, $l3:literal) => {
        concat!(
            q6_one!($nib, $imm, $shr, $l0, "v12", "v16"),
            q6_one!($nib, $imm, $shr, $l1, "v13", "v17"),
            q6_one!($nib, $imm, $shr, $l2, "v14", "v18"),
            q6_one!($nib, $imm, $shr, $l3, "v15", "v19"),
        )
    };
}

/// One field of [`q6_quants!`].
macro_rules! q6_one {
    ($nib:literal, $imm:literal, $shr:literal, $l:literal, $h:literal, $q:literal) => {
        concat!(
            $nib,
            " ",
            $q,
            ", ",
            $l,
            ", ",
            $imm,
            "\n",
            "vsrl.vi v20, ",
            $h,
            ", ",
            $shr,
            "\n",
            "vand.vi v20, v20, 3\n",
            "vsll.vi v20, v20, 4\n",
            "vor.vv ",
            $q,
            ", ",
            $q,
            ", v20\n",
        )
    };
}

/// The quads of the chunk in `v16..v19` against the next 32 activations,
/// into the lanes `v30` with the chunk's two 16-value scales (lanes 0..4
/// and 4..8; `v0` masks lanes 4..8).
macro_rules! q6_chunk {
    () => {
        concat!(
            "vlseg4e8.v v24, ({y})\n",
            "vwmulsu.vv v28, v24, v16\n",
            "vwmaccsu.vv v28, v25, v17\n",
            "vwmaccsu.vv v28, v26, v18\n",
            "vwmaccsu.vv v28, v27, v19\n",
            "lb {s0}, 0({sc})\n",
            "lb {s1}, 1({sc})\n",
            "sub {s1}, {s1}, {s0}\n",
            "vsetivli zero, 8, e16, m1, ta, mu\n",
            "vwmacc.vx v30, {s0}, v28\n",
            "vwmacc.vx v30, {s1}, v28, v0.t\n",
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "addi {y}, {y}, 32\n",
            "addi {sc}, {sc}, 2\n",
        )
    };
}

/// The eight i32 lanes of one Q6_K block times one Q8_K block, before the
/// offset of 32: lane `l` sums `scale * q * q8` over the positions `p`
/// with `(p % 32) / 4 == l`. The unsigned 6-bit quads fit i16
/// (`4 * 63 * 128`).
fn q6_k_lanes(_v: V, wb: &[u8; Q6_K_BYTES], q8: &[u8; 256]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    // SAFETY: `V` proves the CPU has V. Half `h < 2` reads
    // `wb[64h..][..64]` (ql), `wb[128 + 32h..][..32]` (qh); chunk `c < 8`
    // reads `q8[32c..][..32]` and the scales `wb[192 + 2c..][..2]`; the
    // lanes are written to `lanes` (32 bytes).
    unsafe {
        vasm!(
            [
                "vsetivli zero, 8, e8, mf2, ta, ma",
                "vid.v v1",
                "vmsgtu.vi v0, v1, 3",
                "vsetivli zero, 8, e32, m2, ta, ma",
                "vmv.v.i v30, 0",
                "li {h}, 2",
                "1:",
                "vsetivli zero, 8, e8, mf2, ta, ma",
                "vlseg4e8.v v4, ({ql})",
                "addi {t}, {ql}, 32",
                "vlseg4e8.v v8, ({t})",
                "vlseg4e8.v v12, ({qh})",
                q6_quants!("vand.vi", "15", "0", "v4", "v5", "v6", "v7"),
                q6_chunk!(),
                q6_quants!("vand.vi", "15", "2", "v8", "v9", "v10", "v11"),
                q6_chunk!(),
                q6_quants!("vsrl.vi", "4", "4", "v4", "v5", "v6", "v7"),
                q6_chunk!(),
                q6_quants!("vsrl.vi", "4", "6", "v8", "v9", "v10", "v11"),
                q6_chunk!(),
                "addi {ql}, {ql}, 64",
                "addi {qh}, {qh}, 32",
                "addi {h}, {h}, -1",
                "bnez {h}, 1b",
                "vsetivli zero, 8, e32, m2, ta, ma",
                "vse32.v v30, ({out})",
            ],
            ql = inout(reg) wb.as_ptr() => _,
            qh = inout(reg) wb.as_ptr().add(128) => _,
            sc = inout(reg) wb.as_ptr().add(192) => _,
            y = inout(reg) q8.as_ptr() => _,
            out = in(reg) lanes.as_mut_ptr(),
            h = out(reg) _,
            t = out(reg) _,
            s0 = out(reg) _,
            s1 = out(reg) _,
        );
    }
    lanes
}

/// Q6_K x Q8_K (`ggml_vec_dot_q6_K_q8_K`): the lanes, minus the
/// `32 * bsums * scales` offset of lane `l` (sub-blocks `2l`, `2l + 1`),
/// then `acc[l] = fma(d, lane[l], acc[l])`.
pub(crate) fn q6_k(v: V, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (wb, ab) in w.chunks_exact(Q6_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let wb: &[u8; Q6_K_BYTES] = wb.try_into().unwrap();
        let (da, q8, bsums) = q8_k(ab);
        let d = da * f16_at(wb, 208);
        let sc = |j: usize| i32::from(wb[192 + j] as i8);
        let lanes = q6_k_lanes(v, wb, q8);
        for (l, (s, &x)) in acc.iter_mut().zip(&lanes).enumerate() {
            let off = bsums[2 * l] * sc(2 * l) + bsums[2 * l + 1] * sc(2 * l + 1);
            *s = fmaf(d, (x - (off << 5)) as f32, *s);
        }
    }
    hsum_float_8(&acc)
}

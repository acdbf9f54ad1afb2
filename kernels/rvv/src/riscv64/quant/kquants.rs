//! Q4_K and Q6_K dot products (256-value blocks), one (row, token) at a
//! time.
//!
//! Per 32-value sub-block the lanes of `vlseg4e8` as in the 32-value
//! types; i16 quads (`vwmulsu` / `vwmaccsu`) meet their sub-block scales in
//! `vwmacc.vx`; the per-block f32 steps run in scalar FMA as the oracle's.

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use crate::riscv64::rvv::{f16_at, fmaf, hsum_float_8, V};

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

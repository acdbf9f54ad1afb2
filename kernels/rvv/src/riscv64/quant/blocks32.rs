//! Tiles of the 32-value block types: Q8_0, Q4_0 (plain and repacked
//! projection order) and Q4_1.
//!
//! Per (row, token) the float steps are those of the per-row dot products
//! (`ggml_vec_dot_q8_0_q8_0`, `_q4_0_q8_0`, `_q4_1_q8_1`): per block
//! `acc[l] = fma(dw * da, lane[l], acc[l])` on eight f32 lanes, then
//! `hsum_float_8`, plus Q4_1's `summs += mw * sa` in f32. The repacked
//! Q4_0 projection sums each block's lanes to one integer and runs
//! `acc = fma(sumi, dw * da, acc)` (`ggml_gemv_q4_0_8x8_q8_0`).
//!
//! Per chunk of blocks, the f16 scales of the tile's rows and tokens are
//! converted by vector, all rows (or tokens) in one pass ([`gather_f16`]),
//! and the rows' quants are unpacked by strided segment loads, many blocks
//! per instruction ([`unpack`]; Q8_0 copied, so every format reads the
//! same layout). Then one asm block runs over the tokens and, per token,
//! the chunk's blocks with several rows side by side in one vector
//! ([`group_fn!`]): a tile has [`ROWS`] (8) rows, in groups of four
//! (`vl = 32`) at VLEN >= 256 and of two (`vl = 16`) at VLEN 128, one asm
//! block per group. Lane `8r + l` is row `r`'s lane `l`. Per block:
//! one `vlseg4e8` of the rows' unpacked bytes, one indexed segment load
//! that repeats the activation block for each row, the row scales spread
//! over their lanes by an indexed load, `dw * da` by `vfmul.vf`, one
//! `vfmacc.vv` (Q4_1's `summs` by `vfmul.vf` / `vfadd.vv` in every lane of
//! its row; the repacked order first sums each row's lanes by slides), and
//! two (Q4) or three (Q8_0) `vsetvli`. The last chunk ends with each row's `hsum_float_8` by
//! slides and adds in the oracle's order.

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES};
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use core::mem::MaybeUninit;

use super::{ROWS32 as ROWS, TOKENS};
use crate::riscv64::rvv::{vlenb, V};

/// Blocks per chunk: unpacked once per tile, then passed by every token.
const CHUNK: usize = 64;
/// Bytes of one block's unpacked values (one byte per value).
const UNPACKED: usize = 32;

/// [`Tiles32::tile`]'s format: Q8_0 x Q8_0.
const Q8_0: u8 = 0;
/// Q4_0 x Q8_0 in plain rows (a tied embedding).
const Q4_0: u8 = 1;
/// Q4_0 x Q8_0 in the repacked projection order.
const Q4_0_REPACKED: u8 = 2;
/// Q4_1 x Q8_1.
const Q4_1: u8 = 3;

/// The exact i32 lanes of one block for the rows of a group, in `v16`
/// (SEW 32, LMUL 4), from the weights' `vlseg4e8` fields in `v4..v7` and
/// the activation's (repeated for each row) in `v8..v11`. Kind `q8`: four
/// i16 products per lane (`vwmul`, up to `2^14` each) widened and added
/// (`vwadd`); kind `q4, $mul, $macc`: a 4-bit weight's four products fit
/// i16 together (`4 * 15 * 128`), so `$mul` (`vwmul` / `vwmulsu`) and
/// three `$macc` (`vwmacc` / `vwmaccsu`) sum them in `v12` before one
/// `vsext`.
macro_rules! group_ints {
    (q4, $mul:literal, $macc:literal) => {
        concat!(
            $mul,
            " v12, v8, v4\n",
            $macc,
            " v12, v9, v5\n",
            $macc,
            " v12, v10, v6\n",
            $macc,
            " v12, v11, v7\n",
            "vsetvli zero, {vl}, e32, m4, ta, ma\n",
            "vsext.vf2 v16, v12\n",
        )
    };
    (q8) => {
        concat!(
            "vwmul.vv v12, v8, v4\n",
            "vwmul.vv v14, v9, v5\n",
            "vwmul.vv v24, v10, v6\n",
            "vwmul.vv v26, v11, v7\n",
            "vsetvli zero, {vl}, e16, m2, ta, ma\n",
            "vwadd.vv v16, v12, v14\n",
            "vwadd.wv v16, v16, v24\n",
            "vwadd.wv v16, v16, v26\n",
            "vsetvli zero, {vl}, e32, m4, ta, ma\n",
        )
    };
}

/// The per-format steps of [`group_fn!`]: `$k` the integer kind of
/// [`group_ints!`], then `sum` (the repacked order: each row's eight
/// lanes summed exactly into its lane 0 by slides and adds), `q4_1` (the
/// `summs` step) or nothing.
macro_rules! group_sum {
    (sum) => {
        concat!(
            "vslidedown.vi v8, v16, 4\n",
            "vadd.vv v16, v16, v8\n",
            "vslidedown.vi v8, v16, 2\n",
            "vadd.vv v16, v16, v8\n",
            "vslidedown.vi v8, v16, 1\n",
            "vadd.vv v16, v16, v8\n",
        )
    };
    ($($m:tt)*) => {
        ""
    };
}

/// Q4_1's `summs[r] += mw[r] * sa` in [`group_fn!`]: each row's `mw` in
/// its eight lanes (`vloxei8` through `v3`), times `sa`, added to the
/// lanes of `v28`.
macro_rules! group_summs {
    (q4_1) => {
        concat!(
            "vloxei8.v v12, ({s}), v3\n",
            "flw {f}, 4({p})\n",
            "vfmul.vf v12, v12, {f}\n",
            "vfadd.vv v28, v28, v12\n",
        )
    };
    ($($m:tt)*) => {
        ""
    };
}

/// The end of the last chunk in [`group_fn!`]: each row's
/// `hsum_float_8(acc)` into its lane 0,
/// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))`, plus Q4_1's
/// `summs`; the repacked order's result is already there.
macro_rules! group_fin {
    (sum) => {
        ""
    };
    ($($m:tt)*) => {
        concat!(
            "vslidedown.vi v8, v20, 4\n",
            "vfadd.vv v20, v8, v20\n",
            "vslidedown.vi v8, v20, 2\n",
            "vfadd.vv v20, v20, v8\n",
            "vslidedown.vi v8, v20, 1\n",
            "vfadd.vv v20, v20, v8\n",
            group_fin_summs!($($m)*),
        )
    };
}

/// Q4_1's `+ summs` at the end of [`group_fin!`].
macro_rules! group_fin_summs {
    (q4_1) => {
        "vfadd.vv v20, v20, v28\n"
    };
    ($($m:tt)*) => {
        ""
    };
}

/// An asm loop over `n` blocks of each of `nt` tokens for a group of
/// `vl / 8` rows side by side in one vector (`vl` 16 or 32, at most
/// VLMAX of SEW 32, LMUL 4): the unpacked weights of a block (the tile's
/// rows side by side, `ROWS * 32` bytes apart per block) in one
/// `vlseg4e8`, the
/// activation block repeated for each row by an indexed segment load
/// (`vloxseg4ei8`, offsets `4 (i % 8)` in `v2`), the row scales spread
/// over their lanes by `vloxei8` (offsets `(i / 8) 4 f` in `v1` with `f`
/// scales per row, `v3` 4 bytes further for Q4_1's mins). Lanes in `v16`,
/// f32 accumulators in `v20`, Q4_1's `summs` in `v28`.
macro_rules! group_fn {
    ($name:ident, ($($k:tt)*), ($($m:tt)*), $fields:literal) => {
        /// For each token `t < a.len()` and the `vl / 8` rows `r`:
        /// `acc[t][r][l] = fma(dw[b][r] * da[t][b], lane_l(w[r] block b,
        /// a[t] block b), acc[t][r][l])` for the blocks `b < n` in order
        /// (and for Q4_1 `summs[t][r][..] += mw[b][r] * sa[t][b]`; for the
        /// repacked order the lanes are summed first, into lane 0): block
        /// `b`'s unpacked row `r` at `w[(b * ROWS + r) * 32..]`, token `t`'s
        /// quants at `a[t][start + b * ab..]`, the weight scales `dw[b][r]`
        /// (`mw[b][r]`) at `sw[b * swb / 4 + r * fields]` (`+ 1`), the
        /// activation's `da[t][b]` (`sa[t][b]`) at
        /// `sa_[b * sab / 4 + t * fields]` (`+ 1`). Token `t`'s `acc` and
        /// `summs` are `acc[t * ROWS..][..vl / 8]`. The accumulators start
        /// at zero when `init`, otherwise from `acc` and `summs`; when
        /// `fin`, each row's result goes to its lane 0 of `acc`. The
        /// tokens must lie `astride` bytes apart (panics otherwise), as the
        /// rows of one activation matrix do. `w`, `sw` and `sa_` are the
        /// tile's scratch space: the ranges read must have been written
        /// ([`unpack`], [`gather_f16`] for this chunk), or the results are
        /// garbage (the asm reads bytes, never Rust values).
        #[allow(clippy::too_many_arguments)]
        fn $name(
            _v: V,
            vl: usize,
            n: usize,
            w: &[MaybeUninit<u8>],
            a: &[&[u8]],
            start: usize,
            astride: usize,
            ab: usize,
            sw: &[MaybeUninit<f32>],
            swb: usize,
            sa_: &[MaybeUninit<f32>],
            sab: usize,
            acc: &mut [[f32; 8]],
            summs: &mut [[f32; 8]],
            init: bool,
            fin: bool,
        ) {
            let (rows, fields, nt): (usize, usize, usize) = (vl / 8, $fields, a.len());
            assert!((vl == 16 || vl == 32) && nt > 0);
            assert!(acc.len() >= (nt - 1) * ROWS + rows && summs.len() >= (nt - 1) * ROWS + rows);
            assert!(n > 0 && w.len() >= (n - 1) * ROWS * UNPACKED + rows * UNPACKED);
            let a0 = a[0].as_ptr() as usize;
            for (t, at) in a.iter().enumerate() {
                assert!(at.as_ptr() as usize == a0.wrapping_add(t.wrapping_mul(astride)));
                assert!(at.len() >= start + (n - 1) * ab + UNPACKED);
            }
            assert!(swb % 4 == 0 && sw.len() >= (n - 1) * swb / 4 + rows * fields);
            assert!(sab % 4 == 0 && sa_.len() >= (n - 1) * sab / 4 + nt * fields);
            // SAFETY: `V` proves the CPU has V, and the caller passes a `vl`
            // no larger than VLMAX at SEW 32, LMUL 4 (so also at SEW 8,
            // LMUL 1 and SEW 16, LMUL 2). For token `t < nt`, block `b < n`
            // reads `vl * 4` bytes at `b * ROWS * 32` of `w`, 32 at
            // `a0 + t * astride + start + b * ab`, which is
            // `a[t][start + b * ab..]`, `rows
            // * fields` f32 at `b * swb` of `sw` and `fields` at
            // `b * sab + t * fields * 4` of `sa_`, all inside the slices
            // (checked above); token `t`'s `vl` f32 of `acc` and `summs` at
            // `t * ROWS * 32` bytes are read and written, inside them
            // (checked).
            unsafe {
                vasm!(
                    [
                        "vsetvli zero, {vl}, e8, m1, ta, ma",
                        "vid.v v3",
                        "vsrl.vi v1, v3, 3",
                        "vsll.vi v1, v1, {sh}",
                        "vand.vi v2, v3, 7",
                        "vsll.vi v2, v2, 2",
                        "vadd.vi v3, v1, 4",
                        // Per token.
                        "2:",
                        "mv {wp}, {w}",
                        "mv {ap}, {a}",
                        "mv {s}, {sw}",
                        "mv {p}, {sp}",
                        "mv {n}, {nb}",
                        "vsetvli zero, {vl}, e32, m4, ta, ma",
                        "vmv.v.i v20, 0",
                        "vmv.v.i v28, 0",
                        "beqz {init}, 1f",
                        "vle32.v v20, ({acc})",
                        "vle32.v v28, ({summs})",
                        // Per block.
                        "1:",
                        "vsetvli zero, {vl}, e8, m1, ta, ma",
                        "vloxseg4ei8.v v8, ({ap}), v2",
                        "vlseg4e8.v v4, ({wp})",
                        group_ints!($($k)*),
                        group_sum!($($m)*),
                        "vfcvt.f.x.v v16, v16",
                        "vloxei8.v v24, ({s}), v1",
                        "flw {f}, 0({p})",
                        "vfmul.vf v24, v24, {f}",
                        "vfmacc.vv v20, v24, v16",
                        group_summs!($($m)*),
                        "add {ap}, {ap}, {ab}",
                        "addi {wp}, {wp}, {bs}",
                        "add {s}, {s}, {swb}",
                        "add {p}, {p}, {sab}",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                        "vse32.v v28, ({summs})",
                        "beqz {fin}, 3f",
                        group_fin!($($m)*),
                        "3:",
                        "vse32.v v20, ({acc})",
                        "add {a}, {a}, {astride}",
                        "addi {sp}, {sp}, {fb}",
                        "addi {acc}, {acc}, {tb}",
                        "addi {summs}, {summs}, {tb}",
                        "addi {nt}, {nt}, -1",
                        "bnez {nt}, 2b",
                    ],
                    a = inout(reg) a0 + start => _,
                    sp = inout(reg) sa_.as_ptr() => _,
                    acc = inout(reg) acc.as_mut_ptr() => _,
                    summs = inout(reg) summs.as_mut_ptr() => _,
                    nt = inout(reg) nt => _,
                    w = in(reg) w.as_ptr(),
                    sw = in(reg) sw.as_ptr(),
                    nb = in(reg) n,
                    vl = in(reg) vl,
                    astride = in(reg) astride,
                    ab = in(reg) ab,
                    swb = in(reg) swb,
                    sab = in(reg) sab,
                    init = in(reg) usize::from(!init),
                    fin = in(reg) usize::from(fin),
                    wp = out(reg) _,
                    ap = out(reg) _,
                    s = out(reg) _,
                    p = out(reg) _,
                    n = out(reg) _,
                    f = out(freg) _,
                    sh = const (4 * $fields as usize).trailing_zeros(),
                    fb = const 4 * $fields,
                    tb = const ROWS * 32,
                    bs = const ROWS * UNPACKED,
                );
            }
        }
    };
}

const _: () = assert!(
    ROWS % 4 == 0 && ROWS <= 16,
    "row groups of 4 (or 2) rows; 2 f16 scales per row fit gather_f16's 32 slots"
);

group_fn!(group_q8_0, (q8), (), 1);
group_fn!(group_q4_0, (q4, "vwmul.vv", "vwmacc.vv"), (), 1);
group_fn!(group_q4_0_repacked, (q4, "vwmul.vv", "vwmacc.vv"), (sum), 1);
group_fn!(group_q4_1, (q4, "vwmulsu.vv", "vwmaccsu.vv"), (q4_1), 2);

/// The f16 scale fields of `n` blocks of several rows (or tokens) as f32
/// (the portable `f16_to_f32`), converted by vector in one pass: block
/// `b` of row `i` at `rows[i][start + b * stride..]` has `fields` f16
/// values (2 bytes apart), and slot `j < slots` of each block, `slots` a
/// power of two up to 32, is field `j % fields` of row
/// `min(j / fields, rows.len() - 1)` (the last row repeated); slot `j` of
/// block `b` goes to `out[b * slots + j]`. The rows start in address order
/// within 4 GiB. `offs` is scratch space.
#[allow(clippy::too_many_arguments)]
fn gather_f16(
    _v: V,
    offs: &mut [u32; 32],
    rows: &[&[u8]],
    fields: usize,
    slots: usize,
    start: usize,
    stride: usize,
    n: usize,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(slots.is_power_of_two() && slots <= 32 && slots >= rows.len() * fields);
    assert!(n > 0 && out.len() >= n * slots);
    let base = rows[0].as_ptr() as usize;
    let last = start + (n - 1) * stride + 2 * fields;
    for (i, r) in rows.iter().enumerate() {
        assert!(r.len() >= last);
        let off = (r.as_ptr() as usize)
            .checked_sub(base)
            .expect("rows in address order")
            + start;
        let off = u32::try_from(off).expect("rows within 4 GiB");
        for f in 0..fields {
            offs[i * fields + f] = off + 2 * f as u32;
        }
    }
    for j in rows.len() * fields..slots {
        offs[j] = offs[j - fields];
    }
    // SAFETY: `V` proves the CPU has V. Element `i` reads the 2 bytes at
    // `base + offs[i % slots] + (i / slots) * stride`, which is field `f`
    // of block `i / slots` of a row `r`, `r[start + (i / slots) * stride
    // + 2 f..][..2]`, inside that row (checked above: `offs` is the row's
    // start minus `base`, which no row precedes, plus `start + 2 f`); it
    // reads `offs[i % slots]` and writes `out[i]`,
    // `i < n * slots <= out.len()`.
    unsafe {
        vasm!(f16in
            [
                "1:",
                "vsetvli {vl}, {rem}, e32, m8, ta, ma",
                "vid.v v8",
                "vadd.vx v8, v8, {i0}",
                "vsrl.vx v16, v8, {lg}",
                "vmul.vx v16, v16, {stride}",
                "vand.vx v8, v8, {mask}",
                "vsll.vi v8, v8, 2",
                "vluxei32.v v24, ({offs}), v8",
                "vadd.vv v16, v16, v24",
                // Bytes, as the f16 fields need not be aligned.
                "vsetvli zero, {vl}, e8, m2, ta, ma",
                "vluxei32.v v24, ({base}), v16",
                "vluxei32.v v26, ({base1}), v16",
                "vsetvli zero, {vl}, e32, m8, ta, ma",
                "vzext.vf4 v8, v24",
                "vzext.vf4 v16, v26",
                "vsll.vi v16, v16, 8",
                "vor.vv v8, v8, v16",
                f16_to_f32!("v8", "v16", "v24"),
                "vse32.v v24, ({out})",
                "add {i0}, {i0}, {vl}",
                "sub {rem}, {rem}, {vl}",
                "slli {t}, {vl}, 2",
                "add {out}, {out}, {t}",
                "bnez {rem}, 1b",
            ],
            rem = inout(reg) n * slots => _,
            i0 = inout(reg) 0usize => _,
            out = inout(reg) out.as_mut_ptr() => _,
            lg = in(reg) slots.trailing_zeros() as usize,
            mask = in(reg) slots - 1,
            stride = in(reg) stride,
            offs = in(reg) offs.as_ptr(),
            base = in(reg) base,
            base1 = in(reg) base + 1,
            vl = out(reg) _,
            t = out(reg) _,
        );
    }
}

/// Unpacks `n` blocks of each of the [`ROWS`] weight rows into one byte
/// per value: block `b` of row `r` has its quants at
/// `w[r][start + b * wb..]` (Q8_0: 32 bytes, copied; Q4: 16 packed bytes,
/// byte `i` holding value `i` in its low nibble and `i + 16` in its high
/// one, split and offset by `off`), its 32 values go to
/// `out[(b * ROWS + r) * 32..][..32]`. Strided segment loads and stores of
/// bytes (`vlsseg8e8`, `vssseg8e8`: no alignment needed) move eight bytes
/// of many blocks per instruction; one asm block does all the rows.
#[allow(clippy::too_many_arguments)]
fn unpack(
    _v: V,
    q8: bool,
    w: &[&[u8]; ROWS],
    start: usize,
    wb: usize,
    n: usize,
    off: i8,
    out: &mut [MaybeUninit<u8>],
) {
    let qb = if q8 { 32 } else { 16 };
    assert!(n > 0 && w.iter().all(|w| w.len() >= start + (n - 1) * wb + qb));
    assert!(out.len() >= n * ROWS * UNPACKED);
    let rows: [*const u8; ROWS] = core::array::from_fn(|r| w[r][start..].as_ptr());
    if q8 {
        // SAFETY: `V` proves the CPU has V. For each row `r`, each strip of
        // `vl` blocks reads 32 bytes at `b * wb` of `rows[r]` (inside
        // `w[r]`) and writes 32 at `(b * ROWS + r) * 32` of `out` for its
        // blocks `b < n`, inside the slices (checked above); `rows` is read.
        unsafe {
            vasm!(
                [
                    "2:",
                    "ld {w}, 0({rp})",
                    "mv {n}, {n0}",
                    "mv {o}, {o0}",
                    "1:",
                    "vsetvli {vl}, {n}, e8, m1, ta, ma",
                    "vlsseg8e8.v v0, ({w}), {wb}",
                    "addi {t}, {w}, 8",
                    "vlsseg8e8.v v8, ({t}), {wb}",
                    "addi {t}, {w}, 16",
                    "vlsseg8e8.v v16, ({t}), {wb}",
                    "addi {t}, {w}, 24",
                    "vlsseg8e8.v v24, ({t}), {wb}",
                    "vssseg8e8.v v0, ({o}), {os}",
                    "addi {t}, {o}, 8",
                    "vssseg8e8.v v8, ({t}), {os}",
                    "addi {t}, {o}, 16",
                    "vssseg8e8.v v16, ({t}), {os}",
                    "addi {t}, {o}, 24",
                    "vssseg8e8.v v24, ({t}), {os}",
                    "sub {n}, {n}, {vl}",
                    "mul {t}, {vl}, {wb}",
                    "add {w}, {w}, {t}",
                    "mul {t}, {vl}, {os}",
                    "add {o}, {o}, {t}",
                    "bnez {n}, 1b",
                    "addi {rp}, {rp}, 8",
                    "addi {o0}, {o0}, 32",
                    "addi {r}, {r}, -1",
                    "bnez {r}, 2b",
                ],
                rp = inout(reg) rows.as_ptr() => _,
                o0 = inout(reg) out.as_mut_ptr() => _,
                r = inout(reg) ROWS => _,
                n0 = in(reg) n,
                wb = in(reg) wb,
                os = in(reg) ROWS * UNPACKED,
                w = out(reg) _,
                o = out(reg) _,
                n = out(reg) _,
                vl = out(reg) _,
                t = out(reg) _,
            );
        }
        return;
    }
    // SAFETY: `V` proves the CPU has V. For each row `r`, each strip of
    // `vl` blocks reads 16 bytes at `b * wb` of `rows[r]` (inside `w[r]`)
    // and writes 32 at `(b * ROWS + r) * 32` of `out` for its blocks
    // `b < n`, inside the slices (checked above); `rows` is read.
    unsafe {
        vasm!(
            [
                "3:",
                "ld {w}, 0({rp})",
                "mv {n}, {n0}",
                "mv {o}, {o0}",
                "1:",
                "vsetvli {vl}, {n}, e8, m1, ta, ma",
                // Packed bytes 0..8 in v8..v15, 8..16 in v16..v23.
                "vlsseg8e8.v v8, ({w}), {wb}",
                "addi {t}, {w}, 8",
                "vlsseg8e8.v v16, ({t}), {wb}",
                // High nibbles (values 16..32) in v24..v31 and v0..v7.
                "vsrl.vi v24, v8, 4",
                "vsrl.vi v25, v9, 4",
                "vsrl.vi v26, v10, 4",
                "vsrl.vi v27, v11, 4",
                "vsrl.vi v28, v12, 4",
                "vsrl.vi v29, v13, 4",
                "vsrl.vi v30, v14, 4",
                "vsrl.vi v31, v15, 4",
                "vsrl.vi v0, v16, 4",
                "vsrl.vi v1, v17, 4",
                "vsrl.vi v2, v18, 4",
                "vsrl.vi v3, v19, 4",
                "vsrl.vi v4, v20, 4",
                "vsrl.vi v5, v21, 4",
                "vsrl.vi v6, v22, 4",
                "vsrl.vi v7, v23, 4",
                "vand.vi v8, v8, 15",
                "vand.vi v9, v9, 15",
                "vand.vi v10, v10, 15",
                "vand.vi v11, v11, 15",
                "vand.vi v12, v12, 15",
                "vand.vi v13, v13, 15",
                "vand.vi v14, v14, 15",
                "vand.vi v15, v15, 15",
                "vand.vi v16, v16, 15",
                "vand.vi v17, v17, 15",
                "vand.vi v18, v18, 15",
                "vand.vi v19, v19, 15",
                "vand.vi v20, v20, 15",
                "vand.vi v21, v21, 15",
                "vand.vi v22, v22, 15",
                "vand.vi v23, v23, 15",
                "beqz {off}, 2f",
                "vadd.vx v0, v0, {off}",
                "vadd.vx v1, v1, {off}",
                "vadd.vx v2, v2, {off}",
                "vadd.vx v3, v3, {off}",
                "vadd.vx v4, v4, {off}",
                "vadd.vx v5, v5, {off}",
                "vadd.vx v6, v6, {off}",
                "vadd.vx v7, v7, {off}",
                "vadd.vx v8, v8, {off}",
                "vadd.vx v9, v9, {off}",
                "vadd.vx v10, v10, {off}",
                "vadd.vx v11, v11, {off}",
                "vadd.vx v12, v12, {off}",
                "vadd.vx v13, v13, {off}",
                "vadd.vx v14, v14, {off}",
                "vadd.vx v15, v15, {off}",
                "vadd.vx v16, v16, {off}",
                "vadd.vx v17, v17, {off}",
                "vadd.vx v18, v18, {off}",
                "vadd.vx v19, v19, {off}",
                "vadd.vx v20, v20, {off}",
                "vadd.vx v21, v21, {off}",
                "vadd.vx v22, v22, {off}",
                "vadd.vx v23, v23, {off}",
                "vadd.vx v24, v24, {off}",
                "vadd.vx v25, v25, {off}",
                "vadd.vx v26, v26, {off}",
                "vadd.vx v27, v27, {off}",
                "vadd.vx v28, v28, {off}",
                "vadd.vx v29, v29, {off}",
                "vadd.vx v30, v30, {off}",
                "vadd.vx v31, v31, {off}",
                "2:",
                "vssseg8e8.v v8, ({o}), {os}",
                "addi {t}, {o}, 8",
                "vssseg8e8.v v16, ({t}), {os}",
                "addi {t}, {o}, 16",
                "vssseg8e8.v v24, ({t}), {os}",
                "addi {t}, {o}, 24",
                "vssseg8e8.v v0, ({t}), {os}",
                "sub {n}, {n}, {vl}",
                "mul {t}, {vl}, {wb}",
                "add {w}, {w}, {t}",
                "mul {t}, {vl}, {os}",
                "add {o}, {o}, {t}",
                "bnez {n}, 1b",
                "addi {rp}, {rp}, 8",
                "addi {o0}, {o0}, 32",
                "addi {r}, {r}, -1",
                "bnez {r}, 3b",
            ],
            rp = inout(reg) rows.as_ptr() => _,
            o0 = inout(reg) out.as_mut_ptr() => _,
            r = inout(reg) ROWS => _,
            n0 = in(reg) n,
            wb = in(reg) wb,
            os = in(reg) ROWS * UNPACKED,
            off = in(reg) isize::from(off),
            w = out(reg) _,
            o = out(reg) _,
            n = out(reg) _,
            vl = out(reg) _,
            t = out(reg) _,
        );
    }
}

/// Scratch space and accumulators of the 32-value tiles, made once per
/// matmul.
pub(crate) struct Tiles32 {
    /// The capability token.
    v: V,
    /// Lanes of a row group: 32 (four rows) when VLMAX at SEW 32, LMUL 4
    /// allows, else 16 (two rows, VLEN 128); a tile of [`ROWS`] rows runs
    /// in `ROWS * 8 / vl` groups.
    vl: usize,
    /// A chunk's unpacked values: block `b` of tile row `r` at
    /// `(b * ROWS + r) * 32`.
    buf: [MaybeUninit<u8>; CHUNK * ROWS * UNPACKED],
    /// Per block of the chunk, each row's `dw` (f32), for Q4_1 followed by
    /// its `m`: `[b * slots + r]`, or `[b * slots + 2 r]` and `+ 1`.
    sw: [MaybeUninit<f32>; CHUNK * 2 * ROWS],
    /// Per block of the chunk, each token's `da` (and Q4_1's `sa`):
    /// `[b * slots + t]` (`[b * slots + 2 t]`, `+ 1`).
    sa: [MaybeUninit<f32>; CHUNK * 2 * TOKENS],
    /// Which scales `sa` holds: the chunk's first block and the token
    /// count (none yet: a count of 0), and the tokens' addresses.
    sa_of: (usize, usize),
    /// See `sa_of`.
    sa_ptrs: [usize; TOKENS],
    /// [`gather_f16`]'s byte offsets of the rows' scales.
    offs: [u32; 32],
    /// Eight f32 lanes per (token, row); a row's result in lane 0 at the
    /// end.
    acc: [[[f32; 8]; ROWS]; TOKENS],
    /// Q4_1's `summs` per (token, row), in all eight lanes.
    summs: [[[f32; 8]; ROWS]; TOKENS],
}

impl Tiles32 {
    /// Fresh scratch space.
    pub(crate) fn new(v: V) -> Self {
        Tiles32 {
            v,
            // VLMAX at SEW 32, LMUL 4 is `vlenb` elements (16 at VLEN 128).
            vl: vlenb(v).min(32),
            // Written by `unpack` / `gather_f16` before every read, so not
            // cleared: 28 KiB fewer bytes to zero per matmul.
            buf: [MaybeUninit::uninit(); CHUNK * ROWS * UNPACKED],
            sw: [MaybeUninit::uninit(); CHUNK * 2 * ROWS],
            sa: [MaybeUninit::uninit(); CHUNK * 2 * TOKENS],
            sa_of: (0, 0),
            sa_ptrs: [0; TOKENS],
            offs: [0; 32],
            acc: [[[0.0; 8]; ROWS]; TOKENS],
            summs: [[[0.0; 8]; ROWS]; TOKENS],
        }
    }

    /// Q8_0 x Q8_0 (`ggml_vec_dot_q8_0_q8_0`) for a tile.
    pub(crate) fn q8_0(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q8_0>(w, a, out);
    }

    /// Q4_0 x Q8_0 in plain rows (`ggml_vec_dot_q4_0_q8_0`: a tied
    /// embedding) for a tile.
    pub(crate) fn q4_0(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q4_0>(w, a, out);
    }

    /// Q4_0 x Q8_0 in the repacked projection order
    /// (`ggml_gemv_q4_0_8x8_q8_0`) for a tile.
    pub(crate) fn q4_0_repacked(
        &mut self,
        w: &[&[u8]; ROWS],
        a: &[&[u8]],
        out: &mut [[f32; ROWS]],
    ) {
        self.tile::<Q4_0_REPACKED>(w, a, out);
    }

    /// Q4_1 x Q8_1 (`ggml_vec_dot_q4_1_q8_1`) for a tile.
    pub(crate) fn q4_1(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q4_1>(w, a, out);
    }

    /// `out[t][r] = dot(w[r], a[t])` in format `K`, a chunk of blocks at
    /// a time.
    #[inline(always)]
    fn tile<const K: u8>(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        // Weight and activation block bytes; offset of the quants in both.
        let (wb, ab, qo) = match K {
            Q8_0 => (Q8_0_BYTES, Q8_0_BYTES, 2),
            Q4_0 | Q4_0_REPACKED => (Q4_0_BYTES, Q8_0_BYTES, 2),
            _ => (Q4_1_BYTES, Q8_1_BYTES, 4),
        };
        let nt = a.len();
        assert!(nt > 0 && nt <= TOKENS && out.len() == nt);
        let nb = w[0].len() / wb;
        let (v, vl) = (self.v, self.vl);
        let group = vl / 8;
        // Scale slots per block: each row's `dw` (Q4_1: `dw`, `m`), and
        // each token's `da` (Q4_1: `da`, `sa`), a power of two of them
        // (the last token repeated).
        let fields = if K == Q4_1 { 2 } else { 1 };
        let wslots = ROWS * fields;
        let aslots = (nt * fields).next_power_of_two();
        let (swb, sab) = (4 * wslots, 4 * aslots);
        let mut c0 = 0;
        while c0 < nb {
            let n = CHUNK.min(nb - c0);
            let (init, fin) = (c0 == 0, c0 + n == nb);
            gather_f16(
                v,
                &mut self.offs,
                w,
                fields,
                wslots,
                c0 * wb,
                wb,
                n,
                &mut self.sw,
            );
            let off = if K == Q4_0 || K == Q4_0_REPACKED {
                -8
            } else {
                0
            };
            unpack(v, K == Q8_0, w, c0 * wb + qo, wb, n, off, &mut self.buf);
            // The tokens' scales are the same for every tile of rows: convert
            // them again only for other tokens or another chunk.
            let same = |(a, &p): (&&[u8], &usize)| a.as_ptr() as usize == p;
            if self.sa_of != (c0, nt) || !a.iter().zip(&self.sa_ptrs).all(same) {
                gather_f16(
                    v,
                    &mut self.offs,
                    a,
                    fields,
                    aslots,
                    c0 * ab,
                    ab,
                    n,
                    &mut self.sa,
                );
                self.sa_of = (c0, nt);
                for (p, a) in self.sa_ptrs.iter_mut().zip(a) {
                    *p = a.as_ptr() as usize;
                }
            }
            let astride = if nt > 1 {
                (a[1].as_ptr() as usize).wrapping_sub(a[0].as_ptr() as usize)
            } else {
                0
            };
            let group_fn = match K {
                Q8_0 => group_q8_0,
                Q4_0 => group_q4_0,
                Q4_0_REPACKED => group_q4_0_repacked,
                _ => group_q4_1,
            };
            let (acc, summs) = (self.acc.as_flattened_mut(), self.summs.as_flattened_mut());
            let mut r0 = 0;
            while r0 < ROWS {
                let (wq, sw) = (&self.buf[r0 * UNPACKED..], &self.sw[r0 * fields..]);
                let (acc, summs) = (&mut acc[r0..], &mut summs[r0..]);
                group_fn(
                    v,
                    vl,
                    n,
                    wq,
                    a,
                    c0 * ab + qo,
                    astride,
                    ab,
                    sw,
                    swb,
                    &self.sa,
                    sab,
                    acc,
                    summs,
                    init,
                    fin,
                );
                r0 += group;
            }
            c0 += n;
        }
        for (o, acc) in out.iter_mut().zip(&self.acc) {
            for (o, acc) in o.iter_mut().zip(acc) {
                *o = acc[0];
            }
        }
    }
}

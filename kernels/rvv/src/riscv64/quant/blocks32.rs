//! Tiles of the 32-value block types: Q8_0, Q4_0 (plain and repacked
//! projection order) and Q4_1.
//!
//! Per (row, token) the float steps are those of the per-row dot products
//! (`ggml_vec_dot_q8_0_q8_0`, `_q4_0_q8_0`, `_q4_1_q8_1`): per block
//! `acc[l] = fma(dw * da, lane[l], acc[l])` on eight f32 lanes, then
//! `hsum_float_8`, plus Q4_1's `summs += mw * sa` in f32. The repacked
//! Q4_0 projection sums each block's lanes to one integer and runs
//! `acc = fma(sumi, dw * da, acc)` in scalar `fmadd.s`
//! (`ggml_gemv_q4_0_8x8_q8_0`).
//!
//! Per chunk of blocks, the f16 scales of the tile's rows and tokens are
//! converted by vector, all rows (or tokens) in one pass ([`gather_f16`]),
//! and each row's quants are unpacked by strided segment loads, many
//! blocks per instruction ([`unpack`]; Q8_0 copied, so every format reads
//! the same layout). Then per token one asm loop runs over the chunk:
//!
//! - at VLEN >= 256 (Q8_0, Q4_0 plain, Q4_1) all four rows share one
//!   vector (`vl = 32`, lane `8r + l` is row `r`'s lane `l`): per block one
//!   `vlseg4e8` of the rows' 128 unpacked bytes, one indexed segment load
//!   that repeats the activation block for each row, the row scales spread
//!   over their lanes by an indexed load, `dw * da` by `vfmul.vf`, one
//!   `vfmacc.vv` (and Q4_1's `summs` by `vfmul.vf` / `vfadd.vv` in every
//!   lane of its row): three `vsetvli` per block for the four rows
//!   ([`wide_fn!`]);
//! - otherwise (VLEN 128, and the repacked Q4_0 order) one row at a time
//!   at `vl = 8`, with `dw * da` (and Q4_1's `summs`) computed ahead in
//!   scalar code ([`lanes_fn!`], [`sums_repacked`]).

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES};
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::{ROWS, TOKENS};
use crate::riscv64::rvv::{hsum_float_8, vlenb, V};

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

/// One row's products inside [`lanes_fn!`]: the row's 32 values at `$w`
/// (`vlseg4e8` lanes in `v4..v7`) times the activation lanes in `v8..v11`
/// into the eight i32 lanes `v16` ([`row32_ints!`] of kind `$k`), then
/// `$acc = fma(ds, lanes, $acc)` with `ds` at byte `$doff` of `{d}`.
macro_rules! row32 {
    (($($k:tt)*), $w:literal, $doff:literal, $acc:literal) => {
        concat!(
            row32_ints!($($k)*, $w),
            "vfcvt.f.x.v v16, v16\n",
            "flw {f}, ",
            $doff,
            "({d})\n",
            "vfmacc.vf ",
            $acc,
            ", {f}, v16\n",
        )
    };
}

/// The exact i32 lanes of [`row32!`] into `v16` (SEW 32, LMUL 2). Kind
/// `q8`: four i16 products per lane (`vwmul`, up to `2^14` each) widened
/// and added; kind `q4, $mul, $macc`: a 4-bit weight's four products fit
/// i16 together (`4 * 15 * 128`), so `$mul` (`vwmul` / `vwmulsu`) and
/// three `$macc` (`vwmacc` / `vwmaccsu`) sum them before one `vsext`.
macro_rules! row32_ints {
    (q4, $mul:literal, $macc:literal, $w:literal) => {
        concat!(
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "vlseg4e8.v v4, (",
            $w,
            ")\n",
            $mul,
            " v12, v8, v4\n",
            $macc,
            " v12, v9, v5\n",
            $macc,
            " v12, v10, v6\n",
            $macc,
            " v12, v11, v7\n",
            "vsetivli zero, 8, e32, m2, ta, ma\n",
            "vsext.vf2 v16, v12\n",
        )
    };
    (q8, $w:literal) => {
        concat!(
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "vlseg4e8.v v4, (",
            $w,
            ")\n",
            "vwmul.vv v12, v8, v4\n",
            "vwmul.vv v13, v9, v5\n",
            "vwmul.vv v14, v10, v6\n",
            "vwmul.vv v15, v11, v7\n",
            "vsetivli zero, 8, e16, m1, ta, ma\n",
            "vwadd.vv v16, v12, v13\n",
            "vwadd.vv v18, v14, v15\n",
            "vsetivli zero, 8, e32, m2, ta, ma\n",
            "vadd.vv v16, v16, v18\n",
        )
    };
}

/// One row of the repacked order: the lanes of [`row32_ints!`] summed
/// exactly (`vredsum`), then `$acc = fma(sumi, ds, $acc)` in scalar.
macro_rules! row32_repacked {
    ($w:literal, $doff:literal, $acc:literal) => {
        concat!(
            row32_ints!(q4, "vwmul.vv", "vwmacc.vv", $w),
            "vmv.s.x v18, zero\n",
            "vredsum.vs v18, v16, v18\n",
            "vmv.x.s {t}, v18\n",
            "fcvt.s.w {fs}, {t}\n",
            "flw {f}, ",
            $doff,
            "({d})\n",
            "fmadd.s ",
            $acc,
            ", {fs}, {f}, ",
            $acc,
            "\n",
        )
    };
}

/// An asm loop over `ds.len()` blocks of one token and [`ROWS`] weight
/// rows: each activation block is loaded once (`v8..v11`) for the rows,
/// whose f32 lanes stay in `v20`, `v22`, `v24`, `v26`.
macro_rules! lanes_fn {
    ($name:ident, $k:tt) => {
        /// `acc[r][l] = fma(ds[b][r], lane_l(w[r] block b, a block b),
        /// acc[r][l])` for the blocks `b` in order: row `r`'s block `b`
        /// has its 32 quants at `w[r][b * ws..]`, the activation's at
        /// `a[b * ab..]`.
        fn $name(
            _v: V,
            w: [&[u8]; ROWS],
            ws: usize,
            a: &[u8],
            ab: usize,
            ds: &[[f32; ROWS]],
            acc: &mut [[f32; 8]; ROWS],
        ) {
            let n = ds.len();
            assert!(n > 0 && a.len() >= (n - 1) * ab + 32);
            assert!(w.iter().all(|w| w.len() >= (n - 1) * ws + 32));
            // SAFETY: `V` proves the CPU has V. Block `b < n` reads 32
            // bytes at `b * ws` of each `w[r]`, 32 at `b * ab` of `a` and
            // `ds[b]`, all inside the slices (checked above); `acc` is
            // read and written whole (128 bytes).
            unsafe {
                vasm!(
                    [
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vle32.v v20, ({acc})",
                        "addi {t}, {acc}, 32",
                        "vle32.v v22, ({t})",
                        "addi {t}, {acc}, 64",
                        "vle32.v v24, ({t})",
                        "addi {t}, {acc}, 96",
                        "vle32.v v26, ({t})",
                        "1:",
                        "vsetivli zero, 8, e8, mf2, ta, ma",
                        "vlseg4e8.v v8, ({a})",
                        row32!($k, "{w0}", "0", "v20"),
                        row32!($k, "{w1}", "4", "v22"),
                        row32!($k, "{w2}", "8", "v24"),
                        row32!($k, "{w3}", "12", "v26"),
                        "add {w0}, {w0}, {ws}",
                        "add {w1}, {w1}, {ws}",
                        "add {w2}, {w2}, {ws}",
                        "add {w3}, {w3}, {ws}",
                        "add {a}, {a}, {ab}",
                        "addi {d}, {d}, 16",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vse32.v v20, ({acc})",
                        "addi {t}, {acc}, 32",
                        "vse32.v v22, ({t})",
                        "addi {t}, {acc}, 64",
                        "vse32.v v24, ({t})",
                        "addi {t}, {acc}, 96",
                        "vse32.v v26, ({t})",
                    ],
                    w0 = inout(reg) w[0].as_ptr() => _,
                    w1 = inout(reg) w[1].as_ptr() => _,
                    w2 = inout(reg) w[2].as_ptr() => _,
                    w3 = inout(reg) w[3].as_ptr() => _,
                    a = inout(reg) a.as_ptr() => _,
                    d = inout(reg) ds.as_ptr() => _,
                    n = inout(reg) n => _,
                    ws = in(reg) ws,
                    ab = in(reg) ab,
                    acc = in(reg) acc.as_mut_ptr(),
                    t = out(reg) _,
                    f = out(freg) _,
                );
            }
        }
    };
}

const _: () = assert!(ROWS == 4, "the asm loops hold four rows");

lanes_fn!(lanes_q8_0, (q8));
lanes_fn!(lanes_q4_0, (q4, "vwmul.vv", "vwmacc.vv"));
lanes_fn!(lanes_q4_1, (q4, "vwmulsu.vv", "vwmaccsu.vv"));

/// The repacked Q4_0 order over `ds.len()` blocks of one token and
/// [`ROWS`] rows of unpacked signed values (as [`lanes_q4_0`]):
/// `acc[r] = fma(sumi(b, r), ds[b][r], acc[r])` in block order.
fn sums_repacked(_v: V, w: [&[u8]; ROWS], ws: usize, a: &[u8], ab: usize, ds: &[[f32; ROWS]], acc: &mut [f32; ROWS]) {
    let n = ds.len();
    assert!(n > 0 && a.len() >= (n - 1) * ab + 32);
    assert!(w.iter().all(|w| w.len() >= (n - 1) * ws + 32));
    let [mut c0, mut c1, mut c2, mut c3] = *acc;
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads 32 bytes at
    // `b * ws` of each `w[r]`, 32 at `b * ab` of `a` and `ds[b]`, all
    // inside the slices (checked above).
    unsafe {
        vasm!(
            [
                "1:",
                "vsetivli zero, 8, e8, mf2, ta, ma",
                "vlseg4e8.v v8, ({a})",
                row32_repacked!("{w0}", "0", "{c0}"),
                row32_repacked!("{w1}", "4", "{c1}"),
                row32_repacked!("{w2}", "8", "{c2}"),
                row32_repacked!("{w3}", "12", "{c3}"),
                "add {w0}, {w0}, {ws}",
                "add {w1}, {w1}, {ws}",
                "add {w2}, {w2}, {ws}",
                "add {w3}, {w3}, {ws}",
                "add {a}, {a}, {ab}",
                "addi {d}, {d}, 16",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
            ],
            w0 = inout(reg) w[0].as_ptr() => _,
            w1 = inout(reg) w[1].as_ptr() => _,
            w2 = inout(reg) w[2].as_ptr() => _,
            w3 = inout(reg) w[3].as_ptr() => _,
            a = inout(reg) a.as_ptr() => _,
            d = inout(reg) ds.as_ptr() => _,
            n = inout(reg) n => _,
            ws = in(reg) ws,
            ab = in(reg) ab,
            c0 = inout(freg) c0,
            c1 = inout(freg) c1,
            c2 = inout(freg) c2,
            c3 = inout(freg) c3,
            t = out(reg) _,
            fs = out(freg) _,
            f = out(freg) _,
        );
    }
    *acc = [c0, c1, c2, c3];
}

/// The exact i32 lanes of one block for the four rows at once, in `v16`
/// (SEW 32, LMUL 4, `vl = 32`: lane `8r + l` is row `r`'s lane `l`), from
/// the weights' `vlseg4e8` fields in `v4..v7` and the activation's
/// (repeated for each row) in `v8..v11`. Kinds as [`row32_ints!`]; `q8`
/// widens its four i16 products into `v16` by `vwadd`, the `q4` kinds sum
/// them in i16 (`v12`) before one `vsext`.
macro_rules! wide_ints {
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
            "vsetvli zero, {n32}, e32, m4, ta, ma\n",
            "vsext.vf2 v16, v12\n",
        )
    };
    (q8) => {
        concat!(
            "vwmul.vv v12, v8, v4\n",
            "vwmul.vv v14, v9, v5\n",
            "vwmul.vv v24, v10, v6\n",
            "vwmul.vv v26, v11, v7\n",
            "vsetvli zero, {n32}, e16, m2, ta, ma\n",
            "vwadd.vv v16, v12, v14\n",
            "vwadd.wv v16, v16, v24\n",
            "vwadd.wv v16, v16, v26\n",
            "vsetvli zero, {n32}, e32, m4, ta, ma\n",
        )
    };
}

/// Q4_1's `summs[r] += mw[r] * sa` in [`wide_fn!`]: each row's `mw` in
/// its eight lanes (`vloxei8` through `v3`), times `sa`, added to the
/// lanes of `v28`.
macro_rules! wide_summs {
    (q4_1) => {
        concat!(
            "vloxei8.v v12, ({s}), v3\n",
            "flw {f}, 4({p})\n",
            "vfmul.vf v12, v12, {f}\n",
            "vfadd.vv v28, v28, v12\n",
        )
    };
    () => {
        ""
    };
}

/// Q4_1's final `hsum_float_8(acc) + summs` in [`wide_fn!`].
macro_rules! wide_fin {
    (q4_1) => {
        "vfadd.vv v20, v20, v28\n"
    };
    () => {
        ""
    };
}

/// An asm loop over `n` blocks of one token for the [`ROWS`] rows of a
/// tile with all four rows in one vector (`vl = 32`, so VLEN >= 256): the
/// unpacked weights of a block (the rows side by side, 128 bytes) in one
/// `vlseg4e8`, the activation block repeated for each row by an indexed
/// segment load (`vloxseg4ei8`, offsets `4 (i % 8)` in `v2`), the row
/// scales spread over their lanes by `vloxei8` (offsets `(i / 8) 4 f` in
/// `v1` with `f` scales per row, `v3` 4 bytes further for Q4_1's mins).
/// The accumulators start at zero when `init`, otherwise from `acc` and
/// `summs`; when `fin`, each row's result (`hsum_float_8` of its lanes, by
/// slides and adds in the oracle's order, plus Q4_1's `summs`) goes to
/// its lane 0 of `acc`.
macro_rules! wide_fn {
    ($name:ident, ($($k:tt)*), ($($m:tt)*), $slots:literal) => {
        /// `acc[r][l] = fma(dw[b][r] * da[b], lane_l(w[r] block b, a block
        /// b), acc[r][l])` for the blocks `b < n` in order (and for Q4_1
        /// `summs[r][..] += mw[b][r] * sa[b]`): block `b`'s unpacked rows
        /// at `w[b * 128..]`, its activation quants at `a[b * ab..]`, the
        /// weight scales `dw[b][r]` (`mw[b][r]`) at `sw[b * swb / 4 + r]`
        /// (Q4_1: `sw[b * swb / 4 + 2 r]`, `+ 1`), the activation's `da[b]`
        /// (`sa[b]`) at `sa_[b * sab / 4]` (`+ 1`).
        #[allow(clippy::too_many_arguments)]
        fn $name(
            _v: V,
            n: usize,
            w: &[u8],
            a: &[u8],
            ab: usize,
            sw: &[f32],
            swb: usize,
            sa_: &[f32],
            sab: usize,
            acc: &mut [[f32; 8]; ROWS],
            summs: &mut [[f32; 8]; ROWS],
            init: bool,
            fin: bool,
        ) {
            assert!(n > 0 && w.len() >= n * ROWS * UNPACKED && a.len() >= (n - 1) * ab + UNPACKED);
            assert!(swb == 4 * $slots && sw.len() >= n * $slots);
            assert!(sab % 4 == 0 && sa_.len() >= (n - 1) * sab / 4 + $slots / 4);
            // SAFETY: `V` proves the CPU has V, and the caller runs this only
            // at VLEN >= 256, where 32 elements of SEW 32 fit LMUL 4. Block
            // `b < n` reads 128 bytes at `b * 128` of `w`, 32 at `b * ab` of
            // `a`, `swb` at `b * swb` of `sw` and 8 at `b * sab` of `sa_`, all
            // inside the slices (checked above); `acc` and `summs` are read
            // and written whole (128 bytes each).
            unsafe {
                vasm!(
                    [
                        "vsetvli zero, {n32}, e8, m1, ta, ma",
                        "vid.v v3",
                        "vsrl.vi v1, v3, 3",
                        "vsll.vi v1, v1, {sh}",
                        "vand.vi v2, v3, 7",
                        "vsll.vi v2, v2, 2",
                        "vadd.vi v3, v1, 4",
                        "vsetvli zero, {n32}, e32, m4, ta, ma",
                        "vmv.v.i v20, 0",
                        "vmv.v.i v28, 0",
                        "beqz {init}, 1f",
                        "vle32.v v20, ({acc})",
                        "vle32.v v28, ({summs})",
                        "1:",
                        "vsetvli zero, {n32}, e8, m1, ta, ma",
                        "vloxseg4ei8.v v8, ({a}), v2",
                        "vlseg4e8.v v4, ({w})",
                        wide_ints!($($k)*),
                        "vfcvt.f.x.v v16, v16",
                        "vloxei8.v v24, ({s}), v1",
                        "flw {f}, 0({p})",
                        "vfmul.vf v24, v24, {f}",
                        "vfmacc.vv v20, v24, v16",
                        wide_summs!($($m)*),
                        "add {a}, {a}, {ab}",
                        "addi {w}, {w}, 128",
                        "add {s}, {s}, {swb}",
                        "add {p}, {p}, {sab}",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                        "vse32.v v28, ({summs})",
                        "beqz {fin}, 3f",
                        // hsum_float_8 of each row's lanes into its lane 0:
                        // ((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7)).
                        "vslidedown.vi v8, v20, 4",
                        "vfadd.vv v20, v8, v20",
                        "vslidedown.vi v8, v20, 2",
                        "vfadd.vv v20, v20, v8",
                        "vslidedown.vi v8, v20, 1",
                        "vfadd.vv v20, v20, v8",
                        wide_fin!($($m)*),
                        "3:",
                        "vse32.v v20, ({acc})",
                    ],
                    w = inout(reg) w.as_ptr() => _,
                    a = inout(reg) a.as_ptr() => _,
                    s = inout(reg) sw.as_ptr() => _,
                    p = inout(reg) sa_.as_ptr() => _,
                    n = inout(reg) n => _,
                    ab = in(reg) ab,
                    swb = in(reg) swb,
                    sab = in(reg) sab,
                    acc = in(reg) acc.as_mut_ptr(),
                    summs = in(reg) summs.as_mut_ptr(),
                    n32 = in(reg) 32usize,
                    init = in(reg) usize::from(!init),
                    fin = in(reg) usize::from(fin),
                    sh = const ($slots as usize).trailing_zeros(),
                    f = out(freg) _,
                );
            }
        }
    };
}

wide_fn!(wide_q8_0, (q8), (), 4);
wide_fn!(wide_q4_0, (q4, "vwmul.vv", "vwmacc.vv"), (), 4);
wide_fn!(wide_q4_1, (q4, "vwmulsu.vv", "vwmaccsu.vv"), (q4_1), 8);

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
    out: &mut [f32],
) {
    assert!(slots.is_power_of_two() && slots <= 32 && slots >= rows.len() * fields);
    assert!(n > 0 && out.len() >= n * slots);
    let base = rows[0].as_ptr() as usize;
    let last = start + (n - 1) * stride + 2 * fields;
    for (i, r) in rows.iter().enumerate() {
        assert!(r.len() >= last);
        let off = (r.as_ptr() as usize).checked_sub(base).expect("rows in address order") + start;
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
fn unpack(_v: V, q8: bool, w: &[&[u8]; ROWS], start: usize, wb: usize, n: usize, off: i8, out: &mut [u8]) {
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
    /// Whether the four rows fit one vector (`vl = 32` at SEW 32: VLEN
    /// >= 256); otherwise each row runs at `vl = 8`.
    wide: bool,
    /// A chunk's unpacked values: block `b` of tile row `r` at
    /// `(b * ROWS + r) * 32`.
    buf: [u8; CHUNK * ROWS * UNPACKED],
    /// Per block of the chunk, each row's `dw` (f32), for Q4_1 followed by
    /// its `m`: `[b * slots + r]`, or `[b * slots + 2 r]` and `+ 1`.
    sw: [f32; CHUNK * 2 * ROWS],
    /// Per block of the chunk, each token's `da` (and Q4_1's `sa`):
    /// `[b * slots + t]` (`[b * slots + 2 t]`, `+ 1`).
    sa: [f32; CHUNK * 2 * TOKENS],
    /// [`gather_f16`]'s byte offsets of the rows' scales.
    offs: [u32; 32],
    /// Per block, each row's `dw * da` for the current token (the
    /// one-row-per-vector loops).
    ds: [[f32; ROWS]; CHUNK],
    /// Eight f32 lanes per (token, row).
    acc: [[[f32; 8]; ROWS]; TOKENS],
    /// Per (token, row), the repacked order's `acc` or Q4_1's `summs`: in
    /// all eight lanes (wide loops) or in lane 0.
    sacc: [[[f32; 8]; ROWS]; TOKENS],
}

impl Tiles32 {
    /// Fresh scratch space.
    pub(crate) fn new(v: V) -> Self {
        Tiles32 {
            v,
            wide: vlenb(v) >= 32,
            buf: [0; CHUNK * ROWS * UNPACKED],
            sw: [0.0; CHUNK * 2 * ROWS],
            sa: [0.0; CHUNK * 2 * TOKENS],
            offs: [0; 32],
            ds: [[0.0; ROWS]; CHUNK],
            acc: [[[0.0; 8]; ROWS]; TOKENS],
            sacc: [[[0.0; 8]; ROWS]; TOKENS],
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
    pub(crate) fn q4_0_repacked(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
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
        let v = self.v;
        let wide = self.wide && K != Q4_0_REPACKED;
        if !wide {
            for t in 0..nt {
                self.acc[t] = [[0.0; 8]; ROWS];
                self.sacc[t] = [[0.0; 8]; ROWS];
            }
        }
        // Scale slots per block: each row's `dw` (then Q4_1's `m`), and
        // each token's `da` (Q4_1: `da`, `sa` per token), a power of two
        // of them (the last token repeated).
        let fields = if K == Q4_1 { 2 } else { 1 };
        let wslots = ROWS * fields;
        let aslots = (nt * fields).next_power_of_two();
        let mut c0 = 0;
        while c0 < nb {
            let n = CHUNK.min(nb - c0);
            gather_f16(v, &mut self.offs, w, fields, wslots, c0 * wb, wb, n, &mut self.sw);
            let off = if K == Q4_0 || K == Q4_0_REPACKED { -8 } else { 0 };
            unpack(v, K == Q8_0, w, c0 * wb + qo, wb, n, off, &mut self.buf);
            gather_f16(v, &mut self.offs, a, fields, aslots, c0 * ab, ab, n, &mut self.sa);
            let fin = c0 + n == nb;
            let wq = &self.buf[..];
            for (t, act) in a.iter().enumerate() {
                let aq = &act[c0 * ab + qo..];
                let sa = &self.sa[t * fields..];
                if wide {
                    let (acc, summs) = (&mut self.acc[t], &mut self.sacc[t]);
                    let (sw, swb, sab) = (&self.sw[..], 4 * wslots, 4 * aslots);
                    match K {
                        Q4_1 => wide_q4_1(v, n, wq, aq, ab, sw, swb, sa, sab, acc, summs, c0 == 0, fin),
                        Q4_0 => wide_q4_0(v, n, wq, aq, ab, sw, swb, sa, sab, acc, summs, c0 == 0, fin),
                        _ => wide_q8_0(v, n, wq, aq, ab, sw, swb, sa, sab, acc, summs, c0 == 0, fin),
                    }
                    continue;
                }
                for b in 0..n {
                    let (swb, sab) = (&self.sw[b * wslots..], &sa[b * aslots..]);
                    if K == Q4_1 {
                        for (c, m) in self.sacc[t].iter_mut().zip(swb.chunks_exact(2)) {
                            c[0] += m[1] * sab[1];
                        }
                    }
                    for (d, x) in self.ds[b].iter_mut().zip(swb.chunks_exact(fields)) {
                        *d = x[0] * sab[0];
                    }
                }
                let wr: [&[u8]; ROWS] = core::array::from_fn(|r| &wq[r * UNPACKED..]);
                let (ds, ws) = (&self.ds[..n], ROWS * UNPACKED);
                match K {
                    Q4_0_REPACKED => {
                        let mut s: [f32; ROWS] = core::array::from_fn(|r| self.sacc[t][r][0]);
                        sums_repacked(v, wr, ws, aq, ab, ds, &mut s);
                        for (c, s) in self.sacc[t].iter_mut().zip(s) {
                            c[0] = s;
                        }
                    }
                    Q4_1 => lanes_q4_1(v, wr, ws, aq, ab, ds, &mut self.acc[t]),
                    Q4_0 => lanes_q4_0(v, wr, ws, aq, ab, ds, &mut self.acc[t]),
                    _ => lanes_q8_0(v, wr, ws, aq, ab, ds, &mut self.acc[t]),
                }
            }
            c0 += n;
        }
        for (t, o) in out.iter_mut().enumerate() {
            for (r, o) in o.iter_mut().enumerate() {
                *o = match K {
                    _ if wide => self.acc[t][r][0],
                    Q4_0_REPACKED => self.sacc[t][r][0],
                    Q4_1 => hsum_float_8(&self.acc[t][r]) + self.sacc[t][r][0],
                    _ => hsum_float_8(&self.acc[t][r]),
                };
            }
        }
    }
}

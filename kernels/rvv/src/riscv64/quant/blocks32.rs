//! Tiles of the 32-value block types: Q8_0, Q4_0 (plain and repacked
//! projection order) and Q4_1.
//!
//! Per (row, token) the float steps are those of the per-row dot products
//! (`ggml_vec_dot_q8_0_q8_0`, `_q4_0_q8_0`, `_q4_1_q8_1`): per block
//! `acc[l] = fma(dw * da, lane[l], acc[l])` on eight f32 lanes (`vfmacc.vf`,
//! `vl = 8`), then `hsum_float_8`, plus Q4_1's `summs += mw * sa` in
//! scalar f32. The repacked Q4_0 projection sums each block's lanes to one
//! integer and runs `acc = fma(sumi, dw * da, acc)` in scalar `fmadd.s`
//! (`ggml_gemv_q4_0_8x8_q8_0`). The scales `dw * da` of a chunk are
//! computed in scalar code before its asm loop.

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES};
use phi_edge_portable::quant::q4_0::Q4_0_BYTES;
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::{ROWS, TOKENS};
use crate::riscv64::rvv::{f16_at, hsum_float_8, V};

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

/// Splits the nibbles of `n` Q4 blocks into one byte per value: block `b`
/// has its 16 packed bytes at `w[b * wb..]` (byte `i` holds value `i` in
/// its low nibble, `i + 16` in its high one); its 32 values, plus `off`,
/// go to `out[b * ROWS * 32..][..32]`.
fn unpack_q4(_v: V, w: &[u8], wb: usize, n: usize, off: i8, out: &mut [u8]) {
    assert!(n > 0 && w.len() >= (n - 1) * wb + 16);
    assert!(out.len() >= (n - 1) * ROWS * UNPACKED + UNPACKED);
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads 16 bytes at
    // `b * wb` of `w` and writes 32 at `b * ROWS * 32` of `out`, inside
    // the slices (checked above).
    unsafe {
        vasm!(
            [
                "vsetivli zero, 16, e8, m1, ta, ma",
                "1:",
                "vle8.v v1, ({w})",
                "vand.vi v2, v1, 15",
                "vsrl.vi v3, v1, 4",
                "vadd.vx v2, v2, {off}",
                "vadd.vx v3, v3, {off}",
                "vse8.v v2, ({o})",
                "addi {t}, {o}, 16",
                "vse8.v v3, ({t})",
                "add {w}, {w}, {wb}",
                "addi {o}, {o}, {os}",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
            ],
            w = inout(reg) w.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            wb = in(reg) wb,
            off = in(reg) isize::from(off),
            t = out(reg) _,
            os = const ROWS * UNPACKED,
        );
    }
}

/// Scratch space and accumulators of the 32-value tiles, made once per
/// matmul.
pub(crate) struct Tiles32 {
    /// The capability token.
    v: V,
    /// A chunk's unpacked Q4 values: block `b` of tile row `r` at
    /// `(b * ROWS + r) * 32`.
    buf: [u8; CHUNK * ROWS * UNPACKED],
    /// Per block of the chunk, each row's `dw` (f32).
    dw: [[f32; ROWS]; CHUNK],
    /// Per block, each row's Q4_1 `m` (f32).
    mw: [[f32; ROWS]; CHUNK],
    /// Per block, each row's `dw * da` for the current token.
    ds: [[f32; ROWS]; CHUNK],
    /// Eight f32 lanes per (token, row).
    acc: [[[f32; 8]; ROWS]; TOKENS],
    /// One f32 per (token, row): the repacked order's `acc`, Q4_1's
    /// `summs`.
    sacc: [[f32; ROWS]; TOKENS],
}

impl Tiles32 {
    /// Fresh scratch space.
    pub(crate) fn new(v: V) -> Self {
        Tiles32 {
            v,
            buf: [0; CHUNK * ROWS * UNPACKED],
            dw: [[0.0; ROWS]; CHUNK],
            mw: [[0.0; ROWS]; CHUNK],
            ds: [[0.0; ROWS]; CHUNK],
            acc: [[[0.0; 8]; ROWS]; TOKENS],
            sacc: [[0.0; ROWS]; TOKENS],
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
        assert!(nt <= TOKENS && out.len() == nt);
        let nb = w[0].len() / wb;
        for t in 0..nt {
            self.acc[t] = [[0.0; 8]; ROWS];
            self.sacc[t] = [0.0; ROWS];
        }
        let v = self.v;
        let mut c0 = 0;
        while c0 < nb {
            let n = CHUNK.min(nb - c0);
            let wc: [&[u8]; ROWS] = core::array::from_fn(|r| &w[r][c0 * wb..(c0 + n) * wb]);
            for b in 0..n {
                for (r, wr) in wc.iter().enumerate() {
                    self.dw[b][r] = f16_at(wr, b * wb);
                    if K == Q4_1 {
                        self.mw[b][r] = f16_at(wr, b * wb + 2);
                    }
                }
            }
            if K != Q8_0 {
                let off = if K == Q4_1 { 0 } else { -8 };
                for (r, wr) in wc.iter().enumerate() {
                    unpack_q4(v, &wr[qo..], wb, n, off, &mut self.buf[r * UNPACKED..]);
                }
            }
            // Each row's first quants and the stride between its blocks.
            let (wq, ws): ([&[u8]; ROWS], usize) = if K == Q8_0 {
                (core::array::from_fn(|r| &wc[r][qo..]), wb)
            } else {
                (core::array::from_fn(|r| &self.buf[r * UNPACKED..]), ROWS * UNPACKED)
            };
            for (t, at) in a.iter().enumerate() {
                let ac = &at[c0 * ab..(c0 + n) * ab];
                for b in 0..n {
                    let da = f16_at(ac, b * ab);
                    if K == Q4_1 {
                        let sa = f16_at(ac, b * ab + 2);
                        for r in 0..ROWS {
                            self.sacc[t][r] += self.mw[b][r] * sa;
                        }
                    }
                    for r in 0..ROWS {
                        self.ds[b][r] = self.dw[b][r] * da;
                    }
                }
                let ds = &self.ds[..n];
                match K {
                    Q4_0_REPACKED => sums_repacked(v, wq, ws, &ac[qo..], ab, ds, &mut self.sacc[t]),
                    Q4_1 => lanes_q4_1(v, wq, ws, &ac[qo..], ab, ds, &mut self.acc[t]),
                    Q4_0 => lanes_q4_0(v, wq, ws, &ac[qo..], ab, ds, &mut self.acc[t]),
                    _ => lanes_q8_0(v, wq, ws, &ac[qo..], ab, ds, &mut self.acc[t]),
                }
            }
            c0 += n;
        }
        for (t, o) in out.iter_mut().enumerate() {
            for (r, o) in o.iter_mut().enumerate() {
                *o = match K {
                    Q4_0_REPACKED => self.sacc[t][r],
                    Q4_1 => hsum_float_8(&self.acc[t][r]) + self.sacc[t][r],
                    _ => hsum_float_8(&self.acc[t][r]),
                };
            }
        }
    }
}

//! Tiles of the 256-value block types: Q4_K (plain and repacked
//! projection order) and Q6_K, times Q8_K activations.
//!
//! A weight block is unpacked once per chunk into one byte per value (Q4_K
//! nibbles, Q6_K's 6-bit values before the offset of 32), sub-block by
//! sub-block, the tile's rows side by side; its sub-block scales are
//! copied next to it in the order the asm loop reads them. For each token
//! one asm loop then computes, per block and row, the eight exact i32
//! lanes of the per-row code: per 32-value sub-block the `vlseg4e8` lanes,
//! i16 quads (`vwmulsu` / `vwmaccsu`, no overflow: `4 * 63 * 128`) and the
//! scales by `vwmacc.vx` (Q6_K: two scales per sub-block, the second on
//! lanes 4..8 under a mask), each activation sub-block loaded once for
//! the [`ROWS`] rows. The few f32 steps per block and (row, token) then
//! run in scalar FMA exactly as in `ggml_vec_dot_q4_K_q8_K`,
//! `ggml_gemv_q4_K_8x8_q8_K` and `ggml_vec_dot_q6_K_q8_K`.

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::{ROWS, TOKENS};
use crate::riscv64::rvv::{f16_at, fmaf, hsum_float_8, V};

/// Blocks per chunk: unpacked once per tile, then passed by every token.
const CHUNK: usize = 8;
/// 32-value sub-blocks per block.
const SUB: usize = 8;
/// Bytes of one unpacked sub-block.
const SUB_BYTES: usize = 32;

/// [`TilesK::tile`]'s format: Q4_K in plain rows (a tied embedding).
const Q4K: u8 = 0;
/// Q4_K in the repacked projection order.
const Q4K_REPACKED: u8 = 1;
/// Q6_K.
const Q6K: u8 = 2;

/// The quads of one row's sub-block at `{w}` (`v4..v7`) times the
/// activation lanes in `v8..v11`, as i16 in `v12`.
macro_rules! quads_k {
    () => {
        concat!(
            "vsetivli zero, 8, e8, mf2, ta, ma\n",
            "vlseg4e8.v v4, ({w})\n",
            "vwmulsu.vv v12, v8, v4\n",
            "vwmaccsu.vv v12, v9, v5\n",
            "vwmaccsu.vv v12, v10, v6\n",
            "vwmaccsu.vv v12, v11, v7\n",
            "addi {w}, {w}, 32\n",
        )
    };
}

/// Q4_K: one row's quads times its sub-block scale (unsigned byte at
/// `{sc}`) into the lanes `$l`.
macro_rules! row_q4_k {
    ($l:literal) => {
        concat!(
            quads_k!(),
            "lbu {s0}, 0({sc})\n",
            "vsetivli zero, 8, e16, m1, ta, ma\n",
            "vwmacc.vx ",
            $l,
            ", {s0}, v12\n",
            "addi {sc}, {sc}, 1\n",
        )
    };
}

/// Q6_K: one row's quads times the two 16-value scales of its sub-block
/// (signed bytes at `{sc}`: lanes 0..4, then lanes 4..8 masked by `v0`)
/// into the lanes `$l`.
macro_rules! row_q6_k {
    ($l:literal) => {
        concat!(
            quads_k!(),
            "lb {s0}, 0({sc})\n",
            "lb {s1}, 1({sc})\n",
            "sub {s1}, {s1}, {s0}\n",
            "vsetivli zero, 8, e16, m1, ta, mu\n",
            "vwmacc.vx ",
            $l,
            ", {s0}, v12\n",
            "vwmacc.vx ",
            $l,
            ", {s1}, v12, v0.t\n",
            "addi {sc}, {sc}, 2\n",
        )
    };
}

/// An asm loop over `n` blocks of one token and [`ROWS`] unpacked rows,
/// storing each (block, row)'s eight i32 lanes (in `v16`, `v18`, `v20`,
/// `v22` while summed); `$row` is the per-row step, `$scb` its scale
/// bytes, then the extra operands it uses.
macro_rules! lanes_k_fn {
    ($name:ident, $row:ident, $scb:expr, $($extra:tt)*) => {
        /// `lanes[b][r]` = the i32 lanes of row `r`'s block `b` (sub-block
        /// `s` at `w[((b * 8 + s) * ROWS + r) * 32..]`, its scales at
        /// `sc[((b * 8 + s) * ROWS + r) * SCB..]`) times the activation's
        /// block `b` at `a[b * Q8_K_BYTES..]`.
        fn $name(_v: V, w: &[u8], sc: &[u8], a: &[u8], lanes: &mut [[[i32; 8]; ROWS]]) {
            let n = lanes.len();
            assert!(n > 0 && a.len() >= n * Q8_K_BYTES);
            assert!(w.len() >= n * SUB * ROWS * SUB_BYTES && sc.len() >= n * SUB * ROWS * $scb);
            // SAFETY: `V` proves the CPU has V. The loop reads
            // `n * 8 * ROWS` sub-blocks of `w` and their scales of `sc` in
            // order, 256 quants of each of the `n` activation blocks
            // (after their 4-byte `d`) and writes `n * ROWS * 8` i32 of
            // `lanes`, all inside the slices (checked above).
            unsafe {
                vasm!(
                    [
                        "vsetivli zero, 8, e8, mf2, ta, ma",
                        "vid.v v1",
                        "vmsgtu.vi v0, v1, 3",
                        "1:",
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vmv.v.i v16, 0",
                        "vmv.v.i v18, 0",
                        "vmv.v.i v20, 0",
                        "vmv.v.i v22, 0",
                        "li {s}, 8",
                        "2:",
                        "vsetivli zero, 8, e8, mf2, ta, ma",
                        "vlseg4e8.v v8, ({a})",
                        $row!("v16"),
                        $row!("v18"),
                        $row!("v20"),
                        $row!("v22"),
                        "addi {a}, {a}, 32",
                        "addi {s}, {s}, -1",
                        "bnez {s}, 2b",
                        "vsetivli zero, 8, e32, m2, ta, ma",
                        "vse32.v v16, ({o})",
                        "addi {o}, {o}, 32",
                        "vse32.v v18, ({o})",
                        "addi {o}, {o}, 32",
                        "vse32.v v20, ({o})",
                        "addi {o}, {o}, 32",
                        "vse32.v v22, ({o})",
                        "addi {o}, {o}, 32",
                        "addi {a}, {a}, {askip}",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                    ],
                    w = inout(reg) w.as_ptr() => _,
                    sc = inout(reg) sc.as_ptr() => _,
                    a = inout(reg) a.as_ptr().add(4) => _,
                    o = inout(reg) lanes.as_mut_ptr() => _,
                    n = inout(reg) n => _,
                    s = out(reg) _,
                    s0 = out(reg) _,
                    askip = const Q8_K_BYTES - 256,
                    $($extra)*
                );
            }
        }
    };
}

const _: () = assert!(ROWS == 4, "the asm loops hold four rows");

lanes_k_fn!(lanes_q4_k, row_q4_k, 1,);
lanes_k_fn!(lanes_q6_k, row_q6_k, 2, s1 = out(reg) _,);

/// Unpacks `n` Q4_K blocks of one row (at `w[b * Q4_K_BYTES..]`): the low
/// nibbles of 32-byte chunk `c` are sub-block `2c`, the high ones
/// `2c + 1`; sub-block `s` of block `b` goes to
/// `out[(b * 8 + s) * ROWS * 32..][..32]`.
fn unpack_q4_k(_v: V, w: &[u8], n: usize, out: &mut [u8]) {
    assert!(n > 0 && w.len() >= n * Q4_K_BYTES);
    assert!(out.len() >= ((n * SUB - 1) * ROWS + 1) * SUB_BYTES);
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads its 128 quant
    // bytes at `b * 144 + 16` and writes its 8 sub-blocks of 32 bytes as
    // documented, inside the slices (checked above).
    unsafe {
        vasm!(
            [
                "li {t}, 32",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "1:",
                "addi {q}, {w}, 16",
                "li {c}, 4",
                "2:",
                "vle8.v v2, ({q})",
                "vand.vi v4, v2, 15",
                "vsrl.vi v6, v2, 4",
                "vse8.v v4, ({o})",
                "addi {t}, {o}, {sub}",
                "vse8.v v6, ({t})",
                "addi {q}, {q}, 32",
                "addi {o}, {o}, 2 * {sub}",
                "addi {c}, {c}, -1",
                "bnez {c}, 2b",
                "addi {w}, {w}, {wb}",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
            ],
            w = inout(reg) w.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            q = out(reg) _,
            c = out(reg) _,
            t = out(reg) _,
            sub = const ROWS * SUB_BYTES,
            wb = const Q4_K_BYTES,
        );
    }
}

/// Unpacks `n` Q6_K blocks of one row (at `w[b * Q6_K_BYTES..]`) into
/// their 6-bit values (`ql` nibble | 2 bits of `qh` << 4) in the order of
/// the activation quants: sub-block `4h + j` of half `h` from `ql[64h..]`
/// (`j` 0, 1: low nibbles of bytes `0..32`, `32..64`; `j` 2, 3: high
/// nibbles) and bits `2j..2j + 2` of `qh[32h..][..32]`; sub-block `s` of
/// block `b` goes to `out[(b * 8 + s) * ROWS * 32..][..32]`.
fn unpack_q6_k(_v: V, w: &[u8], n: usize, out: &mut [u8]) {
    assert!(n > 0 && w.len() >= n * Q6_K_BYTES);
    assert!(out.len() >= ((n * SUB - 1) * ROWS + 1) * SUB_BYTES);
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads its 192 quant
    // bytes (`ql`, `qh`) at `b * 210` and writes its 8 sub-blocks of 32
    // bytes as documented, inside the slices (checked above).
    unsafe {
        vasm!(
            [
                "li {t}, 32",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "1:",
                "mv {q}, {w}",
                "addi {h}, {w}, 128",
                "li {c}, 2",
                "2:",
                "vle8.v v2, ({q})",
                "addi {t}, {q}, 32",
                "vle8.v v4, ({t})",
                "vle8.v v6, ({h})",
                "vand.vi v8, v2, 15",
                "vand.vi v10, v6, 3",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "vse8.v v8, ({o})",
                "vand.vi v8, v4, 15",
                "vsrl.vi v10, v6, 2",
                "vand.vi v10, v10, 3",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "addi {t}, {o}, {sub}",
                "vse8.v v8, ({t})",
                "vsrl.vi v8, v2, 4",
                "vsrl.vi v10, v6, 4",
                "vand.vi v10, v10, 3",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "addi {t}, {o}, 2 * {sub}",
                "vse8.v v8, ({t})",
                "vsrl.vi v8, v4, 4",
                "vsrl.vi v10, v6, 6",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "addi {t}, {o}, 3 * {sub}",
                "vse8.v v8, ({t})",
                "addi {q}, {q}, 64",
                "addi {h}, {h}, 32",
                "addi {o}, {o}, 4 * {sub}",
                "addi {c}, {c}, -1",
                "bnez {c}, 2b",
                "addi {w}, {w}, {wb}",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
            ],
            w = inout(reg) w.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            q = out(reg) _,
            h = out(reg) _,
            c = out(reg) _,
            t = out(reg) _,
            sub = const ROWS * SUB_BYTES,
            wb = const Q6_K_BYTES,
        );
    }
}

/// A Q8_K block's `d` and its 16 block sums.
#[inline(always)]
fn q8_k(ab: &[u8]) -> (f32, [i32; 16]) {
    let ab: &[u8; Q8_K_BYTES] = ab.try_into().unwrap();
    let d = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
    let bs: [i32; 16] =
        core::array::from_fn(|i| i32::from(i16::from_le_bytes([ab[260 + 2 * i], ab[261 + 2 * i]])));
    (d, bs)
}

/// A Q4_K block's scales and mins (`get_scale_min_k4`).
#[inline(always)]
fn scales_mins(wb: &[u8]) -> ([u8; 8], [u8; 8]) {
    let packed: &[u8; 12] = wb[4..16].try_into().unwrap();
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = scale_min_k4(j, packed);
    }
    (sc, m)
}

/// Scratch space and accumulators of the K tiles, made once per matmul.
pub(crate) struct TilesK {
    /// The capability token.
    v: V,
    /// A chunk's unpacked values: sub-block `s` of block `b` of tile row
    /// `r` at `((b * 8 + s) * ROWS + r) * 32`.
    buf: [u8; CHUNK * SUB * ROWS * SUB_BYTES],
    /// The sub-block scales in the same order (Q4_K: one byte each; Q6_K:
    /// the two 16-value scales of each 32-value sub-block).
    sc: [u8; CHUNK * SUB * ROWS * 2],
    /// Q4_K: per block and row, the eight mins.
    mins: [[[u8; 8]; ROWS]; CHUNK],
    /// Per block and row, `d` of the weights (f32).
    dw: [[f32; ROWS]; CHUNK],
    /// Q4_K: per block and row, `dmin` of the weights (f32).
    dmin: [[f32; ROWS]; CHUNK],
    /// Per block and row, the current token's i32 lanes.
    lanes: [[[i32; 8]; ROWS]; CHUNK],
    /// Eight f32 lanes per (token, row).
    acc: [[[f32; 8]; ROWS]; TOKENS],
    /// Q4_K: the four `acc_m` per (token, row); repacked: `acc` and
    /// `acc_m` in the first two.
    accm: [[[f32; 4]; ROWS]; TOKENS],
}

impl TilesK {
    /// Fresh scratch space.
    pub(crate) fn new(v: V) -> Self {
        TilesK {
            v,
            buf: [0; CHUNK * SUB * ROWS * SUB_BYTES],
            sc: [0; CHUNK * SUB * ROWS * 2],
            mins: [[[0; 8]; ROWS]; CHUNK],
            dw: [[0.0; ROWS]; CHUNK],
            dmin: [[0.0; ROWS]; CHUNK],
            lanes: [[[0; 8]; ROWS]; CHUNK],
            acc: [[[0.0; 8]; ROWS]; TOKENS],
            accm: [[[0.0; 4]; ROWS]; TOKENS],
        }
    }

    /// Q4_K x Q8_K in plain rows (`ggml_vec_dot_q4_K_q8_K`: a tied
    /// embedding) for a tile.
    pub(crate) fn q4_k(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q4K>(w, a, out);
    }

    /// Q4_K x Q8_K in the repacked projection order
    /// (`ggml_gemv_q4_K_8x8_q8_K`) for a tile.
    pub(crate) fn q4_k_repacked(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q4K_REPACKED>(w, a, out);
    }

    /// Q6_K x Q8_K (`ggml_vec_dot_q6_K_q8_K`) for a tile.
    pub(crate) fn q6_k(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        self.tile::<Q6K>(w, a, out);
    }

    /// `out[t][r] = dot(w[r], a[t])` in format `K`, a chunk of blocks at
    /// a time.
    #[inline(always)]
    fn tile<const K: u8>(&mut self, w: &[&[u8]; ROWS], a: &[&[u8]], out: &mut [[f32; ROWS]]) {
        let wb = if K == Q6K { Q6_K_BYTES } else { Q4_K_BYTES };
        let nt = a.len();
        assert!(nt <= TOKENS && out.len() == nt);
        let nb = w[0].len() / wb;
        for t in 0..nt {
            self.acc[t] = [[0.0; 8]; ROWS];
            self.accm[t] = [[0.0; 4]; ROWS];
        }
        let v = self.v;
        let mut c0 = 0;
        while c0 < nb {
            let n = CHUNK.min(nb - c0);
            let wc: [&[u8]; ROWS] = core::array::from_fn(|r| &w[r][c0 * wb..(c0 + n) * wb]);
            for (r, wr) in wc.iter().enumerate() {
                let out = &mut self.buf[r * SUB_BYTES..];
                if K == Q6K {
                    unpack_q6_k(v, wr, n, out);
                } else {
                    unpack_q4_k(v, wr, n, out);
                }
                for (b, wb) in wr.chunks_exact(wb).enumerate() {
                    for s in 0..SUB {
                        let i = (b * SUB + s) * ROWS + r;
                        if K == Q6K {
                            self.sc[2 * i] = wb[192 + 2 * s];
                            self.sc[2 * i + 1] = wb[193 + 2 * s];
                        }
                    }
                    if K == Q6K {
                        self.dw[b][r] = f16_at(wb, 208);
                    } else {
                        let (sc, m) = scales_mins(wb);
                        for (s, &x) in sc.iter().enumerate() {
                            self.sc[(b * SUB + s) * ROWS + r] = x;
                        }
                        self.mins[b][r] = m;
                        self.dw[b][r] = f16_at(wb, 0);
                        self.dmin[b][r] = f16_at(wb, 2);
                    }
                }
            }
            for (t, at) in a.iter().enumerate() {
                let ac = &at[c0 * Q8_K_BYTES..(c0 + n) * Q8_K_BYTES];
                let lanes = &mut self.lanes[..n];
                if K == Q6K {
                    lanes_q6_k(v, &self.buf, &self.sc, ac, lanes);
                } else {
                    lanes_q4_k(v, &self.buf, &self.sc, ac, lanes);
                }
                for (b, ab) in ac.chunks_exact(Q8_K_BYTES).enumerate() {
                    let (da, bsums) = q8_k(ab);
                    for (r, wr) in wc.iter().enumerate() {
                        let lanes = &self.lanes[b][r];
                        let acc = &mut self.acc[t][r];
                        let accm = &mut self.accm[t][r];
                        match K {
                            Q4K => {
                                let d = da * self.dw[b][r];
                                let dmin = -da * self.dmin[b][r];
                                let m = &self.mins[b][r];
                                for (i, am) in accm.iter_mut().enumerate() {
                                    let t = i32::from(m[2 * i]) * (bsums[4 * i] + bsums[4 * i + 1])
                                        + i32::from(m[2 * i + 1]) * (bsums[4 * i + 2] + bsums[4 * i + 3]);
                                    *am = fmaf(dmin, t as f32, *am);
                                }
                                for (s, &x) in acc.iter_mut().zip(lanes) {
                                    *s = fmaf(d, x as f32, *s);
                                }
                            }
                            Q4K_REPACKED => {
                                let isum: i32 = lanes.iter().sum();
                                let mut imin = 0i32;
                                for (j, &mj) in self.mins[b][r].iter().enumerate() {
                                    imin += i32::from(mj) * (bsums[2 * j] + bsums[2 * j + 1]);
                                }
                                accm[0] = fmaf(isum as f32, self.dw[b][r] * da, accm[0]);
                                accm[1] = fmaf(imin as f32, self.dmin[b][r] * da, accm[1]);
                            }
                            _ => {
                                let d = da * self.dw[b][r];
                                let wb = &wr[b * Q6_K_BYTES..];
                                let sc = |j: usize| i32::from(wb[192 + j] as i8);
                                for (l, (s, &x)) in acc.iter_mut().zip(lanes).enumerate() {
                                    let off = bsums[2 * l] * sc(2 * l) + bsums[2 * l + 1] * sc(2 * l + 1);
                                    *s = fmaf(d, (x - (off << 5)) as f32, *s);
                                }
                            }
                        }
                    }
                }
            }
            c0 += n;
        }
        for (t, o) in out.iter_mut().enumerate() {
            for (r, o) in o.iter_mut().enumerate() {
                let m = &self.accm[t][r];
                *o = match K {
                    Q4K => hsum_float_8(&self.acc[t][r]) + ((m[0] + m[2]) + (m[1] + m[3])),
                    Q4K_REPACKED => m[0] - m[1],
                    _ => hsum_float_8(&self.acc[t][r]),
                };
            }
        }
    }
}

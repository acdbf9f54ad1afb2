//! Tiles of the 256-value block types: Q4_K (plain and repacked
//! projection order) and Q6_K, times Q8_K activations.
//!
//! A weight block is unpacked once per chunk into one byte per value (Q4_K
//! nibbles, Q6_K's 6-bit values before the offset of 32), in pairs of
//! 32-value sub-blocks, the tile's rows side by side; next to it go the
//! sub-block scales as one i16 per lane. For each token one asm loop then
//! computes, per block and row, the eight exact i32 lanes of the per-row
//! code, two sub-blocks per step: `vlseg4e8` with `vl = 16` splits 64
//! bytes into the lanes of both sub-blocks (lanes 0..8 and 8..16), i16
//! quads (`vwmulsu` / `vwmaccsu`, no overflow: `4 * 63 * 128`) meet their
//! scales in one `vwmacc.vv` (Q6_K's two 16-value scales per sub-block
//! are just different lanes), and each activation pair is loaded once for
//! the [`ROWS`] rows. At the end of a block the two halves add up (exact
//! integers). The few f32 steps per block and (row, token) then run in
//! scalar FMA exactly as in `ggml_vec_dot_q4_K_q8_K`,
//! `ggml_gemv_q4_K_8x8_q8_K` and `ggml_vec_dot_q6_K_q8_K`.

use phi_edge_portable::quant::act::Q8_K_BYTES;
use phi_edge_portable::quant::q4_k::{scale_min_k4, Q4_K_BYTES};
use phi_edge_portable::quant::q6_k::Q6_K_BYTES;

use super::{ROWS, TOKENS};
use crate::riscv64::rvv::{f16_at, fmaf, hsum_float_8, V};

/// Blocks per chunk: unpacked once per tile, then passed by every token.
const CHUNK: usize = 8;
/// Pairs of 32-value sub-blocks per block.
const PAIRS: usize = 4;
/// Bytes of one unpacked pair of sub-blocks.
const PAIR_BYTES: usize = 64;

/// [`TilesK::tile`]'s format: Q4_K in plain rows (a tied embedding).
const Q4K: u8 = 0;
/// Q4_K in the repacked projection order.
const Q4K_REPACKED: u8 = 1;
/// Q6_K.
const Q6K: u8 = 2;

/// One row's step in [`lanes_k`]: its pair of sub-blocks at `{w}`
/// (`v4..v7`) times the activation lanes in `v8..v11` as i16 quads
/// (`v12`), times the 16 i16 scales at `{sv}` (`v14`) into the lanes `$l`.
macro_rules! row_k {
    ($l:literal) => {
        concat!(
            "vsetivli zero, 16, e8, m1, ta, ma\n",
            "vlseg4e8.v v4, ({w})\n",
            "vwmulsu.vv v12, v8, v4\n",
            "vwmaccsu.vv v12, v9, v5\n",
            "vwmaccsu.vv v12, v10, v6\n",
            "vwmaccsu.vv v12, v11, v7\n",
            "vsetivli zero, 16, e16, m2, ta, ma\n",
            "vle16.v v14, ({sv})\n",
            "vwmacc.vv ",
            $l,
            ", v14, v12\n",
            "addi {w}, {w}, 64\n",
            "addi {sv}, {sv}, 32\n",
        )
    };
}

/// The end of a block in [`lanes_k`]: the lanes `$l` of both sub-blocks
/// added (lane `l` plus lane `l + 8`) and stored at `{o}`.
macro_rules! store_k {
    ($l:literal) => {
        concat!(
            "vslidedown.vi v0, ",
            $l,
            ", 8\n",
            "vadd.vv v0, v0, ",
            $l,
            "\n",
            "vse32.v v0, ({o})\n",
            "addi {o}, {o}, 32\n",
        )
    };
}

const _: () = assert!(ROWS == 4, "the asm loop holds four rows");

/// `lanes[b][r]` = the eight i32 lanes of row `r`'s block `b` times the
/// activation's block `b` at `a[b * Q8_K_BYTES..]`: pair `p` of the block
/// at `w[((b * 4 + p) * ROWS + r) * 64..]`, its 16 lane scales at
/// `sv[((b * 4 + p) * ROWS + r) * 16..]`. The lanes of each row live in
/// `v16`, `v20`, `v24`, `v28` (SEW 32, LMUL 4, `vl = 16`).
fn lanes_k(_v: V, w: &[u8], sv: &[i16], a: &[u8], lanes: &mut [[[i32; 8]; ROWS]]) {
    let n = lanes.len();
    assert!(n > 0 && a.len() >= n * Q8_K_BYTES);
    assert!(w.len() >= n * PAIRS * ROWS * PAIR_BYTES && sv.len() >= n * PAIRS * ROWS * 16);
    // SAFETY: `V` proves the CPU has V. The loop reads `n * 4 * ROWS`
    // pairs of `w` and their scales of `sv` in order, the 256 quants of
    // each of the `n` activation blocks (after their 4-byte `d`) and
    // writes `n * ROWS * 8` i32 of `lanes`, all inside the slices (checked
    // above).
    unsafe {
        vasm!(
            [
                "1:",
                "vsetivli zero, 16, e32, m4, ta, ma",
                "vmv.v.i v16, 0",
                "vmv.v.i v20, 0",
                "vmv.v.i v24, 0",
                "vmv.v.i v28, 0",
                "li {p}, 4",
                "2:",
                "vsetivli zero, 16, e8, m1, ta, ma",
                "vlseg4e8.v v8, ({a})",
                row_k!("v16"),
                row_k!("v20"),
                row_k!("v24"),
                row_k!("v28"),
                "addi {a}, {a}, 64",
                "addi {p}, {p}, -1",
                "bnez {p}, 2b",
                "vsetivli zero, 8, e32, m4, ta, ma",
                store_k!("v16"),
                store_k!("v20"),
                store_k!("v24"),
                store_k!("v28"),
                "addi {a}, {a}, {askip}",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b",
            ],
            w = inout(reg) w.as_ptr() => _,
            sv = inout(reg) sv.as_ptr() => _,
            a = inout(reg) a.as_ptr().add(4) => _,
            o = inout(reg) lanes.as_mut_ptr() => _,
            n = inout(reg) n => _,
            p = out(reg) _,
            askip = const Q8_K_BYTES - 256,
        );
    }
}

/// Unpacks `n` Q4_K blocks of one row (at `w[b * Q4_K_BYTES..]`): the low
/// nibbles of 32-byte chunk `c` are sub-block `2c`, the high ones
/// `2c + 1`, together pair `c`; pair `p` of block `b` goes to
/// `out[(b * 4 + p) * ROWS * 64..][..64]`.
fn unpack_q4_k(_v: V, w: &[u8], n: usize, out: &mut [u8]) {
    assert!(n > 0 && w.len() >= n * Q4_K_BYTES);
    assert!(out.len() >= ((n * PAIRS - 1) * ROWS + 1) * PAIR_BYTES);
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads its 128 quant
    // bytes at `b * 144 + 16` and writes its 4 pairs of 64 bytes as
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
                "addi {t}, {o}, 32",
                "vse8.v v6, ({t})",
                "addi {q}, {q}, 32",
                "addi {o}, {o}, {pair}",
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
            pair = const ROWS * PAIR_BYTES,
            wb = const Q4_K_BYTES,
        );
    }
}

/// Unpacks `n` Q6_K blocks of one row (at `w[b * Q6_K_BYTES..]`) into
/// their 6-bit values (`ql` nibble | 2 bits of `qh` << 4) in the order of
/// the activation quants: sub-block `4h + j` of half `h` from `ql[64h..]`
/// (`j` 0, 1: low nibbles of bytes `0..32`, `32..64`; `j` 2, 3: high
/// nibbles) and bits `2j..2j + 2` of `qh[32h..][..32]`; sub-blocks `2p`
/// and `2p + 1` are pair `p`, which goes to
/// `out[(b * 4 + p) * ROWS * 64..][..64]`.
fn unpack_q6_k(_v: V, w: &[u8], n: usize, out: &mut [u8]) {
    assert!(n > 0 && w.len() >= n * Q6_K_BYTES);
    assert!(out.len() >= ((n * PAIRS - 1) * ROWS + 1) * PAIR_BYTES);
    // SAFETY: `V` proves the CPU has V. Block `b < n` reads its 192 quant
    // bytes (`ql`, `qh`) at `b * 210` and writes its 4 pairs of 64 bytes
    // as documented, inside the slices (checked above).
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
                "addi {t}, {o}, 32",
                "vse8.v v8, ({t})",
                "vsrl.vi v8, v2, 4",
                "vsrl.vi v10, v6, 4",
                "vand.vi v10, v10, 3",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "addi {t}, {o}, {pair}",
                "vse8.v v8, ({t})",
                "vsrl.vi v8, v4, 4",
                "vsrl.vi v10, v6, 6",
                "vsll.vi v10, v10, 4",
                "vor.vv v8, v8, v10",
                "addi {t}, {o}, {pair} + 32",
                "vse8.v v8, ({t})",
                "addi {q}, {q}, 64",
                "addi {h}, {h}, 32",
                "addi {o}, {o}, 2 * {pair}",
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
            pair = const ROWS * PAIR_BYTES,
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
    /// A chunk's unpacked values: pair `p` of block `b` of tile row `r`
    /// at `((b * 4 + p) * ROWS + r) * 64`.
    buf: [u8; CHUNK * PAIRS * ROWS * PAIR_BYTES],
    /// The scale of each lane of each pair, in the same order, 16 apart
    /// (Q4_K: lanes 0..8 the first sub-block's, 8..16 the second's; Q6_K:
    /// a 16-value scale per four lanes).
    sv: [i16; CHUNK * PAIRS * ROWS * 16],
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
            buf: [0; CHUNK * PAIRS * ROWS * PAIR_BYTES],
            sv: [0; CHUNK * PAIRS * ROWS * 16],
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
                let out = &mut self.buf[r * PAIR_BYTES..];
                if K == Q6K {
                    unpack_q6_k(v, wr, n, out);
                } else {
                    unpack_q4_k(v, wr, n, out);
                }
                for (b, wb) in wr.chunks_exact(wb).enumerate() {
                    // Lane i of pair p: Q6_K's scale 4p + i / 4, Q4_K's
                    // sub-block scale 2p + i / 8.
                    let pairs = |sc: &dyn Fn(usize) -> i16, sv: &mut [i16]| {
                        for p in 0..PAIRS {
                            let o = ((b * PAIRS + p) * ROWS + r) * 16;
                            for (i, x) in sv[o..o + 16].iter_mut().enumerate() {
                                *x = sc(16 * p + i);
                            }
                        }
                    };
                    if K == Q6K {
                        pairs(&|i| i16::from(wb[192 + i / 4] as i8), &mut self.sv);
                        self.dw[b][r] = f16_at(wb, 208);
                    } else {
                        let (sc, m) = scales_mins(wb);
                        pairs(&|i| i16::from(sc[i / 8]), &mut self.sv);
                        self.mins[b][r] = m;
                        self.dw[b][r] = f16_at(wb, 0);
                        self.dmin[b][r] = f16_at(wb, 2);
                    }
                }
            }
            for (t, at) in a.iter().enumerate() {
                let ac = &at[c0 * Q8_K_BYTES..(c0 + n) * Q8_K_BYTES];
                let lanes = &mut self.lanes[..n];
                lanes_k(v, &self.buf, &self.sv, ac, lanes);
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

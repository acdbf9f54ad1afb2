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
//! integers) and each row takes its f32 step in the same loop: Q4_K and
//! Q6_K `acc[l] = fma(da * dw, lane[l], acc[l])` on eight lanes
//! (`vfmacc.vf`; Q6_K's lanes first lose their exact offset
//! `32 * (bs[2l] sc[2l] + bs[2l + 1] sc[2l + 1])`) and Q4_K's four min
//! terms `acc_m[i] = fma(-da * dmin, t[i], acc_m[i])` (`vl = 4`); the
//! repacked Q4_K computes its exact `isum` and `imin` (`vredsum`), whose
//! two scalar FMA chains follow in Rust. Every float step is the one of
//! `ggml_vec_dot_q4_K_q8_K`, `ggml_gemv_q4_K_8x8_q8_K` or
//! `ggml_vec_dot_q6_K_q8_K`, in the same order.

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

/// One row's step in [`blocks_k_fn!`]: its pair of sub-blocks at `{w}`
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

/// The eight lanes of row `$l` at the end of a block: lane `l` plus lane
/// `l + 8` (the pair's two sub-blocks, exact), into `v0` (SEW 32, LMUL 2).
macro_rules! halves_k {
    ($l:literal) => {
        concat!(
            "vsetivli zero, 8, e32, m4, ta, ma\n",
            "vslidedown.vi v0, ",
            $l,
            ", 8\n",
            "vadd.vv v0, v0, ",
            $l,
            "\n",
            "vsetivli zero, 8, e32, m2, ta, ma\n",
        )
    };
}

/// Row `$r`'s f32 step in [`blocks_k_fn!`]: `acc[$r][l] = fma(ds[$r],
/// lane[l], acc[$r][l])` (`vfmacc.vf` with `ds` at `{d}`, the
/// accumulators at `{acc}`).
macro_rules! fma_k {
    ($r:literal) => {
        concat!(
            "vfcvt.f.x.v v0, v0\n",
            "flw {f}, 4 * ",
            $r,
            "({d})\n",
            "addi {t}, {acc}, 32 * ",
            $r,
            "\n",
            "vle32.v v14, ({t})\n",
            "vfmacc.vf v14, {f}, v0\n",
            "vse32.v v14, ({t})\n",
        )
    };
}

/// Q4_K in plain rows, at the end of a block: [`fma_k!`] on the lanes,
/// then the four min terms `t[i] = m[2i] (bs[4i] + bs[4i + 1]) +
/// m[2i + 1] (bs[4i + 2] + bs[4i + 3])` (exact; the row's mins as i16 at
/// `{sp}`, the block sums at `{a}`) and `acc_m[$r][i] = fma(dmin, t[i],
/// acc_m[$r][i])` (`vfmacc.vf`, `vl = 4`, `dmin` at `{dm}`, `acc_m` at
/// `{am}`).
macro_rules! end_q4_k {
    ($r:literal, $l:literal) => {
        concat!(
            halves_k!($l),
            fma_k!($r),
            "vsetivli zero, 4, e16, mf2, ta, ma\n",
            "vlseg4e16.v v4, ({a})\n",
            "vadd.vv v4, v4, v5\n",
            "vadd.vv v6, v6, v7\n",
            "vlseg2e16.v v8, ({sp})\n",
            "vwmul.vv v12, v4, v8\n",
            "vwmacc.vv v12, v6, v9\n",
            "vsetivli zero, 4, e32, m1, ta, ma\n",
            "vfcvt.f.x.v v12, v12\n",
            "flw {f}, 4 * ",
            $r,
            "({dm})\n",
            "addi {t}, {am}, 16 * ",
            $r,
            "\n",
            "vle32.v v14, ({t})\n",
            "vfmacc.vf v14, {f}, v12\n",
            "vse32.v v14, ({t})\n",
            "addi {sp}, {sp}, 32\n",
        )
    };
}

/// Q4_K in the repacked order, at the end of a block: the lanes summed
/// (`vredsum`, exact) to `isum` at `{o}`, then `imin = sum_j m[j] *
/// (bs[2j] + bs[2j + 1])` (the row's eight mins as i16 at `{sp}`; the pair
/// sums fit i16: `32 * 128`) at `{o} + 4`.
macro_rules! end_q4_k_repacked {
    ($r:literal, $l:literal) => {
        concat!(
            halves_k!($l),
            "vmv.s.x v2, zero\n",
            "vredsum.vs v2, v0, v2\n",
            "vmv.x.s {t}, v2\n",
            "sw {t}, 0({o})\n",
            "vsetivli zero, 8, e16, m1, ta, ma\n",
            "vadd.vv v6, v4, v5\n",
            "vle16.v v7, ({sp})\n",
            "vwmul.vv v12, v6, v7\n",
            "vsetivli zero, 8, e32, m2, ta, ma\n",
            "vmv.s.x v2, zero\n",
            "vredsum.vs v2, v12, v2\n",
            "vmv.x.s {t}, v2\n",
            "sw {t}, 4({o})\n",
            "addi {o}, {o}, 8\n",
            "addi {sp}, {sp}, 32\n",
        )
    };
}

/// Q6_K at the end of a block: the offset of lane `l`,
/// `32 * (bs[2l] sc[2l] + bs[2l + 1] sc[2l + 1])` (block sums in `v4`,
/// `v5` even / odd; the row's 16 scales as i16 at `{sp}`), subtracted
/// from the lane, then [`fma_k!`].
macro_rules! end_q6_k {
    ($r:literal, $l:literal) => {
        concat!(
            "vsetivli zero, 8, e16, m1, ta, ma\n",
            "vlseg2e16.v v6, ({sp})\n",
            "vwmul.vv v12, v4, v6\n",
            "vwmacc.vv v12, v5, v7\n",
            "addi {sp}, {sp}, 32\n",
            halves_k!($l),
            "vsll.vi v12, v12, 5\n",
            "vsub.vv v0, v0, v12\n",
            fma_k!($r),
        )
    };
}

const _: () = assert!(ROWS == 4, "the asm loop holds four rows");

/// Per block `b < ds.len()` of one token: the eight i32 lanes of each
/// row `r` times the activation's block `b` at `a[b * Q8_K_BYTES..]`
/// (pair `p` of the row's block at `w[((b * 4 + p) * ROWS + r) * 64..]`,
/// its 16 lane scales at `sv[((b * 4 + p) * ROWS + r) * 16..]`; the lanes
/// of each row live in `v16`, `v20`, `v24`, `v28`, SEW 32, LMUL 4,
/// `vl = 16`), then the format's end of block `$end` per row, with
/// `ds[b][r]` at `{d}`, the row's f32 lanes `acc[r]` at `{acc}`, Q4_K's
/// `dmin[b][r]` at `{dm}` and four `acc_m[r]` at `{am}`, the
/// block's sums in `v4`, `v5` (even / odd), Q6_K's i16 scales or Q4_K's
/// i16 mins `sp[b][r]` at `{sp}` and Q4_K repacked's `isum[b][r]`,
/// `imin` to `{o}`.
macro_rules! blocks_k_fn {
    ($name:ident, $end:ident) => {
        #[allow(clippy::too_many_arguments)]
        fn $name(
            _v: V,
            w: &[u8],
            sv: &[i16],
            a: &[u8],
            ds: &[[f32; ROWS]],
            acc: &mut [[f32; 8]; ROWS],
            dm: &[[f32; ROWS]],
            am: &mut [[f32; 4]; ROWS],
            sp: &[[[i16; 16]; ROWS]],
            isum: &mut [[[i32; 2]; ROWS]],
        ) {
            let n = ds.len();
            assert!(n > 0 && a.len() >= n * Q8_K_BYTES);
            assert!(w.len() >= n * PAIRS * ROWS * PAIR_BYTES && sv.len() >= n * PAIRS * ROWS * 16);
            assert!(sp.len() >= n && isum.len() >= n && dm.len() >= n);
            // SAFETY: `V` proves the CPU has V. The loop reads `n * 4 *
            // ROWS` pairs of `w` and their scales of `sv` in order, the
            // quants and block sums of each of the `n` activation blocks
            // (after their 4-byte `d`), `ds[..n]`, `dm[..n]` and `sp[..n]`,
            // reads and writes `acc` (128 bytes) and `am` (64 bytes) and
            // writes `isum[..n]`, all inside the slices (checked above). The comment line names the operands
            // some formats' ends leave unused.
            unsafe {
                vasm!(
                    [
                        "# {o} {d} {acc} {sp} {f} {dm} {am}",
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
                        // `{a}` is at the block sums now.
                        "vsetivli zero, 8, e16, m1, ta, ma",
                        "vlseg2e16.v v4, ({a})",
                        $end!("0", "v16"),
                        $end!("1", "v20"),
                        $end!("2", "v24"),
                        $end!("3", "v28"),
                        "addi {d}, {d}, 16",
                        "addi {dm}, {dm}, 16",
                        "addi {a}, {a}, {askip}",
                        "addi {n}, {n}, -1",
                        "bnez {n}, 1b",
                    ],
                    w = inout(reg) w.as_ptr() => _,
                    sv = inout(reg) sv.as_ptr() => _,
                    a = inout(reg) a.as_ptr().add(4) => _,
                    d = inout(reg) ds.as_ptr() => _,
                    acc = in(reg) acc.as_mut_ptr(),
                    sp = inout(reg) sp.as_ptr() => _,
                    dm = inout(reg) dm.as_ptr() => _,
                    am = in(reg) am.as_mut_ptr(),
                    o = inout(reg) isum.as_mut_ptr() => _,
                    n = inout(reg) n => _,
                    p = out(reg) _,
                    t = out(reg) _,
                    f = out(freg) _,
                    askip = const Q8_K_BYTES - 256,
                );
            }
        }
    };
}

blocks_k_fn!(blocks_q4_k, end_q4_k);
blocks_k_fn!(blocks_q4_k_repacked, end_q4_k_repacked);
blocks_k_fn!(blocks_q6_k, end_q6_k);

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

/// A Q8_K block's `d`.
#[inline(always)]
fn q8_k_d(ab: &[u8]) -> f32 {
    f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]])
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
    /// Per block and row, `d` of the weights (f32).
    dw: [[f32; ROWS]; CHUNK],
    /// Q4_K: per block and row, `dmin` of the weights (f32).
    dmin: [[f32; ROWS]; CHUNK],
    /// Per block and row, Q6_K's 16 scales or Q4_K's 8 mins as i16.
    sp: [[[i16; 16]; ROWS]; CHUNK],
    /// Per block and row, `da * dw` of the current token.
    ds: [[f32; ROWS]; CHUNK],
    /// Q4_K plain: per block and row, `-da * dmin` of the current token.
    dm: [[f32; ROWS]; CHUNK],
    /// Q4_K repacked: per block and row, the current token's `isum` and
    /// `imin`.
    isum: [[[i32; 2]; ROWS]; CHUNK],
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
            dw: [[0.0; ROWS]; CHUNK],
            dmin: [[0.0; ROWS]; CHUNK],
            sp: [[[0; 16]; ROWS]; CHUNK],
            ds: [[0.0; ROWS]; CHUNK],
            dm: [[0.0; ROWS]; CHUNK],
            isum: [[[0; 2]; ROWS]; CHUNK],
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
    pub(crate) fn q4_k_repacked(
        &mut self,
        w: &[&[u8]; ROWS],
        a: &[&[u8]],
        out: &mut [[f32; ROWS]],
    ) {
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
                        for (j, x) in self.sp[b][r].iter_mut().enumerate() {
                            *x = i16::from(wb[192 + j] as i8);
                        }
                        self.dw[b][r] = f16_at(wb, 208);
                    } else {
                        let (sc, m) = scales_mins(wb);
                        pairs(&|i| i16::from(sc[i / 8]), &mut self.sv);
                        for (x, &mj) in self.sp[b][r].iter_mut().zip(&m) {
                            *x = i16::from(mj);
                        }
                        self.dw[b][r] = f16_at(wb, 0);
                        self.dmin[b][r] = f16_at(wb, 2);
                    }
                }
            }
            for (t, at) in a.iter().enumerate() {
                let ac = &at[c0 * Q8_K_BYTES..(c0 + n) * Q8_K_BYTES];
                for (b, ab) in ac.chunks_exact(Q8_K_BYTES).enumerate() {
                    let da = q8_k_d(ab);
                    for r in 0..ROWS {
                        self.ds[b][r] = da * self.dw[b][r];
                        if K == Q4K {
                            self.dm[b][r] = -da * self.dmin[b][r];
                        }
                    }
                }
                let (ds, dm, sp, isum) = (
                    &self.ds[..n],
                    &self.dm[..n],
                    &self.sp[..n],
                    &mut self.isum[..n],
                );
                let (acc, am) = (&mut self.acc[t], &mut self.accm[t]);
                let (w, sv) = (&self.buf[..], &self.sv[..]);
                match K {
                    Q4K => blocks_q4_k(v, w, sv, ac, ds, acc, dm, am, sp, isum),
                    Q4K_REPACKED => blocks_q4_k_repacked(v, w, sv, ac, ds, acc, dm, am, sp, isum),
                    _ => blocks_q6_k(v, w, sv, ac, ds, acc, dm, am, sp, isum),
                }
                // The repacked order's two chains, in scalar.
                if K == Q4K_REPACKED {
                    for (b, ab) in ac.chunks_exact(Q8_K_BYTES).enumerate() {
                        let da = q8_k_d(ab);
                        for r in 0..ROWS {
                            let accm = &mut self.accm[t][r];
                            let [isum, imin] = self.isum[b][r];
                            accm[0] = fmaf(isum as f32, self.dw[b][r] * da, accm[0]);
                            accm[1] = fmaf(imin as f32, self.dmin[b][r] * da, accm[1]);
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

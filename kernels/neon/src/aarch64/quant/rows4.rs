//! Decode's hot loops in assembly: four weight rows times one token, for
//! the Q4_1 tiles of both sets and the Q8_0 tiles of `neon+dotprod` (the
//! layers and the tied output of SmolLM2-class models).
//!
//! They run exactly the float operations of the generic tiles
//! ([`Q4_1`](super::Q4_1), [`Q8_0`](super::Q8_0)) with `R = 4, T = 1`, in
//! the same order, on the same values; what differs is only how the
//! operands are fetched. LLVM's code for the generic tiles spends about a
//! quarter of its instructions on per-row address arithmetic, bounds
//! checks and one 16-bit load per f16 scale; here every row pointer walks
//! its blocks by post-indexed loads, a row's two Q4_1 scales arrive in one
//! 32-bit lane load, and the four rows' scales convert with one `fcvtl` /
//! `fcvtl2` pair, split into `dw` and `mw` by `uzp1` / `uzp2`.

use core::arch::aarch64::*;
use core::arch::asm;

use phi_edge_portable::quant::act::{Q8_0_BYTES, Q8_1_BYTES};
use phi_edge_portable::quant::q4_1::Q4_1_BYTES;

use super::super::simd::hsum_float_8;
use super::first;

/// Panics unless each row of `w` holds `nb` blocks of `wb` bytes and `a`
/// `nb` blocks of `ab` bytes.
fn check(w: &[&[u8]; 4], a: &[u8], nb: usize, wb: usize, ab: usize) {
    assert!(
        w.iter().all(|w| w.len() / wb >= nb) && a.len() / ab >= nb,
        "a row holds fewer than {nb} blocks"
    );
}

/// The exact lane sums of one Q4_1 row's block with `sdot`: `v$t0` gets
/// lanes 0..4 of `v$lo` (low nibbles) times `v18` (quants 0..16), `v$t1`
/// those of `v$hi` times `v19`; `$t2` is unused.
macro_rules! sums_sdot {
    ($lo:literal, $hi:literal, $t0:literal, $t1:literal, $t2:literal) => {
        concat!(
            "movi v",
            $t0,
            ".2d, #0\n",
            "movi v",
            $t1,
            ".2d, #0\n",
            "sdot v",
            $t0,
            ".4s, v",
            $lo,
            ".16b, v18.16b\n",
            "sdot v",
            $t1,
            ".4s, v",
            $hi,
            ".16b, v19.16b\n",
        )
    };
}

/// The same lane sums without `sdot` (as `simd::dot4_small`): i16
/// products (`smull`, `smull2`; a nibble times a quant fits), pairwise
/// sums (`addp`, at most 2 * 15 * 128), then pairs of those widened
/// (`saddlp`): lane `l` is products `4l..4l + 4`. `v$t2` is scratch.
macro_rules! sums_widening {
    ($lo:literal, $hi:literal, $t0:literal, $t1:literal, $t2:literal) => {
        concat!(
            "smull v",
            $t0,
            ".8h, v",
            $lo,
            ".8b, v18.8b\n",
            "smull2 v",
            $t2,
            ".8h, v",
            $lo,
            ".16b, v18.16b\n",
            "addp v",
            $t0,
            ".8h, v",
            $t0,
            ".8h, v",
            $t2,
            ".8h\n",
            "saddlp v",
            $t0,
            ".4s, v",
            $t0,
            ".8h\n",
            "smull v",
            $t1,
            ".8h, v",
            $hi,
            ".8b, v19.8b\n",
            "smull2 v",
            $t2,
            ".8h, v",
            $hi,
            ".16b, v19.16b\n",
            "addp v",
            $t1,
            ".8h, v",
            $t1,
            ".8h, v",
            $t2,
            ".8h\n",
            "saddlp v",
            $t1,
            ".4s, v",
            $t1,
            ".8h\n",
        )
    };
}

/// One Q4_1 row of the loop: its quants in `v$q` split into nibbles
/// (`v$q` low, `v$hi` high), their lane sums by `$sums` into `v$t0`,
/// `v$t1`, converted, and fused into the row's accumulators `v$acc0`,
/// `v$acc1` with lane `$lane` of `d` (`v26`).
macro_rules! q4_1_row {
    ($sums:ident, $q:literal, $hi:literal, $t0:literal, $t1:literal, $t2:literal,
     $acc0:literal, $acc1:literal, $lane:literal) => {
        concat!(
            "ushr v",
            $hi,
            ".16b, v",
            $q,
            ".16b, #4\n",
            "and v",
            $q,
            ".16b, v",
            $q,
            ".16b, v9.16b\n",
            $sums!($q, $hi, $t0, $t1, $t2),
            "scvtf v",
            $t0,
            ".4s, v",
            $t0,
            ".4s\n",
            "scvtf v",
            $t1,
            ".4s, v",
            $t1,
            ".4s\n",
            "fmla v",
            $acc0,
            ".4s, v",
            $t0,
            ".4s, v26.s[",
            $lane,
            "]\n",
            "fmla v",
            $acc1,
            ".4s, v",
            $t1,
            ".4s, v26.s[",
            $lane,
            "]\n",
        )
    };
}

/// `dot(w[r], a)` for four Q4_1 rows and one Q8_1 activation row of `nb`
/// blocks, the block's lane sums made by `$sums`: per block, lane `r` of
/// `dw * da`, then for each row `acc = fma(lanes, d, acc)` on its eight
/// f32 lanes and `summs += mw * sa` (lane `r` of a vector multiply and
/// add); the result is `hsum_float_8(acc) + summs`, as
/// [`Q4_1`](super::Q4_1)'s tile computes it.
macro_rules! q4_1_rows4 {
    ($sums:ident, $w:expr, $a:expr, $nb:expr) => {{
        let (w, a, nb): ([&[u8]; 4], &[u8], usize) = ($w, $a, $nb);
        check(&w, a, nb, Q4_1_BYTES, Q8_1_BYTES);
        if nb == 0 {
            return [0.0; 4];
        }
        let (a0, a1, a2, a3, a4, a5, a6, a7, summs): (
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
            float32x4_t,
        );
        // SAFETY: the loop reads `nb` blocks of 20 bytes from each row and
        // of 36 bytes from `a`, all within the slices (checked above,
        // `nb >= 1`); `sdot`, where used, as the caller guarantees. Every
        // vector register it writes is an output or clobbered; no stack,
        // flags clobbered (no `preserves_flags`).
        unsafe {
            asm!(
                ".arch_extension dotprod",
                "movi v0.2d, #0", "movi v1.2d, #0", "movi v2.2d, #0", "movi v3.2d, #0",
                "movi v4.2d, #0", "movi v5.2d, #0", "movi v6.2d, #0", "movi v7.2d, #0",
                "movi v8.2d, #0",
                "movi v9.16b, #0x0f",
                "2:",
                // (dw, mw) of row r in 32-bit lane r; the quants after them.
                "ldr s16, [{w0}], #4",
                "ld1 {{v16.s}}[1], [{w1}], #4",
                "ld1 {{v16.s}}[2], [{w2}], #4",
                "ld1 {{v16.s}}[3], [{w3}], #4",
                "ldr q20, [{w0}], #16",
                "ldr q21, [{w1}], #16",
                "ldr q22, [{w2}], #16",
                "ldr q23, [{w3}], #16",
                // (da, sa) and the 32 activation quants.
                "ldr s17, [{a}], #4",
                "ldp q18, q19, [{a}], #32",
                "fcvtl v24.4s, v16.4h",
                "fcvtl2 v25.4s, v16.8h",
                "fcvtl v17.4s, v17.4h",
                "uzp1 v26.4s, v24.4s, v25.4s",
                "uzp2 v27.4s, v24.4s, v25.4s",
                // d = dw * da; summs += mw * sa.
                "fmul v26.4s, v26.4s, v17.s[0]",
                "fmul v27.4s, v27.4s, v17.s[1]",
                "fadd v8.4s, v8.4s, v27.4s",
                q4_1_row!($sums, "20", "10", "11", "12", "13", "0", "1", "0"),
                q4_1_row!($sums, "21", "14", "15", "28", "29", "2", "3", "1"),
                q4_1_row!($sums, "22", "30", "31", "10", "11", "4", "5", "2"),
                q4_1_row!($sums, "23", "12", "13", "14", "15", "6", "7", "3"),
                "subs {n}, {n}, #1",
                "b.ne 2b",
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                a = inout(reg) a.as_ptr() => _,
                n = inout(reg) nb => _,
                out("v0") a0, out("v1") a1, out("v2") a2, out("v3") a3,
                out("v4") a4, out("v5") a5, out("v6") a6, out("v7") a7,
                out("v8") summs,
                out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _,
                out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _,
                out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _,
                out("v29") _, out("v30") _, out("v31") _,
                options(readonly, nostack)
            );
        }
        let s = first::<4>(summs);
        [
            hsum_float_8(a0, a1) + s[0],
            hsum_float_8(a2, a3) + s[1],
            hsum_float_8(a4, a5) + s[2],
            hsum_float_8(a6, a7) + s[3],
        ]
    }};
}

/// Four Q4_1 rows times one Q8_1 row with `sdot` (see [`q4_1_rows4`]).
///
/// # Safety
/// The CPU has NEON and the dot product extension.
#[target_feature(enable = "neon")]
pub(super) unsafe fn q4_1_sdot(w: [&[u8]; 4], a: &[u8], nb: usize) -> [f32; 4] {
    q4_1_rows4!(sums_sdot, w, a, nb)
}

/// Four Q4_1 rows times one Q8_1 row with baseline NEON (see
/// [`q4_1_rows4`]).
#[target_feature(enable = "neon")]
pub(super) fn q4_1_widening(w: [&[u8]; 4], a: &[u8], nb: usize) -> [f32; 4] {
    q4_1_rows4!(sums_widening, w, a, nb)
}

/// `dot(w[r], a)` for four Q8_0 rows and one Q8_0 activation row of `nb`
/// blocks: per block, lane `r` of `dw * da`, then for each row
/// `acc = fma(lanes, d, acc)` on its eight f32 lanes (quants times quants
/// by `sdot`, exact); the result is `hsum_float_8(acc)`, as
/// [`Q8_0`](super::Q8_0)'s tile computes it.
///
/// # Safety
/// The CPU has NEON and the dot product extension.
#[target_feature(enable = "neon")]
pub(super) unsafe fn q8_0(w: [&[u8]; 4], a: &[u8], nb: usize) -> [f32; 4] {
    check(&w, a, nb, Q8_0_BYTES, Q8_0_BYTES);
    if nb == 0 {
        return [0.0; 4];
    }
    let (a0, a1, a2, a3, a4, a5, a6, a7): (
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
        float32x4_t,
    );
    // SAFETY: the loop reads `nb` blocks of 34 bytes from each row and
    // from `a`, all within the slices (checked above, `nb >= 1`); `sdot`
    // as the caller guarantees. Every vector register it writes is an
    // output or clobbered; no stack, flags clobbered.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "movi v0.2d, #0", "movi v1.2d, #0", "movi v2.2d, #0", "movi v3.2d, #0",
            "movi v4.2d, #0", "movi v5.2d, #0", "movi v6.2d, #0", "movi v7.2d, #0",
            "2:",
            // dw of row r in 16-bit lane r; the quants after it.
            "ldr h16, [{w0}], #2",
            "ld1 {{v16.h}}[1], [{w1}], #2",
            "ld1 {{v16.h}}[2], [{w2}], #2",
            "ld1 {{v16.h}}[3], [{w3}], #2",
            "ldp q20, q21, [{w0}], #32",
            "ldp q22, q23, [{w1}], #32",
            "ldp q24, q25, [{w2}], #32",
            "ldp q26, q27, [{w3}], #32",
            "ldr h17, [{a}], #2",
            "ldp q18, q19, [{a}], #32",
            "fcvtl v16.4s, v16.4h",
            "fcvtl v17.4s, v17.4h",
            // d = dw * da.
            "fmul v16.4s, v16.4s, v17.s[0]",
            // Row 0.
            "movi v9.2d, #0",
            "movi v10.2d, #0",
            "sdot v9.4s, v20.16b, v18.16b",
            "sdot v10.4s, v21.16b, v19.16b",
            "scvtf v9.4s, v9.4s",
            "scvtf v10.4s, v10.4s",
            "fmla v0.4s, v9.4s, v16.s[0]",
            "fmla v1.4s, v10.4s, v16.s[0]",
            // Row 1.
            "movi v11.2d, #0",
            "movi v12.2d, #0",
            "sdot v11.4s, v22.16b, v18.16b",
            "sdot v12.4s, v23.16b, v19.16b",
            "scvtf v11.4s, v11.4s",
            "scvtf v12.4s, v12.4s",
            "fmla v2.4s, v11.4s, v16.s[1]",
            "fmla v3.4s, v12.4s, v16.s[1]",
            // Row 2.
            "movi v13.2d, #0",
            "movi v14.2d, #0",
            "sdot v13.4s, v24.16b, v18.16b",
            "sdot v14.4s, v25.16b, v19.16b",
            "scvtf v13.4s, v13.4s",
            "scvtf v14.4s, v14.4s",
            "fmla v4.4s, v13.4s, v16.s[2]",
            "fmla v5.4s, v14.4s, v16.s[2]",
            // Row 3.
            "movi v15.2d, #0",
            "movi v28.2d, #0",
            "sdot v15.4s, v26.16b, v18.16b",
            "sdot v28.4s, v27.16b, v19.16b",
            "scvtf v15.4s, v15.4s",
            "scvtf v28.4s, v28.4s",
            "fmla v6.4s, v15.4s, v16.s[3]",
            "fmla v7.4s, v28.4s, v16.s[3]",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            w0 = inout(reg) w[0].as_ptr() => _,
            w1 = inout(reg) w[1].as_ptr() => _,
            w2 = inout(reg) w[2].as_ptr() => _,
            w3 = inout(reg) w[3].as_ptr() => _,
            a = inout(reg) a.as_ptr() => _,
            n = inout(reg) nb => _,
            out("v0") a0, out("v1") a1, out("v2") a2, out("v3") a3,
            out("v4") a4, out("v5") a5, out("v6") a6, out("v7") a7,
            out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _,
            out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _,
            out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _,
            options(readonly, nostack)
        );
    }
    [
        hsum_float_8(a0, a1),
        hsum_float_8(a2, a3),
        hsum_float_8(a4, a5),
        hsum_float_8(a6, a7),
    ]
}

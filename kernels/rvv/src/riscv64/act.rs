//! Activation quantizers, byte-identical to the portable set: Q8_0 / Q8_1
//! with the x86 build's `127 / amax` and ties to even (`vfcvt.x.f.v` under
//! the default rounding mode), Q8_K as `quantize_row_q8_K_ref`, and f32 /
//! f16 / bf16 rows.
//!
//! RISC-V `fmax` ignores NaN where ggml's `MAX` loop does not, so a block
//! holding a NaN or an infinity goes to the portable quantizer, whose loop
//! order then decides (as the NEON set does).

use phi_edge::ActFormat;
use phi_edge_portable::convert::act_out;
use phi_edge_portable::float::quantize_row_f32;
use phi_edge_portable::quant::act::{
    q8_k_iscale, quantize_row_q8_0_with, quantize_row_q8_1_with, Q8_K_BYTES,
};

use super::float::{f32_to_bf16_bytes, f32_to_f16_bytes};
use super::rvv::V;

/// Converts `x` to `fmt` in the first `fmt.row_bytes(x.len())` bytes of
/// `out` (see `Kernels::quantize_act`).
pub(crate) fn quantize_act(v: V, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
    let out = act_out(fmt, x.len(), out);
    match fmt {
        ActFormat::F32 => quantize_row_f32(x, out),
        ActFormat::F16 => f32_to_f16_bytes(v, x, out),
        ActFormat::BF16 => f32_to_bf16_bytes(v, x, out),
        ActFormat::Q8_0 => quantize_row_q8_0_with(x, out, |xb, qs| q8_block(v, xb, qs)),
        ActFormat::Q8_1 => quantize_row_q8_1_with(x, out, |xb, qs| q8_block(v, xb, qs)),
        ActFormat::Q8K => {
            for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
                q8_k_block(v, xb.try_into().unwrap(), ob.try_into().unwrap());
            }
        }
    }
}

/// The largest `|x|` of `x` and whether any value is NaN (strip-mined
/// `vfredmax`; `vmfne` counts NaNs, which `vfredmax` would skip).
fn amax_nan(_v: V, x: &[f32]) -> (f32, bool) {
    let amax: f32;
    let nans: usize;
    if x.is_empty() {
        return (0.0, false);
    }
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads
    // the next `vl` values of `x`; the loop ends after `x.len()`.
    unsafe {
        vasm!(
            [
                "vsetivli zero, 1, e32, m1, ta, ma",
                "vmv.s.x v24, zero",
                "li {nans}, 0",
                "1:",
                "vsetvli {vl}, {n}, e32, m8, ta, ma",
                "vle32.v v8, ({x})",
                "vmfne.vv v0, v8, v8",
                "vcpop.m {t}, v0",
                "add {nans}, {nans}, {t}",
                "vfabs.v v8, v8",
                "vfredmax.vs v24, v8, v24",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {x}, {x}, {t}",
                "bnez {n}, 1b",
                "vfmv.f.s {amax}, v24",
            ],
            x = inout(reg) x.as_ptr() => _,
            n = inout(reg) x.len() => _,
            vl = out(reg) _,
            t = out(reg) _,
            nans = out(reg) nans,
            amax = out(freg) amax,
        );
    }
    (amax, nans != 0)
}

/// One Q8_0 / Q8_1 block as the x86 build: `d = amax / 127`,
/// `q = rint(x * (127 / amax))`; returns `d` and the sum of the quants,
/// or `None` (writing nothing) if a value is NaN or infinite, or `amax` so
/// small that `127 / amax` overflows (products would be infinite or NaN,
/// which the portable quantizer's saturating casts decide). Quants that
/// round past 127 saturate (`vnclip`), as the portable `as i8` does.
fn q8_block(v: V, x: &[f32; 32], qs: &mut [u8; 32]) -> Option<(f32, i32)> {
    let (amax, nan) = amax_nan(v, x);
    if nan || !amax.is_finite() {
        return None;
    }
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    if !id.is_finite() {
        return None;
    }
    let sum: isize;
    // SAFETY: `V` proves the CPU has V. Reads the 32 values of `x`
    // (`vl = 32` at SEW 32, LMUL 8, which holds 32 at VLEN 128) and writes
    // the 32 bytes of `qs`.
    unsafe {
        vasm!(
            [
                "vsetvli zero, {n32}, e32, m8, ta, ma",
                "vle32.v v8, ({x})",
                "vfmul.vf v8, v8, {id}",
                "vfcvt.x.f.v v8, v8",
                "vsetvli zero, {n32}, e16, m4, ta, ma",
                "vnclip.wi v16, v8, 0",
                "vmv.s.x v24, zero",
                "vsetvli zero, {n32}, e8, m2, ta, ma",
                "vnclip.wi v20, v16, 0",
                "vse8.v v20, ({q})",
                "vwredsum.vs v24, v20, v24",
                "vsetivli zero, 1, e16, m1, ta, ma",
                "vmv.x.s {sum}, v24",
            ],
            x = in(reg) x.as_ptr(),
            q = in(reg) qs.as_mut_ptr(),
            id = in(freg) id,
            n32 = in(reg) 32usize,
            sum = out(reg) sum,
        );
    }
    Some((d, sum as i32))
}

/// One Q8_K block (`quantize_row_q8_K_ref`): `max` the value of largest
/// magnitude (the first on ties), `q = min(127, nearest_int(-127 / max *
/// x))`, sums of 16.
fn q8_k_block(v: V, x: &[f32; 256], ob: &mut [u8; Q8_K_BYTES]) {
    let (amax, nan) = amax_nan(v, x);
    let Some(iscale) = q8_k_iscale(x, if nan { f32::NAN } else { amax }, ob) else {
        return;
    };
    let (head, bsums) = ob.split_at_mut(4 + 256);
    // SAFETY: `V` proves the CPU has V. Sub-block `j < 16` reads
    // `x[16j..][..16]` (`vl = 16`, SEW 32, LMUL 4: 16 at VLEN 128) and
    // writes `head[4 + 16j..][..16]` and `bsums[2j..][..2]`, inside the
    // 260 and 32 bytes of the two halves.
    unsafe {
        vasm!(
            [
                "li {c}, 16",
                "1:",
                "vsetivli zero, 16, e32, m4, ta, ma",
                "vle32.v v8, ({x})",
                "vfmul.vf v8, v8, {is}",
                "vfcvt.x.f.v v8, v8",
                "vmin.vx v8, v8, {c127}",
                "vsetivli zero, 16, e16, m2, ta, ma",
                "vnsrl.wi v12, v8, 0",
                "vmv.s.x v16, zero",
                "vsetivli zero, 16, e8, m1, ta, ma",
                "vnsrl.wi v14, v12, 0",
                "vse8.v v14, ({q})",
                "vwredsum.vs v16, v14, v16",
                "vsetivli zero, 1, e16, m1, ta, ma",
                "vmv.x.s {t}, v16",
                "sb {t}, 0({b})",
                "srli {t}, {t}, 8",
                "sb {t}, 1({b})",
                "addi {x}, {x}, 64",
                "addi {q}, {q}, 16",
                "addi {b}, {b}, 2",
                "addi {c}, {c}, -1",
                "bnez {c}, 1b",
            ],
            x = inout(reg) x.as_ptr() => _,
            q = inout(reg) head.as_mut_ptr().add(4) => _,
            b = inout(reg) bsums.as_mut_ptr() => _,
            is = in(freg) iscale,
            c127 = in(reg) 127usize,
            c = out(reg) _,
            t = out(reg) _,
        );
    }
    head[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

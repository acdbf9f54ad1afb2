//! `rms_norm`, `rope` and `swiglu` (with ggml's vectorized `expf`),
//! strip-mined with `vsetvli` and bit-identical to the portable set.

use phi_edge_portable::activation::check_swiglu;
use phi_edge_portable::norm::check_rms_norm;
use phi_edge_portable::rope::check_rope;

use super::rvv::V;

/// RMSNorm: squares in f32, summed in f64 in element order (`vfwredosum`,
/// the ordered widening reduction, chained across strips), then
/// `(x * scale) * w`.
pub(crate) fn rms_norm(_v: V, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    check_rms_norm(x, w, out);
    let n = x.len();
    if n == 0 {
        // The oracle's 0 / 0: NaN scale, nothing to write.
        return;
    }
    let sum: f64;
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads the
    // next `vl` values of `x`; the loop ends after `n = x.len()`.
    unsafe {
        vasm!(
            [
                "vsetivli zero, 1, e64, m1, ta, ma",
                "vmv.v.i v8, 0",
                "1:",
                "vsetvli {vl}, {n}, e32, m4, ta, ma",
                "vle32.v v16, ({x})",
                "vfmul.vv v16, v16, v16",
                "vfwredosum.vs v8, v16, v8",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {x}, {x}, {t}",
                "bnez {n}, 1b",
                "vsetivli zero, 1, e64, m1, ta, ma",
                "vfmv.f.s {sum}, v8",
            ],
            x = inout(reg) x.as_ptr() => _,
            n = inout(reg) n => _,
            vl = out(reg) _,
            t = out(reg) _,
            sum = out(freg) sum,
        );
    }
    let mean = (sum / n as f64) as f32;
    let scale = 1.0 / libm::sqrtf(mean + eps);
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads the
    // same range of `x` and `w` and writes it in `out`; all three hold
    // `n` values (checked).
    unsafe {
        vasm!(
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m8, ta, ma",
                "vle32.v v8, ({x})",
                "vle32.v v16, ({w})",
                "vfmul.vf v8, v8, {s}",
                "vfmul.vv v8, v8, v16",
                "vse32.v v8, ({o})",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {x}, {x}, {t}",
                "add {w}, {w}, {t}",
                "add {o}, {o}, {t}",
                "bnez {n}, 1b",
            ],
            x = inout(reg) x.as_ptr() => _,
            w = inout(reg) w.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            s = in(freg) scale,
            vl = out(reg) _,
            t = out(reg) _,
        );
    }
}

/// Rotates one head in place (see `Kernels::rope`). Adjacent pairs
/// (`neox = false`) are split with `vlseg2e32` and fuse the first product
/// of each output as the oracle build's `vfmaddsub` does, except a last
/// odd pair; NEOX pairs are not fused.
pub(crate) fn rope(_v: V, x: &mut [f32], cs: &[f32], neox: bool) {
    let n_rot = check_rope(x, cs);
    let half = n_rot / 2;
    if neox {
        if half == 0 {
            return;
        }
        let (first, second) = x[..n_rot].split_at_mut(half);
        // SAFETY: `V` proves the CPU has V. Each strip of `vl` pairs reads
        // and writes the same `vl` values of `first` and `second` (both
        // `half` long) and reads `2 vl` values of `cs` (`2 half` long).
        unsafe {
            vasm!(
                [
                    "1:",
                    "vsetvli {vl}, {n}, e32, m2, ta, ma",
                    "vle32.v v4, ({a})",
                    "vle32.v v6, ({b})",
                    "vlseg2e32.v v8, ({cs})",
                    "vfmul.vv v12, v4, v8",
                    "vfmul.vv v14, v6, v10",
                    "vfsub.vv v12, v12, v14",
                    "vfmul.vv v16, v4, v10",
                    "vfmul.vv v18, v6, v8",
                    "vfadd.vv v16, v16, v18",
                    "vse32.v v12, ({a})",
                    "vse32.v v16, ({b})",
                    "sub {n}, {n}, {vl}",
                    "slli {t}, {vl}, 2",
                    "add {a}, {a}, {t}",
                    "add {b}, {b}, {t}",
                    "slli {t}, {vl}, 3",
                    "add {cs}, {cs}, {t}",
                    "bnez {n}, 1b",
                ],
                a = inout(reg) first.as_mut_ptr() => _,
                b = inout(reg) second.as_mut_ptr() => _,
                cs = inout(reg) cs.as_ptr() => _,
                n = inout(reg) half => _,
                vl = out(reg) _,
                t = out(reg) _,
            );
        }
    } else {
        let fused = half & !1;
        if fused > 0 {
            // SAFETY: `V` proves the CPU has V. Each strip of `vl` pairs
            // reads and writes `2 vl` values of `x` and reads `2 vl` of
            // `cs`; `fused` pairs in all, `2 fused <= n_rot <= x.len()`.
            unsafe {
                vasm!(
                    [
                        "1:",
                        "vsetvli {vl}, {n}, e32, m2, ta, ma",
                        "vlseg2e32.v v4, ({x})",
                        "vlseg2e32.v v8, ({cs})",
                        "vfmul.vv v12, v6, v10",
                        "vfmsac.vv v12, v4, v8",
                        "vfmul.vv v14, v6, v8",
                        "vfmacc.vv v14, v4, v10",
                        "vsseg2e32.v v12, ({x})",
                        "sub {n}, {n}, {vl}",
                        "slli {t}, {vl}, 3",
                        "add {x}, {x}, {t}",
                        "add {cs}, {cs}, {t}",
                        "bnez {n}, 1b",
                    ],
                    x = inout(reg) x.as_mut_ptr() => _,
                    cs = inout(reg) cs.as_ptr() => _,
                    n = inout(reg) fused => _,
                    vl = out(reg) _,
                    t = out(reg) _,
                );
            }
        }
        for i in fused..half {
            let (c, s) = (cs[2 * i], cs[2 * i + 1]);
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            (x[2 * i], x[2 * i + 1]) = (a * c - b * s, a * s + b * c);
        }
    }
}

/// `out = silu(gate) * up` as the oracle: ggml's `v_expf` on whole groups
/// of 8 (strip-mined; lanes are independent), the portable scalar `silu`
/// on the last `len % 8`.
pub(crate) fn swiglu(_v: V, gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_swiglu(gate, up, out);
    let nv = gate.len() & !7;
    if nv > 0 {
        // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads
        // the same range of `gate` and `up` and writes it in `out`; `nv`
        // values in all, no more than each slice holds.
        unsafe {
            expf_asm!(
                [
                    "1:",
                    "vsetvli {vl}, {n}, e32, m2, ta, ma",
                    "vle32.v v2, ({g})",
                    "vfrsub.vf v4, v2, {fzero}",
                    v_expf!(),
                    "vfadd.vf v20, v20, {fone}",
                    "vfdiv.vv v20, v2, v20",
                    "vle32.v v22, ({u})",
                    "vfmul.vv v20, v20, v22",
                    "vse32.v v20, ({o})",
                    "sub {n}, {n}, {vl}",
                    "slli {t}, {vl}, 2",
                    "add {g}, {g}, {t}",
                    "add {u}, {u}, {t}",
                    "add {o}, {o}, {t}",
                    "bnez {n}, 1b",
                ],
                g = inout(reg) gate.as_ptr() => _,
                u = inout(reg) up.as_ptr() => _,
                o = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) nv => _,
                vl = out(reg) _,
                fone = in(freg) 1.0f32,
            );
        }
    }
    for ((o, &g), &u) in out[nv..].iter_mut().zip(&gate[nv..]).zip(&up[nv..]) {
        *o = phi_edge_portable::silu(g) * u;
    }
}

/// `s[j] = v_expf(s[j] - max)` in place (the softmax numerators).
pub(crate) fn exp_minus(_v: V, s: &mut [f32], max: f32) {
    if s.is_empty() {
        return;
    }
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads and
    // writes the same range of `s`; the loop ends after `s.len()`.
    unsafe {
        expf_asm!(
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m2, ta, ma",
                "vle32.v v2, ({s})",
                "vfsub.vf v4, v2, {fmax}",
                v_expf!(),
                "vse32.v v20, ({s})",
                "sub {n}, {n}, {vl}",
                "slli {t2}, {vl}, 2",
                "add {s}, {s}, {t2}",
                "bnez {n}, 1b",
            ],
            s = inout(reg) s.as_mut_ptr() => _,
            n = inout(reg) s.len() => _,
            vl = out(reg) _,
            t2 = out(reg) _,
            fmax = in(freg) max,
        );
    }
}

/// `s[j] *= f` in place.
pub(crate) fn scale_in_place(_v: V, s: &mut [f32], f: f32) {
    if s.is_empty() {
        return;
    }
    // SAFETY: `V` proves the CPU has V. Each strip of `vl` values reads and
    // writes the same range of `s`; the loop ends after `s.len()`.
    unsafe {
        vasm!(
            [
                "1:",
                "vsetvli {vl}, {n}, e32, m8, ta, ma",
                "vle32.v v8, ({s})",
                "vfmul.vf v8, v8, {f}",
                "vse32.v v8, ({s})",
                "sub {n}, {n}, {vl}",
                "slli {t}, {vl}, 2",
                "add {s}, {s}, {t}",
                "bnez {n}, 1b",
            ],
            s = inout(reg) s.as_mut_ptr() => _,
            n = inout(reg) s.len() => _,
            vl = out(reg) _,
            t = out(reg) _,
            f = in(freg) f,
        );
    }
}

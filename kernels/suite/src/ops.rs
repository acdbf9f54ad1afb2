//! Element-wise kernels: `rms_norm`, `rope`, `swiglu`, `f32_to_f16`, and
//! `attention`.

use std::format;
use std::vec;
use std::vec::Vec;

use phi_edge::{ActFormat, AttnArgs, AttnQ8Args, Kernels};
use phi_edge_portable::float::{f16_to_f32, f32_to_f16};
use phi_edge_portable::testing::Rng;
use phi_edge_portable::Portable;

use crate::gen::{xs, XFlavor};
use crate::report::{Report, Tol, ATTN_TOL, REL_TOL};

/// A magnitude floor so a result of 0 compares against the smallest
/// normal instead of dividing by zero.
const TINY: f64 = f32::MIN_POSITIVE as f64;

pub(crate) fn rms_norms<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for n in [1usize, 3, 4, 5, 8, 31, 64, 100, 576, 3072] {
        for xf in [
            XFlavor::Uniform,
            XFlavor::Outliers,
            XFlavor::Large,
            XFlavor::Tiny,
            XFlavor::Zeros,
        ] {
            for eps in [1e-5f32, 1e-6] {
                let x = xs(rng, xf, n);
                let w = xs(rng, XFlavor::Uniform, n);
                let (mut got, mut want) = (vec![0.0f32; n], vec![0.0f32; n]);
                Portable.rms_norm(&x, &w, eps, &mut want);
                kern.rms_norm(&x, &w, eps, &mut got);
                let mut c = r.case("rms_norm", format!("n={n} {xf:?} eps={eps}"));
                for i in 0..n {
                    let mag = f64::from(want[i]).abs().max(TINY);
                    c.f32(i, got[i], want[i], Tol::Rel { rel: REL_TOL, mag });
                }
            }
        }
    }
}

pub(crate) fn ropes<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for hd in [2usize, 4, 6, 8, 10, 18, 64, 96, 128] {
        let mut rots: Vec<usize> = vec![0, 2, (hd / 2) & !1, hd];
        rots.dedup();
        for n_rot in rots {
            for neox in [false, true] {
                let pos = rng.range_i32(0, 4096) as f32;
                let cs: Vec<f32> = (0..n_rot / 2)
                    .flat_map(|i| {
                        let theta = pos * 10000f32.powf(-2.0 * i as f32 / n_rot as f32);
                        [theta.cos(), theta.sin()]
                    })
                    .collect();
                let x = xs(rng, XFlavor::Outliers, hd);
                let (mut got, mut want) = (x.clone(), x.clone());
                Portable.rope(&mut want, &cs, neox);
                kern.rope(&mut got, &cs, neox);
                let mut c = r.case("rope", format!("hd={hd} n_rot={n_rot} neox={neox}"));
                for i in 0..hd {
                    let mag = if i < n_rot {
                        let p = if neox { i % (n_rot / 2) } else { i / 2 };
                        let (ia, ib) = if neox {
                            (p, p + n_rot / 2)
                        } else {
                            (2 * p, 2 * p + 1)
                        };
                        (f64::from(x[ia]).abs() + f64::from(x[ib]).abs()).max(TINY)
                    } else {
                        0.0
                    };
                    let tol = if i < n_rot {
                        Tol::Rel { rel: REL_TOL, mag }
                    } else {
                        Tol::Exact
                    };
                    c.f32(i, got[i], want[i], tol);
                }
            }
        }
    }
}

pub(crate) fn swiglus<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for n in [0usize, 1, 5, 7, 8, 9, 15, 16, 17, 100, 1027, 8192] {
        for (lo, hi) in [
            (-10.0f32, 10.0f32),
            (-200.0, 100.0),
            (-1e-30, 1e-30),
            (-90.0, -80.0),
        ] {
            let mut g = vec![0.0f32; n];
            rng.fill_uniform(&mut g, lo, hi);
            let u = xs(rng, XFlavor::Uniform, n);
            let (mut got, mut want) = (vec![0.0f32; n], vec![0.0f32; n]);
            Portable.swiglu(&g, &u, &mut want);
            kern.swiglu(&g, &u, &mut got);
            let mut c = r.case("swiglu", format!("n={n} gate in [{lo}, {hi})"));
            for i in 0..n {
                let mag = f64::from(want[i]).abs().max(TINY);
                c.f32(i, got[i], want[i], Tol::Rel { rel: REL_TOL, mag });
            }
        }
    }
}

/// Values whose f16 conversion is a special case: NaNs (quiet and
/// signalling, with payloads), infinities, zeros, f16 subnormals and
/// their boundaries, f32 subnormals, overflow and rounding ties.
pub(crate) fn f16_specials() -> Vec<f32> {
    let mut v = vec![
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffa0_0000),
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        1e10,
        5.960_464_5e-8,
        2.980_232_2e-8,
        2.980_233e-8,
        6.097_555e-5,
        6.103_515_6e-5,
        f32::from_bits(1),
        f32::MIN_POSITIVE,
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        -(1.0 + 2f32.powi(-11)),
    ];
    // Ties halfway between adjacent f16 values, normal and subnormal.
    for h in [0x0001u16, 0x0003, 0x03ff, 0x0400, 0x3c01, 0x7bfe, 0x8402] {
        let a = f64::from(f16_to_f32(h));
        let b = f64::from(f16_to_f32(h + 1));
        v.push(((a + b) / 2.0) as f32);
    }
    v
}

pub(crate) fn f32_to_f16s<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let specials = f16_specials();
    for n in [0usize, 1, 3, 4, 7, 8, 9, 16, 31, 33, 100, 1000] {
        for xf in [XFlavor::Uniform, XFlavor::Large, XFlavor::Tiny] {
            let mut x = xs(rng, xf, n);
            for v in x.iter_mut() {
                if rng.next_u64() % 4 == 0 {
                    *v = specials[rng.range_i32(0, specials.len() as i32 - 1) as usize];
                }
            }
            let (mut got, mut want) = (vec![0u16; n], vec![0u16; n]);
            Portable.f32_to_f16(&x, &mut want);
            kern.f32_to_f16(&x, &mut got);
            r.case("f32_to_f16", format!("n={n} {xf:?}"))
                .bits(&got, &want);
        }
    }
    let mut got = vec![0u16; specials.len()];
    let mut want = got.clone();
    Portable.f32_to_f16(&specials, &mut want);
    kern.f32_to_f16(&specials, &mut got);
    r.case("f32_to_f16", "specials".into()).bits(&got, &want);
}

/// f16 bits of uniform values in `[-amp, amp)`.
pub(crate) fn random_f16(rng: &mut Rng, n: usize, amp: f32) -> Vec<u16> {
    (0..n).map(|_| f32_to_f16(rng.uniform(-amp, amp))).collect()
}

/// Checks one attention call against the oracle. `out` and `scratch` are
/// the kernel's buffers (they may end at a guard page).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_attention<K: Kernels>(
    r: &mut Report,
    name: &str,
    kern: &K,
    q: &[f32],
    k: &[u16],
    v: &[u16],
    stride: usize,
    n_kv: usize,
    scale: f32,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    let mut want = vec![0.0f32; hd];
    let mut ws = vec![0.0f32; n_kv.max(1)];
    let args = AttnArgs {
        q,
        k,
        v,
        stride,
        n_kv,
        scale,
    };
    Portable.attention(&args, &mut ws, &mut want);
    kern.attention(&args, scratch, out);
    let mut c = r.case(
        name,
        format!("hd={hd} n_kv={n_kv} stride={stride} scale={scale}"),
    );
    for d in 0..hd {
        let mag = (0..n_kv)
            .map(|j| f64::from(f16_to_f32(v[j * stride + d])).abs())
            .fold(TINY, f64::max);
        c.f32(d, out[d], want[d], Tol::Rel { rel: ATTN_TOL, mag });
    }
}

pub(crate) fn attentions<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let n_kvs = [1usize, 2, 7, 31, 32, 33, 100, 256, 257, 300];
    for (i, &hd) in [1usize, 3, 16, 64, 80, 96, 100].iter().enumerate() {
        for (j, &n_kv) in n_kvs.iter().enumerate() {
            let stride = [hd, hd + 5, 3 * hd][(i + j) % 3];
            let (qa, ka, va) = match (i + 2 * j) % 4 {
                0 => (2.0, 2.0, 2.0),
                1 => (20.0, 4.0, 60000.0), // sharp softmax, V near f16 overflow
                2 => (1.0, 1e-4, 1e-4),    // f16 subnormals in K and V
                _ => (0.5, 1.0, 1.0),
            };
            let len = (n_kv - 1) * stride + hd;
            let k = random_f16(rng, len, ka);
            let v = random_f16(rng, len, va);
            let mut q = vec![0.0f32; hd];
            rng.fill_uniform(&mut q, -qa, qa);
            let scale = 1.0 / (hd as f32).sqrt();
            let mut scratch = vec![0.0f32; n_kv + 3];
            let mut out = vec![0.0f32; hd];
            check_attention(
                r,
                "attention",
                kern,
                &q,
                &k,
                &v,
                stride,
                n_kv,
                scale,
                &mut scratch,
                &mut out,
            );
        }
    }
}

/// Inputs that reach the rare paths of SIMD kernels: `quantize_act` blocks
/// whose scale overflows or whose non-finite values make the order of
/// ggml's max loop matter, attention with NaN and infinite scores, rope
/// with pair counts that leave fused and unfused tails, and swiglu at the
/// edges of `ggml_v_expf`'s ranges. Run last, so the cases before see the
/// same random inputs with or without them.
pub(crate) fn specials<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    act_specials(r, kern, rng);
    attention_specials(r, kern, rng);
    for hd in [12usize, 14, 22, 26, 30] {
        rope_pairs(r, kern, rng, hd);
    }
    swiglu_specials(r, kern, rng);
}

/// The f32 one ulp away from `x` (up or down in magnitude; `x` finite and
/// non-zero, or stepping down from a positive value).
fn f32_step(x: f32, up: bool) -> f32 {
    f32::from_bits(if up { x.to_bits() + 1 } else { x.to_bits() - 1 })
}

/// 256-value blocks (whole blocks of every activation format) around
/// each way a quantizer can leave its usual path.
fn act_special_blocks(rng: &mut Rng) -> Vec<Vec<f32>> {
    let uniform = |rng: &mut Rng, amp: f32| -> Vec<f32> {
        (0..256).map(|_| rng.uniform(-1.0, 1.0) * amp).collect()
    };
    let mut blocks = vec![
        // f32 subnormals and the smallest normals: `127 / amax` and
        // Q8_K's `-127 / max` overflow.
        uniform(rng, 1e-40),
        uniform(rng, 2e-38),
        // The largest finite magnitudes: `d` overflows f16.
        uniform(rng, f32::MAX),
        vec![-0.0; 256],
        (0..256)
            .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
            .collect(),
    ];
    // Where `127 / amax` stops overflowing, with `amax` on either side.
    let edge = 127.0 / f32::MAX;
    for amax in [f32_step(edge, false), edge, f32_step(edge, true)] {
        let mut b = uniform(rng, amax);
        for (i, v) in b.iter_mut().enumerate().step_by(37) {
            *v = if i % 2 == 0 { amax } else { -amax };
        }
        blocks.push(b);
    }
    // Non-finite values first, last, alone and together, in both orders.
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    for set in [
        &[(0usize, nan)][..],
        &[(31, inf)],
        &[(255, -inf)],
        &[(40, nan), (41, inf)],
        &[(70, inf), (75, -nan)],
        &[(96, -inf), (97, inf), (100, nan)],
    ] {
        let mut b = uniform(rng, 1.0);
        for &(i, v) in set {
            b[i] = v;
        }
        blocks.push(b);
    }
    // Equal magnitudes of both signs: Q8_K takes the first one's sign.
    let mut b = uniform(rng, 1.0);
    (b[3], b[200]) = (-5.0, 5.0);
    blocks.push(b);
    let mut b = uniform(rng, 1.0);
    (b[10], b[11]) = (2.0, -2.0);
    blocks.push(b);
    blocks
}

fn act_specials<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let blocks = act_special_blocks(rng);
    let all: Vec<f32> = blocks.concat();
    for fmt in ActFormat::ALL {
        for (i, x) in blocks.iter().chain([&all]).enumerate() {
            let len = fmt.row_bytes(x.len()).unwrap() + 7;
            let (mut got, mut want) = (vec![0xabu8; len], vec![0xabu8; len]);
            Portable.quantize_act(fmt, x, &mut want);
            kern.quantize_act(fmt, x, &mut got);
            r.case(
                &format!("quantize_act {fmt:?}"),
                format!("special block {i}"),
            )
            .bits(&got, &want);
        }
    }
}

/// Attention whose scores include NaN or infinities (from f16 NaN or
/// infinity in K, or a query element that overflows f16), all `-inf`
/// scores, and `scale = 0`, with and without padding cells and with the
/// special cell first, in the middle or last.
fn attention_specials<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    const F16_NAN: u16 = 0x7e00;
    const F16_INF: u16 = 0x7c00;
    const F16_NEG_INF: u16 = 0xfc00;
    let hd = 64;
    for n_kv in [40usize, 256] {
        // (K cells set to a special value, the query's first value, scale):
        // NaN first, in the middle and last; +inf; -inf and +inf; a query
        // that overflows f16; scale 0; every score -inf (every K row's
        // first value -inf, the query's positive).
        let setups = [
            (vec![(0, F16_NAN)], 1.0, 0.125),
            (vec![(n_kv / 2, F16_NAN)], 1.0, 0.125),
            (vec![(n_kv - 1, F16_NAN)], 1.0, 0.125),
            (vec![(5, F16_INF)], 1.0, 0.125),
            (vec![(7, F16_NEG_INF), (9, F16_INF)], 1.0, 0.125),
            (vec![], 1e5f32, 0.125f32),
            (vec![], 1.0, 0.0),
            ((0..n_kv).map(|j| (j, F16_NEG_INF)).collect(), 1.0, 0.125),
        ];
        for (cells, q0, scale) in setups {
            let mut k = random_f16(rng, n_kv * hd, 1.0);
            let v = random_f16(rng, n_kv * hd, 1.0);
            let mut q = vec![0.0f32; hd];
            rng.fill_uniform(&mut q, 0.1, 1.0);
            q[0] = q0;
            for (j, h) in cells {
                k[j * hd] = h;
            }
            let mut scratch = vec![0.0f32; n_kv];
            let mut out = vec![0.0f32; hd];
            check_attention(
                r,
                "attention",
                kern,
                &q,
                &k,
                &v,
                hd,
                n_kv,
                scale,
                &mut scratch,
                &mut out,
            );
        }
    }
}

/// `rope` of a head of `hd` values, all rotated, both modes.
fn rope_pairs<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng, hd: usize) {
    for neox in [false, true] {
        let cs: Vec<f32> = (0..hd / 2)
            .flat_map(|_| {
                let t = rng.uniform(-3.2, 3.2);
                [t.cos(), t.sin()]
            })
            .collect();
        let x = xs(rng, XFlavor::Outliers, hd);
        let (mut got, mut want) = (x.clone(), x.clone());
        Portable.rope(&mut want, &cs, neox);
        kern.rope(&mut got, &cs, neox);
        let mut c = r.case("rope", format!("hd={hd} n_rot={hd} neox={neox}"));
        for i in 0..hd {
            let p = if neox { i % (hd / 2) } else { i / 2 };
            let (ia, ib) = if neox {
                (p, p + hd / 2)
            } else {
                (2 * p, 2 * p + 1)
            };
            let mag = (f64::from(x[ia]).abs() + f64::from(x[ib]).abs()).max(TINY);
            c.f32(i, got[i], want[i], Tol::Rel { rel: REL_TOL, mag });
        }
    }
}

/// `swiglu` of gates at the edges of `ggml_v_expf`'s ranges (`|n| = 126`
/// and `192` around `x = -87.3`, `-88.7`, `-133.1`), zeros, infinities
/// and NaN, in whole groups of 8 and in the tail.
fn swiglu_specials<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let mut g = vec![
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        87.0,
        87.5,
        88.0,
        88.5,
        88.8,
        89.0,
        -87.0,
        -87.5,
        -88.5,
        -89.0,
        -103.0,
        -104.0,
        132.5,
        133.0,
        133.5,
        134.0,
        -133.0,
        -134.0,
        1e30,
        -1e30,
        f32::MIN_POSITIVE,
    ];
    // And each finite non-zero one an ulp larger in magnitude.
    let steps: Vec<f32> = g
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|&v| f32_step(v, true))
        .collect();
    g.extend(steps);
    g.push(3.0); // a tail of len % 8 values
    let u = xs(rng, XFlavor::Uniform, g.len());
    let (mut got, mut want) = (vec![0.0f32; g.len()], vec![0.0f32; g.len()]);
    Portable.swiglu(&g, &u, &mut want);
    kern.swiglu(&g, &u, &mut got);
    let mut c = r.case("swiglu", format!("specials n={}", g.len()));
    for i in 0..g.len() {
        let mag = f64::from(want[i]).abs().max(TINY);
        c.f32(i, got[i], want[i], Tol::Rel { rel: REL_TOL, mag });
    }
}

/// `attention_q8_0` on random Q8_0 caches (quantized by the portable
/// activation quantizer, as a session stores them): head widths of one
/// to four blocks, row counts around the four-row tiles, strides with
/// other heads between rows, sharp and flat softmaxes. Every output must
/// be the portable one to the bit (`Tol::Exact`): the sets reproduce its
/// float order.
pub(crate) fn attentions_q8_0<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let n_kvs = [1usize, 2, 3, 4, 5, 8, 31, 33, 100];
    for (i, &hd) in [32usize, 64, 96, 128].iter().enumerate() {
        for (j, &n_kv) in n_kvs.iter().enumerate() {
            let row = hd / 32 * 34;
            let stride = [row, row + 34, 3 * row][(i + j) % 3];
            let (qa, ka) = [(1.0, 1.0), (20.0, 4.0), (0.1, 1e-3)][(i + 2 * j) % 3];
            let quantized = |rng: &mut Rng, amp: f32, rows: usize| {
                let mut bytes = vec![0u8; (rows - 1) * stride + row];
                let mut x = vec![0.0f32; hd];
                for t in 0..rows {
                    rng.fill_uniform(&mut x, -amp, amp);
                    Portable.quantize_act(ActFormat::Q8_0, &x, &mut bytes[t * stride..][..row]);
                }
                bytes
            };
            let (k, v) = (quantized(rng, ka, n_kv), quantized(rng, 3.0, n_kv));
            let mut q = vec![0u8; row];
            let mut x = vec![0.0f32; hd];
            rng.fill_uniform(&mut x, -qa, qa);
            Portable.quantize_act(ActFormat::Q8_0, &x, &mut q);
            let args = AttnQ8Args {
                q: &q,
                k: &k,
                v: &v,
                stride,
                n_kv,
                scale: 1.0 / (hd as f32).sqrt(),
            };
            let (mut want, mut got) = (vec![0.0f32; hd], vec![f32::NAN; hd]);
            Portable.attention_q8_0(&args, &mut want);
            kern.attention_q8_0(&args, &mut got);
            let mut c = r.case(
                "attention_q8_0",
                format!("hd={hd} n_kv={n_kv} stride={stride}"),
            );
            for d in 0..hd {
                c.f32(d, got[d], want[d], Tol::Exact);
            }
        }
    }
}

//! The same kernels with every input and output ending exactly at a
//! guard page: an over-read or over-write past a slice faults.

use std::format;
use std::vec;

use phi_edge::{ActFormat, DType, Kernels};
use phi_edge_portable::testing::Rng;
use phi_edge_portable::Portable;

use crate::gen::{weights, xs, WFlavor, XFlavor};
use crate::guard::Guarded;
use crate::matmul::{acts, check_matmul, ks, USES};
use crate::ops::{check_attention, random_f16};
use crate::report::{Report, Tol, REL_TOL};

pub(crate) fn page_end<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for dtype in DType::ALL {
        for &k in ks(dtype).iter().take(4) {
            for usage in USES {
                let (rows, n_tok) = (3, 2);
                let w = Guarded::from_slice(&weights(rng, dtype, WFlavor::Random, k, rows));
                let x = xs(rng, XFlavor::Uniform, n_tok * k);
                let a = Guarded::from_slice(&acts(dtype.act_format(), &x, k));
                let mut out = Guarded::<f32>::new(rows + 1 + rows);
                check_matmul(
                    r,
                    "page-end matmul",
                    kern,
                    dtype,
                    usage,
                    w.as_ref(),
                    k,
                    rows,
                    a.as_ref(),
                    n_tok,
                    rows + 1,
                    false,
                    out.as_mut(),
                );
            }
        }
        for n in [1usize, 3] {
            let n = n * dtype.block_len();
            let w = Guarded::from_slice(&weights(rng, dtype, WFlavor::Random, n, 1));
            let mut got = Guarded::<f32>::new(n);
            let mut want = vec![0.0f32; n];
            Portable.dequantize_row(dtype, w.as_ref(), &mut want);
            kern.dequantize_row(dtype, w.as_ref(), got.as_mut());
            let mut c = r.case("page-end dequantize_row", format!("{} n={n}", dtype.name()));
            for (i, (&g, &w)) in got.as_ref().iter().zip(&want).enumerate() {
                let mag = f64::from(w).abs().max(f64::from(f32::MIN_POSITIVE));
                c.f32(i, g, w, Tol::Rel { rel: REL_TOL, mag });
            }
        }
    }
    for fmt in ActFormat::ALL {
        for n in [1usize, 3, 5] {
            let n = n * fmt.block_len();
            let x = Guarded::from_slice(&xs(rng, XFlavor::Outliers, n));
            let len = fmt.row_bytes(n).unwrap();
            let mut got = Guarded::<u8>::new(len);
            let mut want = vec![0u8; len];
            Portable.quantize_act(fmt, x.as_ref(), &mut want);
            kern.quantize_act(fmt, x.as_ref(), got.as_mut());
            r.case("page-end quantize_act", format!("{fmt:?} n={n}"))
                .bits(got.as_ref(), &want);
        }
    }
    for n in [1usize, 5, 8, 17, 100] {
        let x = Guarded::from_slice(&xs(rng, XFlavor::Uniform, n));
        let w = Guarded::from_slice(&xs(rng, XFlavor::Uniform, n));
        let mut got = Guarded::<f32>::new(n);
        let mut want = vec![0.0f32; n];
        Portable.rms_norm(x.as_ref(), w.as_ref(), 1e-5, &mut want);
        kern.rms_norm(x.as_ref(), w.as_ref(), 1e-5, got.as_mut());
        cmp_rel(r, "page-end rms_norm", n, got.as_ref(), &want, 0.0);

        let g = Guarded::from_slice(&xs(rng, XFlavor::Large, n));
        let mut got = Guarded::<f32>::new(n);
        Portable.swiglu(g.as_ref(), x.as_ref(), &mut want);
        kern.swiglu(g.as_ref(), x.as_ref(), got.as_mut());
        cmp_rel(r, "page-end swiglu", n, got.as_ref(), &want, 0.0);

        let mut h = Guarded::<u16>::new(n);
        let mut hw = vec![0u16; n];
        Portable.f32_to_f16(g.as_ref(), &mut hw);
        kern.f32_to_f16(g.as_ref(), h.as_mut());
        r.case("page-end f32_to_f16", format!("n={n}"))
            .bits(h.as_ref(), &hw);
    }
    for (hd, n_rot) in [(6usize, 6usize), (10, 6), (64, 64), (96, 32)] {
        for neox in [false, true] {
            let cs = Guarded::from_slice(&xs(rng, XFlavor::Uniform, n_rot));
            let x0 = xs(rng, XFlavor::Uniform, hd);
            let mut got = Guarded::from_slice(&x0);
            let mut want = x0.clone();
            Portable.rope(&mut want, cs.as_ref(), neox);
            kern.rope(got.as_mut(), cs.as_ref(), neox);
            let floor = x0.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
            cmp_rel(r, "page-end rope", hd, got.as_ref(), &want, floor);
        }
    }
    for (hd, n_kv, stride) in [
        (64usize, 1usize, 64usize),
        (96, 33, 96),
        (17, 5, 20),
        (3, 300, 3),
    ] {
        let len = (n_kv - 1) * stride + hd;
        let k = Guarded::from_slice(&random_f16(rng, len, 2.0));
        let v = Guarded::from_slice(&random_f16(rng, len, 2.0));
        let q = Guarded::from_slice(&xs(rng, XFlavor::Uniform, hd));
        let mut scratch = Guarded::<f32>::new(n_kv);
        let mut out = Guarded::<f32>::new(hd);
        let scale = 1.0 / (hd as f32).sqrt();
        check_attention(
            r,
            "page-end attention",
            kern,
            q.as_ref(),
            k.as_ref(),
            v.as_ref(),
            stride,
            n_kv,
            scale,
            scratch.as_mut(),
            out.as_mut(),
        );
    }
}

/// Compares element-wise results within [`REL_TOL`] of
/// `max(|want|, floor)`.
fn cmp_rel(r: &mut Report, name: &str, n: usize, got: &[f32], want: &[f32], floor: f64) {
    let mut c = r.case(name, format!("n={n}"));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let mag = f64::from(w)
            .abs()
            .max(floor)
            .max(f64::from(f32::MIN_POSITIVE));
        c.f32(i, g, w, Tol::Rel { rel: REL_TOL, mag });
    }
}

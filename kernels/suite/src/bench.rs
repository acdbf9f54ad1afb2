//! A small throughput benchmark: GB/s of weights streamed per `matmul`
//! type at batch 1, and ns per call for the other kernels.

use std::format;
use std::string::String;
use std::time::Instant;
use std::vec;
use std::vec::Vec;

use phi_edge::{AttnArgs, DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::testing::Rng;

use crate::gen::{weights, xs, WFlavor, XFlavor};
use crate::matmul::acts;
use crate::ops::random_f16;

/// One benchmark result.
#[derive(Clone, Debug)]
pub struct BenchLine {
    /// What was measured, e.g. `matmul q4_0 3072x3072`.
    pub what: String,
    /// Mean nanoseconds per call.
    pub ns_per_call: f64,
    /// Weight bytes per second / 1e9 (matmul only).
    pub gb_per_s: Option<f64>,
}

impl core::fmt::Display for BenchLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.gb_per_s {
            Some(g) => write!(
                f,
                "{:<32} {:>12.0} ns  {:>7.2} GB/s",
                self.what, self.ns_per_call, g
            ),
            None => write!(f, "{:<32} {:>12.0} ns", self.what, self.ns_per_call),
        }
    }
}

fn time<F: FnMut()>(min_ns: f64, mut f: F) -> f64 {
    f();
    let mut iters = 0u64;
    let t = Instant::now();
    loop {
        f();
        iters += 1;
        let e = t.elapsed().as_nanos() as f64;
        if e >= min_ns {
            return e / iters as f64;
        }
    }
}

/// Benchmarks `kern` on a `dim x dim` matmul of every weight type (one
/// token) and the other kernels at width `dim`, running each for at least
/// `min_ms` milliseconds.
pub fn bench<K: Kernels>(kern: &K, dim: usize, min_ms: u64) -> Vec<BenchLine> {
    let min_ns = min_ms as f64 * 1e6;
    let dim = dim.div_ceil(256) * 256;
    let mut rng = Rng::new(1);
    let mut lines = Vec::new();
    let x = xs(&mut rng, XFlavor::Uniform, dim);
    for dtype in DType::ALL {
        let w = weights(&mut rng, dtype, WFlavor::Random, dim, dim);
        let a = acts(dtype.act_format(), &x, dim);
        let mut out = vec![0.0f32; dim];
        let ns = time(min_ns, || {
            let m = MatmulArgs {
                dtype,
                usage: WeightUse::Projection,
                w: &w,
                k: dim,
                rows: dim,
                act: &a,
                n_tok: 1,
            };
            kern.matmul(&m, &mut MatOut::row(&mut out))
        });
        lines.push(BenchLine {
            what: format!("matmul {} {dim}x{dim}", dtype.name()),
            ns_per_call: ns,
            gb_per_s: Some(w.len() as f64 / ns),
        });
    }
    let mut q = vec![0u8; 2 * 292 * dim / 256 + 64 * dim];
    for fmt in [phi_edge::ActFormat::Q8_0, phi_edge::ActFormat::Q8K] {
        let n = fmt.row_bytes(dim).unwrap();
        let ns = time(min_ns, || kern.quantize_act(fmt, &x, &mut q[..n]));
        lines.push(BenchLine {
            what: format!("quantize_act {fmt:?} {dim}"),
            ns_per_call: ns,
            gb_per_s: None,
        });
    }
    let w = xs(&mut rng, XFlavor::Uniform, dim);
    let mut out = vec![0.0f32; dim];
    let ns = time(min_ns, || kern.rms_norm(&x, &w, 1e-5, &mut out));
    lines.push(BenchLine {
        what: format!("rms_norm {dim}"),
        ns_per_call: ns,
        gb_per_s: None,
    });
    let ns = time(min_ns, || kern.swiglu(&x, &w, &mut out));
    lines.push(BenchLine {
        what: format!("swiglu {dim}"),
        ns_per_call: ns,
        gb_per_s: None,
    });
    let mut h = vec![0u16; dim];
    let ns = time(min_ns, || kern.f32_to_f16(&x, &mut h));
    lines.push(BenchLine {
        what: format!("f32_to_f16 {dim}"),
        ns_per_call: ns,
        gb_per_s: None,
    });
    let mut head = x[..96].to_vec();
    let cs = xs(&mut rng, XFlavor::Uniform, 96);
    let ns = time(min_ns, || kern.rope(&mut head, &cs, true));
    lines.push(BenchLine {
        what: "rope neox 96".into(),
        ns_per_call: ns,
        gb_per_s: None,
    });
    let (hd, n_kv) = (96, 1024);
    let k = random_f16(&mut rng, hd * n_kv, 1.0);
    let v = random_f16(&mut rng, hd * n_kv, 1.0);
    let mut scratch = vec![0.0f32; n_kv];
    let mut o = vec![0.0f32; hd];
    let ns = time(min_ns, || {
        let a = AttnArgs {
            q: &x[..hd],
            k: &k,
            v: &v,
            stride: hd,
            n_kv,
            scale: 0.1,
        };
        kern.attention(&a, &mut scratch, &mut o)
    });
    lines.push(BenchLine {
        what: format!("attention hd={hd} n_kv={n_kv}"),
        ns_per_call: ns,
        gb_per_s: None,
    });
    lines
}

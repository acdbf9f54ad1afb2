//! `matmul` for every weight type, both weight uses, one to many blocks,
//! several tokens with `ld_out > rows`, and the tile shapes kernel sets
//! block their loops into (rows and tokens in and around multiples of 2,
//! 4 and 8); `quantize_act` and `dequantize_row`.

use std::format;
use std::vec;
use std::vec::Vec;

use phi_edge::{ActFormat, DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::convert::{dequantize_act, dequantize_row};
use phi_edge_portable::float::f16_to_f32;
use phi_edge_portable::quant::q4_k::scale_min_k4;
use phi_edge_portable::testing::Rng;
use phi_edge_portable::Portable;

use crate::gen::{weights, xs, WFlavor, XFlavor, X_FLAVORS};
use crate::report::{Report, Tol, REL_TOL};

/// Both ways a weight can be held.
pub(crate) const USES: [WeightUse; 2] = [WeightUse::Projection, WeightUse::TiedEmbedding];

/// Row lengths for `dtype`: whole blocks of the weight and activation
/// formats; for float types also lengths with a partial 32-lane tail.
pub(crate) fn ks(dtype: DType) -> Vec<usize> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => vec![1, 3, 8, 31, 32, 33, 64, 100, 257, 1024],
        DType::Q4K | DType::Q6K => vec![256, 512, 768, 1280, 4096],
        _ => vec![32, 64, 96, 224, 512, 4096],
    }
}

/// Weight and activation flavors checked together.
const COMBOS: [(WFlavor, XFlavor); 8] = [
    (WFlavor::Random, XFlavor::Uniform),
    (WFlavor::Random, XFlavor::Outliers),
    (WFlavor::ZeroBlocks, XFlavor::ZeroBlocks),
    (WFlavor::Extreme, XFlavor::Large),
    (WFlavor::Extreme, XFlavor::Tiny),
    (WFlavor::Unit, XFlavor::Integer),
    (WFlavor::Random, XFlavor::Zeros),
    (WFlavor::Random, XFlavor::HalfTies),
];

/// The activation rows of `x` (`n_tok` rows of `k`) in `fmt`, made by the
/// oracle's quantizer.
pub(crate) fn acts(fmt: ActFormat, x: &[f32], k: usize) -> Vec<u8> {
    let rb = fmt.row_bytes(k).unwrap();
    let n_tok = x.len().checked_div(k).unwrap_or(0);
    let mut a = vec![0u8; n_tok * rb];
    for (xr, ar) in x.chunks_exact(k.max(1)).zip(a.chunks_exact_mut(rb.max(1))) {
        Portable.quantize_act(fmt, xr, ar);
    }
    a
}

/// Per value, the magnitude of the offset a quantized weight carries
/// besides `d * q` (Q4_0's `8d`, Q4_1's `m`, Q4_K's `dmin * m`, Q6_K's
/// `32 d sc`): kernels sum those terms separately.
fn offsets(dtype: DType, w: &[u8], k: usize) -> Vec<f64> {
    let mut off = vec![0.0f64; k];
    if k == 0 {
        return off;
    }
    let f16 = |b: &[u8]| f64::from(f16_to_f32(u16::from_le_bytes([b[0], b[1]])));
    let bl = dtype.block_len();
    for (b, o) in w
        .chunks_exact(dtype.block_bytes())
        .zip(off.chunks_exact_mut(bl))
    {
        match dtype {
            DType::Q4_0 => o.fill(8.0 * f16(b).abs()),
            DType::Q4_1 => o.fill(f16(&b[2..]).abs()),
            DType::Q4K => {
                let dmin = f16(&b[2..]).abs();
                let packed: &[u8; 12] = b[4..16].try_into().unwrap();
                for (s, c) in o.chunks_exact_mut(32).enumerate() {
                    c.fill(dmin * f64::from(scale_min_k4(s, packed).1));
                }
            }
            DType::Q6K => {
                let d = f16(&b[208..]).abs();
                for (s, c) in o.chunks_exact_mut(16).enumerate() {
                    c.fill(32.0 * d * f64::from(b[192 + s] as i8).abs());
                }
            }
            _ => {}
        }
    }
    off
}

/// The magnitude of the terms of `dot(w, a)`: `sum (|w_i| + off_i) |a_i|`,
/// plus for Q4_1 the `|m * s|` block terms.
fn dot_mag(dtype: DType, w: &[u8], a: &[u8], k: usize) -> f64 {
    let mut wf = vec![0.0f32; k];
    let mut af = vec![0.0f32; k];
    dequantize_row(dtype, w, &mut wf);
    dequantize_act(dtype.act_format(), a, &mut af);
    let off = offsets(dtype, w, k);
    let mut mag: f64 = wf
        .iter()
        .zip(&af)
        .zip(&off)
        .map(|((&x, &y), &o)| (f64::from(x).abs() + o) * f64::from(y).abs())
        .sum();
    if dtype == DType::Q4_1 {
        for (wb, ab) in w.chunks_exact(20).zip(a.chunks_exact(36)) {
            let m = f16_to_f32(u16::from_le_bytes([wb[2], wb[3]]));
            let s = f16_to_f32(u16::from_le_bytes([ab[2], ab[3]]));
            mag += (f64::from(m) * f64::from(s)).abs();
        }
    }
    mag
}

/// Checks one `matmul` call of `k` against the oracle.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_matmul<K: Kernels>(
    r: &mut Report,
    name: &str,
    kern: &K,
    dtype: DType,
    usage: WeightUse,
    w: &[u8],
    k: usize,
    rows: usize,
    a: &[u8],
    n_tok: usize,
    ld_out: usize,
    exact_ints: bool,
    out: &mut [f32],
) {
    let len = out.len();
    let mut want = vec![12345.0f32; len];
    out.fill(12345.0);
    let m = MatmulArgs {
        dtype,
        usage,
        w,
        k,
        rows,
        act: a,
        n_tok,
    };
    Portable.matmul(&m, &mut MatOut::new(&mut want, rows, n_tok, ld_out));
    kern.matmul(&m, &mut MatOut::new(out, rows, n_tok, ld_out));
    let ctx = format!("{usage:?} k={k} rows={rows} n_tok={n_tok} ld_out={ld_out}");
    let mut c = r.case(name, ctx);
    let (wr, ar) = (
        dtype.row_bytes(k).unwrap(),
        dtype.act_format().row_bytes(k).unwrap(),
    );
    for i in 0..len {
        let (t, row) = (i / ld_out.max(1), i % ld_out.max(1));
        let tol = if t < n_tok && row < rows && k > 0 {
            let mag = dot_mag(dtype, &w[row * wr..][..wr], &a[t * ar..][..ar], k);
            if exact_ints && mag < f64::from(1u32 << 24) {
                Tol::Exact
            } else {
                Tol::Rel { rel: REL_TOL, mag }
            }
        } else {
            Tol::Exact
        };
        c.f32(i, out[i], want[i], tol);
    }
}

pub(crate) fn matmul_name(dtype: DType, usage: WeightUse) -> std::string::String {
    match (dtype, usage) {
        (DType::Q4_0 | DType::Q4K, WeightUse::Projection) => {
            format!("matmul {} proj", dtype.name())
        }
        (DType::Q4_0 | DType::Q4K, WeightUse::TiedEmbedding) => {
            format!("matmul {} tied", dtype.name())
        }
        _ => format!("matmul {}", dtype.name()),
    }
}

/// Every weight type: lengths, flavors, both uses, 1 or 3 tokens.
pub(crate) fn matmuls<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    let shapes = [(1usize, 1usize, 0usize), (5, 1, 0), (8, 3, 3), (3, 2, 1)];
    for dtype in DType::ALL {
        let fmt = dtype.act_format();
        for (ki, &k) in ks(dtype).iter().enumerate() {
            for (ci, &(wf, xf)) in COMBOS.iter().enumerate() {
                let (rows, n_tok, pad) = shapes[(ki + ci) % shapes.len()];
                let ld_out = rows + pad;
                let w = weights(rng, dtype, wf, k, rows);
                let a = acts(fmt, &xs(rng, xf, n_tok * k), k);
                for usage in USES {
                    let mut out = vec![0.0f32; (n_tok - 1) * ld_out + rows + pad];
                    let exact = wf == WFlavor::Unit;
                    let name = matmul_name(dtype, usage);
                    check_matmul(
                        r, &name, kern, dtype, usage, &w, k, rows, &a, n_tok, ld_out, exact,
                        &mut out,
                    );
                }
            }
        }
        tiles(r, kern, rng, dtype);
        // k = 0: every dot product is 0.
        for usage in USES {
            let mut out = vec![0.0f32; 4];
            check_matmul(
                r,
                &matmul_name(dtype, usage),
                kern,
                dtype,
                usage,
                &[],
                0,
                2,
                &[],
                2,
                2,
                true,
                &mut out,
            );
        }
    }
}

/// Weight rows and tokens of the tile cases: below, at and past the
/// multiples of 2, 4 and 8 that kernel sets tile by.
const TILE_ROWS: [usize; 12] = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33];
const TILE_TOKENS: [usize; 6] = [1, 2, 3, 4, 5, 8];

/// Row lengths of the tile cases in blocks of `dtype` (1, 2, 3, 7), then
/// model widths (SmolLM2's 576 and 1536, Phi-3's 3072), which get fewer
/// shapes.
fn tile_ks(dtype: DType) -> (Vec<usize>, Vec<usize>) {
    let b = dtype.block_len();
    let small = [1, 2, 3, 7].iter().map(|n| n * b).collect();
    let model = [576, 1536, 3072]
        .into_iter()
        .filter(|k| k % b == 0)
        .take(2)
        .collect();
    (small, model)
}

/// Tile shapes and tails: every row count of [`TILE_ROWS`] on each short
/// row length, with the token count and the input flavors rotating so
/// each row count meets several token counts; a few larger shapes on
/// model widths; both weight uses; and on Unix, tile tails whose operands
/// end at a guard page.
fn tiles<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng, dtype: DType) {
    let fmt = dtype.act_format();
    let (small, model) = tile_ks(dtype);
    let mut shapes = Vec::new();
    for (ki, &k) in small.iter().enumerate() {
        for (ri, &rows) in TILE_ROWS.iter().enumerate() {
            shapes.push((k, rows, TILE_TOKENS[(ri + 5 * ki) % TILE_TOKENS.len()]));
        }
    }
    for &k in &model {
        for (rows, n_tok) in [(4, 1), (9, 2), (17, 1), (5, 8), (33, 3)] {
            shapes.push((k, rows, n_tok));
        }
    }
    for (i, &(k, rows, n_tok)) in shapes.iter().enumerate() {
        let (wf, xf) = COMBOS[i % COMBOS.len()];
        let ld_out = rows + i % 3;
        let w = weights(rng, dtype, wf, k, rows);
        let a = acts(fmt, &xs(rng, xf, n_tok * k), k);
        for usage in USES {
            let mut out = vec![0.0f32; (n_tok - 1) * ld_out + rows + 1];
            let name = matmul_name(dtype, usage);
            check_matmul(
                r,
                &name,
                kern,
                dtype,
                usage,
                &w,
                k,
                rows,
                &a,
                n_tok,
                ld_out,
                wf == WFlavor::Unit,
                &mut out,
            );
        }
    }
    #[cfg(unix)]
    for (&k, (rows, n_tok)) in small.iter().zip([(5usize, 3usize), (7, 5), (9, 1), (6, 2)]) {
        use crate::guard::Guarded;
        let w = Guarded::from_slice(&weights(rng, dtype, WFlavor::Random, k, rows));
        let a = Guarded::from_slice(&acts(fmt, &xs(rng, XFlavor::Uniform, n_tok * k), k));
        for usage in USES {
            let mut out = Guarded::<f32>::new(n_tok * rows);
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
                rows,
                false,
                out.as_mut(),
            );
        }
    }
}

/// Lengths for `quantize_act` in `fmt`.
fn act_lens(fmt: ActFormat) -> Vec<usize> {
    match fmt.block_len() {
        1 => vec![0, 1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 100, 1000],
        b => [1, 2, 3, 7, 16].iter().map(|n| n * b).collect(),
    }
}

/// `quantize_act`: bytes identical to the oracle's, and nothing past
/// `row_bytes` written.
pub(crate) fn quantize_acts<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for fmt in ActFormat::ALL {
        for n in act_lens(fmt) {
            for xf in X_FLAVORS {
                let x = xs(rng, xf, n);
                let len = fmt.row_bytes(n).unwrap() + 7;
                let (mut got, mut want) = (vec![0xabu8; len], vec![0xabu8; len]);
                Portable.quantize_act(fmt, &x, &mut want);
                kern.quantize_act(fmt, &x, &mut got);
                let mut c = r.case(&format!("quantize_act {fmt:?}"), format!("n={n} {xf:?}"));
                c.bits(&got, &want);
            }
        }
    }
}

/// `dequantize_row` of every type.
pub(crate) fn dequantize_rows<K: Kernels>(r: &mut Report, kern: &K, rng: &mut Rng) {
    for dtype in DType::ALL {
        let b = dtype.block_len();
        let lens: Vec<usize> = if b == 1 {
            vec![0, 1, 3, 8, 17, 33, 100]
        } else {
            [1, 2, 3, 9].iter().map(|n| n * b).collect()
        };
        for n in lens {
            for wf in [
                WFlavor::Random,
                WFlavor::ZeroBlocks,
                WFlavor::Extreme,
                WFlavor::Unit,
            ] {
                let w = weights(rng, dtype, wf, n, 1);
                let (mut got, mut want) = (vec![0.0f32; n], vec![0.0f32; n]);
                Portable.dequantize_row(dtype, &w, &mut want);
                kern.dequantize_row(dtype, &w, &mut got);
                let off = offsets(dtype, &w, n);
                let mut c = r.case(
                    &format!("dequantize_row {}", dtype.name()),
                    format!("n={n} {wf:?}"),
                );
                for i in 0..n {
                    let mag = f64::from(want[i]).abs() + off[i];
                    c.f32(i, got[i], want[i], Tol::Rel { rel: REL_TOL, mag });
                }
            }
        }
    }
}

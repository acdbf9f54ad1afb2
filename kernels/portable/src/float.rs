//! Float element types: f16 and bf16 conversions, F32/F16/BF16 rows, and
//! their dot products.
//!
//! The dot products reproduce llama.cpp's x86 AVX2 build (`ggml_vec_dot_f32`,
//! `ggml_vec_dot_f16`, `ggml_vec_dot_bf16` in `ggml-cpu/vec.cpp`) bit for
//! bit: 32 f32 lanes over the first `k & !31` elements, ggml's horizontal
//! reduction, then the leftover elements (in f32 for F32, in f64 for F16 and
//! BF16).

use half::f16;

/// f16 bits to f32 (exact; NaN stays NaN). Equal to `half`'s conversion
/// for every non-NaN input (tested exhaustively).
///
/// Branch-free, so it vectorizes and stays cheap on targets without a
/// hardware conversion (`half`'s portable fallback branches per value). The
/// exponent is rebased by shifting the f16 bits into f32 position and
/// scaling by a power of two (exact); subnormal inputs are rebuilt by
/// placing the mantissa under a fixed exponent and subtracting that
/// exponent's implicit one.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = i32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff; // exponent and mantissa
                         // Normal, infinite and NaN inputs: move the fields into f32 position
                         // and add 224 to the exponent (so 31 becomes 255), then scale by
                         // 2^-112 to rebase finite values from bias 15 to 127.
    let normal = f32::from_bits(((em << 13) + (0xe0 << 23)) as u32) * f32::from_bits(0x0780_0000);
    // Subnormal inputs: m * 2^-24 = (0.5 + m * 2^-24) - 0.5.
    let subnormal = f32::from_bits((em | (126 << 23)) as u32) - 0.5;
    let is_sub = -i32::from(em < 0x400); // all ones or zero
    let mag = (subnormal.to_bits() as i32 & is_sub) | (normal.to_bits() as i32 & !is_sub);
    f32::from_bits((sign | mag) as u32)
}

/// f32 to f16 bits, round to nearest even; NaN stays a quiet NaN (as F16C).
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// The argument check of [`phi_edge::Kernels::f32_to_f16`], shared by
/// every kernel set.
///
/// Panics unless `src` and `dst` have the same length.
#[inline(always)]
pub fn check_f32_to_f16(src: &[f32], dst: &[u16]) {
    assert!(
        src.len() == dst.len(),
        "f32_to_f16: src {} and dst {} lengths differ",
        src.len(),
        dst.len()
    );
}

/// f32 rounded to f16 and back.
#[inline(always)]
pub fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// bf16 bits to f32 (exact).
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// f32 to bf16 bits as `ggml_compute_fp32_to_bf16`: round to nearest even;
/// a NaN keeps its top bits with the quiet bit forced on. Subnormals are
/// kept, not flushed.
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

fn check_elems(what: &str, bytes: &[u8], n: usize, size: usize) {
    assert!(
        bytes.len() == n * size,
        "{what}: expected {} bytes for {n} values, got {}",
        n * size,
        bytes.len()
    );
}

/// Writes `x` as little-endian f32 bytes.
pub fn quantize_row_f32(x: &[f32], out: &mut [u8]) {
    check_elems("f32 output", out, x.len(), 4);
    for (o, &v) in out.chunks_exact_mut(4).zip(x) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes `x` as little-endian f16 bytes (round to nearest even).
pub fn quantize_row_f16(x: &[f32], out: &mut [u8]) {
    check_elems("f16 output", out, x.len(), 2);
    for (o, &v) in out.chunks_exact_mut(2).zip(x) {
        o.copy_from_slice(&f32_to_f16(v).to_le_bytes());
    }
}

/// Writes `x` as little-endian bf16 bytes (see [`f32_to_bf16`]).
pub fn quantize_row_bf16(x: &[f32], out: &mut [u8]) {
    check_elems("bf16 output", out, x.len(), 2);
    for (o, &v) in out.chunks_exact_mut(2).zip(x) {
        o.copy_from_slice(&f32_to_bf16(v).to_le_bytes());
    }
}

/// Reads a row of little-endian f32 values.
pub fn dequantize_row_f32(src: &[u8], out: &mut [f32]) {
    check_elems("f32 input", src, out.len(), 4);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// Reads a row of little-endian f16 values.
pub fn dequantize_row_f16(src: &[u8], out: &mut [f32]) {
    check_elems("f16 input", src, out.len(), 2);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(2)) {
        *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Reads a row of little-endian bf16 values.
pub fn dequantize_row_bf16(src: &[u8], out: &mut [f32]) {
    check_elems("bf16 input", src, out.len(), 2);
    for (y, b) in out.iter_mut().zip(src.chunks_exact(2)) {
        *y = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Lanes of ggml's AVX2 dot-product loops: four 8-lane f32 vectors, so
/// element `i` of the SIMD part lands in lane `i % 32` (`GGML_F32_STEP` =
/// `GGML_F16_STEP` = 32, `GGML_F32_EPR` = 8).
pub const LANES: usize = 32;

/// ggml's `GGML_F32x8_REDUCE` of four 8-lane accumulators (AVX), as used by
/// `ggml_vec_dot_f32` and `ggml_vec_dot_f16`: `v = (acc0 + acc2) + (acc1 +
/// acc3)` per lane, `t = v[0..4] + v[4..8]`, then two `hadd`s:
/// `(t0 + t1) + (t2 + t3)`.
pub fn reduce_hadd(acc: &[f32; LANES]) -> f32 {
    let v = pair_lanes(acc);
    let t = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (t[0] + t[1]) + (t[2] + t[3])
}

/// The 8-lane horizontal sum ggml writes out with `extractf128`, `movehl`
/// and `movehdup` (in `ggml_vec_dot_bf16`, `ggml_vec_soft_max_f32`):
/// `g = v[0..4] + v[4..8]`, then `(g0 + g2) + (g1 + g3)`.
pub fn hsum8(v: &[f32; 8]) -> f32 {
    let g = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (g[0] + g[2]) + (g[1] + g[3])
}

/// `(acc0 + acc2) + (acc1 + acc3)` per lane of four 8-lane accumulators.
fn pair_lanes(acc: &[f32; LANES]) -> [f32; 8] {
    let mut v = [0.0f32; 8];
    for (l, o) in v.iter_mut().enumerate() {
        *o = (acc[l] + acc[16 + l]) + (acc[8 + l] + acc[24 + l]);
    }
    v
}

fn f32_le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u16_le(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// `sum` plus, in order, the products of the little-endian 16-bit floats
/// of `w` and `a` (converted by `to_f32`, multiplied in f32, widened to
/// f64): the tail of ggml's f16 and bf16 dot products after their 32-lane
/// part, shared by every kernel set.
#[inline(always)]
pub fn add_tail_16<F: Fn(u16) -> f32>(mut sum: f64, w: &[u8], a: &[u8], to_f32: F) -> f64 {
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        sum += f64::from(to_f32(u16_le(x)) * to_f32(u16_le(y)));
    }
    sum
}

/// Dot product of two rows of `k` little-endian f32 values, as
/// `ggml_vec_dot_f32` in llama.cpp's x86 AVX2+FMA build: the first
/// `k & !31` elements go to 32 f32 lanes with a fused multiply-add each
/// (lane `i % 32`), reduced as [`reduce_hadd`]; the remaining elements are
/// then added one by one in f32 (`sum += x * y`, product rounded first).
pub fn vec_dot_f32(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("f32 weights", w, k, 4);
    check_elems("f32 activations", a, k, 4);
    let np = k & !(LANES - 1);
    let mut acc = [0.0f32; LANES];
    for (wc, ac) in w[..4 * np]
        .chunks_exact(4 * LANES)
        .zip(a[..4 * np].chunks_exact(4 * LANES))
    {
        for ((s, x), y) in acc
            .iter_mut()
            .zip(wc.chunks_exact(4))
            .zip(ac.chunks_exact(4))
        {
            *s = crate::fma::fmaf(f32_le(x), f32_le(y), *s);
        }
    }
    let mut sum = reduce_hadd(&acc);
    for (x, y) in w[4 * np..].chunks_exact(4).zip(a[4 * np..].chunks_exact(4)) {
        sum += f32_le(x) * f32_le(y);
    }
    sum
}

/// Dot product of two rows of `k` little-endian f16 values, as
/// `ggml_vec_dot_f16` in llama.cpp's x86 AVX2+F16C build: the first
/// `k & !31` elements go to 32 f32 lanes (lane `i % 32`), reduced as
/// [`reduce_hadd`] and widened to f64; the remaining products are added in
/// f64; the f64 sum is rounded to f32.
///
/// ggml multiplies with FMA; a product of two f16 values is exact in f32,
/// so a plain multiply and add rounds identically.
pub fn vec_dot_f16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("f16 weights", w, k, 2);
    check_elems("f16 activations", a, k, 2);
    let np = k & !(LANES - 1);
    let mut acc = [0.0f32; LANES];
    let mut wf = [0.0f32; LANES];
    let mut af = [0.0f32; LANES];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        // Convert a block at a time (vectorizable), then accumulate.
        for (y, b) in wf.iter_mut().zip(wc.chunks_exact(2)) {
            *y = f16_to_f32(u16_le(b));
        }
        for (y, b) in af.iter_mut().zip(ac.chunks_exact(2)) {
            *y = f16_to_f32(u16_le(b));
        }
        for ((s, &x), &y) in acc.iter_mut().zip(&wf).zip(&af) {
            *s += x * y;
        }
    }
    let sum = f64::from(reduce_hadd(&acc));
    add_tail_16(sum, &w[2 * np..], &a[2 * np..], f16_to_f32) as f32
}

/// `ggml_vec_dot_f16` (as [`vec_dot_f16`]) of f16 values `x` and `y`, with
/// `y` already widened to f32 (each value must be exactly an f16).
///
/// Panics unless the lengths are equal.
pub fn dot_f16_row(x: &[u16], y: &[f32]) -> f32 {
    assert!(x.len() == y.len(), "dot_f16_row: lengths differ");
    let np = x.len() & !(LANES - 1);
    let mut acc = [0.0f32; LANES];
    let mut xf = [0.0f32; LANES];
    for (xc, yc) in x[..np].chunks_exact(LANES).zip(y[..np].chunks_exact(LANES)) {
        for (v, &h) in xf.iter_mut().zip(xc) {
            *v = f16_to_f32(h);
        }
        for ((s, &a), &b) in acc.iter_mut().zip(&xf).zip(yc) {
            *s += a * b;
        }
    }
    let mut sum = f64::from(reduce_hadd(&acc));
    for (&a, &b) in x[np..].iter().zip(&y[np..]) {
        sum += f64::from(f16_to_f32(a) * b);
    }
    sum as f32
}

/// Dot product of two rows of `k` little-endian bf16 values, as
/// `ggml_vec_dot_bf16` in llama.cpp's x86 AVX2 build: the first `k & !31`
/// elements go to 32 f32 lanes (lane `i % 32`, `acc = x * y + acc` with
/// the product rounded to f32, which matters only on underflow), the four
/// vectors are combined as `(c1 + c3) + (c2 + c4)` and summed as [`hsum8`],
/// widened to f64; the remaining f32 products are added in f64; the f64
/// sum is rounded to f32.
pub fn vec_dot_bf16(k: usize, w: &[u8], a: &[u8]) -> f32 {
    check_elems("bf16 weights", w, k, 2);
    check_elems("bf16 activations", a, k, 2);
    let np = k & !(LANES - 1);
    let mut acc = [0.0f32; LANES];
    for (wc, ac) in w[..2 * np]
        .chunks_exact(2 * LANES)
        .zip(a[..2 * np].chunks_exact(2 * LANES))
    {
        for ((s, x), y) in acc
            .iter_mut()
            .zip(wc.chunks_exact(2))
            .zip(ac.chunks_exact(2))
        {
            *s += bf16_to_f32(u16_le(x)) * bf16_to_f32(u16_le(y));
        }
    }
    let sum = f64::from(hsum8(&pair_lanes(&acc)));
    add_tail_16(sum, &w[2 * np..], &a[2 * np..], bf16_to_f32) as f32
}

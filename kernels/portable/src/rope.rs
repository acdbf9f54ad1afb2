//! Rotary position embedding of one head.

use crate::fma::fmaf;
/// The argument check of [`rope`], shared by every kernel set: returns
/// `n_rot = cs.len()`.
///
/// Panics if `cs.len()` is odd or larger than `x.len()`.
#[inline(always)]
pub fn check_rope(x: &[f32], cs: &[f32]) -> usize {
    let n_rot = cs.len();
    assert!(n_rot % 2 == 0, "rope: odd cs length {n_rot}");
    assert!(
        n_rot <= x.len(),
        "rope: n_rot {n_rot} > head dim {}",
        x.len()
    );
    n_rot
}

/// Rotates one head in place with the `(cos, sin)` pairs in `cs` (see
/// [`phi_edge::Kernels::rope`]), as ggml's `rotate_pairs`.
///
/// `n_rot = cs.len()`; pair `i < n_rot / 2` uses `cs[2i]`, `cs[2i + 1]`.
/// With `neox = false` (ggml `NORM`) pair `i` is `(x[2i], x[2i + 1])`; with
/// `neox = true` it is `(x[i], x[i + n_rot / 2])`. Each pair `(a, b)`
/// becomes `(a * cos - b * sin, a * sin + b * cos)`. `x[n_rot..]` is left
/// unchanged.
///
/// Rounding follows the oracle build (GCC 12, `-O3 -mavx2 -mfma
/// -ffp-contract=off`): for adjacent pairs (`neox = false`) GCC vectorizes
/// ggml's loop with `vfmaddsub` two or four pairs at a time, fusing the
/// first product of each output despite `-ffp-contract=off`:
/// `(fma(a, cos, -(b * sin)), fma(a, sin, b * cos))`; a last odd pair goes
/// through `vaddsubps`, unfused. The `neox` loop is not fused.
///
/// Panics if `cs.len()` is odd or larger than `x.len()`.
pub fn rope(x: &mut [f32], cs: &[f32], neox: bool) {
    let n_rot = check_rope(x, cs);
    let rot = &mut x[..n_rot];
    if neox {
        let (first, second) = rot.split_at_mut(n_rot / 2);
        for ((a, b), c) in first.iter_mut().zip(second).zip(cs.chunks_exact(2)) {
            (*a, *b) = rotate(*a, *b, c[0], c[1]);
        }
    } else {
        let fused = (n_rot / 2) & !1;
        for (i, (p, c)) in rot.chunks_exact_mut(2).zip(cs.chunks_exact(2)).enumerate() {
            (p[0], p[1]) = if i < fused {
                rotate_fused(p[0], p[1], c[0], c[1])
            } else {
                rotate(p[0], p[1], c[0], c[1])
            };
        }
    }
}

/// [`rotate`] with the first product of each output fused, as GCC's
/// `vfmaddsub` computes it.
#[inline(always)]
fn rotate_fused(a: f32, b: f32, cos: f32, sin: f32) -> (f32, f32) {
    (fmaf(a, cos, -(b * sin)), fmaf(a, sin, b * cos))
}

#[inline(always)]
fn rotate(a: f32, b: f32, cos: f32, sin: f32) -> (f32, f32) {
    (a * cos - b * sin, a * sin + b * cos)
}

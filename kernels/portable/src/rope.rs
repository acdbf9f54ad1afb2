//! Rotary position embedding of one head.

/// Rotates one head in place with the `(cos, sin)` pairs in `cs` (see
/// [`phi_edge::Kernels::rope`]), as ggml's `rotate_pairs`.
///
/// `n_rot = cs.len()`; pair `i < n_rot / 2` uses `cs[2i]`, `cs[2i + 1]`.
/// With `neox = false` (ggml `NORM`) pair `i` is `(x[2i], x[2i + 1])`; with
/// `neox = true` it is `(x[i], x[i + n_rot / 2])`. Each pair `(a, b)`
/// becomes `(a * cos - b * sin, a * sin + b * cos)`. `x[n_rot..]` is left
/// unchanged.
///
/// Panics if `cs.len()` is odd or larger than `x.len()`.
pub fn rope(x: &mut [f32], cs: &[f32], neox: bool) {
    let n_rot = cs.len();
    assert!(n_rot % 2 == 0, "rope: odd cs length {n_rot}");
    assert!(
        n_rot <= x.len(),
        "rope: n_rot {n_rot} > head dim {}",
        x.len()
    );
    let rot = &mut x[..n_rot];
    if neox {
        let (first, second) = rot.split_at_mut(n_rot / 2);
        for ((a, b), c) in first.iter_mut().zip(second).zip(cs.chunks_exact(2)) {
            (*a, *b) = rotate(*a, *b, c[0], c[1]);
        }
    } else {
        for (p, c) in rot.chunks_exact_mut(2).zip(cs.chunks_exact(2)) {
            (p[0], p[1]) = rotate(p[0], p[1], c[0], c[1]);
        }
    }
}

#[inline(always)]
fn rotate(a: f32, b: f32, cos: f32, sin: f32) -> (f32, f32) {
    (a * cos - b * sin, a * sin + b * cos)
}

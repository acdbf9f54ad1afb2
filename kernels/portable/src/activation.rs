//! Elementwise activations.

/// `silu(x) = x / (1 + expf(-x))`, as ggml's scalar `ggml_silu_f32`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// `out[i] = silu(gate[i]) * up[i]` (ggml's SwiGLU with the gate first).
///
/// Panics unless the three slices have the same length.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(
        gate.len() == up.len() && gate.len() == out.len(),
        "swiglu: gate, up, out lengths {} {} {} differ",
        gate.len(),
        up.len(),
        out.len()
    );
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}

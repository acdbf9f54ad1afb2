//! RMS normalization.

/// The argument check of [`rms_norm`], shared by every kernel set.
///
/// Panics unless `x`, `w` and `out` have the same length.
#[inline(always)]
pub fn check_rms_norm(x: &[f32], w: &[f32], out: &[f32]) {
    assert!(
        x.len() == w.len() && x.len() == out.len(),
        "rms_norm: x, w, out lengths {} {} {} differ",
        x.len(),
        w.len(),
        out.len()
    );
}

/// RMSNorm as `ggml_compute_forward_rms_norm_f32` followed by the weight
/// multiply: the sum of `x[i] * x[i]` (each square in f32) accumulated in
/// f64, `mean = sum / n` rounded to f32, `scale = 1 / sqrtf(mean + eps)`,
/// then `out[i] = (x[i] * scale) * w[i]`.
///
/// Panics unless `x`, `w` and `out` have the same length.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    check_rms_norm(x, w, out);
    let mut sum = 0.0f64;
    for &v in x {
        sum += f64::from(v * v);
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / libm::sqrtf(mean + eps);
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

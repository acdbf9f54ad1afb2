//! The Walsh-Hadamard rotation llama.cpp applies around a quantized KV
//! cache (`attn_rot_k` / `attn_rot_v` in `llama-kv-cache.cpp`).
//!
//! With a quantized K cache and a head width that is a multiple of 64,
//! llama.cpp multiplies each query and key, in pieces of `n` values, by the
//! orthonormal `n x n` Hadamard matrix (Sylvester order) before K is
//! quantized; `n` is the largest power of two from 64 up that divides the
//! head width. With a quantized V cache and such a head width it does the
//! same to each value in pieces of 64, and to attention's output after it
//! (the matrix is its own inverse). The rotation spreads outliers over
//! a block, so Q8_0 rounds them more gently; dot products are unchanged
//! up to rounding. Its CPU backend computes the product as a fast
//! transform (`ggml_compute_forward_fwht`): each value times `1 / sqrt(n)`,
//! then butterflies `(u, v) -> (u + v, u - v)` over distances 1, 2, 4, ...,
//! `n / 2`, each a single f32 rounding, so the result does not depend on
//! how a pass is vectorized.

/// The rotation sizes for a head width `head_dim` and a quantized cache:
/// `(keys and queries, values)`, `None` where llama.cpp rotates nothing
/// (a head width that is not a multiple of 64).
pub const fn sizes(head_dim: usize) -> (Option<usize>, Option<usize>) {
    if head_dim == 0 || head_dim % 64 != 0 {
        return (None, None);
    }
    let mut n = 64;
    while head_dim % (n * 2) == 0 {
        n *= 2;
    }
    (Some(n), Some(64))
}

/// Rotates each piece of `n` consecutive values of `x` (`n` a power of two
/// dividing `x.len()`) by the orthonormal Hadamard matrix, as ggml's CPU
/// `fwht` computes it.
pub fn rotate(x: &mut [f32], n: usize) {
    debug_assert!(n.is_power_of_two() && x.len() % n == 0);
    let scale = 1.0 / libm::sqrtf(n as f32);
    for row in x.chunks_exact_mut(n) {
        row.iter_mut().for_each(|v| *v *= scale);
        let mut len = 1;
        while len < n {
            for pair in row.chunks_exact_mut(2 * len) {
                let (a, b) = pair.split_at_mut(len);
                for (u, v) in a.iter_mut().zip(b) {
                    (*u, *v) = (*u + *v, *u - *v);
                }
            }
            len *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_llama_cpp() {
        assert_eq!(sizes(32), (None, None));
        assert_eq!(sizes(96), (None, None));
        assert_eq!(sizes(64), (Some(64), Some(64)));
        assert_eq!(sizes(128), (Some(128), Some(64)));
        assert_eq!(sizes(192), (Some(64), Some(64)));
        assert_eq!(sizes(256), (Some(256), Some(64)));
    }

    #[test]
    fn rotation_is_the_hadamard_matrix_and_its_own_inverse() {
        let n = 64;
        let x: [f32; 64] = core::array::from_fn(|i| (i as f32 * 0.37).sin());
        let mut y = x;
        rotate(&mut y, n);
        // Row i of the Sylvester Hadamard matrix: (-1)^popcount(i & j).
        for (i, &yi) in y.iter().enumerate() {
            let want: f64 = x
                .iter()
                .enumerate()
                .map(|(j, &xj)| {
                    let s = if (i & j).count_ones() % 2 == 0 {
                        1.0
                    } else {
                        -1.0
                    };
                    s * f64::from(xj)
                })
                .sum::<f64>()
                / 8.0;
            assert!((f64::from(yi) - want).abs() < 1e-5, "{i}: {yi} vs {want}");
        }
        rotate(&mut y, n);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

//! The RoPE table: the cos/sin pair of every rotary angle, built as ggml's
//! rope cache builds it, so the rotation rounds as llama.cpp's does.
//!
//! The session builds the rows it needs per chunk, unless the image carries
//! them: the packer writes the first positions' rows as the `rope_cache`
//! tensor with the host's `sinf`/`cosf`, which a `no_std` build (whose
//! `libm` crate rounds differently on a few angles) then reads rather than
//! computes.

use crate::config::Config;
use crate::math;

/// Rows the packer writes at most (1.5 MiB for Phi-3-mini's 96 rotary
/// dimensions).
pub const MAX_CACHE_ROWS: u32 = 4096;

/// Positions of the table the packer writes for `cfg`: the trained
/// context, capped at LongRoPE's original context (where the short factors
/// apply) and at [`MAX_CACHE_ROWS`].
pub const fn cache_rows(cfg: &Config) -> u32 {
    let ctx = if cfg.n_ctx_train < cfg.n_ctx_orig {
        cfg.n_ctx_train
    } else {
        cfg.n_ctx_orig
    };
    if ctx < MAX_CACHE_ROWS {
        ctx
    } else {
        MAX_CACHE_ROWS
    }
}

/// Fills `out` with the rows of positions `p0..p0 + out.len() / n_rot`:
/// `theta_i = p * base^(-2i/n_rot)` built by repeated multiplication in
/// f32, divided by the frequency factor `freq[i]`, scaled linearly, then
/// `cos`/`sin` times the attention factor (see [`math`] for whose `sinf`
/// and `cosf`).
pub(crate) fn fill(cfg: &Config, freq: &[f32], p0: usize, out: &mut [f32]) {
    let n_rot = cfg.n_rot as usize;
    let theta_scale = math::powf(cfg.rope_theta, -2.0 / n_rot as f32);
    for (t, cs) in out.chunks_exact_mut(n_rot).enumerate() {
        let mut theta = (p0 + t) as f32;
        for (pair, &f) in cs.chunks_exact_mut(2).zip(freq) {
            let th = cfg.rope_freq_scale * (theta / f);
            let (sin, cos) = math::sin_cos(th);
            pair[0] = cos * cfg.rope_attn_factor;
            pair[1] = sin * cfg.rope_attn_factor;
            theta *= theta_scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::tiny_phi3;

    #[test]
    fn the_table_covers_the_short_factors_context_up_to_the_cap() {
        let mut c = tiny_phi3();
        assert_eq!(cache_rows(&c), 4096);
        c.n_ctx_train = 131_072;
        c.n_ctx_orig = 4096;
        assert_eq!(cache_rows(&c), 4096, "LongRoPE: the original context");
        c.n_ctx_orig = 131_072;
        assert_eq!(cache_rows(&c), MAX_CACHE_ROWS);
        c.n_ctx_train = 64;
        c.n_ctx_orig = 64;
        assert_eq!(cache_rows(&c), 64);
    }

    #[test]
    fn rows_do_not_depend_on_where_a_chunk_starts() {
        let c = tiny_phi3();
        let n_rot = c.n_rot as usize;
        let freq = [1.0f32, 0.5, 2.0, 1.5, 1.0, 1.0, 3.0, 1.0];
        let mut all = [0.0; 40 * 16];
        fill(&c, &freq, 0, &mut all);
        let mut part = [0.0; 7 * 16];
        fill(&c, &freq, 33, &mut part);
        assert_eq!(&all[33 * n_rot..], &part[..]);
        // Position 0: every angle is 0.
        assert!(all[..n_rot].chunks(2).all(|p| p == [1.0, 0.0]));
    }
}

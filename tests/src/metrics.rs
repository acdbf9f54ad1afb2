//! Parity metrics between our logits and llama.cpp's, per position.

/// How one position compares.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    /// rms(ours - ref) / std(ref).
    pub nrmse: f64,
    /// KL(softmax(ref) || softmax(ours)).
    pub kl: f64,
    /// Whether the argmax agrees.
    pub argmax_equal: bool,
    /// The reference's top-1 minus top-2 logit, over std(ref).
    pub ref_gap_over_std: f64,
}

/// Compares one position.
pub fn compare(ours: &[f32], reference: &[f32]) -> Position {
    assert_eq!(ours.len(), reference.len());
    let n = reference.len() as f64;
    let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = reference
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt().max(f64::MIN_POSITIVE);
    let mse = ours
        .iter()
        .zip(reference)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        / n;
    let (p_ref, p_ours) = (log_softmax(reference), log_softmax(ours));
    let kl = p_ref
        .iter()
        .zip(&p_ours)
        .map(|(&lr, &lo)| lr.exp() * (lr - lo))
        .sum::<f64>();
    let (top_ref, second_ref) = top2(reference);
    let (top_ours, _) = top2(ours);
    Position {
        nrmse: mse.sqrt() / std,
        kl: kl.max(0.0),
        argmax_equal: top_ref.0 == top_ours.0,
        ref_gap_over_std: (top_ref.1 - second_ref.1) as f64 / std,
    }
}

fn log_softmax(x: &[f32]) -> Vec<f64> {
    let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let lse = x.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    x.iter().map(|&v| v as f64 - lse).collect()
}

/// (index, value) of the largest and second-largest values.
fn top2(x: &[f32]) -> ((usize, f32), (usize, f32)) {
    let mut a = (0, f32::NEG_INFINITY);
    let mut b = (0, f32::NEG_INFINITY);
    for (i, &v) in x.iter().enumerate() {
        if v > a.1 {
            b = a;
            a = (i, v);
        } else if v > b.1 {
            b = (i, v);
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_logits_compare_perfectly_and_noise_does_not() {
        let r: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let p = compare(&r, &r);
        assert_eq!(p.nrmse, 0.0);
        assert!(p.kl.abs() < 1e-12);
        assert!(p.argmax_equal);
        let noisy: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        assert!(compare(&noisy, &r).nrmse > 0.1);
        assert!(compare(&noisy, &r).kl > 1e-3);
    }
}

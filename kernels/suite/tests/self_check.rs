//! The suite catches a kernel set that is slightly off.

use phi_edge::kernels::F16Bits;
use phi_edge::{ActFormat, AttnArgs, AttnQ8Args, DType, Kernels, MatOut, MatmulArgs};
use phi_edge_portable::Portable;

/// Portable, except that Q4_K matmul results are 1e-5 relative too large
/// and swiglu's last value is perturbed by one ulp.
struct Off;

impl Kernels for Off {
    fn name(&self) -> &'static str {
        "off"
    }
    fn quantize_act(&self, fmt: ActFormat, x: &[f32], out: &mut [u8]) {
        Portable.quantize_act(fmt, x, out)
    }
    fn matmul(&self, m: &MatmulArgs<'_>, out: &mut MatOut<'_>) {
        Portable.matmul(m, out);
        if m.dtype == DType::Q4K && m.rows > 0 {
            out.token(0)[0] *= 1.0 + 1e-5;
        }
    }
    fn dequantize_row(&self, dtype: DType, src: &[u8], out: &mut [f32]) {
        Portable.dequantize_row(dtype, src, out)
    }
    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        Portable.rms_norm(x, w, eps, out)
    }
    fn rope(&self, x: &mut [f32], cs: &[f32], neox: bool) {
        Portable.rope(x, cs, neox)
    }
    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        Portable.swiglu(gate, up, out);
        if let Some(v) = out.last_mut() {
            if v.is_finite() && *v != 0.0 {
                *v = f32::from_bits(v.to_bits() + 1);
            }
        }
    }
    fn f32_to_f16(&self, src: &[f32], dst: &mut [F16Bits]) {
        Portable.f32_to_f16(src, dst)
    }
    fn attention(&self, a: &AttnArgs<'_>, scratch: &mut [f32], out: &mut [f32]) {
        Portable.attention(a, scratch, out)
    }
    fn attention_q8_0(&self, a: &AttnQ8Args<'_>, out: &mut [f32]) {
        Portable.attention_q8_0(a, out)
    }
}

#[test]
fn flags_errors_and_non_identical_results() {
    let r = phi_edge_kernel_suite::run_all(&Off);
    println!("{r}");
    assert!(r.get("matmul q4_K proj").unwrap().failed > 0);
    let sw = r.get("swiglu").unwrap();
    assert!(sw.failed == 0 && sw.identical < sw.cases && sw.max_rel > 0.0);
    assert_eq!(r.get("matmul q4_0 proj").unwrap().failed, 0);
    assert!(r.not_identical().contains(&"swiglu"));
}

#[test]
fn bench_runs_every_kernel() {
    let lines = phi_edge_kernel_suite::bench(&Portable, 256, 1);
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(lines.iter().filter(|l| l.gb_per_s.is_some()).count(), 8);
    assert!(lines.iter().all(|l| l.ns_per_call > 0.0));
}

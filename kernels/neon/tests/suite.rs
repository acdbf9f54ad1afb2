//! The shared conformance suite against the NEON sets, under qemu-user
//! (see the crate docs for the commands).
#![cfg(all(target_arch = "aarch64", target_feature = "neon"))]

use phi_edge_kernel_suite::{run_all, summary};
use phi_edge_neon::{Neon, NeonDot};

#[test]
fn neon_matches_portable_bit_for_bit() {
    let report = run_all(&Neon);
    println!("{report}");
    println!("{}", summary(&report));
    report.assert_bit_identical();
}

/// The dotprod set, when the CPU has the extension (`qemu-aarch64 -cpu
/// max`); skipped with a message otherwise (the default runner models a
/// Cortex-A53).
#[test]
fn neon_dotprod_matches_portable_bit_for_bit() {
    let Some(set) = NeonDot::detect() else {
        println!("neon+dotprod: skipped, the CPU has no dotprod (0 cases)");
        return;
    };
    let report = run_all(&set);
    println!("{report}");
    println!("{}", summary(&report));
    report.assert_bit_identical();
}

/// With `-C target-feature=+dotprod` the safe constructor exists and the
/// CPU must have the extension.
#[cfg(target_feature = "dotprod")]
#[test]
fn dotprod_build_constructs_safely() {
    assert!(
        NeonDot::detect().is_some(),
        "built for dotprod, CPU lacks it"
    );
    assert_eq!(phi_edge::Kernels::name(&NeonDot::new()), "neon+dotprod");
}

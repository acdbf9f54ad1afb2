//! The shared conformance suite against the x86 set: every kernel must be
//! bit-identical to portable.
#![cfg(target_arch = "x86_64")]

use phi_edge_kernel_suite::{run_all, summary};
use phi_edge_x86::Avx2;

#[test]
fn avx2_matches_portable_bit_for_bit() {
    let Some(set) = Avx2::detect() else {
        println!("avx2: skipped, the CPU lacks AVX2, FMA or F16C (0 cases)");
        return;
    };
    let report = run_all(&set);
    println!("{report}");
    println!("{}", summary(&report));
    report.assert_bit_identical();
}

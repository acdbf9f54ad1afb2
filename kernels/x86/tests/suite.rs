//! The shared conformance suite against the x86 sets: every kernel must be
//! bit-identical to portable.
#![cfg(target_arch = "x86_64")]

use phi_edge::Kernels;
use phi_edge_kernel_suite::{run_all, summary};
use phi_edge_x86::{Avx2, Avx512};

fn check<K: Kernels>(set: &K) {
    let report = run_all(set);
    println!("{report}");
    println!("{}", summary(&report));
    report.assert_bit_identical();
}

#[test]
fn avx2_matches_portable_bit_for_bit() {
    match Avx2::detect() {
        Some(set) => check(&set),
        None => println!("avx2: skipped, the CPU lacks AVX2, FMA or F16C (0 cases)"),
    }
}

#[test]
fn avx512vnni_matches_portable_bit_for_bit() {
    match Avx512::detect() {
        Some(set) => check(&set),
        None => println!("avx512vnni: skipped, the CPU lacks AVX-512 F, BW, VL or VNNI (0 cases)"),
    }
}

//! The shared kernel conformance suite run against the portable set
//! itself: trivially bit-identical, it proves the suite runs natively.

use phi_edge_portable::Portable;

#[test]
fn conformance_suite_against_itself() {
    let report = phi_edge_kernel_suite::run_all(&Portable);
    println!("{report}");
    println!("{}", phi_edge_kernel_suite::summary(&report));
    report.assert_bit_identical();
    assert!(report.cases() > 1000);
}

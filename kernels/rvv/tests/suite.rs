//! The shared conformance suite against the RVV set, under qemu-user at
//! the runner's VLEN (see README.md for the commands at 128, 256, 512).
#![cfg(target_arch = "riscv64")]

use phi_edge::Kernels;
use phi_edge_kernel_suite::{run_all, summary};
use phi_edge_rvv::Rvv;

/// The set on this CPU. Fails, never skips, when the CPU has no V: a
/// runner without `-cpu rv64,v=true` is a misconfiguration.
fn rvv() -> Rvv {
    Rvv::detect().expect(
        "the CPU reports no V extension (AT_HWCAP); run under \
         qemu-riscv64 -cpu rv64,v=true,vlen=N",
    )
}

#[test]
fn rvv_matches_portable_bit_for_bit() {
    let set = rvv();
    println!("VLEN {}", set.vlen());
    let report = run_all(&set);
    println!("{report}");
    println!("{}", summary(&report));
    report.assert_bit_identical();
}

#[test]
fn name_reports_the_vlen() {
    let set = rvv();
    let vlen = set.vlen();
    assert!(vlen >= 128 && vlen.is_power_of_two(), "VLEN {vlen}");
    assert_eq!(set.name(), format!("rvv (VLEN {vlen})"));
}

/// Throughput of this set next to portable (`-- --ignored`). Under qemu
/// the times measure emulation, not hardware; they still show which
/// kernels run vector code.
#[test]
#[ignore = "timing; run with -- --ignored --nocapture"]
fn bench_against_portable() {
    let set = rvv();
    let ours = phi_edge_kernel_suite::bench(&set, 1024, 100);
    let base = phi_edge_kernel_suite::bench(&phi_edge_portable::Portable, 1024, 100);
    println!("{:<32} {:>12} {:>12}", "kernel", set.name(), "portable");
    for (o, b) in ours.iter().zip(&base) {
        println!(
            "{:<32} {:>9.0} ns {:>9.0} ns  x{:.2}",
            o.what,
            o.ns_per_call,
            b.ns_per_call,
            b.ns_per_call / o.ns_per_call
        );
    }
}

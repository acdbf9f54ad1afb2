//! The integer f16 <-> f32 conversions of the RVV set over every f16
//! value and the f32 rounding boundaries, against the portable set (the
//! shared suite samples them; these sweep them).
#![cfg(target_arch = "riscv64")]

use phi_edge::{DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::float::f16_to_f32;
use phi_edge_portable::Portable;
use phi_edge_rvv::Rvv;

fn rvv() -> Rvv {
    Rvv::detect().expect("the CPU reports no V extension; run under qemu-riscv64 -cpu rv64,v=true")
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Every f16 value widened by the F16 dot product: row `h` of an F16
/// matmul is `[h, 0, .., 0]` (32 values, so the vector lanes take it),
/// times `[1, 0, .., 0]`.
#[test]
fn every_f16_widens_as_portable() {
    let set = rvv();
    let k = 32;
    let rows = 1 << 16;
    let mut w = vec![0u8; rows * 2 * k];
    for (h, r) in w.chunks_exact_mut(2 * k).enumerate() {
        r[..2].copy_from_slice(&(h as u16).to_le_bytes());
    }
    let mut a = vec![0u8; 2 * k];
    a[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
    let (mut got, mut want) = (vec![0.0f32; rows], vec![0.0f32; rows]);
    let m = MatmulArgs {
        dtype: DType::F16,
        usage: WeightUse::Projection,
        w: &w,
        k,
        rows,
        act: &a,
        n_tok: 1,
    };
    set.matmul(&m, &mut MatOut::row(&mut got));
    Portable.matmul(&m, &mut MatOut::row(&mut want));
    for h in 0..rows {
        assert!(
            same(got[h], want[h]),
            "f16 {h:#06x}: {} vs {}",
            got[h],
            want[h]
        );
    }
    println!("{}: {rows} f16 values widened", set.name());
}

/// f32 to f16 on a stride through all f32 bit patterns, and on every
/// rounding tie between adjacent f16 values and its two f32 neighbours.
#[test]
fn f32_to_f16_rounds_as_portable() {
    let set = rvv();
    let mut x: Vec<f32> = (0..u32::MAX / 997)
        .map(|i| f32::from_bits(i * 997))
        .collect();
    for h in 0..0x7c00u16 {
        let mid = (f64::from(f16_to_f32(h)) + f64::from(f16_to_f32(h + 1))) / 2.0;
        let m = (mid as f32).to_bits();
        for b in [m - 1, m, m + 1] {
            x.push(f32::from_bits(b));
            x.push(-f32::from_bits(b));
        }
    }
    let (mut got, mut want) = (vec![0u16; x.len()], vec![0u16; x.len()]);
    set.f32_to_f16(&x, &mut got);
    Portable.f32_to_f16(&x, &mut want);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "f32 {:#010x}", x[i].to_bits());
    }
    println!("{}: {} f32 values rounded to f16", set.name(), x.len());
}

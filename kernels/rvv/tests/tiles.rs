//! Tile edges the shared suite does not reach: more than 8 tokens (a full
//! tile of 16, a second, narrower tile of tokens) with several chunks of
//! blocks, each product bit-identical to the portable oracle.
#![cfg(target_arch = "riscv64")]

use phi_edge::{DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::testing::Rng;
use phi_edge_portable::Portable;
use phi_edge_rvv::Rvv;

/// Random weights whose f16 scale fields are random normal values in
/// `[2^-14, 2^-7)` (random bytes elsewhere).
fn weights(rng: &mut Rng, dtype: DType, rows: usize, k: usize) -> Vec<u8> {
    let mut w = vec![0u8; rows * dtype.row_bytes(k).unwrap()];
    rng.fill_bytes(&mut w);
    let scales: &[usize] = match dtype {
        DType::Q8_0 | DType::Q4_0 => &[0],
        DType::Q4_1 | DType::Q4K => &[0, 2],
        DType::Q6K => &[208],
        _ => unreachable!(),
    };
    for b in w.chunks_exact_mut(dtype.block_bytes()) {
        for &o in scales {
            let h = 0x0400 + (rng.next_u64() % 0x1c00) as u16;
            b[o..o + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    w
}

#[test]
fn wide_token_tiles_match_portable_bit_for_bit() {
    let set = Rvv::detect().expect("no V");
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for dtype in [
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q4K,
        DType::Q6K,
    ] {
        // Two and a half chunks of blocks: 160 blocks of 32 values (chunks
        // of 64), 20 of 256 (chunks of 8).
        let k = 5120;
        for (rows, n_tok) in [(5usize, 9usize), (8, 16), (7, 17), (4, 40)] {
            let w = weights(&mut rng, dtype, rows, k);
            let fmt = dtype.act_format();
            let ab = fmt.row_bytes(k).unwrap();
            let mut x = vec![0.0f32; k];
            let mut act = vec![0u8; n_tok * ab];
            for ar in act.chunks_exact_mut(ab) {
                rng.fill_uniform(&mut x, -2.0, 2.0);
                Portable.quantize_act(fmt, &x, ar);
            }
            for usage in [WeightUse::Projection, WeightUse::TiedEmbedding] {
                let m = MatmulArgs {
                    dtype,
                    usage,
                    w: &w,
                    k,
                    rows,
                    act: &act,
                    n_tok,
                };
                let mut ours = vec![f32::NAN; n_tok * rows];
                let mut want = vec![f32::NAN; n_tok * rows];
                set.matmul(&m, &mut MatOut::new(&mut ours, rows, n_tok, rows));
                Portable.matmul(&m, &mut MatOut::new(&mut want, rows, n_tok, rows));
                for (i, (o, e)) in ours.iter().zip(&want).enumerate() {
                    assert!(
                        o.is_finite() && *o != 0.0,
                        "{} {usage:?}: output {i} is {o}",
                        dtype.name()
                    );
                    assert_eq!(
                        o.to_bits(),
                        e.to_bits(),
                        "{} {usage:?} rows {rows} n_tok {n_tok}: token {} row {}: {o} vs {e}",
                        dtype.name(),
                        i / rows,
                        i % rows
                    );
                }
                checked += 1;
            }
        }
    }
    println!("{}: {checked} wide-tile matmuls bit-identical", set.name());
}

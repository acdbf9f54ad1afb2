//! CPU time of the quantized matmuls at decode (1 token) and prefill (16
//! and 64 tokens) widths (`-- --ignored --nocapture`). Under qemu-user the
//! times measure emulation, a proxy for the instructions each tile runs;
//! the thread's CPU time (not wall time) keeps other load on the host out.
#![cfg(target_arch = "riscv64")]

use phi_edge::{DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_portable::testing::Rng;
use phi_edge_rvv::Rvv;

/// Random weights of `rows x k` with every f16 scale field set to a
/// normal value, so no block computes with NaN or infinity.
fn weights(rng: &mut Rng, dtype: DType, rows: usize, k: usize) -> Vec<u8> {
    let mut w = vec![0u8; rows * dtype.row_bytes(k).unwrap()];
    rng.fill_bytes(&mut w);
    let (bb, scales): (usize, &[usize]) = match dtype {
        DType::Q8_0 | DType::Q4_0 => (dtype.block_bytes(), &[0]),
        DType::Q4_1 | DType::Q4K => (dtype.block_bytes(), &[0, 2]),
        DType::Q6K => (dtype.block_bytes(), &[208]),
        _ => unreachable!(),
    };
    for b in w.chunks_exact_mut(bb) {
        for &o in scales {
            b[o..o + 2].copy_from_slice(&0x2c00u16.to_le_bytes());
        }
    }
    w
}

/// This thread's CPU time in milliseconds.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

#[test]
#[ignore = "timing; run with -- --ignored --nocapture"]
fn bench_quant_matmul_tiles() {
    let set = Rvv::detect().expect("no V");
    let (rows, k) = (128, 1024);
    let mut rng = Rng::new(7);
    println!(
        "{} matmul {rows} x {k}, CPU ms per call (min of 30 calls, 10 at 64 tokens)",
        set.name()
    );
    for (dtype, usage) in [
        (DType::Q8_0, WeightUse::Projection),
        (DType::Q4_0, WeightUse::Projection),
        (DType::Q4_0, WeightUse::TiedEmbedding),
        (DType::Q4_1, WeightUse::Projection),
        (DType::Q4K, WeightUse::Projection),
        (DType::Q4K, WeightUse::TiedEmbedding),
        (DType::Q6K, WeightUse::Projection),
    ] {
        let w = weights(&mut rng, dtype, rows, k);
        let fmt = dtype.act_format();
        let mut line = format!("{:<6} {:<14}", dtype.name(), format!("{usage:?}"));
        for n_tok in [1usize, 16, 64] {
            let mut x = vec![0.0f32; n_tok * k];
            rng.fill_uniform(&mut x, -1.0, 1.0);
            let ab = fmt.row_bytes(k).unwrap();
            let mut act = vec![0u8; n_tok * ab];
            for (xr, ar) in x.chunks_exact(k).zip(act.chunks_exact_mut(ab)) {
                phi_edge_portable::Portable.quantize_act(fmt, xr, ar);
            }
            let mut out = vec![0.0f32; n_tok * rows];
            let m = MatmulArgs {
                dtype,
                usage,
                w: &w,
                k,
                rows,
                act: &act,
                n_tok,
            };
            let mut best = f64::MAX;
            // The minimum of many calls: a call that ran alone on its core.
            for _ in 0..if n_tok < 64 { 30 } else { 10 } {
                let t = cpu_ms();
                set.matmul(&m, &mut MatOut::new(&mut out, rows, n_tok, rows));
                best = best.min(cpu_ms() - t);
            }
            line += &format!(
                "  n_tok {n_tok:>2}: {best:>8.1} ms ({:>6.2} ms/tok)",
                best / n_tok as f64
            );
        }
        println!("{line}");
    }
}

/// Marks the start of the counted region in a qemu `-d exec` trace.
#[inline(never)]
#[no_mangle]
pub extern "C" fn tile_count_start() {
    std::hint::black_box(());
}

/// Marks the end of the counted region in a qemu `-d exec` trace.
#[inline(never)]
#[no_mangle]
pub extern "C" fn tile_count_end() {
    std::hint::black_box(());
}

/// One matmul of 64 rows between [`tile_count_start`] and
/// [`tile_count_end`], for counting its executed instructions under
/// `qemu-riscv64 -one-insn-per-tb -d exec,nochain`: `TILE_COUNT` is
/// `<dtype> <proj|tied> <n_tok> [k]` (`k` 1024 unless given), e.g.
/// `q4_1 proj 16 576`. The two markers may be folded into one function
/// (identical code): the counted region runs from its first address hit
/// in the trace to its second.
#[test]
#[ignore = "instruction counts; see xtask-less recipe in the doc comment"]
fn count_one() {
    let Ok(spec) = std::env::var("TILE_COUNT") else {
        return;
    };
    let mut it = spec.split_whitespace();
    let name = it.next().unwrap();
    let dtype = DType::ALL.into_iter().find(|d| d.name() == name).unwrap();
    let usage = if it.next().unwrap() == "proj" {
        WeightUse::Projection
    } else {
        WeightUse::TiedEmbedding
    };
    let n_tok: usize = it.next().unwrap().parse().unwrap();
    let k: usize = it.next().map_or(1024, |k| k.parse().unwrap());
    let set = Rvv::detect().expect("no V");
    let rows = 64;
    let mut rng = Rng::new(7);
    let w = weights(&mut rng, dtype, rows, k);
    let fmt = dtype.act_format();
    let ab = fmt.row_bytes(k).unwrap();
    let mut x = vec![0.0f32; k];
    rng.fill_uniform(&mut x, -1.0, 1.0);
    let mut act = vec![0u8; n_tok * ab];
    phi_edge_portable::Portable.quantize_act(fmt, &x, &mut act[..ab]);
    for t in 1..n_tok {
        act.copy_within(..ab, t * ab);
    }
    let mut out = vec![0.0f32; n_tok * rows];
    let m = MatmulArgs {
        dtype,
        usage,
        w: &w,
        k,
        rows,
        act: &act,
        n_tok,
    };
    eprintln!(
        "tile_count_start at {:#x}",
        tile_count_start as *const () as usize
    );
    tile_count_start();
    set.matmul(&m, &mut MatOut::new(&mut out, rows, n_tok, rows));
    tile_count_end();
    std::hint::black_box(&out);
}

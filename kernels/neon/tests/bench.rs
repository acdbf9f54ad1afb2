//! Quantized matmul timings at decode (1 token) and prefill (16, 64
//! tokens) shapes, for comparing tilings under qemu-user by CPU time (a
//! proxy only: emulated time says little about a real core). Ignored by
//! default:
//!
//! ```text
//! cargo test --release -p phi-edge-neon --target aarch64-unknown-linux-gnu \
//!     --test bench -- --ignored --nocapture
//! ```
#![cfg(all(target_arch = "aarch64", target_feature = "neon"))]

use phi_edge::{DType, Kernels, MatOut, MatmulArgs, WeightUse};
use phi_edge_neon::{Neon, NeonDot};

/// Weight rows and values per row of the benchmarked matrices.
const ROWS: usize = 256;
/// Values per row.
const COLS: usize = 2048;
/// Weight rows of the single calls whose instructions are counted.
const ROWS_ONCE: usize = 32;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `rows` random weight rows of `dtype` with finite, moderate f16 scales.
fn weights(rng: &mut Rng, dtype: DType, rows: usize) -> Vec<u8> {
    let n = dtype.row_bytes(COLS).unwrap() * rows;
    let mut w: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let (block, scales): (usize, &[usize]) = match dtype {
        DType::Q8_0 => (34, &[0]),
        DType::Q4_0 => (18, &[0]),
        DType::Q4_1 => (20, &[0, 2]),
        DType::Q4K => (144, &[0, 2]),
        DType::Q6K => (210, &[208]),
        _ => unreachable!(),
    };
    for b in w.chunks_exact_mut(block) {
        for &o in scales {
            // An f16 in [2^-8, 2^-7).
            let h = 0x1c00u16 | (rng.next() as u16 & 0x3ff);
            b[o..o + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    w
}

/// `struct timespec` of aarch64 Linux.
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// This process's CPU time in ns (`CLOCK_PROCESS_CPUTIME_ID`): under
/// qemu-user, the emulator's own time, which other load on the host
/// disturbs far less than wall time.
fn cpu_ns() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid `timespec` to write; clock 2 is
    // `CLOCK_PROCESS_CPUTIME_ID`.
    let rc = unsafe { clock_gettime(2, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.sec as f64 * 1e9 + ts.nsec as f64
}

/// Mean CPU ns per call of `f`, run for at least `min_ms` of CPU time.
fn time<F: FnMut()>(min_ms: u64, mut f: F) -> f64 {
    f();
    let (t, mut n) = (cpu_ns(), 0u64);
    loop {
        f();
        n += 1;
        let e = cpu_ns() - t;
        if e >= min_ms as f64 * 1e6 {
            return e / n as f64;
        }
    }
}

/// The benchmarked (type, use) pairs.
const CASES: [(DType, WeightUse); 7] = [
    (DType::Q8_0, WeightUse::Projection),
    (DType::Q4_0, WeightUse::Projection),
    (DType::Q4_0, WeightUse::TiedEmbedding),
    (DType::Q4_1, WeightUse::Projection),
    (DType::Q4K, WeightUse::Projection),
    (DType::Q4K, WeightUse::TiedEmbedding),
    (DType::Q6K, WeightUse::Projection),
];

/// Token counts: decode, then prefill.
const N_TOKS: [usize; 3] = [1, 16, 64];

/// `proj` or `tied`.
fn use_name(usage: WeightUse) -> &'static str {
    match usage {
        WeightUse::Projection => "proj",
        WeightUse::TiedEmbedding => "tied",
    }
}

/// Times `kern` on case `(dtype, usage)` with `n_tok` tokens: CPU ns per
/// token, or with `once` one call on [`ROWS_ONCE`] rows and no timing
/// (for counting instructions).
fn run_case<S: Kernels>(kern: &S, dtype: DType, usage: WeightUse, n_tok: usize, once: bool) -> f64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n_tok as u64) << 32);
    let rows = if once { ROWS_ONCE } else { ROWS };
    let w = weights(&mut rng, dtype, rows);
    let fmt = dtype.act_format();
    let x: Vec<f32> = (0..n_tok * COLS)
        .map(|_| (rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect();
    let rb = fmt.row_bytes(COLS).unwrap();
    let mut a = vec![0u8; n_tok * rb];
    for (xr, ar) in x.chunks_exact(COLS).zip(a.chunks_exact_mut(rb)) {
        kern.quantize_act(fmt, xr, ar);
    }
    let mut out = vec![0.0f32; n_tok * rows];
    let mut call = || {
        let m = MatmulArgs {
            dtype,
            usage,
            w: &w,
            k: COLS,
            rows,
            act: &a,
            n_tok,
        };
        kern.matmul(&m, &mut MatOut::new(&mut out, rows, n_tok, rows));
    };
    if once {
        call();
        return 0.0;
    }
    time(300, call) / n_tok as f64
}

fn bench<S: Kernels>(kern: &S) {
    for (dtype, usage) in CASES {
        for n_tok in N_TOKS {
            let ns = run_case(kern, dtype, usage, n_tok, false);
            println!(
                "{:<14} {:<6} {} {:>4}x{:<5} n_tok {:>3}: {:>10.0} ns/token",
                kern.name(),
                dtype.name(),
                use_name(usage),
                ROWS,
                COLS,
                n_tok,
                ns
            );
        }
    }
}

#[test]
#[ignore]
fn matmul_timings() {
    bench(&Neon);
    if let Some(dot) = NeonDot::detect() {
        bench(&dot);
    }
}

/// One call of the case named by `NEON_BENCH_ONE` (`set type use n_tok`,
/// e.g. `neon+dotprod q4_K proj 16`), for counting the instructions it
/// executes under `qemu-aarch64 -one-insn-per-tb -d exec,nochain`.
#[test]
#[ignore]
fn matmul_once() {
    // The load address of this function, to relocate `nm`'s addresses
    // into the trace.
    println!("matmul_once at {:#x}", matmul_once as fn() as usize);
    let Ok(spec) = std::env::var("NEON_BENCH_ONE") else {
        return;
    };
    let f: Vec<&str> = spec.split_whitespace().collect();
    let (dtype, usage) = CASES
        .into_iter()
        .find(|&(d, u)| d.name() == f[1] && use_name(u) == f[2])
        .expect("case");
    let n_tok: usize = f[3].parse().unwrap();
    match f[0] {
        "neon" => run_case(&Neon, dtype, usage, n_tok, true),
        _ => run_case(&NeonDot::detect().unwrap(), dtype, usage, n_tok, true),
    };
}

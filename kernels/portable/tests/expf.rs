//! The portable `expf` against the C library's on the host that writes
//! the goldens: glibc on x86-64 picks its FMA build of `expf` on every CPU
//! with AVX2 and FMA, which llama.cpp's flash attention calls. Both must
//! agree to the bit (checked over every f32 once, when the kernel was
//! written; here on a spread of 2^22 of them and on the whole range the
//! online softmax meets most, `[-16, 0]`, at a stride of 7).

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn expf_is_glibcs() {
    extern "C" {
        fn expf(x: f32) -> f32;
    }
    if !(std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2"))
    {
        println!("glibc uses its non-FMA expf on this CPU: nothing to compare");
        return;
    }
    let libc = |x: f32| {
        // SAFETY: glibc's `expf` is a pure function of its argument.
        unsafe { expf(x) }
    };
    let spread = (0..1u64 << 22).map(|i| (i * 1023) as u32);
    let softmax = (0u32..0x4180_0000).step_by(7).map(|b| b | 0x8000_0000);
    let mut n = 0u64;
    for b in spread.chain(softmax) {
        let x = f32::from_bits(b);
        let (ours, theirs) = (phi_edge_portable::expf::expf(x), libc(x));
        assert!(
            ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()),
            "expf({x:e}) = {ours:e}, glibc {theirs:e}"
        );
        n += 1;
    }
    println!("{n} inputs bit-identical to glibc's expf");
}

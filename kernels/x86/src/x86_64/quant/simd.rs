//! Building blocks of the quantized dot products: unaligned loads of block
//! bytes, f16 scales to f32, 4-bit unpacking, the u8 x i8 quad sums
//! ([`Quads`]) and ggml's `hsum_float_8`.
//!
//! Everything here is `#[inline(always)]` and has no `#[target_feature]`
//! of its own: it is compiled into the tile functions of [`super`], and
//! through them into a matmul entry point that enables the features (AVX2,
//! FMA and F16C at least; [`Vnni`] also AVX-512 VNNI and VL). Each
//! function is `unsafe` for that reason alone, or also because it reads
//! through a raw pointer, as its `# Safety` section says.

use core::arch::x86_64::*;

/// 32 bytes at `p`.
///
/// # Safety
/// The CPU has AVX; `p..p + 32` is readable (no alignment needed).
#[inline(always)]
pub(super) unsafe fn load32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the 32 bytes and the feature.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// 16 bytes at `p`.
///
/// # Safety
/// The CPU has SSE2; `p..p + 16` is readable.
#[inline(always)]
pub(super) unsafe fn load16(p: *const u8) -> __m128i {
    // SAFETY: the caller guarantees the 16 bytes and the feature.
    unsafe { _mm_loadu_si128(p.cast()) }
}

/// The little-endian u16 at `p`.
///
/// # Safety
/// `p..p + 2` is readable.
#[inline(always)]
pub(super) unsafe fn read_u16(p: *const u8) -> u16 {
    // SAFETY: the caller guarantees the 2 bytes; unaligned read.
    u16::from_le(unsafe { p.cast::<u16>().read_unaligned() })
}

/// The little-endian u32 at `p`.
///
/// # Safety
/// `p..p + 4` is readable.
#[inline(always)]
pub(super) unsafe fn read_u32(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees the 4 bytes; unaligned read.
    u32::from_le(unsafe { p.cast::<u32>().read_unaligned() })
}

/// The f16 at `p` as f32 in all eight lanes (`vcvtph2ps`, exact, as the
/// portable `f16_le`).
///
/// # Safety
/// The CPU has AVX2 and F16C; `p..p + 2` is readable.
#[inline(always)]
pub(super) unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees the bytes and the features.
    unsafe { _mm256_cvtph_ps(_mm_set1_epi16(read_u16(p) as i16)) }
}

/// The two f16 at `p` (`[x, y]`, e.g. a block's `d` and `m`) as f32,
/// repeated: `[x, y, x, y, x, y, x, y]`.
///
/// # Safety
/// The CPU has AVX2 and F16C; `p..p + 4` is readable.
#[inline(always)]
pub(super) unsafe fn f16_pair_splat(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees the bytes and the features.
    unsafe { _mm256_cvtph_ps(_mm_set1_epi32(read_u32(p) as i32)) }
}

/// Up to four f16 values as f32 lanes `0..N`, the other lanes 0.
///
/// # Safety
/// The CPU has F16C.
#[inline(always)]
pub(super) unsafe fn f16x4<const N: usize>(h: [u16; N]) -> __m128 {
    let mut v = [0u16; 8];
    v[..N].copy_from_slice(&h);
    // SAFETY: the caller guarantees the feature; `v` holds 16 bytes.
    unsafe { _mm_cvtph_ps(load16(v.as_ptr().cast())) }
}

/// The 32 nibbles of the 16 bytes at `p` in Q4_0 / Q4_1 value order: low
/// nibbles (values 0..16) in bytes 0..16, high nibbles in bytes 16..32.
///
/// # Safety
/// The CPU has AVX2; `p..p + 16` is readable.
#[inline(always)]
pub(super) unsafe fn nibbles16(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the bytes and the feature.
    unsafe {
        let both = _mm256_broadcastsi128_si256(load16(p));
        // Shifting the upper 128 bits right by 4 (as 64-bit lanes) moves
        // each byte's high nibble into its low nibble.
        let hi = _mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4));
        _mm256_and_si256(hi, _mm256_set1_epi8(0x0f))
    }
}

/// The low and high nibbles of the 32 bytes at `p`, each in byte order.
///
/// # Safety
/// The CPU has AVX2; `p..p + 32` is readable.
#[inline(always)]
pub(super) unsafe fn nibbles32(p: *const u8) -> (__m256i, __m256i) {
    // SAFETY: the caller guarantees the bytes and the feature.
    unsafe {
        let q = load32(p);
        let m = _mm256_set1_epi8(0x0f);
        (
            _mm256_and_si256(q, m),
            _mm256_and_si256(_mm256_srli_epi16(q, 4), m),
        )
    }
}

/// The u8 x i8 quad sums of the portable `quad_lanes`: lane `l` of
/// `quads(u, s)` is `sum u[i] * s[i]` over bytes `4l..4l + 4`, `u`
/// unsigned and `s` signed.
///
/// Exact for the operands the kernels pass: a sum of two adjacent products
/// fits i16 (`|u| <= 128` with `|s| <= 127`, or `u <= 63`), so
/// `_mm256_maddubs_epi16` never saturates.
///
/// Also the i16 pair products the K-quant tiles scale their sums with.
pub(crate) trait Quads {
    /// Lane `l`: the sum of the products of bytes `4l..4l + 4`.
    ///
    /// # Safety
    /// The CPU has the implementation's features.
    unsafe fn quads(u: __m256i, s: __m256i) -> __m256i;

    /// `acc + _mm256_madd_epi16(x, y)`: lane `l` plus the products of i16
    /// lanes `2l` and `2l + 1` (exact: no operand is -32768).
    ///
    /// # Safety
    /// The CPU has the implementation's features.
    unsafe fn madd_add(acc: __m256i, x: __m256i, y: __m256i) -> __m256i;
}

/// [`Quads`] with `vpmaddubsw` and `vpmaddwd` by ones (AVX2), as
/// llama.cpp's AVX2 build.
pub(crate) struct Maddubs;

impl Quads for Maddubs {
    #[inline(always)]
    unsafe fn quads(u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)) }
    }

    #[inline(always)]
    unsafe fn madd_add(acc: __m256i, x: __m256i, y: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_add_epi32(acc, _mm256_madd_epi16(x, y)) }
    }
}

/// [`Quads`] with one `vpdpbusd` (AVX-512 VNNI on 256-bit vectors): the
/// same exact integer lanes in one instruction; `madd_add` is one
/// `vpdpwssd`.
pub(crate) struct Vnni;

impl Quads for Vnni {
    #[inline(always)]
    unsafe fn quads(u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX-512 VNNI and VL.
        unsafe { _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s) }
    }

    /// One `vpdpwssd`.
    #[inline(always)]
    unsafe fn madd_add(acc: __m256i, x: __m256i, y: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX-512 VNNI and VL.
        unsafe { _mm256_dpwssd_epi32(acc, x, y) }
    }
}

/// The portable `hsum_float_8` (ggml's x86 `hsum_float_8`):
/// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))`.
///
/// # Safety
/// The CPU has AVX.
#[inline(always)]
pub(super) unsafe fn hsum_float_8(x: __m256) -> f32 {
    // SAFETY: the caller guarantees the feature.
    unsafe {
        let s = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }
}

/// Lane `i` of four f32.
///
/// # Safety
/// The CPU has SSE.
#[inline(always)]
unsafe fn lanes4(v: __m128) -> [f32; 4] {
    let mut o = [0.0f32; 4];
    // SAFETY: the caller guarantees the feature; `o` holds 4 values.
    unsafe { _mm_storeu_ps(o.as_mut_ptr(), v) };
    o
}

/// The totals of up to four vectors of eight i32 lanes, as lanes `0..N`
/// of one vector (the other lanes 0). Integer sums: any order is exact.
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
pub(super) unsafe fn totals4<const N: usize>(v: [__m256i; N]) -> __m128i {
    // SAFETY: the caller guarantees the feature.
    unsafe {
        let mut g = [_mm256_setzero_si256(); 4];
        g[..N].copy_from_slice(&v);
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(g[0], g[1]), _mm256_hadd_epi32(g[2], g[3]));
        _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))
    }
}

/// `hsum_float_8` of every accumulator of a tile.
///
/// # Safety
/// The CPU has AVX.
#[inline(always)]
pub(super) unsafe fn hsums<const R: usize, const T: usize>(acc: [[__m256; R]; T]) -> [[f32; R]; T] {
    let mut out = [[0.0f32; R]; T];
    for t in 0..T {
        for r in 0..R {
            // SAFETY: the caller guarantees the feature.
            out[t][r] = unsafe { hsum_float_8(acc[t][r]) };
        }
    }
    out
}

/// Lanes `0..R` of each token's accumulator vector (row `r` in lane `r`).
///
/// # Safety
/// The CPU has SSE.
#[inline(always)]
pub(super) unsafe fn lanes<const R: usize, const T: usize>(acc: [__m128; T]) -> [[f32; R]; T] {
    const { assert!(R <= 4) };
    let mut out = [[0.0f32; R]; T];
    for t in 0..T {
        // SAFETY: the caller guarantees the feature.
        let l = unsafe { lanes4(acc[t]) };
        out[t].copy_from_slice(&l[..R]);
    }
    out
}

/// Prefetches block `b` of `N` bytes of each stream `pf` (a tile's weight
/// rows, some way ahead): every cache line of a block of a line or more;
/// for smaller blocks one line every `64 / N` blocks, which still touches
/// every line. A prefetch never faults, so the streams may run past the
/// matrix.
///
/// # Safety
/// The CPU has SSE.
#[inline(always)]
pub(super) unsafe fn prefetch_block<const R: usize, const N: usize>(pf: [*const u8; R], b: usize) {
    let lines: &[usize] = if N >= 64 {
        &[0, 64, 128, 192, 256][..N.div_ceil(64) + 1]
    } else {
        &[0]
    };
    if N >= 64 || b.is_multiple_of(64 / N) {
        for p in pf {
            for &l in lines {
                // SAFETY: the caller guarantees the feature; a prefetch
                // reads nothing architecturally and cannot fault.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(b * N + l).cast()) };
            }
        }
    }
}

/// The rows of pair `p` of a tile of `R` rows: `(2p, 2p + 1)`, or
/// `(2p, 2p)` for an odd last row (computed twice, stored once).
#[inline(always)]
pub(super) const fn row_pair<const R: usize>(p: usize) -> (usize, usize) {
    (2 * p, if 2 * p + 1 < R { 2 * p + 1 } else { 2 * p })
}

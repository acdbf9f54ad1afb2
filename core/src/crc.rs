//! CRC-32 (IEEE 802.3, reflected, as zlib computes it).
//!
//! Slicing-by-8 tables (8 KiB) on every target, eight bytes per step; with
//! feature `std` on x86-64 CPUs that have PCLMULQDQ, carry-less
//! multiplication folds 64 bytes per step (Intel, "Fast CRC Computation
//! for Generic Polynomials Using PCLMULQDQ Instruction", 2009, the
//! constants zlib and Linux use). All give the same checksum: they compute
//! the same polynomial remainder.

/// `TABLES[0]` is the byte-at-a-time table; `TABLES[k][b]` is the CRC of
/// byte `b` followed by `k` zero bytes.
const TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xFF) as usize] ^ (prev >> 8);
            i += 1;
        }
        k += 1;
    }
    t
};

/// One byte into register `c`.
#[inline(always)]
fn byte(c: u32, b: u8) -> u32 {
    TABLES[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8)
}

/// `bytes` into register `c`, eight at a time.
fn slice_by_8(mut c: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(8);
    for ch in &mut chunks {
        let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
        let t = &TABLES;
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][ch[4] as usize]
            ^ t[2][ch[5] as usize]
            ^ t[1][ch[6] as usize]
            ^ t[0][ch[7] as usize];
    }
    chunks.remainder().iter().fold(c, |c, &b| byte(c, b))
}

/// `bytes` into register `c`, the fastest way this CPU has.
fn update_register(c: u32, bytes: &[u8]) -> u32 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if bytes.len() >= clmul::MIN_LEN && clmul::available() {
        // SAFETY: `available` checked that the CPU has the features
        // `clmul::update` is compiled for.
        return unsafe { clmul::update(c, bytes) };
    }
    slice_by_8(c, bytes)
}

/// An incremental CRC-32, for data that arrives in pieces.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
    /// A fresh checksum.
    pub const fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = update_register(self.0, bytes);
    }

    /// Feeds `values` as little-endian f32 bytes, one after another (how
    /// the boards and `phi-edge run` fingerprint logits), on any target.
    pub fn update_f32s(&mut self, values: &[f32]) {
        #[cfg(target_endian = "little")]
        self.update(bytemuck::cast_slice(values));
        #[cfg(not(target_endian = "little"))]
        for v in values {
            self.update(&v.to_le_bytes());
        }
    }

    /// The running register: a checksum in progress, to carry it across
    /// threads (see [`Crc32::from_register`]).
    pub const fn register(self) -> u32 {
        self.0
    }

    /// A checksum in progress with the given [`register`](Self::register).
    pub const fn from_register(register: u32) -> Self {
        Crc32(register)
    }

    /// The checksum of everything fed so far.
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// Folding with carry-less multiplication (PCLMULQDQ, SSE4.1).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod clmul {
    use core::arch::x86_64::*;

    /// Shorter inputs go through the tables.
    pub(super) const MIN_LEN: usize = 128;

    // x^(4*128+32) mod P and x^(4*128-32) mod P (fold by 4), the same for
    // 128 (fold by 1), x^64 mod P, then P and μ for the Barrett reduction;
    // bit-reflected, as in zlib's crc32_simd.c and Linux's crc32-pclmul.
    const K1: i64 = 0x1_5444_2bd4;
    const K2: i64 = 0x1_c6e4_1596;
    const K3: i64 = 0x1_7519_97d0;
    const K4: i64 = 0x0_ccaa_009e;
    const K5: i64 = 0x1_63cd_6124;
    const P_X: i64 = 0x1_DB71_0641;
    const U_PRIME: i64 = 0x1_F701_1641;

    /// Whether this CPU has what [`update`] needs.
    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("pclmulqdq") && std::is_x86_feature_detected!("sse4.1")
    }

    /// 16 bytes from the front of `data`, which then starts after them.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn take(data: &mut &[u8]) -> __m128i {
        let (head, rest) = data.split_at(16);
        *data = rest;
        // SAFETY: reads the 16 bytes of `head`; no alignment needed.
        unsafe { _mm_loadu_si128(head.as_ptr().cast()) }
    }

    /// `a` folded forward over 128 bits by `keys`, plus `b`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn fold(a: __m128i, b: __m128i, keys: __m128i) -> __m128i {
        let lo = _mm_clmulepi64_si128::<0x00>(a, keys);
        let hi = _mm_clmulepi64_si128::<0x11>(a, keys);
        _mm_xor_si128(_mm_xor_si128(b, lo), hi)
    }

    /// `data` (at least [`MIN_LEN`] bytes) into register `c`.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ and SSE4.1 (see [`available`]).
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    pub(super) unsafe fn update(c: u32, mut data: &[u8]) -> u32 {
        debug_assert!(data.len() >= MIN_LEN);
        let mut x3 = take(&mut data);
        let mut x2 = take(&mut data);
        let mut x1 = take(&mut data);
        let mut x0 = take(&mut data);
        x3 = _mm_xor_si128(x3, _mm_cvtsi32_si128(c as i32));
        let k1k2 = _mm_set_epi64x(K2, K1);
        while data.len() >= 64 {
            x3 = fold(x3, take(&mut data), k1k2);
            x2 = fold(x2, take(&mut data), k1k2);
            x1 = fold(x1, take(&mut data), k1k2);
            x0 = fold(x0, take(&mut data), k1k2);
        }
        let k3k4 = _mm_set_epi64x(K4, K3);
        let mut x = fold(x3, x2, k3k4);
        x = fold(x, x1, k3k4);
        x = fold(x, x0, k3k4);
        while data.len() >= 16 {
            x = fold(x, take(&mut data), k3k4);
        }
        // 128 bits to 64, then Barrett reduction to 32.
        let low32 = _mm_set_epi32(0, 0, 0, !0);
        let x = _mm_xor_si128(_mm_clmulepi64_si128::<0x10>(x, k3k4), _mm_srli_si128::<8>(x));
        let x = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(_mm_and_si128(x, low32), _mm_set_epi64x(0, K5)),
            _mm_srli_si128::<4>(x),
        );
        let pu = _mm_set_epi64x(U_PRIME, P_X);
        let t1 = _mm_clmulepi64_si128::<0x10>(_mm_and_si128(x, low32), pu);
        let t2 = _mm_clmulepi64_si128::<0x00>(_mm_and_si128(t1, low32), pu);
        let c = _mm_extract_epi32::<1>(_mm_xor_si128(x, t2)) as u32;
        super::slice_by_8(c, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn f32s_are_fed_as_little_endian_bytes() {
        let values = [1.0f32, -2.5, f32::NAN];
        let mut bytes = [0u8; 12];
        for (b, v) in bytes.chunks_exact_mut(4).zip(values) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        let mut c = Crc32::new();
        c.update_f32s(&values);
        assert_eq!(c.finish(), crc32(&bytes));
    }

    /// The textbook bit-at-a-time register update.
    fn bitwise(mut c: u32, bytes: &[u8]) -> u32 {
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        c
    }

    #[test]
    fn every_path_agrees_with_the_bitwise_definition() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut data = [0u8; 5008];
        for d in &mut data {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *d = x as u8;
        }
        let lens = (0..300).chain([511, 512, 513, 1000, 1024, 4095, 4999]);
        for (i, len) in lens.enumerate() {
            for start in [0, 1, 3, 8] {
                let bytes = &data[start..start + len];
                let init = if i % 2 == 0 { 0xFFFF_FFFF } else { (i as u32).wrapping_mul(0x9E37_79B9) };
                let want = bitwise(init, bytes);
                assert_eq!(slice_by_8(init, bytes), want, "slice-by-8, {len} bytes");
                assert_eq!(update_register(init, bytes), want, "dispatch, {len} bytes");
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                if len >= clmul::MIN_LEN && clmul::available() {
                    // SAFETY: the CPU has the features, checked just above.
                    assert_eq!(unsafe { clmul::update(init, bytes) }, want, "clmul, {len} bytes");
                }
            }
        }
        // Pieces of any size give the checksum of the whole.
        let mut c = Crc32::new();
        for piece in data.chunks(333) {
            c.update(piece);
        }
        assert_eq!(c.finish(), crc32(&data));
        assert_eq!(crc32(&data), !bitwise(!0, &data));
    }
}

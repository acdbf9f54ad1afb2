//! f32 to f16 and bf16 rounding, as ggml's reference conversions do it
//! (`ggml_compute_fp32_to_fp16`, `ggml_compute_fp32_to_bf16`): round to
//! nearest, ties to even, subnormals kept, overflow to infinity. NaN
//! becomes the quiet NaN `0x7e00` (sign kept) in f16, and keeps its upper
//! payload with the quiet bit forced in bf16.

/// `f` rounded to IEEE binary16 bits.
pub fn fp32_to_fp16(f: f32) -> u16 {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00;
    }
    let exp = (abs >> 23) as i32;
    // The f16 exponent field the value would have if normal.
    let e = exp - 127 + 15;
    if e >= 0x1f {
        // 2^16 and above (and infinity) round to infinity.
        return sign | 0x7c00;
    }
    if e <= 0 {
        // f16 subnormal (or zero): the value in units of 2^-24.
        if exp == 0 {
            return sign; // f32 subnormals are far below 2^-25
        }
        let mant = (abs & 0x007f_ffff) | 0x0080_0000;
        let shift = (14 - e) as u32; // 14..=
        if shift > 24 {
            return sign;
        }
        let q = mant >> shift;
        let rem = mant & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        };
        return sign | q as u16;
    }
    let r = ((e as u32) << 10) | ((abs & 0x007f_ffff) >> 13);
    let rem = abs & 0x1fff;
    // A carry out of the mantissa moves into the exponent, up to infinity.
    let r = if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r + 1
    } else {
        r
    };
    sign | r as u16
}

/// The f32 value of IEEE binary16 bits `h` (exact).
pub fn fp16_to_fp32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// `f` rounded to bfloat16 bits.
pub fn fp32_to_bf16(f: f32) -> u16 {
    let bits = f.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 64) as u16;
    }
    ((bits + (0x7fff + ((bits >> 16) & 1))) >> 16) as u16
}

/// Whether f16 bits `h` are a finite value (what ggml's row validation
/// requires of every stored scale).
pub const fn fp16_is_finite(h: u16) -> bool {
    h & 0x7c00 != 0x7c00
}

/// Whether bf16 bits `h` are a finite value.
pub const fn bf16_is_finite(h: u16) -> bool {
    h & 0x7f80 != 0x7f80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_rounding_matches_the_half_crate_on_non_nan() {
        // half's software conversion is also round-to-nearest-even; only
        // NaN payloads differ.
        let mut x = 0x1234_5678u32;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_nan() {
                assert_eq!(fp32_to_fp16(f) & 0x7fff, 0x7e00);
                continue;
            }
            assert_eq!(fp32_to_fp16(f), half::f16::from_f32(f).to_bits(), "{f:e}");
        }
        for f in [
            0.0f32, -0.0, 65504.0, 65519.99, 65520.0, 5.96e-8, 2.98e-8, 2.99e-8,
        ] {
            assert_eq!(fp32_to_fp16(f), half::f16::from_f32(f).to_bits(), "{f:e}");
        }
    }

    #[test]
    fn bf16_ties_to_even_and_quiets_nan() {
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(fp32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(fp32_to_bf16(f32::from_bits(0xff80_0001)), 0xffc0);
        assert_eq!(fp32_to_bf16(f32::MAX), 0x7f80);
    }
}

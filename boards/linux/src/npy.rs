//! A minimal writer for NumPy `.npy` files (format 1.0, little-endian f32).

use std::io::{self, Write};

/// Writes `data`, shaped `[rows, cols]` in row-major order, as a float32
/// `.npy` array.
pub fn write_f32<W: Write>(out: &mut W, rows: usize, cols: usize, data: &[f32]) -> io::Result<()> {
    assert_eq!(data.len(), rows * cols, "npy data does not match its shape");
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + dict + '\n', padded to 64.
    let unpadded = 10 + dict.len() + 1;
    let pad = unpadded.div_ceil(64) * 64 - unpadded;
    let header_len = (dict.len() + pad + 1) as u16;
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&header_len.to_le_bytes())?;
    out.write_all(dict.as_bytes())?;
    out.write_all(&vec![b' '; pad])?;
    out.write_all(b"\n")?;
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_data_follows() {
        let mut v = Vec::new();
        write_f32(&mut v, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let hlen = u16::from_le_bytes([v[8], v[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(v[10 + hlen - 1], b'\n');
        assert!(std::str::from_utf8(&v[10..10 + hlen])
            .unwrap()
            .contains("'shape': (2, 3)"));
        assert_eq!(v.len(), 10 + hlen + 24);
        assert_eq!(&v[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
    }
}

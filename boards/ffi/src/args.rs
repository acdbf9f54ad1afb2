//! Checking what C passes in: pointers, lengths, text, output buffers.
//!
//! Every function of the API turns its raw arguments into references here
//! before it does anything else, so a NULL pointer, a length past
//! `isize::MAX`, a misaligned pointer or a buffer too small is a status
//! code, never a dereference.

use core::fmt;

use crate::status::PhiEdgeStatus;

/// A result whose error is the status the C function returns.
pub type Checked<T> = Result<T, PhiEdgeStatus>;

/// `p` as a shared reference.
///
/// # Safety
///
/// If `p` is not NULL and aligned, it must point to a valid, initialized
/// `T` that is not written to for `'a`.
pub unsafe fn input<'a, T>(p: *const T) -> Checked<&'a T> {
    if p.is_null() {
        return Err(PhiEdgeStatus::NullPointer);
    }
    if !p.is_aligned() {
        return Err(PhiEdgeStatus::BadArgument);
    }
    // SAFETY: not NULL and aligned; the caller vouches for the rest.
    Ok(unsafe { &*p })
}

/// `p` as a place to write a `T` to (its old contents are not read).
///
/// # Safety
///
/// If `p` is not NULL and aligned, it must be valid for writes of a `T`
/// and not accessed otherwise for `'a`.
pub unsafe fn output<'a, T>(p: *mut T) -> Checked<&'a mut T> {
    if p.is_null() {
        return Err(PhiEdgeStatus::NullPointer);
    }
    if !p.is_aligned() {
        return Err(PhiEdgeStatus::BadArgument);
    }
    // SAFETY: not NULL and aligned; the caller vouches for the rest. The
    // `T`s of this API are plain numbers and `repr(C)` structs of them,
    // valid for any bits, so the reference does not assume its contents.
    Ok(unsafe { &mut *p })
}

/// The `len` bytes at `p`; NULL is allowed for `len == 0`.
///
/// # Safety
///
/// If `p` is not NULL, `p..p + len` must be readable, initialized memory
/// not written to for `'a`.
pub unsafe fn bytes<'a>(p: *const u8, len: usize) -> Checked<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(PhiEdgeStatus::NullPointer);
    }
    if len > isize::MAX as usize || (p as usize).checked_add(len).is_none() {
        return Err(PhiEdgeStatus::BadArgument);
    }
    // SAFETY: `p` is not NULL, the range neither wraps nor exceeds
    // `isize::MAX` bytes, and the caller vouches that it is readable.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// The `len` bytes at `p` as UTF-8 text; NULL is allowed for `len == 0`.
///
/// # Safety
///
/// As [`bytes`].
pub unsafe fn text<'a>(p: *const u8, len: usize) -> Checked<&'a str> {
    // SAFETY: the caller's contract is `bytes`'s.
    let b = unsafe { bytes(p, len) }?;
    core::str::from_utf8(b).map_err(|_| PhiEdgeStatus::BadUtf8)
}

/// The `cap` bytes at `p`, to be written.
///
/// # Safety
///
/// If `p` is not NULL, `p..p + cap` must be writable memory not accessed
/// otherwise for `'a`.
pub unsafe fn buffer<'a>(p: *mut u8, cap: usize) -> Checked<&'a mut [u8]> {
    if p.is_null() {
        return Err(PhiEdgeStatus::NullPointer);
    }
    if cap > isize::MAX as usize || (p as usize).checked_add(cap).is_none() {
        return Err(PhiEdgeStatus::BadArgument);
    }
    // SAFETY: `p` is not NULL, the range neither wraps nor exceeds
    // `isize::MAX` bytes, and the caller vouches that it is writable. Bytes
    // are valid for any contents, so the slice assumes nothing of them.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, cap) })
}

/// [`buffer`] for a NUL-terminated string: an empty buffer, which cannot
/// hold even the NUL, is [`PhiEdgeStatus::BufferTooSmall`].
///
/// # Safety
///
/// As [`buffer`].
pub unsafe fn text_buffer<'a>(p: *mut u8, cap: usize) -> Checked<&'a mut [u8]> {
    // SAFETY: the caller's contract, which is `buffer`'s.
    let buf = unsafe { buffer(p, cap) }?;
    if buf.is_empty() {
        return Err(PhiEdgeStatus::BufferTooSmall);
    }
    Ok(buf)
}

/// Writes `s` and a NUL to `buf`, cutting `s` at a character boundary if
/// it does not fit; returns the bytes written before the NUL. An empty
/// `buf` gets nothing.
pub fn put_str(buf: &mut [u8], s: &str) -> usize {
    let Some(room) = buf.len().checked_sub(1) else {
        return 0;
    };
    let mut n = s.len().min(room);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    buf[n] = 0;
    n
}

/// Formats `v` into `buf` as [`put_str`] does, without allocating.
pub fn put_display(buf: &mut [u8], v: &dyn fmt::Display) -> usize {
    /// Fills the buffer, keeping one byte for the NUL, and drops the rest
    /// (at a character boundary).
    struct Fill<'b> {
        buf: &'b mut [u8],
        len: usize,
    }
    impl fmt::Write for Fill<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let n = put_str(&mut self.buf[self.len..], s);
            self.len += n;
            if n < s.len() {
                // Full: stop formatting.
                return Err(fmt::Error);
            }
            Ok(())
        }
    }
    if buf.is_empty() {
        return 0;
    }
    let mut f = Fill { buf, len: 0 };
    // A full buffer ends the formatting early; what fits is kept.
    let _ = fmt::write(&mut f, format_args!("{v}"));
    let len = f.len;
    f.buf[len] = 0;
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_at_character_boundaries_and_terminated() {
        let mut b = [0xFFu8; 5];
        assert_eq!(put_str(&mut b, "abcdef"), 4);
        assert_eq!(&b, b"abcd\0");
        assert_eq!(put_str(&mut b, "a\u{e9}\u{e9}"), 3);
        assert_eq!(&b[..4], "a\u{e9}\0".as_bytes());
        assert_eq!(put_str(&mut [], "x"), 0);
        let mut b = [0xFFu8; 8];
        assert_eq!(
            put_display(&mut b, &format_args!("{}-{}", 12, "abcdefgh")),
            7
        );
        assert_eq!(&b, b"12-abcd\0");
        let mut one = [0xFFu8; 1];
        assert_eq!(put_display(&mut one, &1234), 0);
        assert_eq!(one, [0]);
    }

    #[test]
    fn null_and_huge_arguments_are_errors() {
        // SAFETY: NULL and out-of-range arguments are rejected before any
        // access; the valid ones point at live locals.
        unsafe {
            assert_eq!(bytes(core::ptr::null(), 1), Err(PhiEdgeStatus::NullPointer));
            assert_eq!(bytes(core::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(
                bytes(8 as *const u8, usize::MAX),
                Err(PhiEdgeStatus::BadArgument)
            );
            assert_eq!(text(b"\xFF".as_ptr(), 1), Err(PhiEdgeStatus::BadUtf8));
            assert_eq!(text(b"ok".as_ptr(), 2), Ok("ok"));
            assert_eq!(
                buffer(core::ptr::null_mut(), 0).map(|b| b.len()),
                Err(PhiEdgeStatus::NullPointer)
            );
            let mut x = [0u64; 2];
            let odd = (x.as_mut_ptr() as *mut u8).add(1) as *mut u64;
            assert_eq!(output(odd).map(|_| ()), Err(PhiEdgeStatus::BadArgument));
            assert_eq!(
                input::<u64>(core::ptr::null()).map(|_| ()),
                Err(PhiEdgeStatus::NullPointer)
            );
        }
    }
}

//! Buffers that end exactly at an inaccessible page, so a kernel that
//! reads or writes one element past a slice faults instead of passing.

use core::marker::PhantomData;
use core::mem::size_of;

/// `n` values of `T` ending exactly where a `PROT_NONE` page begins.
pub struct Guarded<T: Copy> {
    map: *mut u8,
    map_len: usize,
    data: *mut T,
    n: usize,
    _t: PhantomData<T>,
}

impl<T: Copy + Default> Guarded<T> {
    /// A guarded buffer holding a copy of `src`.
    pub fn from_slice(src: &[T]) -> Self {
        let mut g = Self::new(src.len());
        g.as_mut().copy_from_slice(src);
        g
    }

    /// A guarded buffer of `n` default values.
    ///
    /// Panics if the pages cannot be mapped or protected.
    pub fn new(n: usize) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let bytes = n * size_of::<T>();
        let data_pages = bytes.div_ceil(page).max(1);
        let map_len = (data_pages + 1) * page;
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choice; the result is checked below.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "guard: mmap failed");
        let map = map.cast::<u8>();
        // SAFETY: `map + data_pages * page` is the last page of the
        // mapping just made; it is page-aligned and `page` bytes long.
        let guard = unsafe { map.add(data_pages * page) };
        // SAFETY: as above; the page belongs to our mapping.
        let rc = unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) };
        assert!(rc == 0, "guard: mprotect failed");
        // SAFETY: `bytes <= data_pages * page`, so the start lies within
        // the readable part of the mapping.
        let data = unsafe { guard.sub(bytes) }.cast::<T>();
        assert!(data as usize % core::mem::align_of::<T>() == 0);
        let mut g = Guarded {
            map,
            map_len,
            data,
            n,
            _t: PhantomData,
        };
        g.as_mut().fill(T::default());
        g
    }
}

impl<T: Copy> AsRef<[T]> for Guarded<T> {
    fn as_ref(&self) -> &[T] {
        // SAFETY: `data` is aligned, `n` values long, inside a live
        // read-write mapping owned by `self`, and initialized in `new`.
        unsafe { core::slice::from_raw_parts(self.data, self.n) }
    }
}

impl<T: Copy> AsMut<[T]> for Guarded<T> {
    fn as_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `as_ref`; `&mut self` makes the borrow unique. For
        // `n == 0` the pointer is still non-null and aligned.
        unsafe { core::slice::from_raw_parts_mut(self.data, self.n) }
    }
}

impl<T: Copy> Drop for Guarded<T> {
    fn drop(&mut self) {
        // SAFETY: `map` and `map_len` are exactly the mapping made in
        // `new`, and no slice of it outlives `self`.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

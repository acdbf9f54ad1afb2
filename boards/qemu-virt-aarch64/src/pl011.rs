//! PL011 UART (driver) and the line-buffered console on top of it.

use core::fmt;
use core::ptr::NonNull;

use heapless::Vec;

/// Base address of the first PL011 on QEMU's virt board.
pub const UART0_BASE: usize = 0x0900_0000;

/// Data register (write: transmit a byte).
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// FR: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;
/// Control register.
const CR: usize = 0x30;
/// CR: UART enable, transmit enable.
const CR_UARTEN_TXE: u32 = (1 << 0) | (1 << 8);

/// A PL011 used for output only.
pub struct Pl011 {
    base: NonNull<u32>,
}

impl Pl011 {
    /// The UART at `base`, enabled for transmit.
    ///
    /// # Safety
    ///
    /// `base` must be a PL011's register block, mapped as device memory,
    /// and no other code may reconfigure that UART while this value lives.
    pub unsafe fn new(base: usize) -> Pl011 {
        let base = NonNull::new(base as *mut u32).expect("UART base is not null");
        let uart = Pl011 { base };
        // SAFETY: CR is a register of the block the caller vouched for.
        unsafe { uart.reg(CR).write_volatile(CR_UARTEN_TXE) };
        uart
    }

    /// Pointer to the 32-bit register at byte offset `offset`.
    fn reg(&self, offset: usize) -> *mut u32 {
        self.base.as_ptr().wrapping_byte_add(offset)
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&mut self, byte: u8) {
        // SAFETY: FR and DR are registers of the block given to `new`.
        unsafe {
            while self.reg(FR).read_volatile() & FR_TXFF != 0 {}
            self.reg(DR).write_volatile(u32::from(byte));
        }
    }
}

impl fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.write_byte(b);
        }
        Ok(())
    }
}

/// Bytes the console holds before it must send them.
const LINE_BYTES: usize = 128;

/// The UART with a line buffer: text goes out at each newline, when the
/// buffer is full, or on [`Console::flush`].
pub struct Console {
    uart: Pl011,
    line: Vec<u8, LINE_BYTES>,
}

impl Console {
    /// A console on `uart`.
    pub fn new(uart: Pl011) -> Console {
        Console { uart, line: Vec::new() }
    }

    /// Sends what the buffer holds.
    pub fn flush(&mut self) {
        for &b in &self.line {
            self.uart.write_byte(b);
        }
        self.line.clear();
    }
}

impl phi_edge_board::Console for Console {
    fn flush(&mut self) {
        Console::flush(self);
    }

    fn progress(&mut self, event: phi_edge_board::Progress) {
        phi_edge_board::log::progress(event);
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.line.push(b).is_err() {
                self.flush();
                // Cannot fail: the buffer was just emptied.
                let _ = self.line.push(b);
            }
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

//! NS16550A UART (driver) and the line-buffered console on top of it.

use core::fmt;
use core::ptr::NonNull;

use heapless::Vec;

/// Base address of the 16550 on QEMU's riscv virt board.
pub const UART0_BASE: usize = 0x1000_0000;

/// Transmit holding register (write).
const THR: usize = 0;
/// Line status register.
const LSR: usize = 5;
/// LSR: transmit holding register empty.
const LSR_THRE: u8 = 1 << 5;

/// A 16550 (byte-wide registers, `reg-shift` 0) used for output only.
/// QEMU's needs no set-up: no baud rate, no FIFO control.
pub struct Uart16550 {
    base: NonNull<u8>,
}

impl Uart16550 {
    /// The UART at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be a 16550's register block and no other code may
    /// reconfigure that UART while this value lives.
    pub unsafe fn new(base: usize) -> Uart16550 {
        Uart16550 { base: NonNull::new(base as *mut u8).expect("UART base is not null") }
    }

    /// Sends one byte, waiting until the transmitter can take it.
    pub fn write_byte(&mut self, byte: u8) {
        let base = self.base.as_ptr();
        // SAFETY: LSR and THR are registers of the block given to `new`
        // (M-mode runs with physical addresses, no MMU).
        unsafe {
            while base.wrapping_add(LSR).read_volatile() & LSR_THRE == 0 {}
            base.wrapping_add(THR).write_volatile(byte);
        }
    }
}

impl fmt::Write for Uart16550 {
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
    uart: Uart16550,
    line: Vec<u8, LINE_BYTES>,
}

impl Console {
    /// A console on `uart`.
    pub fn new(uart: Uart16550) -> Console {
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

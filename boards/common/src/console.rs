//! A UART as the board's [`Console`](crate::Console): a line buffer over a
//! byte-at-a-time driver.

use core::fmt;
use core::panic::PanicInfo;

use heapless::Vec;

use crate::Progress;

/// A transmit-only UART driver: the one thing a board's UART must do.
pub trait Uart {
    /// Sends one byte, waiting while the transmitter is busy.
    fn write_byte(&mut self, byte: u8);
}

/// Bytes the console holds before it must send them.
const LINE_BYTES: usize = 128;

/// The UART with a line buffer: text goes out at each newline, when the
/// buffer is full, or on [`LineConsole::flush`].
pub struct LineConsole<U: Uart> {
    uart: U,
    line: Vec<u8, LINE_BYTES>,
}

impl<U: Uart> LineConsole<U> {
    /// A console on `uart`.
    pub fn new(uart: U) -> LineConsole<U> {
        LineConsole {
            uart,
            line: Vec::new(),
        }
    }

    /// Sends what the buffer holds.
    pub fn flush(&mut self) {
        for &b in &self.line {
            self.uart.write_byte(b);
        }
        self.line.clear();
    }
}

impl<U: Uart> crate::Console for LineConsole<U> {
    fn flush(&mut self) {
        LineConsole::flush(self);
    }

    /// Logs the milestone through defmt (feature `semihosting-log`).
    fn progress(&mut self, event: Progress) {
        #[cfg(feature = "semihosting-log")]
        crate::log::progress(event);
        #[cfg(not(feature = "semihosting-log"))]
        let _ = event;
    }
}

impl<U: Uart> fmt::Write for LineConsole<U> {
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

/// Prints a panic's message on `out` as a `panic:` line (for the board's
/// panic handler, which then exits non-zero).
pub fn print_panic(out: &mut impl crate::Console, info: &PanicInfo<'_>) {
    let _ = writeln!(out, "\npanic: {info}");
    out.flush();
}

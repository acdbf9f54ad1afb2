//! PL011 UART0 of the BCM2711 (driver) and the line-buffered console on
//! top of it.
//!
//! [`Pl011::new`] sets the UART up itself rather than trusting the
//! firmware: GPIO 14/15 to UART0, 115200 baud 8N1 from the 48 MHz UART
//! clock (the firmware's `init_uart_clock` default on the Pi 4). On the Pi
//! UART0 drives the Bluetooth chip unless `config.txt` has
//! `dtoverlay=disable-bt`; see README.md. QEMU ignores the baud rate.

use core::fmt;
use core::ptr::NonNull;

use heapless::Vec;

use crate::gpio;

/// Base address of UART0 (low-peripheral mode).
pub const UART0_BASE: usize = 0xFE20_1000;

/// Data register (write: transmit a byte).
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// FR: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;
/// FR: busy sending.
const FR_BUSY: u32 = 1 << 3;
/// Integer baud rate divisor.
const IBRD: usize = 0x24;
/// Fractional baud rate divisor.
const FBRD: usize = 0x28;
/// Line control register.
const LCRH: usize = 0x2c;
/// LCRH: 8 data bits, FIFOs on (no parity, one stop bit).
const LCRH_8BIT_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// Control register.
const CR: usize = 0x30;
/// CR: UART enable, transmit enable.
const CR_UARTEN_TXE: u32 = (1 << 0) | (1 << 8);
/// Interrupt clear register.
const ICR: usize = 0x44;
/// ICR: every interrupt.
const ICR_ALL: u32 = 0x7ff;
/// The UART's reference clock in Hz.
const UART_CLOCK_HZ: u32 = 48_000_000;
/// The line's baud rate.
const BAUD: u32 = 115_200;
/// The divisor in 64ths: 16 × baud × divisor = clock; the integer part goes
/// to IBRD, the 6-bit fraction to FBRD (rounded).
const DIVISOR_64THS: u32 = (UART_CLOCK_HZ * 4 + BAUD / 2) / BAUD;

/// A PL011 used for output only.
pub struct Pl011 {
    base: NonNull<u32>,
}

impl Pl011 {
    /// The UART at `base`, set up for 115200 baud 8N1 on GPIO 14/15 and
    /// enabled for transmit.
    ///
    /// # Safety
    ///
    /// `base` must be UART0's register block, mapped as device memory, and
    /// no other code may reconfigure that UART or GPIO 14/15 while this
    /// value lives.
    pub unsafe fn new(base: usize) -> Pl011 {
        let base = NonNull::new(base as *mut u32).expect("UART base is not null");
        let uart = Pl011 { base };
        // SAFETY: the registers are UART0's (the caller vouched for the
        // block); the sequence is the PL011 manual's: let the line drain,
        // disable, program, enable.
        unsafe {
            while uart.reg(FR).read_volatile() & FR_BUSY != 0 {}
            uart.reg(CR).write_volatile(0);
            gpio::route_uart0();
            uart.reg(ICR).write_volatile(ICR_ALL);
            uart.reg(IBRD).write_volatile(DIVISOR_64THS / 64);
            uart.reg(FBRD).write_volatile(DIVISOR_64THS % 64);
            uart.reg(LCRH).write_volatile(LCRH_8BIT_FIFO);
            uart.reg(CR).write_volatile(CR_UARTEN_TXE);
        }
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

//! Arm PL011 UART (driver), transmit only (feature `pl011`).
//!
//! [`Pl011::new`] only enables the transmitter, trusting the line settings
//! the firmware or QEMU left; [`Pl011::with_line`] programs baud rate and
//! framing first, for boards whose firmware does not.

use core::ptr::NonNull;

use crate::console::Uart;

/// Data register (write: transmit a byte).
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// FR: busy sending.
const FR_BUSY: u32 = 1 << 3;
/// FR: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;
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

/// A PL011 used for output only.
pub struct Pl011 {
    base: NonNull<u32>,
}

impl Pl011 {
    /// The UART at `base`, enabled for transmit with the line settings it
    /// has.
    ///
    /// # Safety
    ///
    /// `base` must be a PL011's register block, mapped as device memory,
    /// and no other code may reconfigure that UART while this value lives.
    pub unsafe fn new(base: usize) -> Pl011 {
        let uart = Pl011::at(base);
        // SAFETY: CR is a register of the block the caller vouched for.
        unsafe { uart.reg(CR).write_volatile(CR_UARTEN_TXE) };
        uart
    }

    /// The UART at `base`, set up for `baud` baud 8N1 from a reference
    /// clock of `clock_hz` and enabled for transmit. `route_pins` runs
    /// while the UART is disabled (to connect its pins, say).
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new).
    pub unsafe fn with_line(
        base: usize,
        clock_hz: u32,
        baud: u32,
        route_pins: impl FnOnce(),
    ) -> Pl011 {
        let uart = Pl011::at(base);
        // The divisor in 64ths: 16 × baud × divisor = clock; the integer
        // part goes to IBRD, the 6-bit fraction to FBRD (rounded).
        let div64 =
            ((u64::from(clock_hz) * 4 + u64::from(baud / 2)) / u64::from(baud.max(1))) as u32;
        // SAFETY: the registers are of the block the caller vouched for; the
        // sequence is the PL011 manual's: let the line drain, disable,
        // program, enable.
        unsafe {
            while uart.reg(FR).read_volatile() & FR_BUSY != 0 {}
            uart.reg(CR).write_volatile(0);
            route_pins();
            uart.reg(ICR).write_volatile(ICR_ALL);
            uart.reg(IBRD).write_volatile(div64 / 64);
            uart.reg(FBRD).write_volatile(div64 % 64);
            uart.reg(LCRH).write_volatile(LCRH_8BIT_FIFO);
            uart.reg(CR).write_volatile(CR_UARTEN_TXE);
        }
        uart
    }

    /// The driver for the block at `base`, without touching it.
    fn at(base: usize) -> Pl011 {
        Pl011 {
            base: NonNull::new(base as *mut u32).expect("UART base is not null"),
        }
    }

    /// Pointer to the 32-bit register at byte offset `offset`.
    fn reg(&self, offset: usize) -> *mut u32 {
        self.base.as_ptr().wrapping_byte_add(offset)
    }
}

impl Uart for Pl011 {
    fn write_byte(&mut self, byte: u8) {
        // SAFETY: FR and DR are registers of the block given to `new`.
        unsafe {
            while self.reg(FR).read_volatile() & FR_TXFF != 0 {}
            self.reg(DR).write_volatile(u32::from(byte));
        }
    }
}

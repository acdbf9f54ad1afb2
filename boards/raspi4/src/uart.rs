//! UART0 of the BCM2711, a PL011 (driver: `phi_edge_board::pl011`), as the
//! console.
//!
//! [`uart0`] sets the UART up itself rather than trusting the firmware:
//! GPIO 14/15 to UART0, 115200 baud 8N1 from the 48 MHz UART clock (the
//! firmware's `init_uart_clock` default on the Pi 4). On the Pi UART0
//! drives the Bluetooth chip unless `config.txt` has
//! `dtoverlay=disable-bt`; see README.md. QEMU ignores the baud rate.

use phi_edge_board::pl011::Pl011;

use crate::gpio;

/// Base address of UART0 (low-peripheral mode).
const UART0_BASE: usize = 0xFE20_1000;
/// The UART's reference clock in Hz.
const UART_CLOCK_HZ: u32 = 48_000_000;
/// The line's baud rate.
const BAUD: u32 = 115_200;

/// UART0, set up for 115200 baud 8N1 on GPIO 14/15 and enabled for
/// transmit.
///
/// # Safety
///
/// UART0 and the GPIO block must be mapped as device memory, and no other
/// code may reconfigure UART0 or GPIO 10-15 while the value lives.
pub unsafe fn uart0() -> Pl011 {
    // SAFETY: UART0's block and the GPIO block are mapped and ours (the
    // caller vouched for both); the pins are routed while UART0 is off.
    unsafe { Pl011::with_line(UART0_BASE, UART_CLOCK_HZ, BAUD, || gpio::route_uart0()) }
}

//! NS16550A UART (driver), for `phi_edge_board::console::LineConsole`.

use core::ptr::NonNull;

use phi_edge_board::console::Uart;

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
        Uart16550 {
            base: NonNull::new(base as *mut u8).expect("UART base is not null"),
        }
    }
}

impl Uart for Uart16550 {
    /// Sends one byte, waiting until the transmitter can take it.
    fn write_byte(&mut self, byte: u8) {
        let base = self.base.as_ptr();
        // SAFETY: LSR and THR are registers of the block given to `new`
        // (M-mode runs with physical addresses, no MMU).
        unsafe {
            while base.wrapping_add(LSR).read_volatile() & LSR_THRE == 0 {}
            base.wrapping_add(THR).write_volatile(byte);
        }
    }
}

//! The BCM2711 GPIO block (driver): only what the console needs, pins 14
//! and 15 on UART0.

/// Base address of the GPIO block (low-peripheral mode).
const GPIO_BASE: usize = 0xFE20_0000;
/// Function select for pins 10-19, three bits a pin.
const GPFSEL1: usize = 0x04;
/// Pull-up/down control for pins 0-15, two bits a pin.
const GPIO_PUP_PDN_CNTRL_REG0: usize = 0xe4;
/// Function ALT0: UART0's TXD0 on pin 14, RXD0 on pin 15.
const FSEL_ALT0: u32 = 0b100;

/// Puts GPIO 14 (TXD0) and 15 (RXD0) on UART0, without pull resistors.
///
/// # Safety
///
/// The GPIO block must be mapped as device memory, and nothing else may
/// change pins 10-15 meanwhile (GPFSEL1 and the pull register are
/// read-modify-written).
pub unsafe fn route_uart0() {
    let reg = |offset: usize| (GPIO_BASE + offset) as *mut u32;
    // SAFETY: both are registers of the GPIO block, which the caller
    // vouched for; only the fields of pins 14 and 15 change.
    unsafe {
        let fsel = reg(GPFSEL1).read_volatile() & !(0o77 << 12);
        reg(GPFSEL1).write_volatile(fsel | FSEL_ALT0 << 12 | FSEL_ALT0 << 15);
        let pull = reg(GPIO_PUP_PDN_CNTRL_REG0).read_volatile() & !(0b1111 << 28);
        reg(GPIO_PUP_PDN_CNTRL_REG0).write_volatile(pull);
    }
}

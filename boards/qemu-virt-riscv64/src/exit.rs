//! Leaving QEMU with a status: the SiFive test device ("sifive,test1") at
//! [`TEST_BASE`] ends the emulation when written.

/// The test device on QEMU virt.
const TEST_BASE: usize = 0x10_0000;
/// Value that exits with status 0.
const PASS: u32 = 0x5555;
/// Low half of the value that exits with the status in the high half.
const FAIL: u32 = 0x3333;

/// Ends the emulation: status 0 if `code` is 0, else `code` clamped to
/// 1–65535 (the device's range).
pub fn exit(code: i32) -> ! {
    let value = if code == 0 {
        PASS
    } else {
        ((code.clamp(1, 0xffff) as u32) << 16) | FAIL
    };
    // SAFETY: the test device's only register; writing it stops QEMU.
    unsafe { (TEST_BASE as *mut u32).write_volatile(value) };
    // Not reached under QEMU; wait in case the write did not stop it.
    loop {
        riscv::asm::wfi();
    }
}

//! The hart's ISA (arch code): the V extension is checked in `misa` before
//! the vector unit is turned on and the RVV kernels are handed out.
//!
//! The image runs in M-mode (`-bios none`: no OpenSBI, no S-mode), where
//! `misa` is readable. The V bit is bit 21 (`'V' - 'A'`); a `misa` that
//! reads 0 is not implemented and says nothing, so it is refused too (an
//! S-mode image would read the cpu node's `riscv,isa-extensions` in the
//! device tree instead). `misa.V` means the ratified RVV 1.0 (VLEN of 128
//! or more), which QEMU's `-cpu rv64,v=true` implements; the T-Head cores'
//! draft 0.7.1 vector unit is a vendor extension, not V.
//!
//! The pure half ([`has_vector`], `Extensions`) is checked at compile
//! time below: the board crate has no host test harness.

use core::fmt;

use phi_edge_rvv::Rvv;
use riscv::register::misa;
use riscv::register::mstatus::{self, VS};

/// The V extension's bit in `misa`.
pub const V: usize = 1 << (b'V' - b'A');

/// Whether the `misa` value `misa` has the V extension.
pub const fn has_vector(misa: usize) -> bool {
    misa & V != 0
}

// misa of QEMU's `-cpu rv64,v=true` (MXL 64; A, C, D, F, H, I, M, S, U,
// V) and of `-cpu rv64,v=false`.
const _: () = assert!(V == 1 << 21);
const _: () = assert!(has_vector(0x8000_0000_0034_11ad));
const _: () = assert!(!has_vector(0x8000_0000_0014_11ad));
const _: () = assert!(!has_vector(0));

/// The calling hart has no V extension (or no `misa`): the RVV kernels
/// would trap on their first instruction.
#[derive(Clone, Copy, Debug)]
pub struct NoVector {
    /// The hart's `misa` (0: not implemented).
    pub misa: usize,
}

impl fmt::Display for NoVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.misa == 0 {
            f.write_str("misa reads 0 (not implemented), so the V extension the RVV kernels need cannot be checked")
        } else {
            write!(
                f,
                "no V extension in misa ({:#x}: {}); the RVV kernels need it (QEMU: -cpu rv64,v=true)",
                self.misa,
                Extensions(self.misa)
            )
        }
    }
}

/// A `misa` value as an ISA string: `rv64` and the extension letters, e.g.
/// `rv64acdfhimsuv`.
struct Extensions(usize);

impl fmt::Display for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // MXL, the top two bits: 1, 2, 3 for 32, 64, 128 bits.
        let xlen = match self.0 >> (usize::BITS - 2) {
            1 => "32",
            2 => "64",
            3 => "128",
            _ => "?",
        };
        write!(f, "rv{xlen}")?;
        for (bit, letter) in (b'a'..=b'z').enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{}", char::from(letter))?;
            }
        }
        Ok(())
    }
}

/// On the calling hart: checks `misa.V`, then turns the vector unit on
/// (`mstatus.VS` = Initial; per hart, so every hart calls this) and returns
/// the RVV kernel set. Without V, `mstatus.VS` is left Off.
pub fn start_vector() -> Result<Rvv, NoVector> {
    let misa = misa::try_read().map_or(0, |m| m.bits());
    if !has_vector(misa) {
        return Err(NoVector { misa });
    }
    // SAFETY: setting VS only allows vector instructions; M-mode may write
    // mstatus, and nothing else depends on VS being Off.
    unsafe { mstatus::set_vs(VS::Initial) };
    // SAFETY: misa.V says the hart implements RVV 1.0, and VS was just set.
    Ok(unsafe { Rvv::new_unchecked() })
}

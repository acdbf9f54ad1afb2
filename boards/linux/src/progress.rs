//! A progress bar on stderr for long jobs (packing multi-GB models).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `[#####.....] 42% 1.2/2.9 GB` on stderr, at most every 100 ms.
/// Off a terminal it prints a plain line every 10% instead.
pub struct Progress {
    label: &'static str,
    tty: bool,
    last: Option<Instant>,
    last_decile: u64,
}

impl Progress {
    /// A bar labelled `label`.
    pub fn new(label: &'static str) -> Self {
        Progress {
            label,
            tty: std::io::stderr().is_terminal(),
            last: None,
            last_decile: 0,
        }
    }

    /// Reports `done` of `total` bytes.
    pub fn update(&mut self, done: u64, total: u64) {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let finished = done >= total;
        let mut err = std::io::stderr().lock();
        if self.tty {
            if !finished
                && self
                    .last
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            {
                return;
            }
            self.last = Some(Instant::now());
            let filled = (pct / 4) as usize;
            let _ = write!(
                err,
                "\r{} [{}{}] {pct:3}% {:.2}/{:.2} GB",
                self.label,
                "#".repeat(filled),
                ".".repeat(25 - filled),
                done as f64 / 1e9,
                total as f64 / 1e9
            );
            if finished {
                let _ = writeln!(err);
            }
        } else if pct / 10 > self.last_decile || finished && self.last_decile < 10 {
            self.last_decile = pct / 10;
            let _ = writeln!(err, "{}: {pct}% ({done} of {total} bytes)", self.label);
        }
    }
}

//! How much of the machine other processes took while the benchmark ran:
//! the CPU time of the whole machine (`/proc/stat`, including time stolen
//! by a hypervisor) minus this process's and its finished children's
//! (`/proc/self/stat`). Timings on a busy machine say little, and threaded
//! runs suffer most (a thread waiting at a barrier for one that is not
//! scheduled), so the benchmark prints this share next to its figures.

use std::fs;

/// CPU time counters, in clock ticks, at one moment (Linux only).
pub struct CpuTimes {
    /// Busy time of all CPUs, time stolen by the hypervisor included.
    busy: u64,
    /// All time of all CPUs, idle included.
    total: u64,
    /// This process's and its waited-for children's user and system time.
    ours: u64,
}

impl CpuTimes {
    /// The counters now; `None` where /proc does not have them.
    pub fn now() -> Option<CpuTimes> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        // "cpu user nice system idle iowait irq softirq steal guest guest_nice"
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        // guest time is already counted in user time.
        let total = (0..8).map(field).sum();
        let busy = total - field(3) - field(4);
        // Fields 14 to 17 of /proc/self/stat: utime stime cutime cstime; the
        // command name before them is in parentheses and may hold spaces.
        let own = fs::read_to_string("/proc/self/stat").ok()?;
        let after_name = own.rsplit_once(')')?.1;
        let times: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        Some(CpuTimes {
            busy,
            total,
            ours: times.iter().sum(),
        })
    }

    /// The share of all CPU time since `earlier` that went to other
    /// processes (or to other virtual machines, as steal).
    pub fn others_since(&self, earlier: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let busy = self.busy.saturating_sub(earlier.busy);
        let ours = self.ours.saturating_sub(earlier.ours);
        if total == 0 {
            0.0
        } else {
            busy.saturating_sub(ours) as f64 / total as f64
        }
    }
}

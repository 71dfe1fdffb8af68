//! The measurement protocol: what the machine is, what else was running
//! on it while each cell was measured, and which commit was measured.
//!
//! The 1-minute load average is recorded before and after every cell, but
//! it cannot tell the sweep's own work from other work: a cell keeps a
//! server and the client busy, so during a sweep the average climbs toward
//! 2 on its own and stays there. What decides whether a cell is marked busy
//! is the *other* load, in cores: the CPU time the whole machine spent
//! (`/proc/stat`) less what the sweep's server, client and driver spent,
//! over a short window before the cell (when the sweep runs nothing) and
//! over the cell itself.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// `/proc/loadavg`'s first three fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

impl LoadAverage {
    pub fn now() -> LoadAverage {
        let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut f = text
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
        LoadAverage {
            one: f.next().unwrap_or(f64::NAN),
            five: f.next().unwrap_or(f64::NAN),
            fifteen: f.next().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for LoadAverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

/// The machine's CPU time so far, all CPUs together, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    busy: u64,
    total: u64,
    at: Instant,
}

impl CpuClock {
    pub fn now() -> CpuClock {
        let text = fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is
        // already counted in user and nice).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        CpuClock {
            busy: total - idle,
            total,
            at: Instant::now(),
        }
    }

    /// Cores kept busy since `earlier` by work other than `own_seconds`
    /// of CPU time, on average; never below 0.
    pub fn other_load_since(&self, earlier: &CpuClock, own_seconds: f64) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 || self.total <= earlier.total {
            return 0.0;
        }
        let busy = (self.busy - earlier.busy) as f64 / crate::sweep::clock_ticks();
        ((busy - own_seconds) / wall).max(0.0)
    }
}

/// Cores kept busy by others during a window of `window` in which this
/// process sleeps (it runs nothing else meanwhile).
pub fn other_load_over(window: Duration) -> f64 {
    let before = CpuClock::now();
    std::thread::sleep(window);
    CpuClock::now().other_load_since(&before, 0.0)
}

/// What was measured on: recorded in every output.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub commit: String,
}

impl Machine {
    pub fn here() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|v| v.split_once(':'))
            .map_or("unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
        let cores = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".to_owned(), |s| s.trim().to_owned());
        Machine {
            cpu,
            cores,
            kernel,
            commit: commit(),
        }
    }
}

/// The commit of the source tree this program was built from, `-dirty`
/// if tracked files have changed since; "unknown" without git.
fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty()) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}-dirty"),
        _ => head,
    }
}

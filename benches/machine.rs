//! What the plain-timing benchmarks share: the best of several timings, and what they print
//! beside their numbers so that a figure names its machine and load (the CPU's model name and
//! the load average, both read from `/proc` on Linux).

use std::time::Instant;

/// Best of `runs` timings of `job`, in seconds.
pub fn best_of(runs: usize, mut job: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            job();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The CPU's model name from /proc/cpuinfo, if there is one.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The load average line of /proc/loadavg (empty where there is none).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

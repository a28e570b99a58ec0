//! Readers for `/proc`: a process's CPU time, RSS and thread count, this
//! process's open-file limit, and the machine facts `BENCHMARKS.md` quotes.
//! Called from the harness's main thread between measurements.

use std::sync::OnceLock;

/// User + system CPU seconds a process has used so far (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) as f64 / clock_ticks(),
        _ => 0.0,
    }
}

/// Resident set size in KiB (0 when the process is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Number of threads of a process (0 when it is gone).
pub fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Kernel clock ticks per second (`getconf CLK_TCK`, almost always 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// This process's soft limit on open files.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What the machine is, for the report: cores, CPU model, kernel and the
/// kernel limits that bound the number of connections.
pub fn machine() -> serde_json::Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    serde_json::json!({
        "kind": "machine",
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "model": model,
        "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
        "pid_max": read_trimmed("/proc/sys/kernel/pid_max"),
        "threads_max": read_trimmed("/proc/sys/kernel/threads-max"),
        "max_map_count": read_trimmed("/proc/sys/vm/max_map_count"),
        "open_files": open_file_limit(),
        "load_average": load_average(),
    })
}

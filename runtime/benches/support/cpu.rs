//! CPU time of processes, from `/proc/<pid>/stat` (Linux): a figure that
//! other load on the machine disturbs much less than throughput.

use std::time::Duration;

/// The CPU time (user + system) process `pid` (or `"self"`) has used so
/// far, in steps of the 10 ms clock tick; `None` off Linux.
pub fn cpu_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces, in parentheses.
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

//! What xtask bench reads from /proc: CPU time, resident memory, process trees and limits.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

/// CPU time of a set of processes, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ticks {
    pub(crate) user: u64,
    pub(crate) system: u64,
}

impl Ticks {
    pub(crate) fn total(self) -> u64 {
        self.user + self.system
    }

    pub(crate) fn since(self, before: Ticks) -> Ticks {
        Ticks {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

/// The fields after the command name of a `/proc/PID/stat` line (the name may hold spaces
/// and parentheses, so split after the last `)`): index 0 is the state, 1 the parent pid,
/// 11 `utime` and 12 `stime`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// User and system time of a `/proc/PID/stat` line (all threads of the process).
pub(crate) fn parse_ticks(stat: &str) -> Option<Ticks> {
    let f = stat_fields(stat)?;
    Some(Ticks {
        user: f.get(11)?.parse().ok()?,
        system: f.get(12)?.parse().ok()?,
    })
}

/// The parent pid of a `/proc/PID/stat` line.
fn parse_ppid(stat: &str) -> Option<u32> {
    stat_fields(stat)?.get(1)?.parse().ok()
}

/// The CPU time of `pids` added up; a process that is gone counts nothing.
pub(crate) fn ticks(pids: &[u32]) -> Ticks {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|s| parse_ticks(&s))
        .fold(Ticks::default(), |a, t| Ticks {
            user: a.user + t.user,
            system: a.system + t.system,
        })
}

/// `pid` and every process below it (workers, their children).
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s))
            {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub(crate) fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of `pids` added up, in KiB.
pub(crate) fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|s| parse_rss_kib(&s))
        .sum()
}

/// Soft and hard `Max open files` of a `/proc/PID/limits` text.
pub(crate) fn parse_nofile(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut v = line["Max open files".len()..].split_whitespace();
    let num = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((num(v.next())?, num(v.next())?))
}

/// Raises this process's soft open-file limit to `want` (at most the hard limit) with
/// util-linux's `prlimit`, since xtask has no libc; children started later inherit it.
/// Returns the soft limit in force afterwards.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    let read = || {
        fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_nofile(&l))
            .unwrap_or((1024, 1024))
    };
    let (soft, hard) = read();
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={target}:{hard}"))
        .status();
    read().0
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
pub(crate) fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names() {
        let stat = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 1229 0 0 0 \
                    315 27 0 0 20 0 1 0 1234 9367552 830 18446744073709551615";
        assert_eq!(
            parse_ticks(stat),
            Some(Ticks {
                user: 315,
                system: 27
            })
        );
        assert_eq!(parse_ppid(stat), Some(17));
        assert_eq!(parse_ticks("4242 (cut short) S 1 2"), None);
    }

    #[test]
    fn this_process_is_in_its_own_tree_and_uses_cpu() {
        let me = std::process::id();
        assert_eq!(tree(me)[0], me);
        // Work until the kernel has charged at least one tick (bounded: a broken parser
        // that always reads 0 fails here after 10 s).
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while ticks(&[me]).total() == 0 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "no CPU time seen"
            );
            for _ in 0..100_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
        std::hint::black_box(x);
        assert!(rss_kib(&[me]) > 0);
    }

    #[test]
    fn status_and_limits() {
        let status = "Name:\txtask\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\n";
        assert_eq!(parse_rss_kib(status), Some(4321));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(parse_nofile(limits), Some((1024, 20000)));
        assert_eq!(
            parse_nofile("Max open files            unlimited            unlimited    files"),
            Some((u64::MAX, u64::MAX))
        );
    }

    #[test]
    fn ticks_subtract_without_underflow() {
        let a = Ticks { user: 5, system: 9 };
        let b = Ticks { user: 7, system: 4 };
        assert_eq!(b.since(a), Ticks { user: 2, system: 0 });
        assert_eq!(b.total(), 11);
    }
}

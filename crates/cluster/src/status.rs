//! The master's status table: what `--status ADDR` serves over HTTP and `SIGUSR1` prints.
//!
//! ```text
//! master 4242 serving generation 1 workers 2 uptime 75s
//! slot pid state gen uptime restarts accepted requests active
//! 0 4250 ready 1 12s 1 530 10400 3
//! 1 4251 ready 1 12s 0 512 10012 2
//! - 4244 draining 0 75s 0 1810 40211 1
//! total restarts 1 accepted 2852 requests 60623 active 6
//! ```
//!
//! One line per worker, space-separated, so `awk` and tests read it. Counters come from each
//! worker's last heartbeat (at most a heartbeat interval old). The first word of the first
//! line after the pid is `serving` or `stopping`; over HTTP, a stopping master answers 503 so
//! a load balancer's health check takes it out of rotation.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::supervisor::{Supervisor, WorkerState};

/// The table, as text.
pub(crate) fn render(sup: &Supervisor, started: Instant, now: Instant) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "master {} {} generation {} workers {} uptime {}",
        std::process::id(),
        if sup.is_stopping() {
            "stopping"
        } else {
            "serving"
        },
        sup.generation(),
        sup.target(),
        age(now, started)
    );
    out.push_str("slot pid state gen uptime restarts accepted requests active\n");
    let (mut restarts, mut accepted, mut requests, mut active) = (0, 0, 0, 0);
    let mut counted = vec![false; sup.target()];
    for w in sup.workers() {
        let live =
            matches!(w.state, WorkerState::Starting | WorkerState::Ready) && w.slot < sup.target();
        let slot = if live {
            w.slot.to_string()
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "{slot} {} {} {} {} {} {} {} {}",
            w.pid,
            w.state.name(),
            w.generation,
            age(now, w.started),
            w.restarts,
            w.counters.accepted,
            w.counters.requests,
            w.counters.active
        );
        if let Some(c) = counted.get_mut(w.slot)
            && !*c
        {
            *c = true;
            restarts += w.restarts;
        }
        accepted += w.counters.accepted;
        requests += w.counters.requests;
        active += w.counters.active;
    }
    let _ = writeln!(
        out,
        "total restarts {restarts} accepted {accepted} requests {requests} active {active}"
    );
    out
}

fn age(now: Instant, since: Instant) -> String {
    let d = now.saturating_duration_since(since);
    format!("{}s", d.as_secs())
}

/// The HTTP response carrying the table: 200, or 503 while the master stops.
pub(crate) fn response(table: &str, stopping: bool) -> Vec<u8> {
    let status = if stopping {
        "503 Service Unavailable"
    } else {
        "200 OK"
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{table}",
        table.len()
    )
    .into_bytes()
}

/// Longest request head the status listener reads.
pub(crate) const MAX_REQUEST: usize = 4096;

/// Time a status client has to send its request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{Action, Counters, Policy};

    #[test]
    fn the_table_lists_every_worker_with_its_counters() {
        let t0 = Instant::now();
        let policy = Policy {
            workers: 2,
            graceful_timeout: Duration::from_secs(30),
            worker_timeout: None,
        };
        let mut sup = Supervisor::new(policy, t0);
        let mut pid = 100;
        while let Some(a) = sup.poll_action() {
            if let Action::Spawn { slot } = a {
                pid += 1;
                sup.handle_spawned(slot, pid, t0);
            }
        }
        sup.handle_ready(101, t0);
        let c = Counters {
            accepted: 5,
            requests: 9,
            active: 2,
        };
        sup.handle_heartbeat(101, c, t0 + Duration::from_secs(3));
        let table = render(&sup, t0, t0 + Duration::from_secs(4));
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains(" serving generation 0 workers 2 uptime 4s"),
            "{table}"
        );
        assert_eq!(lines[2], "0 101 ready 0 4s 0 5 9 2");
        assert_eq!(lines[3], "1 102 starting 0 4s 0 0 0 0");
        assert_eq!(lines[4], "total restarts 0 accepted 5 requests 9 active 2");
        let resp = String::from_utf8(response(&table, false)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(resp.ends_with(&table));
        assert!(
            String::from_utf8(response(&table, true))
                .unwrap()
                .starts_with("HTTP/1.1 503")
        );
    }
}

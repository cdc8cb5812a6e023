//! Workers changing under load: a killed worker is replaced and costs only what it had in
//! flight; reloads (SIGHUP) lose nothing, with short connections or busy keep-alive ones.

mod common;

use std::time::{Duration, Instant};

use common::{Load, Server, eventually, is_gone, next_workers, signal};

const CLIENTS: usize = 6;

/// Sends SIGHUP and waits for the new workers to start and the old ones to be gone.
fn reload(server: &mut Server, workers: usize) {
    let old = std::mem::take(&mut server.workers);
    signal(server.master_pid(), libc::SIGHUP);
    let new = next_workers(server, workers, Duration::from_secs(10));
    assert_eq!(new.len(), workers, "the reload started {new:?}");
    server.workers = new.iter().map(|w| w.1).collect();
    assert!(new.iter().all(|w| !old.contains(&w.1)));
    assert!(
        eventually(Duration::from_secs(10), || old.iter().all(|&p| is_gone(p))),
        "old workers did not drain"
    );
    server.workers.extend(old);
}

#[test]
fn five_reloads_under_short_connections_fail_no_request() {
    let mut server = Server::start(2, &["--graceful-timeout", "5"]);
    let load = Load::start(server.addr, CLIENTS, false);
    assert!(load.wait_for(200, Duration::from_secs(10)), "no load");
    let t0 = Instant::now();
    for _ in 0..5 {
        reload(&mut server, 2);
        assert!(
            load.wait_for(100, Duration::from_secs(10)),
            "the load stalled"
        );
    }
    let count = load.finish();
    println!(
        "5 reloads in {:?}: {} requests, {} failed",
        t0.elapsed(),
        count.ok,
        count.failed
    );
    assert_eq!(count.failed, 0, "{:?}", count.errors);
}

#[test]
fn a_reload_under_busy_keep_alive_connections_fails_none() {
    let mut server = Server::start(2, &["--graceful-timeout", "5"]);
    let load = Load::start(server.addr, CLIENTS, true);
    assert!(load.wait_for(500, Duration::from_secs(10)), "no load");
    for _ in 0..3 {
        reload(&mut server, 2);
        assert!(
            load.wait_for(200, Duration::from_secs(10)),
            "the load stalled"
        );
    }
    let count = load.finish();
    println!(
        "3 reloads: {} keep-alive requests, {} failed, {} connections closed by the server",
        count.ok, count.failed, count.closed_by_server
    );
    assert_eq!(count.failed, 0, "{:?}", count.errors);
    // The old workers really closed their busy connections (with Connection: close).
    assert!(count.closed_by_server >= CLIENTS as u64, "{count:?}");
}

#[test]
fn a_worker_killed_under_load_is_replaced_and_costs_only_its_own_requests() {
    let mut server = Server::start(2, &["--graceful-timeout", "5"]);
    let load = Load::start(server.addr, CLIENTS, false);
    assert!(load.wait_for(200, Duration::from_secs(10)), "no load");
    let victim = server.workers[0];
    let killed = Instant::now();
    signal(victim, libc::SIGKILL);
    let new = next_workers(&server, 1, Duration::from_secs(5));
    let respawn = killed.elapsed();
    println!("replacement worker started {respawn:?} after SIGKILL");
    assert_eq!(new.len(), 1, "no replacement within 5 s");
    assert_eq!(new[0].0, 0, "the replacement takes slot 0");
    server.workers.push(new[0].1);
    assert!(respawn < Duration::from_secs(3), "respawn took {respawn:?}");
    assert!(
        load.wait_for(300, Duration::from_secs(10)),
        "the load stalled"
    );
    let count = load.finish();
    println!(
        "{} requests, {} failed: {:?}",
        count.ok, count.failed, count.errors
    );
    // Each client has one request at a time: at most one each was on the killed worker.
    assert!(count.failed <= CLIENTS as u64, "{:?}", count.errors);
}

//! The driver with real processes: this test binary re-execs itself as a master
//! (`TEST_CLUSTER=1`), whose workers are this binary again (`CLUSTER_WORKER`), behaving as
//! `TEST_WORKER` says. Checks fd passing, respawn, the crash-loop backoff, the cannot-boot
//! exit code and the heartbeat timeout. Every wait is bounded.

use std::future::poll_fn;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    if std::env::var_os("TEST_CLUSTER").is_some() {
        return cluster_main();
    }
    let tests: [(&str, fn()); 6] = [
        ("sockets_pass_and_a_killed_worker_is_replaced", respawn),
        (
            "a_crash_loop_backs_off_and_the_master_stays_idle",
            crash_loop,
        ),
        ("a_worker_that_cannot_boot_stops_the_master", cannot_boot),
        ("a_stuck_worker_is_killed_and_replaced", stuck),
        ("a_stuck_worker_dies_with_its_master", orphan),
        (
            "a_stopped_master_does_not_kill_healthy_workers",
            stopped_master,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let handles: Vec<_> = tests
        .into_iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .map(|(name, f)| (name, std::thread::spawn(f)))
        .collect();
    let mut failed = 0;
    for (name, h) in handles {
        match h.join() {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The master, and its workers: `cluster::run` picks the role.
fn cluster_main() -> ExitCode {
    let addr: SocketAddr = std::env::var("TEST_ADDR").unwrap().parse().unwrap();
    let mut config = cluster::Config::new(addr);
    config.workers = std::env::var("TEST_WORKERS").unwrap().parse().unwrap();
    config.worker_timeout = Some(Duration::from_millis(
        std::env::var("TEST_TIMEOUT_MS").unwrap().parse().unwrap(),
    ));
    config.graceful_timeout = Duration::from_secs(2);
    let mode = std::env::var("TEST_WORKER").unwrap_or_default();
    let res = cluster::run(&config, |worker| async move {
        match mode.as_str() {
            "crash" => std::process::exit(1),
            "cannot-boot" => return Err(std::io::Error::other("no config file")),
            "stuck" => {
                worker.ready();
                // Let one heartbeat out, then block the loop for good.
                uvlite::sleep(Duration::from_millis(100)).await;
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            _ => {}
        }
        worker.ready();
        loop {
            let next = poll_fn(|cx| match worker.poll_stop_requested(cx) {
                Poll::Ready(_) => Poll::Ready(None),
                Poll::Pending => worker.listener.poll_accept(cx).map(Some),
            })
            .await;
            let Some(accepted) = next else { return Ok(()) };
            let (conn, _) = accepted?;
            conn.write_all(format!("{}\n", std::process::id()).as_bytes())
                .await?;
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test master: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

struct Master {
    child: Child,
    addr: SocketAddr,
    /// `(slot, pid)` lines from stdout, as they come.
    spawns: mpsc::Receiver<(usize, u32)>,
    stderr: mpsc::Receiver<String>,
}

impl Master {
    fn start(mode: &str, workers: usize, timeout_ms: u64) -> Master {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("TEST_CLUSTER", "1")
            .env("TEST_ADDR", addr.to_string())
            .env("TEST_WORKERS", workers.to_string())
            .env("TEST_TIMEOUT_MS", timeout_ms.to_string())
            .env("TEST_WORKER", mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, spawns) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("worker ") {
                    let (slot, pid) = rest.split_once(" pid ").unwrap();
                    let _ = tx.send((slot.parse().unwrap(), pid.parse().unwrap()));
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        Master {
            child,
            addr,
            spawns,
            stderr,
        }
    }

    fn next_spawn(&self, limit: Duration) -> Option<(usize, u32)> {
        self.spawns.recv_timeout(limit).ok()
    }

    /// The pid of the worker that answers a connection.
    fn ask(&self) -> Option<u32> {
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.trim().parse().ok()
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

/// Everything `rx` receives until its sender is gone (the reader thread saw EOF), within
/// `limit`: for a master that exited, whose last lines may still be on their way.
fn drain<T>(rx: &mpsc::Receiver<T>, limit: Duration) -> Vec<T> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(item) => out.push(item),
            Err(_) => break,
        }
    }
    out
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(pid: u32, sig: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::try_from(sig).unwrap(),
    );
}

fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// CPU time (user + system) of a process, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    Duration::from_millis(ticks * 10)
}

fn respawn() {
    let m = Master::start("serve", 2, 30_000);
    let mut pids = vec![0; 2];
    for _ in 0..2 {
        let (slot, pid) = m.next_spawn(Duration::from_secs(10)).expect("two workers");
        pids[slot] = pid;
    }
    // Both workers answer on the one socket they were sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 && Instant::now() < deadline {
        if let Some(p) = m.ask() {
            assert!(
                pids.contains(&p),
                "answered by {p}, not a worker of {pids:?}"
            );
            seen.insert(p);
        }
    }
    assert!(!seen.is_empty(), "no worker answered");
    // SIGKILL one: its slot gets a new worker, which answers.
    let killed = Instant::now();
    kill(pids[1], libc::SIGKILL);
    let (slot, new) = m.next_spawn(Duration::from_secs(5)).expect("a replacement");
    println!("  replacement after {:?}", killed.elapsed());
    assert_eq!(slot, 1);
    assert_ne!(new, pids[1]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.ask() != Some(new) {
        assert!(Instant::now() < deadline, "the new worker never answered");
    }
}

fn crash_loop() {
    let m = Master::start("crash", 1, 30_000);
    let t0 = Instant::now();
    let mut times = Vec::new();
    while m
        .next_spawn(Duration::from_secs(5).saturating_sub(t0.elapsed()))
        .is_some()
    {
        times.push(t0.elapsed());
    }
    // Spawns at about 0, 1, 2.5, 4.75 s: never more than 4 in 5 s, and at least 2.
    println!("  spawns at {times:?}");
    assert!((2..=4).contains(&times.len()), "{times:?}");
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "no backoff: {times:?}"
        );
    }
    let cpu = cpu_time(m.child.id());
    println!("  master CPU over {:?}: {cpu:?}", t0.elapsed());
    assert!(cpu < Duration::from_millis(500), "master busy: {cpu:?}");
    let log = m.stderr_lines().join("\n");
    assert!(
        log.contains("never became ready, respawning in 1s"),
        "{log}"
    );
}

fn cannot_boot() {
    let mut m = Master::start("cannot-boot", 2, 30_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = m.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the master did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    // The master has exited: read its output to the end, not only what arrived so far.
    let spawns = drain(&m.spawns, Duration::from_secs(5));
    assert_eq!(spawns.len(), 2, "respawned: {spawns:?}");
    let log = drain(&m.stderr, Duration::from_secs(5)).join("\n");
    assert!(log.contains("cannot boot: no config file"), "{log}");
    assert!(log.contains("not respawning"), "{log}");
}

fn stuck() {
    let m = Master::start("stuck", 1, 1_000);
    let (_, first) = m.next_spawn(Duration::from_secs(10)).expect("a worker");
    let t0 = Instant::now();
    let (_, second) = m
        .next_spawn(Duration::from_secs(10))
        .expect("a replacement");
    println!("  replaced after {:?}", t0.elapsed());
    assert_ne!(first, second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(first) {
        assert!(Instant::now() < deadline, "the stuck worker lives on");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = m.stderr_lines().join("\n");
    assert!(
        log.contains(&format!("pid {first} sent no heartbeat")),
        "{log}"
    );
}

fn orphan() {
    // A worker stuck in a handler never reads its pipe's EOF: PR_SET_PDEATHSIG arms the
    // SIGALRM backstop, which ends it within the graceful timeout (2 s here) and a second.
    let mut m = Master::start("stuck", 1, 60_000);
    let (_, pid) = m.next_spawn(Duration::from_secs(10)).expect("a worker");
    std::thread::sleep(Duration::from_millis(300)); // it is stuck now
    assert!(!is_gone(pid));
    let killed = Instant::now();
    let _ = m.child.kill();
    let _ = m.child.wait();
    let deadline = killed + Duration::from_secs(8);
    while !is_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "an orphan survived its master by 8 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "  the stuck orphan was gone {:?} after its master",
        killed.elapsed()
    );
    assert!(
        killed.elapsed() >= Duration::from_millis(1500),
        "ended before its grace"
    );
}

fn stopped_master() {
    // unicorn's heartbeat-timeout test: SIGSTOP the master past the worker timeout; when it
    // resumes it reads the heartbeats queued meanwhile before it judges any worker late.
    let m = Master::start("serve", 1, 1_000);
    let (_, pid) = m.next_spawn(Duration::from_secs(10)).expect("a worker");
    while m.ask() != Some(pid) {}
    kill(m.child.id(), libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2500));
    kill(m.child.id(), libc::SIGCONT);
    assert!(
        m.next_spawn(Duration::from_millis(2000)).is_none(),
        "a worker was replaced after the master resumed: {:?}",
        m.stderr_lines()
    );
    assert!(!is_gone(pid));
    assert_eq!(m.ask(), Some(pid));
}

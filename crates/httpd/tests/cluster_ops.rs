//! What an operator does to a running master: the status table, TTIN/TTOU, a worker that
//! cannot boot, systemd socket activation, and the binary upgrade (USR2) with its rollback.

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Conn, Load, Server, eventually, free_port, get_status, is_gone, next_workers, signal, wait_exit,
};

fn status_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// The worker rows of a status table: (slot, pid, state, accepted, requests).
fn rows(table: &str) -> Vec<(String, u32, String, u64, u64)> {
    table
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("total"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
                f[6].parse().unwrap(),
                f[7].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_status_table_counts_per_worker_and_ttin_ttou_change_the_count() {
    let st = status_addr();
    let mut server = Server::start(2, &["--status", &st.to_string(), "--worker-timeout", "4"]);
    let (code, table) = get_status(st).unwrap();
    assert_eq!(code, 200, "{table}");
    assert!(
        table.starts_with(&format!("master {} serving", server.master_pid())),
        "{table}"
    );
    for i in 0..40 {
        let mut c = Conn::new(server.connect());
        c.send(format!("GET /{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    // Heartbeats carry the counters (one a second at most with a 4 s timeout).
    assert!(
        eventually(Duration::from_secs(5), || {
            let t = get_status(st).unwrap().1;
            rows(&t).iter().map(|r| r.4).sum::<u64>() >= 41
        }),
        "{}",
        get_status(st).unwrap().1
    );
    let table = get_status(st).unwrap().1;
    let r = rows(&table);
    assert_eq!(r.len(), 2);
    assert!(
        r.iter()
            .all(|w| w.2 == "ready" && server.workers.contains(&w.1))
    );
    // 40, and the probe Server::start sent.
    assert_eq!(r.iter().map(|w| w.3).sum::<u64>(), 41, "{table}");
    assert!(
        table.contains("total restarts 0 accepted 41 requests 41"),
        "{table}"
    );

    // TTIN: a third worker; TTOU twice: down to one, the others drain and exit.
    signal(server.master_pid(), libc::SIGTTIN);
    let third = next_workers(&server, 1, Duration::from_secs(5));
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].0, 2);
    server.workers.push(third[0].1);
    assert!(eventually(Duration::from_secs(5), || {
        let t = get_status(st).unwrap().1;
        t.contains(" workers 3 ") && rows(&t).iter().filter(|r| r.2 == "ready").count() == 3
    }));
    signal(server.master_pid(), libc::SIGTTOU);
    std::thread::sleep(Duration::from_millis(100));
    signal(server.master_pid(), libc::SIGTTOU);
    assert!(
        eventually(Duration::from_secs(5), || is_gone(third[0].1)
            && is_gone(server.workers[1])),
        "{}",
        get_status(st).unwrap().1
    );
    let t = get_status(st).unwrap().1;
    assert!(t.contains(" workers 1 "), "{t}");
    assert_eq!(rows(&t).len(), 1, "{t}");
    assert!(!is_gone(server.workers[0]));
    // Still serving.
    let mut c = Conn::new(server.connect());
    c.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, b"/after\n");
}

#[test]
fn a_stopping_master_reports_503_on_its_status_listener() {
    let st = status_addr();
    let mut server = Server::start(
        1,
        &[
            "--status",
            &st.to_string(),
            "--app",
            "drip",
            "--graceful-timeout",
            "10",
        ],
    );
    // A slow response keeps the master in its drain for a while.
    let mut c = Conn::new(server.connect());
    c.send(b"GET /?chunks=30&size=10&delay=50 HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut line = String::new();
    c.reader.read_line(&mut line).unwrap();
    signal(server.master_pid(), libc::SIGTERM);
    assert!(eventually(Duration::from_secs(2), || {
        matches!(get_status(st), Ok((503, t)) if t.contains(" stopping "))
    }));
    // The response in flight completes: 30 chunks of 10 bytes.
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut c.reader, &mut rest).unwrap();
    assert!(rest.ends_with(&httpd::drip::body(30, 10)), "cut short");
    assert!(wait_exit(&mut server.child, Duration::from_secs(10)).is_some());
}

#[test]
fn a_worker_that_cannot_boot_stops_the_master_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--workers",
            "2",
            "--access-log",
            "/nonexistent/dir/access.log",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.matches("worker ").count(), 2, "respawned: {stdout}");
    assert!(stderr.contains("cannot boot"), "{stderr}");
    assert!(stderr.contains("/nonexistent/dir/access.log"), "{stderr}");
    assert!(stderr.contains("not respawning"), "{stderr}");
}

/// Runs httpd as systemd would: `socket` at fd 3, LISTEN_FDS=1, LISTEN_PID its own pid
/// (a shell moves stdin to fd 3, sets LISTEN_PID=$$ and execs httpd in its own process).
fn socket_activated(socket: OwnedFd, extra: &str) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --listen 127.0.0.1:1 --workers 1 {extra}"
        ))
        .arg(env!("CARGO_BIN_EXE_httpd"))
        .stdin(Stdio::from(socket))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_socket_from_systemd_is_checked_then_served() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut child = socket_activated(OwnedFd::from(l), "");
    let ok = eventually(Duration::from_secs(10), || {
        let Ok(s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut c = Conn::new(s);
        c.send(b"GET /activated HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.read_response(false)
            .is_ok_and(|r| r.body == b"/activated\n")
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(ok, "not served on the passed socket: {err}");
    assert!(err.contains("from systemd (LISTEN_FDS)"), "{err}");
    assert!(status.is_some_and(|s| s.success()), "{err}");

    // A socket that is not listening is refused with a clear message.
    let s = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::empty(),
        None,
    )
    .unwrap();
    let out = socket_activated(s, "").wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LISTEN_FDS: fd 3 is a TCP socket that is not listening"),
        "{err}"
    );
    // And so is a file.
    let f = std::fs::File::open("/dev/null").unwrap();
    let out = socket_activated(OwnedFd::from(f), "")
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LISTEN_FDS: fd 3 is not a TCP socket"),
        "{err}"
    );
}

/// The inode of the socket listening on `port`, from /proc/net/tcp.
fn listening_inode(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
        (local_port == port && f[3] == "0A").then(|| f[9].parse().unwrap())
    })
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn usr2_upgrades_the_binary_without_a_failed_request_and_rolls_back_a_bad_one() {
    // Run from a copy we can replace, as an operator replaces the installed binary.
    let dir = std::env::temp_dir().join(format!("httpd-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("httpd");
    std::fs::copy(env!("CARGO_BIN_EXE_httpd"), &bin).unwrap();
    let pid_file = dir.join("httpd.pid");
    let st = status_addr();
    let mut server = Server::start_bin(
        &bin,
        2,
        &[
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--status",
            &st.to_string(),
            "--graceful-timeout",
            "5",
        ],
    );
    let old_master = server.master_pid();
    assert!(eventually(Duration::from_secs(5), || read_pid(&pid_file)
        == Some(old_master)));
    let inode = listening_inode(server.addr.port()).unwrap();
    let load = Load::start(server.addr, 4, false);
    assert!(load.wait_for(100, Duration::from_secs(10)), "no load");

    // 1. A binary that cannot start: the old master keeps serving, the pid file stays.
    std::fs::remove_file(&bin).unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho 'broken build' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    signal(old_master, libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while !log.contains("upgrade failed") {
        let left = deadline.saturating_duration_since(Instant::now());
        log.push_str(
            &server
                .stderr
                .recv_timeout(left)
                .expect("an upgrade failure line"),
        );
        log.push('\n');
    }
    assert!(
        load.wait_for(100, Duration::from_secs(10)),
        "the load stalled"
    );
    assert_eq!(read_pid(&pid_file), Some(old_master));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the old master died"
    );

    // 2. The real binary: a new master takes over on the same socket.
    std::fs::remove_file(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_httpd"), &bin).unwrap();
    let t0 = Instant::now();
    signal(old_master, libc::SIGUSR2);
    let new = next_workers(&server, 2, Duration::from_secs(10));
    assert_eq!(new.len(), 2, "the new master's workers");
    assert!(
        eventually(Duration::from_secs(10), || read_pid(&pid_file)
            .is_some_and(|p| p != old_master)),
        "the pid file still names the old master"
    );
    let new_master = read_pid(&pid_file).unwrap();
    let status = wait_exit(&mut server.child, Duration::from_secs(10));
    println!("the old master exited {:?} after USR2", t0.elapsed());
    assert!(
        load.wait_for(100, Duration::from_secs(10)),
        "the load stalled"
    );
    let count = load.finish();
    let (code, table) = get_status(st).unwrap();
    let inode_after = listening_inode(server.addr.port());
    let old_workers = server.workers.clone();
    // Clean up the new master (not the Server's child) before asserting.
    signal(new_master, libc::SIGTERM);
    let cleaned = eventually(Duration::from_secs(10), || {
        is_gone(new_master) && new.iter().all(|w| is_gone(w.1))
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.is_some_and(|s| s.success()),
        "old master: {status:?}"
    );
    assert!(old_workers.iter().all(|&p| is_gone(p)));
    println!(
        "{} requests through both upgrades, {} failed",
        count.ok, count.failed
    );
    assert_eq!(count.failed, 0, "{:?}", count.errors);
    assert_eq!(listening_inode(server.addr.port()), None, "stopped");
    assert_eq!(code, 200);
    assert!(
        table.starts_with(&format!("master {new_master} serving")),
        "{table}"
    );
    assert!(cleaned, "the new master did not stop");
    assert!(log.contains("upgrade failed"), "{log}");
    assert_eq!(inode_after, Some(inode), "the listening socket changed");
}

/// The `flags:` of the fd of `pid` that is the socket `inode` (octal, from fdinfo).
fn socket_flags(pid: u32, inode: u64) -> Option<u32> {
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if std::fs::read_link(entry.path()).ok()?.to_string_lossy() == want {
            let fd = entry.file_name();
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy()))
                    .ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            return u32::from_str_radix(flags.trim(), 8).ok();
        }
    }
    None
}

#[test]
fn the_shared_socket_stays_non_blocking_through_reloads() {
    let mut server = Server::start(2, &["--graceful-timeout", "5"]);
    let inode = listening_inode(server.addr.port()).unwrap();
    signal(server.master_pid(), libc::SIGHUP);
    let new = next_workers(&server, 2, Duration::from_secs(10));
    assert_eq!(new.len(), 2);
    server.workers.extend(new.iter().map(|w| w.1));
    // O_NONBLOCK is a flag of the open file description that master and workers share:
    // nobody may clear it, or every worker's accept would block.
    for pid in [server.master_pid(), new[0].1, new[1].1] {
        // A new worker gets the socket a moment after it starts.
        assert!(eventually(Duration::from_secs(10), || socket_flags(
            pid, inode
        )
        .is_some()));
        let flags = socket_flags(pid, inode).expect("the process holds the socket");
        assert_ne!(
            flags & libc::O_NONBLOCK as u32,
            0,
            "pid {pid}: flags {flags:o}"
        );
    }
    assert_eq!(listening_inode(server.addr.port()), Some(inode));
}

/// The inodes of every socket listening on `port`.
fn listening_inodes(port: u16) -> Vec<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
            (local_port == port && f[3] == "0A").then(|| f[9].parse().unwrap())
        })
        .collect()
}

#[test]
fn with_reuseport_each_worker_listens_on_its_own_socket() {
    let server = Server::start(2, &["--reuseport"]);
    let port = server.addr.port();
    assert!(eventually(Duration::from_secs(10), || listening_inodes(
        port
    )
    .len()
        == 2));
    let inodes = listening_inodes(port);
    for (i, &pid) in server.workers.iter().enumerate() {
        let held: Vec<u64> = inodes
            .iter()
            .copied()
            .filter(|&ino| socket_flags(pid, ino).is_some())
            .collect();
        assert_eq!(held.len(), 1, "worker {i} holds {held:?} of {inodes:?}");
    }
    // The master's socket reserves the port but does not listen: it takes no share.
    assert!(
        inodes
            .iter()
            .all(|&ino| socket_flags(server.master_pid(), ino).is_none())
    );
    for i in 0..20 {
        let mut c = Conn::new(server.connect());
        c.send(format!("GET /rp/{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        assert_eq!(
            c.read_response(false).unwrap().body,
            format!("/rp/{i}\n").as_bytes()
        );
    }
}

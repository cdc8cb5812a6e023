//! The seed's system end to end: a master, two workers on one shared socket, the path app.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::{Conn, Server, eventually, is_gone, signal};

#[test]
fn keep_alive_and_close_responses_are_byte_exact() {
    let server = Server::start(2, &[]);
    let mut c = Conn::new(server.connect());
    c.send(b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nServer: http-cluster\r\nContent-Type: text/plain\r\n\
         Connection: keep-alive\r\nContent-Length: 11\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(r.body, b"/hello?x=1\n");

    // HTTP/1.1 with Connection: close: no keep-alive header, Connection: close, then EOF.
    c.send(b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nServer: http-cluster\r\nContent-Type: text/plain\r\n\
         Connection: close\r\nContent-Length: 5\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(r.body, b"/bye\n");
    assert!(c.closed());

    // HTTP/1.0 without keep-alive closes; with keep-alive stays open.
    let mut c = Conn::new(server.connect());
    c.send(b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(r.body, b"/ten\n");
    c.send(b"GET /ten-again HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nServer: http-cluster\r\nContent-Type: text/plain\r\n\
         Connection: close\r\nContent-Length: 11\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(r.body, b"/ten-again\n");
    assert!(c.closed());
}

#[test]
fn a_request_body_is_drained_not_parsed_as_a_request() {
    let server = Server::start(1, &[]);
    let mut c = Conn::new(server.connect());
    c.send(
        b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 27\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(c.read_response(false).unwrap().body, b"/form\n");
    assert_eq!(c.read_response(false).unwrap().body, b"/next\n");
}

#[test]
fn a_malformed_request_gets_400_and_close() {
    let server = Server::start(1, &[]);
    let mut c = Conn::new(server.connect());
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
}

/// The socket inodes a process holds, from /proc/PID/fd.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                out.insert(inode.parse().unwrap());
            }
        }
    }
    out
}

/// The inode of the socket listening on `port`, from /proc/net/tcp.
fn listening_inode(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap();
        if local_port == port && f[3] == "0A" {
            return f[9].parse().unwrap();
        }
    }
    panic!("nothing listens on port {port}");
}

#[test]
fn every_worker_holds_the_same_listening_socket() {
    let server = Server::start(2, &[]);
    let inode = listening_inode(server.addr.port());
    assert_eq!(server.workers.len(), 2);
    for &pid in &server.workers {
        assert!(
            socket_inodes(pid).contains(&inode),
            "worker {pid} does not hold socket {inode}"
        );
    }
    // The master holds it too (it bound it), so nothing queued is lost when workers go.
    assert!(socket_inodes(server.master_pid()).contains(&inode));
    assert_ne!(server.workers[0], server.workers[1]);
}

#[test]
fn a_hundred_keep_alive_clients_a_thousand_requests_each() {
    let server = Server::start(2, &["--app", "hello"]);
    let addr = server.addr;
    let threads: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.set_nodelay(true).unwrap();
                let mut c = Conn::new(s);
                for j in 0..1000 {
                    c.send(format!("GET /{i}/{j} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
                    let r = c.read_response(false).expect("response");
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body, b"Hello, World!");
                }
            })
        })
        .collect();
    let mut errors = 0;
    for t in threads {
        if t.join().is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 0, "{errors} clients failed");
}

#[test]
fn sigterm_to_the_master_leaves_no_process_behind() {
    let mut server = Server::start(2, &[]);
    let workers = server.workers.clone();
    signal(server.master_pid(), libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the master did not exit within 2 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "master exit status {status}");
    assert!(
        eventually(Duration::from_secs(2), || workers
            .iter()
            .all(|&p| is_gone(p))),
        "workers outlived the master"
    );
}

#[test]
fn sigkill_to_the_master_makes_the_workers_exit() {
    let server = Server::start(2, &[]);
    // An idle keep-alive connection must not keep a worker alive.
    let mut idle = server.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let _ = idle.read(&mut buf).unwrap();
    signal(server.master_pid(), libc::SIGKILL);
    assert!(
        eventually(Duration::from_secs(2), || server
            .workers
            .iter()
            .all(|&p| is_gone(p))),
        "workers outlived a killed master by 2 s"
    );
}

#[test]
fn an_address_in_use_is_one_clear_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--listen", &addr.to_string(), "--workers", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&addr.to_string()) && stderr.to_lowercase().contains("in use"),
        "{stderr}"
    );
}

#[test]
fn a_bad_flag_prints_usage_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_httpd"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--frobnicate") && stderr.contains("Usage: httpd"),
        "{stderr}"
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_httpd"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--workers"));
}

//! Connections that stay fast and safe under hostile clients: black-box tests over TCP
//! against a real `httpd` on 127.0.0.1, each bounded in time and count.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Conn, Server};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

#[test]
fn a_hundred_pipelined_requests_in_one_write_get_a_hundred_answers_in_order() {
    let server = Server::start(1, &[]);
    let mut c = Conn::new(server.connect());
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend_from_slice(&get(&format!("/{i}")));
    }
    c.send(&batch);
    for i in 0..100 {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("/{i}\n").as_bytes());
    }
}

#[test]
fn a_trickled_head_is_closed_at_its_deadline_while_others_are_served() {
    let server = Server::start(1, &["--header-timeout", "1"]);
    let mut slow = server.connect();
    let start = Instant::now();
    let trickler = std::thread::spawn(move || {
        // One byte every 200 ms: each byte is progress, the head never completes.
        let mut answer = Vec::new();
        for b in b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Filler: aaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            let _ = slow.set_read_timeout(Some(Duration::from_millis(1)));
            let mut buf = [0u8; 512];
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let _ = slow.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = slow.read_to_end(&mut answer);
        (answer, start.elapsed())
    });
    // Meanwhile another client is served at once, many times.
    let mut c = Conn::new(server.connect());
    for i in 0..20 {
        let t = Instant::now();
        c.send(&get(&format!("/fast{i}")));
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a fast client waited {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (answer, took) = trickler.join().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(
        took >= Duration::from_secs(1),
        "closed after {took:?}, before the deadline"
    );
    assert!(took < Duration::from_secs(6), "closed after {took:?}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_pipelines_without_reading_cannot_grow_the_server() {
    let server = Server::start(1, &["--send-timeout", "3"]);
    let worker = server.workers[0];
    let before = rss_kib(worker);
    let mut flood = server.connect();
    flood
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Each answer echoes the 1 KB target, so the answers (100 MB) cannot all hide in the
    // kernel's socket buffers: the server must stop reading.
    let one = get(&format!("/{}", "f".repeat(1000)));
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(&one);
    }
    let mut sent = 0;
    let start = Instant::now();
    // 100,000 requests, never reading a byte; the server stops reading once its output
    // queue is full, so our writes stop going through (the kernel buffers fill).
    while sent < 100_000 && start.elapsed() < Duration::from_secs(20) {
        match flood.write_all(&batch) {
            Ok(()) => sent += 1000,
            Err(_) => break,
        }
    }
    let during = rss_kib(worker);
    // Others are still served.
    let mut c = Conn::new(server.connect());
    c.send(&get("/other"));
    assert_eq!(c.read_response(false).unwrap().body, b"/other\n");
    assert!(
        during < before + 16 * 1024,
        "worker RSS grew from {before} KiB to {during} KiB with {sent} requests pipelined"
    );
    assert!(
        sent < 100_000,
        "the server read all {sent} requests without backpressure"
    );
}

#[test]
fn expect_100_continue_is_answered_when_the_body_is_read() {
    let server = Server::start(1, &["--app", "echo"]);
    let mut c = Conn::new(server.connect());
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = c.read_response(true).unwrap();
    assert_eq!(interim.raw_head, "HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"body_b64\": \"aGVsbG8=\""));
}

#[test]
fn a_body_over_the_limit_is_refused_before_100_continue() {
    let server = Server::start(1, &["--app", "echo", "--max-body", "10"]);
    let mut c = Conn::new(server.connect());
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn head_gets_the_head_only() {
    let server = Server::start(1, &[]);
    let mut c = Conn::new(server.connect());
    c.send(b"HEAD /abc HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5"));
    // The next response follows directly: no body bytes were sent for the HEAD.
    c.send(&get("/next"));
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"/next\n");
}

#[test]
fn http10_keep_alive_and_close() {
    let server = Server::start(1, &["--app", "hello"]);
    let mut c = Conn::new(server.connect());
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, b"Hello, World!");
    assert!(c.closed());
}

/// Sends `raw` on a fresh connection; returns the first response and whether the server
/// then closed.
fn one_shot(server: &Server, raw: &[u8]) -> (common::Response, bool) {
    let mut c = Conn::new(server.connect());
    c.send(raw);
    let r = c.read_response(false).unwrap();
    let closed = c.closed();
    (r, closed)
}

#[test]
fn every_error_status_carries_connection_close_and_closes() {
    let server = Server::start(
        1,
        &[
            "--max-target",
            "100",
            "--max-head",
            "2048",
            "--header-timeout",
            "1",
        ],
    );
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(200));
    let mut big_head = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    while big_head.len() < 4096 {
        big_head.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    big_head.extend_from_slice(b"\r\n");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (long_target.into_bytes(), 414),
        (big_head, 431),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            501,
        ),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX".to_vec(), 408),
    ];
    for (raw, status) in cases {
        let (r, closed) = one_shot(&server, &raw);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(r.header("connection"), Some("close"), "{status}");
        assert!(r.header("date").is_some(), "{status}");
        assert!(closed, "the connection stays open after {status}");
    }
    let server = Server::start(1, &["--app", "echo", "--max-body", "4"]);
    let (r, closed) = one_shot(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!((r.status, closed), (413, true));
}

#[test]
fn an_unread_body_is_never_executed_as_a_request() {
    let server = Server::start(1, &["--app", "hello"]);
    let mut c = Conn::new(server.connect());
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    req.extend_from_slice(b"GET /real HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    c.send(&req);
    let mut n = 0;
    while let Ok(r) = c.read_response(false) {
        assert_eq!(r.status, 200);
        n += 1;
    }
    assert_eq!(n, 2, "the body hid a third request that was answered");
}

#[test]
fn idle_keep_alive_connections_close_at_the_idle_deadline() {
    let server = Server::start(1, &["--idle-timeout", "0.5"]);
    let mut c = Conn::new(server.connect());
    c.send(&get("/x"));
    c.read_response(false).unwrap();
    let t = Instant::now();
    assert!(c.closed());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
}

#[test]
fn a_stream_of_garbage_gets_400_and_nothing_breaks() {
    let server = Server::start(1, &[]);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let mut junk = Vec::new();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let mut s = server.connect();
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if !out.is_empty() {
            assert!(out.starts_with(b"HTTP/1.1 4") || out.starts_with(b"HTTP/1.1 5"));
        }
    }
    let mut c = Conn::new(server.connect());
    c.send(&get("/still-alive"));
    assert_eq!(c.read_response(false).unwrap().body, b"/still-alive\n");
    let _ = TcpStream::connect(server.addr).unwrap();
}

#[test]
fn echo_reflects_trailers_and_head_errors_carry_no_body() {
    let server = Server::start(1, &["--app", "echo"]);
    let mut c = Conn::new(server.connect());
    c.send(b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 42\r\n\r\n");
    let r = c.read_response(false).unwrap();
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("[\"X-Sum\", \"42\"]]"), "{body}");
    assert!(body.contains("\"body_b64\": \"aGk=\""), "{body}");
    // A HEAD that cannot be read gets its 400 without a body.
    let mut c = Conn::new(server.connect());
    c.send(b"HEAD / HTTP/1.1\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 400);
    assert!(c.closed(), "bytes after the head of a HEAD answer");
}

/// After answering, writes a byte now and then for up to `limit`, reading after each: whether
/// the server's socket is gone (a reset comes back) rather than lingering (it reads and drops
/// the byte, and the read sees only its EOF).
fn reset_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < limit {
        if s.write_all(b"x").is_err() {
            return true;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

#[test]
fn a_client_that_said_close_is_not_lingered_for_but_a_keep_alive_one_is() {
    let server = Server::start(1, &["--max-requests", "1"]);
    // `Connection: close`, read whole: the server closes at once after its answer (nginx's
    // `lingering_close on`), so bytes sent after it meet a reset.
    let mut s = server.connect();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(
        reset_within(&mut s, Duration::from_secs(3)),
        "still lingering"
    );
    // A keep-alive client whose connection the server ends (here: its request limit) may
    // have sent more already: the server lingers, reading and dropping, until the client's
    // EOF or the linger deadline (5 s), and no reset comes back meanwhile.
    let mut s = server.connect();
    s.write_all(&get("/b")).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(!reset_within(&mut s, Duration::from_secs(1)), "no linger");
}

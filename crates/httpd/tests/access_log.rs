//! The access log: Common Log Format lines for answered and refused requests.

mod common;

use std::time::Duration;

use common::{Conn, Server, eventually};

#[test]
fn requests_are_logged_in_common_log_format() {
    let dir = std::env::temp_dir().join(format!("httpd-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let _ = std::fs::remove_file(&path);
    let server = Server::start(1, &["--access-log", path.to_str().unwrap()]);
    let mut c = Conn::new(server.connect());
    c.send(b"GET /logged?q=\"x\" HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response(false).unwrap();
    c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response(true).unwrap();
    let mut bad = Conn::new(server.connect());
    bad.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(bad.read_response(false).unwrap().status, 400);
    // The log is buffered per worker and written at least once a second.
    let mut text = String::new();
    assert!(eventually(Duration::from_secs(5), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines().count() >= 4
    }));
    let lines: Vec<&str> = text.lines().collect();
    // The first line is the harness's readiness probe.
    assert!(lines[1].starts_with("127.0.0.1 - - ["), "{}", lines[1]);
    assert!(
        lines[1].ends_with("] \"GET /logged?q=\\\"x\\\" HTTP/1.1\" 200 14"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("\"HEAD /h HTTP/1.1\" 200 -"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].ends_with("\"GET / HTTP/1.1\" 400 12"),
        "{}",
        lines[3]
    );
    // The date is [dd/Mon/yyyy:hh:mm:ss +0000].
    let date = &lines[1][lines[1].find('[').unwrap() + 1..lines[1].find(']').unwrap()];
    assert_eq!(date.len(), 26, "{date}");
    assert!(date.ends_with(" +0000"), "{date}");
    let _ = std::fs::remove_dir_all(&dir);
}

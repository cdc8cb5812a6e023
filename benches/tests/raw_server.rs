//! The raw reference server answers every request head, pipelined or cut anywhere, with
//! httpd's hello response; with `--close` it closes after the first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";

struct Raw(Child, String);

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on a free port (it binds port 0 and prints the address).
fn start(args: &[&str]) -> Raw {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raw-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start raw-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("raw-server: listening on ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Raw(child, addr)
}

fn connect(raw: &Raw) -> TcpStream {
    let s = TcpStream::connect(&raw.1).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until `n` responses (each ends with the body) have come.
fn read_responses(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.windows(BODY.len()).filter(|w| *w == BODY).count() < n {
        let got = s.read(&mut buf).expect("a response");
        assert!(got > 0, "closed after {all:?}");
        all.extend_from_slice(&buf[..got]);
    }
    all
}

#[test]
fn pipelined_heads_cut_anywhere_get_one_response_each() {
    let raw = start(&[]);
    let mut s = connect(&raw);
    let batch = REQUEST.repeat(16);
    // Cut the batch at awkward places, including inside a `\r\n\r\n`.
    for part in [&batch[..3], &batch[3..54], &batch[54..56], &batch[56..]] {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let all = read_responses(&mut s, 16);
    let one = std::str::from_utf8(&all[..all.len() / 16]).unwrap();
    assert!(one.starts_with("HTTP/1.1 200 OK\r\n"), "{one}");
    assert!(one.contains("\r\nContent-Length: 13\r\n"), "{one}");
    assert!(!one.contains("Connection: close"), "{one}");
    assert_eq!(all.len() % 16, 0);
    // The connection stays open for more.
    s.write_all(REQUEST).unwrap();
    read_responses(&mut s, 1);
}

#[test]
fn close_mode_answers_once_and_closes() {
    let raw = start(&["--close", "--threads", "2"]);
    let mut s = connect(&raw);
    s.write_all(REQUEST).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("EOF after the response");
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");
}

//! Starting a real `httpd` on 127.0.0.1 and talking raw HTTP to it.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running server; killed (SIGKILL to the master and its workers) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) workers: Vec<u32>,
    pub(crate) stderr: mpsc::Receiver<String>,
    /// Stdout lines after the first worker lines (respawns print `worker N pid P`).
    pub(crate) stdout: mpsc::Receiver<String>,
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `httpd --listen 127.0.0.1:<free port> --workers N <extra>` and waits for its
    /// worker lines.
    pub(crate) fn start(workers: usize, extra: &[&str]) -> Server {
        Server::start_bin(env!("CARGO_BIN_EXE_httpd").as_ref(), workers, extra)
    }

    /// As [`Server::start`], running the executable `bin`.
    pub(crate) fn start_bin(bin: &std::path::Path, workers: usize, extra: &[&str]) -> Server {
        for _ in 0..5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut child = Command::new(bin)
                .args([
                    "--listen",
                    &addr.to_string(),
                    "--workers",
                    &workers.to_string(),
                ])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start httpd");
            let (tx, rx) = mpsc::channel();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let (etx, erx) = mpsc::channel();
            let err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = etx.send(line);
                }
            });
            let mut pids = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while pids.len() < workers {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(rest) = line.strip_prefix("worker ") {
                            let (index, pid) = rest.split_once(" pid ").expect("worker line");
                            assert_eq!(index.parse::<usize>().unwrap(), pids.len());
                            pids.push(pid.trim().parse().unwrap());
                        }
                    }
                    Err(_) => break,
                }
            }
            if pids.len() < workers {
                // Most likely the port was taken in between: try another.
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let server = Server {
                child,
                addr,
                workers: pids,
                stderr: erx,
                stdout: rx,
            };
            server.wait_ready();
            return server;
        }
        panic!("httpd did not start");
    }

    /// Waits until a connection is answered (the workers listen).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(self.addr) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                if s.write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .is_ok()
                {
                    let mut buf = Vec::new();
                    if s.read_to_end(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("httpd on {} never answered", self.addr);
    }

    pub(crate) fn master_pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for &pid in &self.workers {
            signal(pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn signal(pid: u32, sig: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::try_from(sig).unwrap(),
    );
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
pub(crate) fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// Polls `cond` until it holds or `limit` passes.
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One response read off a connection.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) raw_head: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head with the Date value replaced by `<date>` after checking its format.
    pub(crate) fn head_without_date(&self) -> String {
        let date = self.header("date").expect("a Date header");
        assert_eq!(date.len(), 29, "IMF-fixdate: {date}");
        assert!(date.ends_with(" GMT"), "{date}");
        self.raw_head.replace(date, "<date>")
    }
}

/// Reads responses off `conn` (a buffered reader kept across calls).
pub(crate) struct Conn {
    pub(crate) reader: BufReader<TcpStream>,
    pub(crate) writer: TcpStream,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Reads one response: a head, then a Content-Length or chunked body (or none for HEAD,
    /// 1xx, 204, 304 when `bodiless`).
    pub(crate) fn read_response(&mut self, bodiless: bool) -> io::Result<Response> {
        let mut raw_head = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            raw_head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut resp = Response {
            raw_head,
            status,
            headers,
            body: Vec::new(),
        };
        if bodiless || status < 200 || status == 204 || status == 304 {
            return Ok(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().unwrap();
            resp.body.resize(len, 0);
            self.reader.read_exact(&mut resp.body)?;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                resp.body.extend_from_slice(&chunk[..n]);
            }
        } else {
            self.reader.read_to_end(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// Whether the server closed the connection (EOF) within the read timeout.
    pub(crate) fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

/// Sends `GET /` to a status listener; the status code and the body.
pub(crate) fn get_status(addr: SocketAddr) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no head"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other("no status"))?;
    Ok((code, body.to_owned()))
}

/// Client threads sending requests until stopped, counting successes and failures.
pub(crate) struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<LoadCount>>,
    pub(crate) ok: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What one load thread saw.
#[derive(Debug, Default)]
pub(crate) struct LoadCount {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// Keep-alive connections the server closed with `Connection: close` (not failures).
    pub(crate) closed_by_server: u64,
    pub(crate) errors: Vec<String>,
}

impl Load {
    /// `clients` threads; each sends `GET /load/<n>` to `addr` and checks a 200 with the
    /// path app's body. `keep_alive`: one connection per thread, reopened only when the
    /// server says `Connection: close`; otherwise one connection per request.
    pub(crate) fn start(addr: SocketAddr, clients: usize, keep_alive: bool) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let ok = std::sync::Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|i| {
                let stop = stop.clone();
                let total = ok.clone();
                std::thread::spawn(move || {
                    let mut count = LoadCount::default();
                    let mut conn: Option<Conn> = None;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let path = format!("/load/{i}/{n}");
                        let res = (|| -> io::Result<bool> {
                            if conn.is_none() {
                                let s = TcpStream::connect(addr)?;
                                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                                s.set_nodelay(true)?;
                                conn = Some(Conn::new(s));
                            }
                            let c = conn.as_mut().unwrap();
                            let close = if keep_alive {
                                ""
                            } else {
                                "Connection: close\r\n"
                            };
                            c.writer.write_all(
                                format!("GET {path} HTTP/1.1\r\nHost: t\r\n{close}\r\n").as_bytes(),
                            )?;
                            let r = c.read_response(false)?;
                            if r.status != 200 || r.body != format!("{path}\n").as_bytes() {
                                return Err(io::Error::other(format!(
                                    "status {} body {:?}",
                                    r.status,
                                    String::from_utf8_lossy(&r.body)
                                )));
                            }
                            Ok(r.header("connection") == Some("close"))
                        })();
                        match res {
                            Ok(closed) => {
                                count.ok += 1;
                                total.fetch_add(1, Ordering::Relaxed);
                                if closed || !keep_alive {
                                    if keep_alive {
                                        count.closed_by_server += 1;
                                    }
                                    conn = None;
                                }
                            }
                            Err(e) => {
                                count.failed += 1;
                                if count.errors.len() < 10 {
                                    count.errors.push(format!("{path}: {e}"));
                                }
                                conn = None;
                            }
                        }
                    }
                    count
                })
            })
            .collect();
        Load { stop, threads, ok }
    }

    /// Requests answered so far, over all threads.
    pub(crate) fn answered(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `more` further requests are answered (or `limit` passes): proof that the
    /// load goes on.
    pub(crate) fn wait_for(&self, more: u64, limit: Duration) -> bool {
        let target = self.answered() + more;
        eventually(limit, || self.answered() >= target)
    }

    /// Stops the threads and sums what they saw.
    pub(crate) fn finish(self) -> LoadCount {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut sum = LoadCount::default();
        for t in self.threads {
            let c = t.join().expect("a load thread panicked");
            sum.ok += c.ok;
            sum.failed += c.failed;
            sum.closed_by_server += c.closed_by_server;
            sum.errors.extend(c.errors);
        }
        sum
    }
}

/// The pids in the `worker N pid P` lines received so far (and within `limit` until `n`
/// have come).
pub(crate) fn next_workers(server: &Server, n: usize, limit: Duration) -> Vec<(usize, u32)> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.stdout.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("worker ") {
                    let (slot, pid) = rest.split_once(" pid ").expect("worker line");
                    out.push((slot.parse().unwrap(), pid.trim().parse().unwrap()));
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// Waits up to `limit` for the master to exit; its status.
pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

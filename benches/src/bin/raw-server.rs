//! The raw reference server: the ceiling for this machine, not an HTTP server.
//!
//! One mio thread (or `--threads N`, each with its own poll on the one listening socket)
//! counts the `\r\n\r\n` that end request heads on each connection and answers each with the
//! same canned response as `httpd --app hello` (same bytes, a fixed `Date`). There is no
//! parsing, no per-request allocation and nothing to decide: whatever httpd spends beyond
//! this is the cost of being an HTTP server. `cargo xtask bench` runs it beside httpd in every
//! run and reports httpd's figures as ratios to it.
//!
//! Run with: `cargo run --release -p benches --bin raw-server -- --listen 127.0.0.1:8081`
//! and try `curl http://127.0.0.1:8081/`. With `--close` every response carries
//! `Connection: close` and the server closes the connection after it (for the
//! Connection: close run, since a server that does not parse cannot see the client's header).
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// `httpd --app hello`'s response, byte for byte, with a fixed date.
const KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: http-cluster\r\nContent-Type: text/plain\r\n\
Content-Length: 13\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\nHello, World!";
const CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: http-cluster\r\nContent-Type: text/plain\r\n\
Connection: close\r\nContent-Length: 13\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\nHello, World!";
/// Responses prepared back to back, so owed responses go out in few `write` calls.
const BATCH: usize = 64;
const LISTENER: Token = Token(usize::MAX);

const USAGE: &str = "Usage: raw-server [--listen ADDR] [--threads N] [--close]";

struct Options {
    listen: SocketAddr,
    threads: usize,
    close: bool,
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("raw-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind(opts.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("raw-server: cannot listen on {}: {e}", opts.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");
    listener.set_nonblocking(true).expect("set O_NONBLOCK");
    let response = if opts.close { CLOSE } else { KEEP_ALIVE };
    println!(
        "raw-server: listening on {addr} with {} threads",
        opts.threads
    );
    let threads: Vec<_> = (0..opts.threads)
        .map(|_| {
            let l = listener.try_clone().expect("dup the listener");
            std::thread::spawn(move || serve(TcpListener::from_std(l), response, opts.close))
        })
        .collect();
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("raw-server: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        threads: 1,
        close: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs a value")?;
                opts.listen = v.parse().map_err(|_| format!("bad address {v:?}"))?;
            }
            "--threads" => {
                let v = args.next().ok_or("--threads needs a value")?;
                opts.threads = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| format!("bad thread count {v:?}"))?;
            }
            "--close" => opts.close = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(opts)
}

/// One connection: the bytes of responses it is owed, and where the last read ended.
struct Conn {
    stream: TcpStream,
    /// Bytes of responses still to write (a response may have gone out in part).
    owed: u64,
    /// Bytes written so far, to find where the next write starts within a response.
    sent: u64,
    /// The last three bytes read, for a `\r\n\r\n` cut between two reads.
    tail: [u8; 3],
    /// A response was owed at least once (for `--close`).
    answered: bool,
}

fn serve(mut listener: TcpListener, response: &'static [u8], close: bool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let batch = response.repeat(BATCH);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(slot),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[slot] = Some(Conn {
                                stream,
                                owed: 0,
                                sent: 0,
                                tail: [0; 3],
                                answered: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // EMFILE, a reset before accept: try again on the next event.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if !drive(conn, &batch, response.len() as u64, &mut buf, close) {
                let mut conn = conns[slot].take().expect("checked above");
                let _ = poll.registry().deregister(&mut conn.stream);
                free.push(slot);
            }
        }
    }
}

/// Writes what is owed and reads until the socket would block (edge-triggered readiness).
/// Returns false when the connection is done.
fn drive(conn: &mut Conn, batch: &[u8], len: u64, buf: &mut [u8], close: bool) -> bool {
    loop {
        while conn.owed > 0 {
            let start = (conn.sent % len) as usize;
            let n = (batch.len() - start).min(usize::try_from(conn.owed).unwrap_or(usize::MAX));
            match conn.stream.write(&batch[start..start + n]) {
                Ok(0) => return false,
                Ok(w) => {
                    conn.owed -= w as u64;
                    conn.sent += w as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if close && conn.answered {
            return false;
        }
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                let heads = count_heads(&mut conn.tail, &buf[..n]);
                conn.owed += heads * len;
                conn.answered |= heads > 0;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Counts the `\r\n\r\n` in `data`, `tail` holding the three bytes read before it.
fn count_heads(tail: &mut [u8; 3], data: &[u8]) -> u64 {
    let mut count = 0;
    for i in memchr::memchr_iter(b'\n', data) {
        let before = |k: usize| {
            if i >= k {
                data[i - k]
            } else {
                tail[3 - (k - i)]
            }
        };
        if before(1) == b'\r' && before(2) == b'\n' && before(3) == b'\r' {
            count += 1;
        }
    }
    // Keep the last three bytes of the stream so far.
    if data.len() >= 3 {
        tail.copy_from_slice(&data[data.len() - 3..]);
    } else {
        let keep = 3 - data.len();
        tail.copy_within(3 - keep.., 0);
        tail[keep..].copy_from_slice(data);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::count_heads;

    #[test]
    fn heads_are_counted_in_every_split() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n\r\n\r\n\r\nx";
        // Whole, then every two-way split, then byte by byte: always four ends of heads (a
        // run of four CRLFs holds three overlapping ones; a real client never sends that).
        let whole = count_heads(&mut [0; 3], input);
        assert_eq!(whole, 4);
        for cut in 0..=input.len() {
            let mut tail = [0; 3];
            let n = count_heads(&mut tail, &input[..cut]) + count_heads(&mut tail, &input[cut..]);
            assert_eq!(n, whole, "cut at {cut}");
        }
        let mut tail = [0; 3];
        let n: u64 = input
            .iter()
            .map(|b| count_heads(&mut tail, std::slice::from_ref(b)))
            .sum();
        assert_eq!(n, whole);
    }
}

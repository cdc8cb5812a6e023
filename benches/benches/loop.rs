//! TCP echo round trips through a uvlite server beside a hand-written mio server, in one run.
//!
//! Each server runs on its own thread and serves a fixed number of connections; the client is
//! the same blocking code for both (write a 32-byte message on every connection, then read every
//! echo back), so the difference between the two is the server's event-loop path.
//!
//! - `cargo bench -p benches --bench loop`: criterion, wall time per round of round trips.
//! - `LOOP_BENCH_CPU=1 cargo bench -p benches --bench loop`: server-thread CPU (user and system,
//!   `getrusage(RUSAGE_THREAD)`) per round trip, both servers alternating, printed as a table.
//! - `LOOP_BENCH_ONLY=uvlite|mio LOOP_BENCH_ROUNDS=N LOOP_BENCH_CONNS=C <bench binary>`: one
//!   server only, for `valgrind --tool=callgrind --separate-threads=yes`.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use nix::sys::resource::{UsageWho, getrusage};

const MSG: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const BUF: usize = 4096;

/// CPU time of the calling thread, user and system, in microseconds.
fn thread_cpu() -> (f64, f64) {
    let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e6 + t.tv_usec() as f64;
    (us(u.user_time()), us(u.system_time()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Mio,
    Uvlite,
}

/// Starts `server` on a thread serving exactly `conns` connections; it returns its own CPU
/// time when every connection has closed.
fn start(server: Server, conns: usize) -> (SocketAddr, JoinHandle<(f64, f64)>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || match server {
        Server::Mio => mio_server(conns, tx),
        Server::Uvlite => uvlite_server(conns, tx),
    });
    (rx.recv().expect("server started"), handle)
}

fn uvlite_server(conns: usize, tx: std::sync::mpsc::Sender<SocketAddr>) -> (f64, f64) {
    let lp = uvlite::Loop::new().unwrap();
    lp.block_on(async move {
        let listener = uvlite::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        listener.listen(1024).unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (conn, _) = listener.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            tasks.push(uvlite::spawn_local(async move {
                let mut buf = [0u8; BUF];
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<(), io::Error>(());
                    }
                    conn.write_all(&buf[..n]).await?;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    thread_cpu()
}

/// The same echo server written directly on mio: edge-triggered, the short-read rule, and a
/// pending-output buffer per connection for writes the kernel does not take at once.
fn mio_server(conns: usize, tx: std::sync::mpsc::Sender<SocketAddr>) -> (f64, f64) {
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};

    struct Conn {
        io: mio::net::TcpStream,
        out: Vec<u8>,
        open: bool,
    }
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    let mut slab: Vec<Conn> = Vec::with_capacity(conns);
    let mut accepted = 0;
    let mut closed = 0;
    let mut buf = [0u8; BUF];
    while closed < conns {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while accepted < conns {
                    match listener.accept() {
                        Ok((mut io, _)) => {
                            io.set_nodelay(true).unwrap();
                            let t = Token(slab.len());
                            poll.registry()
                                .register(&mut io, t, Interest::READABLE | Interest::WRITABLE)
                                .unwrap();
                            slab.push(Conn {
                                io,
                                out: Vec::new(),
                                open: true,
                            });
                            accepted += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            let c = &mut slab[ev.token().0];
            if !c.open {
                continue;
            }
            if ev.is_writable() && !c.out.is_empty() {
                match c.io.write(&c.out) {
                    Ok(n) => {
                        c.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
            }
            if ev.is_readable() || ev.is_read_closed() {
                loop {
                    match c.io.read(&mut buf) {
                        Ok(0) => {
                            c.open = false;
                            closed += 1;
                            break;
                        }
                        Ok(n) => {
                            if c.out.is_empty() {
                                match c.io.write(&buf[..n]) {
                                    Ok(w) => c.out.extend_from_slice(&buf[w..n]),
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                        c.out.extend_from_slice(&buf[..n]);
                                    }
                                    Err(e) => panic!("write: {e}"),
                                }
                            } else {
                                c.out.extend_from_slice(&buf[..n]);
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
        }
    }
    thread_cpu()
}

/// Blocking client connections to one server.
struct Clients {
    conns: Vec<TcpStream>,
    server: Option<JoinHandle<(f64, f64)>>,
}

impl Clients {
    fn new(server: Server, n: usize) -> Clients {
        let (addr, handle) = start(server, n);
        let conns = (0..n)
            .map(|_| {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s
            })
            .collect();
        Clients {
            conns,
            server: Some(handle),
        }
    }

    /// One message out on every connection, then every echo back.
    fn round(&mut self) {
        for c in &mut self.conns {
            c.write_all(&MSG).unwrap();
        }
        let mut back = [0u8; MSG.len()];
        for c in &mut self.conns {
            c.read_exact(&mut back).unwrap();
            debug_assert_eq!(back, MSG);
        }
        black_box(&back);
    }

    /// Closes every connection and returns the server thread's CPU time.
    fn finish(mut self) -> (f64, f64) {
        self.conns.clear();
        self.server.take().unwrap().join().unwrap()
    }
}

fn echo(c: &mut Criterion) {
    for conns in [1usize, 100] {
        let mut g = c.benchmark_group(format!("echo_{conns}_conns"));
        g.throughput(Throughput::Elements(conns as u64));
        for server in [Server::Mio, Server::Uvlite] {
            let mut clients = Clients::new(server, conns);
            let name = format!("{server:?}").to_lowercase();
            g.bench_function(name, |b| b.iter(|| clients.round()));
            clients.finish();
        }
        g.finish();
    }
}

/// Server CPU per round trip, the two servers alternating `reps` times.
fn cpu_table() {
    let rounds: usize = env_or("LOOP_BENCH_ROUNDS", 20_000);
    let reps: usize = env_or("LOOP_BENCH_REPS", 5);
    println!("server CPU per echo round trip (µs), {reps} alternating runs of {rounds} rounds");
    println!("conns  server  user    sys     total");
    for conns in [1usize, 100] {
        let per_conn_rounds = (rounds / conns).max(100);
        let mut sum = [(0.0, 0.0); 2];
        for _ in 0..reps {
            for (i, server) in [Server::Mio, Server::Uvlite].into_iter().enumerate() {
                let mut clients = Clients::new(server, conns);
                for _ in 0..per_conn_rounds {
                    clients.round();
                }
                let (u, s) = clients.finish();
                let trips = (per_conn_rounds * conns) as f64;
                sum[i].0 += u / trips;
                sum[i].1 += s / trips;
            }
        }
        for (i, name) in ["mio", "uvlite"].iter().enumerate() {
            let (u, s) = (sum[i].0 / reps as f64, sum[i].1 / reps as f64);
            println!("{conns:<6} {name:<7} {u:<7.3} {s:<7.3} {:.3}", u + s);
        }
        let ratio = (sum[0].0 + sum[0].1) / (sum[1].0 + sum[1].1);
        let uratio = sum[0].0 / sum[1].0;
        println!("{conns:<6} mio/uvlite: total {ratio:.3}, user {uratio:.3}");
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

criterion_group!(benches, echo);

fn main() {
    if let Ok(only) = std::env::var("LOOP_BENCH_ONLY") {
        let server = if only == "mio" {
            Server::Mio
        } else {
            Server::Uvlite
        };
        let conns = env_or("LOOP_BENCH_CONNS", 1);
        let rounds = env_or("LOOP_BENCH_ROUNDS", 10_000);
        let mut clients = Clients::new(server, conns);
        for _ in 0..rounds {
            clients.round();
        }
        let (u, s) = clients.finish();
        println!("{only}: {conns} conns x {rounds} rounds: server user {u:.0} µs, sys {s:.0} µs");
        return;
    }
    if std::env::var_os("LOOP_BENCH_CPU").is_some() {
        cpu_table();
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

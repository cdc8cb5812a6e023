//! Heap allocations per keep-alive request (design.md §5: none in steady state).
//!
//! The server is the real one, `httpd::server::serve_listener` on a `uvlite::Loop`, run in the
//! test's own thread on 127.0.0.1 with a per-thread counting allocator (`allocation-counter`),
//! so only the server's allocations count; a client thread drives it over real sockets. After
//! a warm-up (connections accepted, buffers and pools grown), the client sends keep-alive
//! requests one at a time and pipelined ×16, and the test asserts that serving them allocated
//! nothing. Each case prints one `alloc:` line, which `cargo xtask bench` reads into its report.
//!
//! The same harness measures the heap that an idle keep-alive connection keeps (the
//! connection's storage, with the request-time storage given back to per-thread pools).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use httpd::App;
use httpd::http::Settings;
use httpd::server::Server;
use uvlite::{Loop, TcpListener};

/// Keep-alive connections the client keeps open.
const CONNECTIONS: usize = 4;
/// Requests per connection during the warm-up.
const WARM_UP: usize = 64;
/// Requests per connection, one at a time, while counting.
const SEQUENTIAL: usize = 250;
/// Pipelined batches per connection while counting (×16 requests each).
const BATCHES: usize = 16;
const DEPTH: usize = 16;
/// Hard limit on one case.
const LIMIT: Duration = Duration::from_secs(60);

const REQUEST: &[u8] = b"GET /plaintext/and/a/longer/path?x=1 HTTP/1.1\r\nHost: localhost\r\n\
User-Agent: alloc-test\r\nAccept: text/plain\r\nConnection: keep-alive\r\n\r\n";

/// What one counted phase cost the server.
struct Counted {
    requests: usize,
    allocations: u64,
    bytes: u64,
}

#[test]
fn hello_allocates_nothing_per_keep_alive_request() {
    check(App::Hello);
}

#[test]
fn path_allocates_nothing_per_keep_alive_request() {
    check(App::Path);
}

fn check(app: App) {
    let c = count(app);
    println!(
        "alloc: app={} requests={} allocations={} bytes={} per_request={:.4}",
        app.name(),
        c.requests,
        c.allocations,
        c.bytes,
        c.allocations as f64 / c.requests as f64
    );
    assert_eq!(
        c.allocations,
        0,
        "the {} app allocated {} times ({} bytes) serving {} keep-alive requests after warm-up",
        app.name(),
        c.allocations,
        c.bytes,
        c.requests
    );
}

/// Runs the server in this thread and a client in another; returns what the counted phase
/// allocated in the server's thread.
fn count(app: App) -> Counted {
    let lp = Loop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    listener.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Settings::default().with_uvlite_clock(), 10_000);
    let _server = lp.spawn(async move {
        match app {
            App::Path => server.accept(&listener, httpd::apps::path).await,
            App::Hello => server.accept(&listener, httpd::apps::hello).await,
            App::Echo => unreachable!("echo buffers bodies: not a zero-allocation app"),
            App::Drip => unreachable!("drip is a diagnostic app, not measured"),
        }
    });

    // The client moves the phase on (0 warm-up, 1 counted, 2 after counting) and then sends
    // one more request so that the server's loop wakes up and sees it; at 3 it has every
    // response and closes its connections, which wakes the loop a last time.
    let phase = Arc::new(AtomicU32::new(0));
    let client = thread::spawn({
        let phase = phase.clone();
        move || {
            let res = std::panic::catch_unwind(|| client(addr, &phase));
            if res.is_err() {
                // Let the server's loop out (a connection wakes it), then fail the test.
                phase.store(u32::MAX, Ordering::SeqCst);
                let _ = TcpStream::connect(addr);
            }
            res.unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
    });

    let deadline = Instant::now() + LIMIT;
    let run_until = |p: u32| {
        while phase.load(Ordering::SeqCst) < p {
            assert!(Instant::now() < deadline, "the allocation test timed out");
            lp.run_once().unwrap();
        }
    };
    // The warm-up accepts the connections and spawns their tasks: it must allocate, which
    // shows that the counter sees the server's thread.
    let warm_up = allocation_counter::measure(|| run_until(1));
    assert!(
        warm_up.count_total > 0,
        "the counter saw no allocation at all"
    );
    let info = allocation_counter::measure(|| run_until(2));
    run_until(3);
    let requests = client.join().expect("the client failed");
    Counted {
        requests,
        allocations: info.count_total,
        bytes: info.bytes_total,
    }
}

/// Runs a hello server in this thread while `client` drives it from another, and returns
/// what the server's thread allocated between the client's phase 1 and phase 2. The client
/// calls `phase(n)` to move on (1: warmed up, 2: the counted part is done, 3: finished);
/// after phase 3 one more connection wakes the loop so it sees it.
fn measure_hello(
    client: impl FnOnce(SocketAddr, &dyn Fn(u32)) + Send + 'static,
) -> allocation_counter::AllocationInfo {
    let lp = Loop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    listener.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Settings::default().with_uvlite_clock(), 10_000);
    let _server = lp.spawn(async move { server.accept(&listener, httpd::apps::hello).await });
    let phase = Arc::new(AtomicU32::new(0));
    let client = thread::spawn({
        let phase = phase.clone();
        move || {
            client(addr, &|p| phase.store(p, Ordering::SeqCst));
            let _ = TcpStream::connect(addr);
        }
    });
    let deadline = Instant::now() + LIMIT;
    let run_until = |p: u32| {
        while phase.load(Ordering::SeqCst) < p {
            assert!(Instant::now() < deadline, "the test timed out");
            lp.run_once().unwrap();
        }
    };
    run_until(1);
    let info = allocation_counter::measure(|| run_until(2));
    run_until(3);
    client.join().expect("the client failed");
    info
}

/// Idle keep-alive connections held open while the server's heap is measured.
const IDLE: usize = 1_000;

/// Heap an idle keep-alive connection may hold (design.md §5 asks for ≤ 1 KiB of server
/// memory per idle connection, measured as RSS by `cargo xtask bench`; the heap is what the
/// server controls of it).
const IDLE_HEAP_MAX: f64 = 1024.0;

#[test]
fn an_idle_keep_alive_connection_holds_little_heap() {
    // Counted: opening the idle connections (the warm-up gives pools and the loop's tables
    // their first storage).
    let info = measure_hello(|addr, phase| {
        let mut buf = vec![0u8; 4096];
        let mut open = || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            exchange(&mut s, REQUEST, 1, &mut buf);
            s
        };
        drop((0..16).map(|_| open()).collect::<Vec<_>>());
        phase(1);
        let mut conns = vec![open()];
        conns.extend((0..IDLE).map(|_| open()));
        phase(2);
        conns.push(open());
        phase(3);
    });
    let bytes = info.bytes_current as f64 / IDLE as f64;
    let allocations = info.count_current as f64 / IDLE as f64;
    println!(
        "idle: connections={IDLE} heap_bytes_per_connection={bytes:.0} allocations_per_connection={allocations:.2}"
    );
    assert!(
        bytes <= IDLE_HEAP_MAX,
        "an idle keep-alive connection holds {bytes:.0} bytes of heap in {allocations:.2} \
         allocations (at most {IDLE_HEAP_MAX})"
    );
}

/// Drives the server: warm-up, then the counted requests. Returns how many were counted.
fn client(addr: SocketAddr, phase: &AtomicU32) -> usize {
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    let batch = REQUEST.repeat(DEPTH);

    for _ in 0..WARM_UP {
        for c in &mut conns {
            exchange(c, REQUEST, 1, &mut buf);
        }
    }
    for c in &mut conns {
        exchange(c, &batch, DEPTH, &mut buf);
    }
    next_phase(phase, &mut conns[0], &mut buf);

    let mut counted = 0;
    for _ in 0..SEQUENTIAL {
        for c in &mut conns {
            exchange(c, REQUEST, 1, &mut buf);
            counted += 1;
        }
    }
    for _ in 0..BATCHES {
        for c in &mut conns {
            exchange(c, &batch, DEPTH, &mut buf);
            counted += DEPTH;
        }
    }
    next_phase(phase, &mut conns[0], &mut buf);
    phase.fetch_add(1, Ordering::SeqCst);
    drop(conns);
    counted
}

fn next_phase(phase: &AtomicU32, conn: &mut TcpStream, buf: &mut [u8]) {
    phase.fetch_add(1, Ordering::SeqCst);
    exchange(conn, REQUEST, 1, buf);
}

/// Sends `bytes` and reads until `responses` complete `200` responses have come back (each
/// ends with its `Content-Length` body; the apps always send one).
fn exchange(conn: &mut TcpStream, bytes: &[u8], responses: usize, buf: &mut [u8]) {
    conn.write_all(bytes).unwrap();
    let mut have = 0;
    let mut done = 0;
    while done < responses {
        let n = conn.read(&mut buf[have..]).expect("read a response");
        assert!(n > 0, "the server closed a keep-alive connection");
        have += n;
        // Take every complete response off the front of the buffer.
        while let Some(len) = complete_response(&buf[..have]) {
            assert!(buf.starts_with(b"HTTP/1.1 200 "), "not a 200 response");
            buf.copy_within(len..have, 0);
            have -= len;
            done += 1;
        }
    }
    assert_eq!(have, 0, "more responses than requests");
}

/// The length of the complete response at the start of `buf`, if it is all there.
fn complete_response(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let len: usize = head
        .split("\r\n")
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    (buf.len() >= end + len).then_some(end + len)
}

/// Connections, one after the other, each with one `Connection: close` request.
const CLOSING: usize = 200;

/// Allocations, and heap bytes, a `Connection: close` connection may cost the server: its
/// own state (6 allocations, 751 bytes: the task with the app's future inline, the stream's
/// shared state, the exchange, the fd's slot in the loop and the like), and not its read
/// buffer (4 KiB) or codec-http decoder, which it takes from the pools that the connection
/// before it gave them back to (10 allocations and 5,151 bytes when it did not; 7 while the
/// app's future had a box of its own).
const CLOSING_ALLOCATIONS_MAX: f64 = 6.5;
const CLOSING_BYTES_MAX: f64 = 1024.0;

#[test]
fn a_closed_connection_leaves_its_buffer_and_decoder_to_the_next() {
    // Counted: the Connection: close connections after the warm-up.
    let info = measure_hello(|addr, phase| {
        let one = || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
        };
        (0..16).for_each(|_| one());
        phase(1);
        (0..CLOSING).for_each(|_| one());
        phase(2);
        one();
        phase(3);
    });
    let per = info.count_total as f64 / CLOSING as f64;
    let bytes = info.bytes_total as f64 / CLOSING as f64;
    println!(
        "closing: connections={CLOSING} allocations_per_connection={per:.2} bytes_per_connection={bytes:.0}"
    );
    assert!(
        per <= CLOSING_ALLOCATIONS_MAX && bytes <= CLOSING_BYTES_MAX,
        "a Connection: close connection costs {per:.2} allocations and {bytes:.0} bytes (at \
         most {CLOSING_ALLOCATIONS_MAX} and {CLOSING_BYTES_MAX})"
    );
}

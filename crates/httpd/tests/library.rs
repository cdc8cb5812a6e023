//! The server as a library, in-process: a uvlite loop on a thread runs `httpd::server::Server`
//! with apps defined here; clients talk to it over real sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Conn;
use httpd::handler::{Handler, Response};
use httpd::http::{Head, HeaderBlock, HttpError, Item, Reader, Settings, Writer};
use httpd::server::Server;

/// Starts a server thread running the settings and app that `make` builds there; returns
/// its address and a channel that, when sent to, makes the server drain.
fn start<M, A, F>(max_connections: usize, make: M) -> (SocketAddr, mpsc::Sender<()>)
where
    M: FnOnce() -> (Settings, A) + Send + 'static,
    A: Fn(Reader, Writer) -> F + 'static,
    F: std::future::Future<Output = Result<(), HttpError>> + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (drain_tx, drain_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let lp = uvlite::Loop::new().unwrap();
        let (settings, app) = make();
        lp.block_on(async move {
            let listener = uvlite::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            listener.listen(128).unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let server = Server::new(settings.with_uvlite_clock(), max_connections);
            let watcher = server.clone();
            // Poll the channel from the loop (it is a std channel).
            uvlite::spawn_local(async move {
                loop {
                    uvlite::sleep(Duration::from_millis(10)).await;
                    if drain_rx.try_recv().is_ok() {
                        watcher.drain();
                        return;
                    }
                }
            })
            .detach();
            server.accept(&listener, app).await.unwrap();
            uvlite::timeout(Duration::from_secs(20), server.wait_idle())
                .await
                .unwrap();
        });
    });
    (
        addr_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        drain_tx,
    )
}

fn connect(addr: SocketAddr) -> Conn {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Conn::new(s)
}

async fn panicky(mut read: Reader, mut write: Writer) -> Result<(), HttpError> {
    while let Some(Item::Head(req)) = read.read().await? {
        while let Some(Item::Body(_)) = read.read().await? {}
        assert!(req.path() != "/panic", "the app blew up on purpose");
        let mut head = Head::new(200);
        head.header("Content-Length", 2usize);
        write.write(&head).await?;
        write.write(b"ok").await?;
    }
    write.close().await?;
    Ok(())
}

#[test]
fn an_app_that_panics_ends_only_its_connection() {
    let (addr, _drain) = start(100, || (Settings::default(), panicky));
    let mut bystander = connect(addr);
    bystander.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(bystander.read_response(false).unwrap().body, b"ok");

    let mut victim = connect(addr);
    victim.send(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        victim.read_response(false).is_err(),
        "a panicking app answered"
    );

    // The worker lives on: the open connection and new ones are served.
    bystander.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(bystander.read_response(false).unwrap().body, b"ok");
    let mut next = connect(addr);
    next.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(next.read_response(false).unwrap().body, b"ok");
}

/// Answers with a header block (one with `Connection: close` for `/close`), then a field.
async fn with_blocks(mut read: Reader, mut write: Writer) -> Result<(), HttpError> {
    const PLAIN: HeaderBlock<'static> =
        HeaderBlock::checked(b"Server: t\r\nContent-Type: text/plain\r\n");
    const CLOSING: HeaderBlock<'static> = HeaderBlock::checked(b"X-A: 1\r\nConnection: close\r\n");
    while let Some(Item::Head(req)) = read.read().await? {
        let close = req.path() == "/close";
        drop(req);
        while let Some(Item::Body(_)) = read.read().await? {}
        let mut head = Head::new(200);
        head.block(if close { CLOSING } else { PLAIN });
        head.header("X-B", "2");
        head.header("Content-Length", 2usize);
        write.write(&head).await?;
        write.write(b"ok").await?;
    }
    write.close().await?;
    Ok(())
}

#[test]
fn a_header_block_is_written_first_and_its_connection_field_is_heeded() {
    let (addr, _drain) = start(100, || (Settings::default(), with_blocks));
    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\nX-B: 2\r\n\
         Content-Length: 2\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(r.body, b"ok");
    // An HTTP/1.0 client that keeps the connection is told so, after the block.
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\nX-B: 2\r\n\
         Connection: keep-alive\r\nContent-Length: 2\r\nDate: <date>\r\n\r\n"
    );
    // A block's `Connection: close` closes the connection, and is the only `Connection`.
    c.send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.head_without_date(),
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nConnection: close\r\n\
         Content-Length: 2\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(r.body, b"ok");
    assert!(c.closed());
}

#[test]
fn the_handler_form_reads_the_body_and_answers() {
    let (addr, _drain) = start(100, || {
        let h = Handler::new(|req| {
            Response::text(
                201,
                format!("{} {} {}", req.method(), req.path(), req.body.len()),
            )
        });
        (Settings::default(), move |r, w| h.clone().serve(r, w))
    });
    let mut c = connect(addr);
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"POST /x 5");
    // The handler did not read the second body: it is drained, never run as a request.
    c.send(b"POST /y HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyzGET /z HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, b"POST /y 3");
    assert_eq!(c.read_response(false).unwrap().body, b"GET /z 0");
}

#[test]
fn draining_closes_idle_connections_and_answers_busy_ones_with_close() {
    let (addr, drain) = start(100, || {
        let settings = Settings {
            drain_idle: Duration::from_millis(300),
            ..Settings::default()
        };
        (settings, panicky)
    });
    let mut idle = connect(addr);
    idle.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    idle.read_response(false).unwrap();
    let mut busy = connect(addr);
    busy.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        busy.read_response(false).unwrap().header("connection"),
        None
    );

    drain.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // A busy client's next request is answered, with Connection: close, then EOF.
    busy.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = busy.read_response(false).unwrap();
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.closed());
    // An idle client is closed after the grace period, without an answer.
    let t = Instant::now();
    assert!(idle.closed());
    assert!(t.elapsed() < Duration::from_secs(5));
    // No new connection is accepted (nobody calls accept any more).
    let mut late = std::net::TcpStream::connect(addr).unwrap();
    late.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    use std::io::{Read, Write};
    let _ = late.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut buf = [0u8; 16];
    assert!(
        !matches!(late.read(&mut buf), Ok(n) if n > 0),
        "a draining server answered a new connection"
    );
}

#[test]
fn over_the_connection_cap_the_server_stops_accepting_until_one_closes() {
    let (addr, _drain) = start(2, || (Settings::default(), panicky));
    let mut a = connect(addr);
    let mut b = connect(addr);
    a.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    b.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    a.read_response(false).unwrap();
    b.read_response(false).unwrap();
    // A third connection waits in the kernel's backlog: no answer yet.
    let third = std::net::TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut third = Conn::new(third);
    third.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(third.read_response(false).is_err(), "served over the cap");
    // When one closes, the third is accepted and served.
    drop(a);
    third
        .writer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(third.read_response(false).unwrap().body, b"ok");
}

#[test]
fn a_response_write_that_the_peer_never_takes_times_out() {
    let (addr, drain) = start(100, || {
        let settings = Settings {
            timeouts: codec_chain::Timeouts {
                send: Some(Duration::from_millis(500)),
                ..codec_chain::Timeouts::default()
            },
            ..Settings::default()
        };
        let big = Handler::new(|_| Response::text(200, vec![b'x'; 8 << 20]));
        (settings, move |r, w| big.clone().serve(r, w))
    });
    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    // Never read: the server gives up on the connection after the send deadline, and the
    // server (asked to drain) then has nothing open: its thread ends.
    std::thread::sleep(Duration::from_secs(2));
    drain.send(()).unwrap();
    let mut head = [0u8; 64];
    use std::io::Read;
    let n = c.reader.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(
        rest.len() + n < 8 << 20,
        "all 8 MiB arrived: nothing timed out"
    );
}

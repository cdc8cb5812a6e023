//! The callback form of a stream: read_start/read_stop, write with completion, shutdown and
//! close with libuv's semantics.

mod util;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use uvlite::{Pipe, Stream, TcpListener, TcpStream, sleep};

async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    listener.listen(4)?;
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (server, _) = listener.accept().await?;
    Ok((client, server))
}

async fn read_n(s: &TcpStream, n: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = s.read(&mut out[got..]).await?;
        if k == 0 {
            break;
        }
        got += k;
    }
    out.truncate(got);
    Ok(out)
}

#[test]
fn echo_with_callbacks_then_eof() -> io::Result<()> {
    util::run(async {
        let (client, server) = tcp_pair().await?;
        let stream = Stream::new(server);
        let writer = stream.clone();
        let written = Rc::new(Cell::new(0));
        let eof = Rc::new(Cell::new(false));
        let (w, e) = (written.clone(), eof.clone());
        stream.read_start(move |chunk| match chunk {
            Ok(Some(bytes)) => {
                let w = w.clone();
                writer.write(bytes.to_vec(), move |res| {
                    res.unwrap();
                    w.set(w.get() + 1);
                });
            }
            Ok(None) => e.set(true),
            Err(err) => panic!("read error {err}"),
        });
        client.write_all(b"hello callbacks").await?;
        assert_eq!(read_n(&client, 15).await?, b"hello callbacks");
        client.shutdown(std::net::Shutdown::Write)?;
        while !eof.get() {
            sleep(Duration::from_millis(1)).await;
        }
        assert!(!stream.is_reading(), "reading stops after EOF");
        assert!(written.get() >= 1);
        assert_eq!(stream.write_queue_size(), 0);
        Ok(())
    })
}

#[test]
fn read_stop_stops_the_callbacks() -> io::Result<()> {
    util::run(async {
        let (a, b) = Pipe::socketpair()?;
        let stream = Stream::new(Pipe::from_fd(b)?);
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let (c, s) = (chunks.clone(), stream.clone());
        stream.read_start(move |chunk| {
            c.borrow_mut().push(chunk.unwrap().unwrap().to_vec());
            s.read_stop(); // from inside the callback
        });
        a.write_all(b"one").await?;
        while chunks.borrow().is_empty() {
            sleep(Duration::from_millis(1)).await;
        }
        a.write_all(b"two").await?;
        sleep(Duration::from_millis(30)).await;
        assert_eq!(*chunks.borrow(), vec![b"one".to_vec()]);
        // Reading again picks up what waited in the kernel.
        let c = chunks.clone();
        stream.read_start(move |chunk| c.borrow_mut().push(chunk.unwrap().unwrap().to_vec()));
        while chunks.borrow().len() < 2 {
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(chunks.borrow()[1], b"two");
        Ok(())
    })
}

#[test]
fn close_cancels_queued_writes_then_calls_back() -> io::Result<()> {
    util::run(async {
        let (client, server) = tcp_pair().await?;
        let stream = Stream::new(server);
        let order = Rc::new(RefCell::new(Vec::new()));
        // More than the socket buffers hold while the peer does not read.
        let o = order.clone();
        stream.write(vec![7u8; 32 << 20], move |res| {
            let err = res.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
            o.borrow_mut().push("big write");
        });
        let o = order.clone();
        stream.write(b"after".to_vec(), move |res| {
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
            o.borrow_mut().push("small write");
        });
        sleep(Duration::from_millis(20)).await;
        assert!(stream.write_queue_size() > 0, "the peer is not reading");
        let o = order.clone();
        stream.close(move || o.borrow_mut().push("close"));
        assert!(stream.is_closing());
        assert!(
            order.borrow().is_empty(),
            "callbacks run after close returns"
        );
        assert_eq!(stream.write_queue_size(), 0);
        while order.borrow().len() < 3 {
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(*order.borrow(), vec!["big write", "small write", "close"]);
        // The fd is closed: the peer drains what was sent and then sees the end.
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Writing after close fails with ECANCELED too.
        let late = Rc::new(Cell::new(false));
        let l = late.clone();
        stream.write(b"late".to_vec(), move |res| {
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
            l.set(true);
        });
        while !late.get() {
            sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    })
}

#[test]
fn shutdown_waits_for_the_queued_writes() -> io::Result<()> {
    util::run(async {
        let (client, server) = tcp_pair().await?;
        let stream = Stream::new(server);
        let done = Rc::new(Cell::new(false));
        stream.write(b"last words".to_vec(), |res| res.unwrap());
        let d = done.clone();
        stream.shutdown(move |res| {
            res.unwrap();
            d.set(true);
        });
        let mut all = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all, b"last words");
        assert!(done.get());
        Ok(())
    })
}

//! TCP listener and stream on loopback.

mod util;

use std::io::{self, IoSlice};
use std::net::Shutdown;

use uvlite::{TcpListener, TcpStream, spawn_local};

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn bind_does_not_listen_until_asked() -> io::Result<()> {
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        assert!(!listener.is_listening());
        let refused = TcpStream::connect(addr).await;
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        listener.listen(16)?;
        assert!(listener.is_listening());
        let _client = TcpStream::connect(addr).await?;
        let (_server, peer) = listener.accept().await?;
        assert_eq!(peer.ip(), addr.ip());
        Ok(())
    })
}

#[test]
fn echo_with_writev_and_shutdown() -> io::Result<()> {
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(16)?;
        let addr = listener.local_addr()?;
        let server = spawn_local(async move {
            let (conn, _) = listener.accept().await?;
            let mut got = Vec::new();
            let mut buf = [0u8; 7];
            loop {
                let n = conn.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(&got).await?;
            conn.shutdown(Shutdown::Write)?;
            Ok::<_, io::Error>(got.len())
        });
        let client = TcpStream::connect(addr).await?;
        let parts = [IoSlice::new(b"hello, "), IoSlice::new(b"world")];
        assert_eq!(client.writev(&parts).await?, 12);
        client.shutdown(Shutdown::Write)?;
        let mut back = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert_eq!(back, b"hello, world");
        assert_eq!(server.await.unwrap()?, 12);
        Ok(())
    })
}

#[test]
fn accepted_sockets_are_nonblocking_and_cloexec() -> io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(16)?;
        let _client = TcpStream::connect(listener.local_addr()?).await?;
        let (conn, _) = listener.accept().await?;
        let fl = OFlag::from_bits_truncate(fcntl(&conn, FcntlArg::F_GETFL)?);
        let fd = FdFlag::from_bits_truncate(fcntl(&conn, FcntlArg::F_GETFD)?);
        assert!(fl.contains(OFlag::O_NONBLOCK));
        assert!(fd.contains(FdFlag::FD_CLOEXEC));
        Ok(())
    })
}

#[test]
fn many_connections_are_served_concurrently() -> io::Result<()> {
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(256)?;
        let addr = listener.local_addr()?;
        spawn_local(async move {
            loop {
                let (conn, _) = listener.accept().await?;
                spawn_local(async move {
                    let mut buf = [0u8; 64];
                    loop {
                        let n = conn.read(&mut buf).await?;
                        if n == 0 {
                            return Ok::<_, io::Error>(());
                        }
                        conn.write_all(&buf[..n]).await?;
                    }
                })
                .detach();
            }
            #[allow(unreachable_code)]
            Ok::<_, io::Error>(())
        })
        .detach();
        let mut clients = Vec::new();
        for i in 0..50u32 {
            clients.push(spawn_local(async move {
                let c = TcpStream::connect(addr).await?;
                for j in 0..20u32 {
                    let msg = format!("{i}:{j}");
                    c.write_all(msg.as_bytes()).await?;
                    let mut buf = [0u8; 16];
                    let mut got = 0;
                    while got < msg.len() {
                        got += c.read(&mut buf[got..]).await?;
                    }
                    assert_eq!(&buf[..got], msg.as_bytes());
                }
                Ok::<_, io::Error>(())
            }));
        }
        for c in clients {
            c.await.unwrap()?;
        }
        Ok(())
    })
}

//! Pipes that pass fds: a listening socket handed to another process, as the cluster does.

mod util;

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Command;

use uvlite::{HandleType, Pipe, Process, TcpListener, TcpStream};

const CHILD_ENV: &str = "UVLITE_PIPE_TEST_CHILD";

/// The child half of `listener_passed_to_another_process`: receive the bound socket on fd 3,
/// listen, tell the parent, serve one connection, exit 7.
fn child() -> io::Result<()> {
    util::run(async {
        // SAFETY: the parent mapped our end of the socketpair to fd 3 and nothing else here
        // owns it.
        let fd3 = unsafe { OwnedFd::from_raw_fd(3) };
        let pipe = Pipe::from_fd(fd3)?;
        let mut buf = [0u8; 8];
        while pipe.pending_count() == 0 {
            if pipe.read(&mut buf).await? == 0 {
                return Err(io::Error::other("EOF before a handle arrived"));
            }
        }
        assert_eq!(pipe.pending_type(), Some(HandleType::Tcp));
        let listener = TcpListener::from_fd(pipe.accept_pending().unwrap())?;
        listener.listen(256)?;
        pipe.write_all(b"!").await?;
        let (conn, _) = listener.accept().await?;
        let n = conn.read(&mut buf).await?;
        conn.write_all(format!("child {} got ", std::process::id()).as_bytes())
            .await?;
        conn.write_all(&buf[..n]).await?;
        Ok(())
    })?;
    std::process::exit(7);
}

#[test]
fn listener_passed_to_another_process() -> io::Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    util::run(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let (pipe, child_end) = Pipe::socketpair()?;
        let exe = std::env::current_exe()?;
        let mut child = Process::spawn(
            Command::new(exe)
                .args([
                    "--exact",
                    "listener_passed_to_another_process",
                    "--nocapture",
                ])
                .env(CHILD_ENV, "1"),
            &[child_end.as_fd()],
        )?;
        drop(child_end);
        pipe.write2(b".", listener.as_fd()).await?;
        // The parent never listens: the child does, on the very same socket.
        let mut ready = [0u8; 1];
        assert_eq!(pipe.read(&mut ready).await?, 1);
        assert!(listener.is_listening());
        let client = TcpStream::connect(addr).await?;
        client.write_all(b"hello").await?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let expected = format!("child {} got hello", child.pid());
        assert_eq!(String::from_utf8_lossy(&reply), expected);
        assert_eq!(child.wait().await?.code(), Some(7));
        Ok(())
    })
}

#[test]
fn write2_needs_a_byte_and_from_fd_checks_the_type() -> io::Result<()> {
    util::run(async {
        let (pipe, other) = Pipe::socketpair()?;
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let err = pipe.write2(b"", listener.as_fd()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // A Unix socket is not a TCP listener, and a TCP socket is not a pipe.
        let err = TcpListener::from_fd(other).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let tcp_fd: OwnedFd = std::net::TcpListener::bind("127.0.0.1:0")?.into();
        assert_eq!(
            Pipe::from_fd(tcp_fd).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        Ok(())
    })
}

#[test]
fn two_handles_in_a_row_are_both_received() -> io::Result<()> {
    // recvmsg stops at each message that carries an fd: the second one must not be stranded
    // behind a short read.
    util::run(async {
        let (a, b) = Pipe::socketpair()?;
        let b = Pipe::from_fd(b)?;
        let l1 = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let l2 = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        a.write2(b"1", l1.as_fd()).await?;
        a.write2(b"2", l2.as_fd()).await?;
        let mut buf = [0u8; 64];
        let mut bytes = Vec::new();
        while b.pending_count() < 2 {
            let n = b.read(&mut buf).await?;
            assert!(n > 0, "EOF before both handles");
            bytes.extend_from_slice(&buf[..n]);
        }
        assert_eq!(bytes, b"12");
        let got1 = TcpListener::from_fd(b.accept_pending().unwrap())?;
        let got2 = TcpListener::from_fd(b.accept_pending().unwrap())?;
        assert_eq!(got1.local_addr()?, l1.local_addr()?);
        assert_eq!(got2.local_addr()?, l2.local_addr()?);
        Ok(())
    })
}

#[test]
fn a_pipe_is_a_futures_io_stream() -> io::Result<()> {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::future::poll_fn;
    use std::pin::Pin;
    util::run(async {
        let (a, b) = Pipe::socketpair()?;
        let mut b = Pipe::from_fd(b)?;
        let mut w = &a;
        let n = poll_fn(|cx| Pin::new(&mut w).poll_write(cx, b"over futures-io")).await?;
        assert_eq!(n, 15);
        poll_fn(|cx| Pin::new(&mut w).poll_close(cx)).await?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let n = poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf)).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"over futures-io");
        Ok(())
    })
}

#[test]
fn a_pipe_listener_by_path_accepts_pipes_that_carry_fds() -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("uvlite-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let res = util::run(async {
        let listener = uvlite::PipeListener::bind(&path)?;
        assert_eq!(listener.path().as_deref(), Some(path.as_path()));
        let client = Pipe::connect(&path)?;
        let server = listener.accept().await?;
        let tcp = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        client.write2(b"x", tcp.as_fd()).await?;
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).await?, 1);
        assert_eq!(server.pending_type(), Some(HandleType::Tcp));
        let got = TcpListener::from_fd(server.accept_pending().unwrap())?;
        assert_eq!(got.local_addr()?, tcp.local_addr()?);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    res
}

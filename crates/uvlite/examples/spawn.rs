//! The cluster pattern in one screen: the parent binds a port without listening and passes it
//! to a child process over a socketpair at the child's fd 3; the child listens and serves.
//!
//! Run with: `cargo run -p uvlite --example spawn`.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Command;

use uvlite::{HandleType, Loop, Pipe, Process, TcpListener, TcpStream};

fn child() -> io::Result<()> {
    Loop::new()?.block_on(async {
        // SAFETY: the parent put our end of the socketpair at fd 3; nothing else owns it.
        let pipe = Pipe::from_fd(unsafe { OwnedFd::from_raw_fd(3) })?;
        let mut buf = [0u8; 16];
        while pipe.pending_count() == 0 && pipe.read(&mut buf).await? > 0 {}
        assert_eq!(pipe.pending_type(), Some(HandleType::Tcp));
        let listener = TcpListener::from_fd(pipe.accept_pending().unwrap())?;
        listener.listen(16)?;
        pipe.write_all(b"!").await?; // tell the parent we listen
        let (conn, _) = listener.accept().await?;
        let msg = format!("hello from child {}\n", std::process::id());
        conn.write_all(msg.as_bytes()).await
    })
}

fn main() -> io::Result<()> {
    if std::env::var_os("SPAWN_EXAMPLE_CHILD").is_some() {
        return child();
    }
    Loop::new()?.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let (pipe, child_end) = Pipe::socketpair()?;
        let mut cmd = Command::new(uvlite::exepath()?);
        cmd.env("SPAWN_EXAMPLE_CHILD", "1");
        let mut child = Process::spawn(&mut cmd, &[child_end.as_fd()])?;
        drop(child_end);
        pipe.write2(b".", listener.as_fd()).await?; // libuv's write2(pipe, ".", server)
        let mut ready = [0u8; 1];
        pipe.read(&mut ready).await?;
        let conn = TcpStream::connect(listener.local_addr()?).await?;
        let mut reply = [0u8; 64];
        let n = conn.read(&mut reply).await?;
        print!(
            "parent {} got: {}",
            std::process::id(),
            String::from_utf8_lossy(&reply[..n])
        );
        println!("child {} exited: {}", child.pid(), child.wait().await?);
        Ok(())
    })
}

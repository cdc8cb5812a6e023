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

#[test]
fn accept_yields_after_a_batch_and_comes_back_without_a_new_syn() -> io::Result<()> {
    use std::cell::Cell;
    use std::rc::Rc;
    const CONNS: usize = 20;
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(64)?;
        listener.set_accept_batch(4);
        let addr = listener.local_addr()?;
        // Every connection is queued before the first accept: no SYN arrives later to raise
        // a new edge, so the accept task must come back on its own after each yield.
        let clients: Vec<_> = (0..CONNS)
            .map(|_| std::net::TcpStream::connect(addr))
            .collect::<Result<_, _>>()?;
        let other_runs = Rc::new(Cell::new(0u32));
        let done = Rc::new(Cell::new(false));
        let (runs, stop) = (other_runs.clone(), done.clone());
        let other = spawn_local(std::future::poll_fn(move |cx| {
            if stop.get() {
                return std::task::Poll::Ready(());
            }
            runs.set(runs.get() + 1);
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }));
        // The other task's run count seen at each accept.
        let mut seen = Vec::new();
        for _ in 0..CONNS {
            let (_conn, _) = listener.accept().await?;
            seen.push(other_runs.get());
        }
        done.set(true);
        other.await.unwrap();
        drop(clients);
        // Never more than 4 accepts between two runs of the other task.
        for w in seen.windows(5) {
            assert!(w[4] > w[0], "more than 4 accepts without a yield: {seen:?}");
        }
        assert!(seen[CONNS - 1] >= seen[0] + 4, "{seen:?}");
        Ok(())
    })
}

const EMFILE_CHILD: &str = "UVLITE_EMFILE_CHILD";

/// The child of `emfile_pauses_accepting_and_service_resumes`: a few free fds only. It holds
/// every connection until the parent writes to fd 3, then closes each as it comes; it reports
/// `accepted errors cpu_ms` on fd 3 and exits.
fn emfile_child() -> io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::os::fd::{FromRawFd, OwnedFd};
    util::run(async {
        // SAFETY: the parent mapped our end of a socketpair to fd 3; nothing else owns it.
        let pipe = uvlite::Pipe::from_fd(unsafe { OwnedFd::from_raw_fd(3) })?;
        let listener = TcpListener::bind(loopback())?;
        listener.listen(128)?;
        pipe.write_all(&listener.local_addr()?.port().to_be_bytes())
            .await?;
        // RLIMIT_NOFILE bounds fd numbers: pick the limit that leaves exactly 4 free numbers.
        let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let (mut limit, mut free) = (0u64, 0);
        while free < 4 {
            if !open.contains(&limit) {
                free += 1;
            }
            limit += 1;
        }
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        setrlimit(Resource::RLIMIT_NOFILE, limit, hard)?;
        let expected: usize = std::env::var(EMFILE_CHILD).unwrap().parse().unwrap();
        let released = std::rc::Rc::new(std::cell::Cell::new(false));
        let r = released.clone();
        let pipe = std::rc::Rc::new(pipe);
        let p = pipe.clone();
        spawn_local(async move {
            let mut b = [0u8; 1];
            let _ = p.read(&mut b).await;
            r.set(true);
        })
        .detach();
        let (mut held, mut accepted, mut errors) = (Vec::new(), 0, 0);
        while accepted < expected {
            if released.get() {
                held.clear();
            }
            match listener.accept().await {
                Ok((conn, _)) => {
                    accepted += 1;
                    held.push(conn);
                }
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => errors += 1,
                Err(e) => return Err(e),
            }
        }
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?;
        let cpu = usage.user_time() + usage.system_time();
        let cpu_ms = cpu.tv_sec() * 1000 + cpu.tv_usec() / 1000;
        pipe.write_all(format!("{accepted} {errors} {cpu_ms}\n").as_bytes())
            .await?;
        Ok(())
    })?;
    std::process::exit(0);
}

#[test]
fn emfile_pauses_accepting_and_service_resumes() -> io::Result<()> {
    use std::os::fd::AsFd;
    const CONNS: usize = 30;
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    util::run(async {
        let (pipe, child_end) = uvlite::Pipe::socketpair()?;
        let mut child = uvlite::Process::spawn(
            std::process::Command::new(std::env::current_exe()?)
                .args([
                    "--exact",
                    "emfile_pauses_accepting_and_service_resumes",
                    "--nocapture",
                ])
                .env(EMFILE_CHILD, CONNS.to_string()),
            &[child_end.as_fd()],
        )?;
        drop(child_end);
        // If anything below fails (say the child spins and never reports), kill the child.
        struct KillOnDrop(i32);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                let pid = nix::unistd::Pid::from_raw(self.0);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _guard = KillOnDrop(child.pid() as i32);
        let mut port = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            got += pipe.read(&mut port[got..]).await?;
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], u16::from_be_bytes(port)));
        // More connections than the child has fds: the kernel queues them all.
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            clients.push(TcpStream::connect(addr).await?);
        }
        // Stay at the limit for a while: the child must wait, not spin.
        uvlite::sleep(std::time::Duration::from_millis(1500)).await;
        pipe.write_all(b"r").await?;
        let mut report = Vec::new();
        let mut buf = [0u8; 64];
        while !report.ends_with(b"\n") {
            let n = pipe.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            report.extend_from_slice(&buf[..n]);
        }
        let report = String::from_utf8_lossy(&report).into_owned();
        println!("emfile child: accepted, EMFILE errors, CPU ms = {report}");
        let fields: Vec<u64> = report
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        // Service resumed: every queued connection was accepted once fds were free.
        assert_eq!(fields[0], CONNS as u64, "{report}");
        // It hit the limit, and retried from a timer: a spinning accept loop would see
        // EMFILE hundreds of thousands of times in 1.5 s, the paused one a handful.
        assert!(fields[1] >= 1 && fields[1] <= 40, "{report}");
        assert!(child.wait().await?.success());
        drop(clients);
        Ok(())
    })
}

#[test]
fn nodelay_and_keepalive_can_be_set_and_read_back() -> io::Result<()> {
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(4)?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        client.set_nodelay(true)?;
        assert!(client.nodelay()?);
        assert_eq!(client.keepalive()?, None);
        client.set_keepalive(Some(std::time::Duration::from_millis(30_500)))?;
        assert_eq!(
            client.keepalive()?,
            Some(std::time::Duration::from_secs(31))
        );
        client.set_keepalive(None)?;
        assert_eq!(client.keepalive()?, None);
        assert_eq!(client.peer_addr()?, listener.local_addr()?);
        Ok(())
    })
}

/// A reader and a writer of one socket, in two tasks, waiting at the same time: each is woken
/// by its own event (the reactor records one task per socket and keeps the other's waker).
#[test]
fn two_tasks_waiting_on_one_socket_are_each_woken() -> io::Result<()> {
    use std::rc::Rc;
    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(16)?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let server = Rc::new(server);
        // The reader waits first, so its task is the one recorded.
        let reader = spawn_local({
            let server = server.clone();
            async move {
                let mut buf = [0u8; 16];
                server.read(&mut buf).await
            }
        });
        util::yield_once().await;
        // The writer fills the socket's buffers, then waits for room (64 MiB: more than
        // loopback buffers hold while the peer reads nothing, whatever the host's limits).
        const TOTAL: usize = 64 << 20;
        let writer = spawn_local({
            let server = server.clone();
            async move { server.write_all(&vec![7u8; TOTAL]).await }
        });
        util::yield_once().await;
        assert!(!writer.is_finished() && !reader.is_finished());
        // Room first: the writer must finish while the reader still waits.
        let mut sink = vec![0u8; 1 << 16];
        let mut taken = 0;
        while taken < TOTAL {
            taken += client.read(&mut sink).await?;
        }
        writer.await.unwrap()?;
        assert!(!reader.is_finished());
        client.write_all(b"ping").await?;
        assert_eq!(reader.await.unwrap()?, 4);
        Ok(())
    })
}

/// A task that polls a read with a waker of its own (as a combinator does) is woken through
/// that waker, not as the task.
#[test]
fn a_read_polled_with_another_waker_wakes_that_waker() -> io::Result<()> {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    /// Counts its wakes and passes them on to the task.
    struct Relay {
        wakes: AtomicUsize,
        task: Waker,
    }
    impl Wake for Relay {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.task.wake_by_ref();
        }
    }

    util::run(async {
        let listener = TcpListener::bind(loopback())?;
        listener.listen(16)?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let task = spawn_local(async move {
            let mut buf = [0u8; 16];
            let mut read = pin!(server.read(&mut buf));
            let mut relay = None;
            let n = std::future::poll_fn(|cx| {
                let relay = relay.get_or_insert_with(|| {
                    Arc::new(Relay {
                        wakes: AtomicUsize::new(0),
                        task: cx.waker().clone(),
                    })
                });
                let waker = Waker::from(relay.clone());
                read.as_mut().poll(&mut Context::from_waker(&waker))
            })
            .await?;
            let wakes = relay.map_or(0, |r| r.wakes.load(Ordering::SeqCst));
            Ok::<_, io::Error>((n, wakes))
        });
        // The task's first poll waits on the read through its relay.
        util::yield_once().await;
        client.write_all(b"pong").await?;
        let (n, wakes) = task.await.unwrap()?;
        assert_eq!(n, 4);
        assert_eq!(wakes, 1);
        Ok(())
    })
}

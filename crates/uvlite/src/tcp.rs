//! TCP: a listener that can be bound without listening (so it can be handed to other
//! processes first), and a non-blocking stream with async read, write, writev and shutdown.

use std::cell::{Cell, OnceCell, RefCell};
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrLike, SockaddrStorage, sockopt,
};

use crate::reactor::{Direction, Registration};
use crate::timer::Sleep;

/// Accepts in a row before [`TcpListener::accept`] yields to other tasks (then it comes back
/// by itself: see [`TcpListener::set_accept_batch`]).
pub const ACCEPT_BATCH: u32 = 32;

/// First pause of accepting after `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM`; it doubles while the
/// error persists, up to [`ACCEPT_PAUSE_MAX`], and resets after a successful accept.
pub const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(20);

/// Longest pause of accepting when out of fds or memory (nginx waits 500 ms too): service
/// resumes at most this long after fds are freed.
pub const ACCEPT_PAUSE_MAX: Duration = Duration::from_millis(500);

/// A TCP listening socket.
///
/// Unlike `std::net::TcpListener::bind`, [`bind`](TcpListener::bind) does not listen: as in
/// libuv, `listen(backlog)` is a separate step, so a supervisor can bind a port and pass the
/// socket to workers that each listen and accept on it. Accepted sockets are created with
/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`. The listener registers with the loop on its first
/// `accept`, so a process that only passes it on never wakes for connections.
///
/// # Accepting under load
/// - **Bounded batches without stranding.** Readiness is edge-triggered, so a listener stays
///   readable until `accept4` says `EAGAIN`. After [`ACCEPT_BATCH`] accepts in a row (see
///   [`set_accept_batch`](TcpListener::set_accept_batch)), `accept` wakes its own task and
///   returns `Pending` once: other tasks run, then the task is polled again and goes on
///   accepting the queued connections, with no new SYN needed.
/// - **Out of fds.** `EMFILE`, `ENFILE`, `ENOBUFS` and `ENOMEM` are returned once (so the
///   caller can log them) and pause accepting: the next `accept` waits on a timer (from
///   [`ACCEPT_PAUSE_MIN`], doubling to [`ACCEPT_PAUSE_MAX`]) before it tries again. A loop
///   that logs and calls `accept` again therefore never spins; the pending connections stay
///   in the kernel's queue (and other processes sharing the socket keep accepting them).
pub struct TcpListener {
    reg: OnceCell<Registration>,
    io: mio::net::TcpListener,
    /// Accepts since this listener last yielded or found the queue empty.
    streak: Cell<u32>,
    batch: Cell<u32>,
    /// Set while accepting is paused after running out of fds.
    paused: RefCell<Option<Sleep>>,
    pause: Cell<Duration>,
}

impl TcpListener {
    /// Creates a non-blocking, close-on-exec socket with `SO_REUSEADDR` and binds it to `addr`,
    /// without listening.
    ///
    /// # Errors
    /// `EADDRINUSE` and friends from `bind(2)`.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
        Ok(Self::from_owned(fd))
    }

    /// Takes a TCP socket received from elsewhere (a [`Pipe`](crate::Pipe), systemd, a parent
    /// process) after checking that it is one: `SO_TYPE` must be `SOCK_STREAM` and the address
    /// family IPv4 or IPv6. The socket is made non-blocking (the flag is shared with every
    /// process holding it, and is never cleared).
    ///
    /// # Errors
    /// `InvalidInput` if the fd is not a TCP socket.
    pub fn from_fd(fd: OwnedFd) -> io::Result<TcpListener> {
        if crate::pipe::handle_type(fd.as_fd()) != crate::HandleType::Tcp {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fd is not a TCP socket",
            ));
        }
        crate::pipe::set_nonblocking(fd.as_fd())?;
        Ok(Self::from_owned(fd))
    }

    fn from_owned(fd: OwnedFd) -> TcpListener {
        TcpListener {
            reg: OnceCell::new(),
            io: mio::net::TcpListener::from_std(std::net::TcpListener::from(fd)),
            streak: Cell::new(0),
            batch: Cell::new(ACCEPT_BATCH),
            paused: RefCell::new(None),
            pause: Cell::new(ACCEPT_PAUSE_MIN),
        }
    }

    /// Starts listening with a queue of `backlog` pending connections (the kernel caps it at
    /// `net.core.somaxconn`).
    ///
    /// # Errors
    /// `EADDRINUSE` when another socket listens on the port without `SO_REUSEPORT`.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        socket::listen(&self.io, Backlog::new(backlog)?)?;
        Ok(())
    }

    /// Whether the socket is in the listening state (`SO_ACCEPTCONN`).
    pub fn is_listening(&self) -> bool {
        socket::getsockopt(&self.io, sockopt::AcceptConn).unwrap_or(false)
    }

    /// The bound address.
    ///
    /// # Errors
    /// Errors of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn registration(&self) -> io::Result<&Registration> {
        if let Some(r) = self.reg.get() {
            return Ok(r);
        }
        let r = Registration::with_interest(self.io.as_raw_fd(), mio::Interest::READABLE)?;
        Ok(self.reg.get_or_init(|| r))
    }

    /// Accepts one connection, waiting until one is queued.
    ///
    /// # Errors
    /// Errors of `accept4(2)` such as `ECONNABORTED` or `EMFILE`; the listener stays usable
    /// after them, and after `EMFILE`-like errors the next call waits out a pause first (see
    /// [`TcpListener`]), so calling `accept` again in a loop never spins.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll form of [`accept`](TcpListener::accept): yields after a batch of accepts and
    /// waits out a pause after running out of fds, as described on [`TcpListener`].
    ///
    /// # Errors
    /// As [`accept`](TcpListener::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let reg = match self.registration() {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if self.paused.borrow().is_some() {
            let mut paused = self.paused.borrow_mut();
            let sleep = paused.as_mut().expect("checked above");
            if Pin::new(sleep).poll(cx).is_pending() {
                return Poll::Pending;
            }
            *paused = None;
        }
        if self.streak.get() >= self.batch.get() {
            // Come back after the other ready tasks: the readiness flag is still set, so the
            // queued connections are accepted on the next poll without a new event.
            self.streak.set(0);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match reg.poll_io(cx, Direction::Read, || self.io.accept()) {
            Poll::Ready(Ok((s, addr))) => {
                self.streak.set(self.streak.get() + 1);
                self.pause.set(ACCEPT_PAUSE_MIN);
                Poll::Ready(TcpStream::from_mio(s).map(|s| (s, addr)))
            }
            Poll::Ready(Err(e)) => {
                if is_out_of_resources(&e) {
                    let pause = self.pause.get();
                    self.pause.set((pause * 2).min(ACCEPT_PAUSE_MAX));
                    *self.paused.borrow_mut() = Some(Sleep::new(std::time::Instant::now() + pause));
                    self.streak.set(0);
                }
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                self.streak.set(0);
                Poll::Pending
            }
        }
    }

    /// Sets how many connections [`accept`](TcpListener::accept) takes in a row before it
    /// yields to other tasks ([`ACCEPT_BATCH`] by default; at least 1).
    pub fn set_accept_batch(&self, batch: u32) {
        self.batch.set(batch.max(1));
    }

    /// Whether accepting is paused after running out of fds (see [`TcpListener`]).
    pub fn is_accept_paused(&self) -> bool {
        self.paused
            .borrow()
            .as_ref()
            .is_some_and(|s| !s.is_elapsed())
    }

    /// Accepts a connection if one is queued, without waiting (and without the batching and
    /// pausing of [`accept`](TcpListener::accept)).
    ///
    /// # Errors
    /// `WouldBlock` when the queue is empty, or the errors of `accept4(2)`.
    pub fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, addr) = self.io.accept()?;
        TcpStream::from_mio(s).map(|s| (s, addr))
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.io.as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// A non-blocking TCP connection registered with the loop.
///
/// All methods take `&self`, so one task can read while another writes. It implements
/// `futures_io::AsyncRead` and `AsyncWrite` (also for `&TcpStream`); `poll_close` shuts down
/// the write side.
pub struct TcpStream {
    reg: Registration,
    io: mio::net::TcpStream,
}

impl TcpStream {
    fn from_mio(io: mio::net::TcpStream) -> io::Result<TcpStream> {
        let reg = Registration::new(io.as_raw_fd())?;
        Ok(TcpStream { reg, io })
    }

    /// Adopts a connected std stream (made non-blocking).
    ///
    /// # Errors
    /// Errors of `fcntl(2)` or of the registration.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Self::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// Opens a connection to `addr`.
    ///
    /// # Errors
    /// `ECONNREFUSED` and the other errors of a failed `connect(2)`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = Self::from_mio(mio::net::TcpStream::connect(addr)?)?;
        poll_fn(|cx| stream.reg.poll_ready(cx, Direction::Write)).await;
        if let Some(e) = stream.io.take_error()? {
            return Err(e);
        }
        stream.io.peer_addr()?;
        Ok(stream)
    }

    /// Reads into `buf`; `Ok(0)` means the peer closed its write side (EOF).
    ///
    /// # Errors
    /// `ECONNRESET` and the other errors of `read(2)`.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Poll form of [`read`](TcpStream::read).
    ///
    /// A read that returns fewer bytes than `buf` holds drained the socket, so readiness is
    /// cleared at once and the next read waits for an event instead of failing with `EAGAIN`.
    ///
    /// # Errors
    /// As [`read`](TcpStream::read).
    #[inline]
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let res = self
            .reg
            .poll_io(cx, Direction::Read, || (&self.io).read(buf));
        if let Poll::Ready(Ok(n)) = res
            && n > 0
            && n < buf.len()
        {
            self.reg.clear_readiness(Direction::Read);
        }
        res
    }

    /// Writes some of `buf`, returning how much the kernel took.
    ///
    /// # Errors
    /// `EPIPE`, `ECONNRESET` and the other errors of `write(2)`.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    ///
    /// # Errors
    /// As [`write`](TcpStream::write); `WriteZero` if the kernel takes nothing.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Poll form of [`write`](TcpStream::write).
    ///
    /// # Errors
    /// As [`write`](TcpStream::write).
    #[inline]
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let res = self
            .reg
            .poll_io(cx, Direction::Write, || (&self.io).write(buf));
        if let Poll::Ready(Ok(n)) = res
            && n < buf.len()
        {
            self.reg.clear_readiness(Direction::Write);
        }
        res
    }

    /// Writes from several buffers in one `writev(2)`, returning how much the kernel took.
    ///
    /// # Errors
    /// As [`write`](TcpStream::write).
    pub async fn writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_writev(cx, bufs)).await
    }

    /// Poll form of [`writev`](TcpStream::writev).
    ///
    /// # Errors
    /// As [`write`](TcpStream::write).
    #[inline]
    pub fn poll_writev(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let res = self
            .reg
            .poll_io(cx, Direction::Write, || (&self.io).write_vectored(bufs));
        if let Poll::Ready(Ok(n)) = res
            && n < total
        {
            self.reg.clear_readiness(Direction::Write);
        }
        res
    }

    /// Shuts down the read, write or both sides (`shutdown(2)`); writes queued in the kernel
    /// are still sent before the FIN.
    ///
    /// # Errors
    /// `ENOTCONN` if the connection is gone.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Runs a non-blocking operation on the socket once it is ready in `readable` (or writable)
    /// direction, retrying after `WouldBlock` (async-io's `read_with`/`write_with`).
    ///
    /// # Errors
    /// Whatever `op` returns other than `WouldBlock`.
    pub async fn io_with<R>(
        &self,
        readable: bool,
        mut op: impl FnMut(&mio::net::TcpStream) -> io::Result<R>,
    ) -> io::Result<R> {
        let dir = if readable {
            Direction::Read
        } else {
            Direction::Write
        };
        poll_fn(|cx| self.reg.poll_io(cx, dir, || op(&self.io))).await
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// Errors of `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    /// Turns TCP keep-alive probes on after `idle` without traffic, or off with `None`
    /// (libuv's `uv_tcp_keepalive`; `SO_KEEPALIVE` and `TCP_KEEPIDLE`, rounded up to seconds).
    ///
    /// # Errors
    /// Errors of `setsockopt(2)`.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        socket::setsockopt(&self.io, sockopt::KeepAlive, &idle.is_some())?;
        if let Some(idle) = idle {
            let secs = idle.as_secs() + u64::from(idle.subsec_nanos() > 0);
            let secs = u32::try_from(secs.max(1)).unwrap_or(u32::MAX);
            socket::setsockopt(&self.io, sockopt::TcpKeepIdle, &secs)?;
        }
        Ok(())
    }

    /// The keep-alive idle time if keep-alive is on.
    ///
    /// # Errors
    /// Errors of `getsockopt(2)`.
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        if !socket::getsockopt(&self.io, sockopt::KeepAlive)? {
            return Ok(None);
        }
        let secs = socket::getsockopt(&self.io, sockopt::TcpKeepIdle)?;
        Ok(Some(Duration::from_secs(u64::from(secs))))
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// Errors of `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// The remote address.
    ///
    /// # Errors
    /// `ENOTCONN` if the connection is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// Errors of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Whether the last operation left the socket known to be readable.
    pub fn is_readable(&self) -> bool {
        self.reg.is_ready(Direction::Read)
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.io.as_raw_fd())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_writev(self.get_mut(), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.shutdown(Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        })
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_writev(self.get_mut(), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this: &TcpStream = self.get_mut();
        Pin::new(&mut this).poll_close(cx)
    }
}

/// Errors after which accepting again at once would fail again: no fd or no memory.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The address family of a socket, from `getsockname(2)`.
pub(crate) fn family(fd: BorrowedFd<'_>) -> Option<AddressFamily> {
    socket::getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .ok()
        .and_then(|a| a.family())
}

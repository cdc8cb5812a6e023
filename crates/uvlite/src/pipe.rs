//! Unix stream sockets that carry file descriptors (libuv's IPC pipes).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, sockopt,
};

use crate::reactor::{Direction, Registration};

/// Most fds accepted in one message (Linux's `SCM_MAX_FD`); sized so that `MSG_CTRUNC`, which
/// would silently close the excess, cannot happen.
const MAX_FDS_PER_MESSAGE: usize = 253;

/// What kind of handle a received fd is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleType {
    /// A TCP socket (stream, IPv4 or IPv6): a listener or a connection.
    Tcp,
    /// A UDP socket.
    Udp,
    /// A Unix stream socket.
    Pipe,
    /// Anything else (a file, a pipe(2), a Unix datagram socket, …).
    Unknown,
}

/// Classifies an fd by `SO_TYPE` and its address family.
pub(crate) fn handle_type(fd: BorrowedFd<'_>) -> HandleType {
    let Ok(ty) = socket::getsockopt(&fd, sockopt::SockType) else {
        return HandleType::Unknown;
    };
    match (ty, crate::tcp::family(fd)) {
        (SockType::Stream, Some(AddressFamily::Inet | AddressFamily::Inet6)) => HandleType::Tcp,
        (SockType::Datagram, Some(AddressFamily::Inet | AddressFamily::Inet6)) => HandleType::Udp,
        (SockType::Stream, Some(AddressFamily::Unix)) => HandleType::Pipe,
        _ => HandleType::Unknown,
    }
}

/// Sets `O_NONBLOCK` (never clears it: the flag is shared by every holder of the socket).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// A Unix stream socket that can pass file descriptors (`SCM_RIGHTS`).
///
/// Bytes flow as on any stream; an fd sent with [`write2`](Pipe::write2) rides on the first byte
/// of its message. Reads collect received fds (close-on-exec) into a queue, which
/// [`pending_count`](Pipe::pending_count), [`pending_type`](Pipe::pending_type) and
/// [`accept_pending`](Pipe::accept_pending) expose, as libuv's `uv_pipe_pending_*` do.
pub struct Pipe {
    reg: Registration,
    io: mio::net::UnixStream,
    pending: RefCell<VecDeque<OwnedFd>>,
    cmsg: RefCell<Vec<u8>>,
}

impl Pipe {
    /// Wraps a connected Unix stream socket (for example an inherited fd 3), making it
    /// non-blocking.
    ///
    /// # Errors
    /// `InvalidInput` if the fd is not a Unix stream socket.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Pipe> {
        if handle_type(fd.as_fd()) != HandleType::Pipe {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fd is not a Unix stream socket",
            ));
        }
        set_nonblocking(fd.as_fd())?;
        let io = mio::net::UnixStream::from_std(StdUnixStream::from(fd));
        Ok(Pipe {
            reg: Registration::new(io.as_raw_fd())?,
            io,
            pending: RefCell::new(VecDeque::new()),
            cmsg: RefCell::new(nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE])),
        })
    }

    /// Connects to a listening Unix socket at `path`.
    ///
    /// # Errors
    /// Errors of `connect(2)`.
    pub fn connect(path: impl AsRef<std::path::Path>) -> io::Result<Pipe> {
        let s = StdUnixStream::connect(path)?;
        Self::from_fd(OwnedFd::from(s))
    }

    /// A connected pair: the first end registered with this loop, the second a plain
    /// close-on-exec fd to hand to a child process (as its fd 3, say).
    ///
    /// # Errors
    /// Errors of `socketpair(2)`.
    pub fn socketpair() -> io::Result<(Pipe, OwnedFd)> {
        let (a, b) = socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Self::from_fd(a)?, b))
    }

    /// Reads bytes into `buf`, queueing any fds that arrive with them; `Ok(0)` is EOF.
    ///
    /// # Errors
    /// Errors of `recvmsg(2)`.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Poll form of [`read`](Pipe::read).
    ///
    /// # Errors
    /// As [`read`](Pipe::read).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // No short-read rule here: `recvmsg` on a Unix stream socket stops at a message that
        // carries fds, so a short read does not prove the queue empty. Only `EAGAIN` clears.
        self.reg.poll_io(cx, Direction::Read, || self.recv(buf))
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut cmsg = self.cmsg.borrow_mut();
        let mut iov = [IoSliceMut::new(buf)];
        let msg = socket::recvmsg::<()>(
            self.io.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let n = msg.bytes;
        let mut pending = self.pending.borrow_mut();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    pending.push_back(crate::sys::adopt_received_fd(fd));
                }
            }
        }
        Ok(n)
    }

    /// Writes some of `buf`.
    ///
    /// # Errors
    /// Errors of `write(2)`.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Poll form of [`write`](Pipe::write).
    ///
    /// # Errors
    /// As [`write`](Pipe::write).
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

    /// Writes all of `buf`.
    ///
    /// # Errors
    /// Errors of `write(2)`.
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

    /// Sends `buf` (at least one byte) with `handle`'s fd attached, libuv's `uv_write2`.
    /// The receiver gets a duplicate of the fd; `handle` stays open here.
    ///
    /// # Errors
    /// `InvalidInput` for an empty `buf` (an fd needs a byte to ride on), or errors of
    /// `sendmsg(2)`.
    pub async fn write2(&self, buf: &[u8], handle: BorrowedFd<'_>) -> io::Result<()> {
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write2 needs at least one byte to carry the fd",
            ));
        }
        let fds = [handle.as_raw_fd()];
        let sent = poll_fn(|cx| {
            self.reg.poll_io(cx, Direction::Write, || {
                let iov = [IoSlice::new(buf)];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                Ok(socket::sendmsg::<()>(
                    self.io.as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )?)
            })
        })
        .await?;
        self.write_all(&buf[sent..]).await
    }

    /// Number of received fds not yet taken.
    pub fn pending_count(&self) -> usize {
        self.pending.borrow().len()
    }

    /// The type of the next received fd, if any.
    pub fn pending_type(&self) -> Option<HandleType> {
        self.pending
            .borrow()
            .front()
            .map(|fd| handle_type(fd.as_fd()))
    }

    /// Takes the next received fd (close-on-exec). Wrap it with
    /// [`TcpListener::from_fd`](crate::TcpListener::from_fd) or [`Pipe::from_fd`], which check
    /// its type.
    pub fn accept_pending(&self) -> Option<OwnedFd> {
        self.pending.borrow_mut().pop_front()
    }

    /// Shuts down one or both directions.
    ///
    /// # Errors
    /// Errors of `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }
}

/// A listening Unix stream socket bound to a path (libuv's `uv_pipe_bind` + `uv_listen`); its
/// connections are [`Pipe`]s that can carry fds.
pub struct PipeListener {
    reg: Registration,
    io: mio::net::UnixListener,
}

impl PipeListener {
    /// Binds a Unix stream socket to `path` and listens on it. The path must not exist.
    ///
    /// # Errors
    /// `EADDRINUSE` if the path exists, or the errors of `bind(2)`/`listen(2)`.
    pub fn bind(path: impl AsRef<std::path::Path>) -> io::Result<PipeListener> {
        let io = mio::net::UnixListener::bind(path)?;
        Ok(PipeListener {
            reg: Registration::with_interest(io.as_raw_fd(), mio::Interest::READABLE)?,
            io,
        })
    }

    /// Accepts one connection, waiting until one is queued.
    ///
    /// # Errors
    /// Errors of `accept4(2)`.
    pub async fn accept(&self) -> io::Result<Pipe> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll form of [`accept`](PipeListener::accept).
    ///
    /// # Errors
    /// As [`accept`](PipeListener::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Pipe>> {
        match self.reg.poll_io(cx, Direction::Read, || self.io.accept()) {
            Poll::Ready(Ok((s, _))) => Poll::Ready(Pipe::from_fd(OwnedFd::from(s))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The path this listener is bound to, if any.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self.io
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()))
    }
}

impl AsFd for PipeListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl std::fmt::Debug for PipeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeListener")
            .field("fd", &self.io.as_raw_fd())
            .field("path", &self.path())
            .finish()
    }
}

impl AsFd for Pipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for Pipe {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl futures_io::AsyncRead for &Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pipe::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for &Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pipe::poll_write(self.get_mut(), cx, buf)
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

impl futures_io::AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pipe::poll_read(self.get_mut(), cx, buf)
    }
}

impl futures_io::AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pipe::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this: &Pipe = self.get_mut();
        Pin::new(&mut this).poll_close(cx)
    }
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe")
            .field("fd", &self.io.as_raw_fd())
            .field("pending", &self.pending_count())
            .finish()
    }
}

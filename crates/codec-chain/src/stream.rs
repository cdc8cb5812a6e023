//! `wrap_stream`: a stream split into a reading half and a writing half that share it.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::Buffer;

/// Queued output above which a write waits for the kernel to take some ([`Config`]).
pub const HIGH_WATER: usize = 64 * 1024;

/// Free space asked of the read buffer before each read from the stream.
pub const READ_SIZE: usize = 4 * 1024;

/// Tuning of a wrapped stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Queued output bytes above which writes wait ([`HIGH_WATER`]).
    pub high_water: usize,
    /// Free space made in the read buffer before each read ([`READ_SIZE`]).
    pub read_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            high_water: HIGH_WATER,
            read_size: READ_SIZE,
        }
    }
}

/// The stream and the output queue, shared by both halves and the pipeline.
pub(crate) struct Shared<S> {
    pub(crate) io: RefCell<S>,
    out: RefCell<Vec<u8>>,
    /// Bytes at the front of `out` already taken by the kernel.
    sent: Cell<usize>,
    error: Cell<Option<io::ErrorKind>>,
    write_shut: Cell<bool>,
    /// Set when a pipeline flushes after each poll of the app; writes may then return with
    /// bytes still queued (under the high-water mark).
    pub(crate) driven: Cell<bool>,
    pub(crate) config: Config,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    /// Bytes queued and not yet taken by the kernel.
    pub(crate) fn queued(&self) -> usize {
        self.out.borrow().len() - self.sent.get()
    }

    fn check(&self) -> io::Result<()> {
        match self.error.get() {
            Some(kind) => Err(io::Error::new(kind, "the stream failed earlier")),
            None if self.write_shut.get() => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the write side was closed",
            )),
            None => Ok(()),
        }
    }

    /// Runs `f` on the output queue (for encoders).
    pub(crate) fn with_out<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        f(&mut self.out.borrow_mut())
    }

    /// Writes queued bytes until the queue is empty.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_to(cx, 0)
    }

    /// Writes queued bytes until at most `limit` remain.
    pub(crate) fn poll_flush_to(&self, cx: &mut Context<'_>, limit: usize) -> Poll<io::Result<()>> {
        if let Some(kind) = self.error.get() {
            return Poll::Ready(Err(io::Error::new(kind, "the stream failed earlier")));
        }
        let mut out = self.out.borrow_mut();
        let mut io = self.io.borrow_mut();
        while out.len() - self.sent.get() > limit {
            match Pin::new(&mut *io).poll_write(cx, &out[self.sent.get()..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.error.set(Some(io::ErrorKind::WriteZero));
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.sent.set(self.sent.get() + n),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.error.set(Some(e.kind()));
                    return Poll::Ready(Err(e));
                }
            }
        }
        if self.sent.get() == out.len() {
            out.clear();
            self.sent.set(0);
        } else if self.sent.get() > out.len() / 2 {
            out.drain(..self.sent.get());
            self.sent.set(0);
        }
        Poll::Ready(Ok(()))
    }

    /// Flushes, then shuts down the write side (once).
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_shut.get() {
            return Poll::Ready(Ok(()));
        }
        match self.poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let res = Pin::new(&mut *self.io.borrow_mut()).poll_close(cx);
        if let Poll::Ready(r) = &res {
            self.write_shut.set(true);
            if let Err(e) = r {
                self.error.set(Some(e.kind()));
            }
        }
        res
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io.borrow_mut()).poll_read(cx, buf)
    }

    /// After a write: flush now (not driven), or down to the high-water mark (driven).
    pub(crate) async fn after_write(&self) -> io::Result<()> {
        let limit = if self.driven.get() {
            self.config.high_water
        } else {
            0
        };
        if self.queued() > limit {
            poll_fn(|cx| self.poll_flush_to(cx, limit)).await?;
        }
        Ok(())
    }
}

/// Splits `stream` into a reading and a writing half (the seed's `wrapStream`).
///
/// The reading half reads only when asked to; the writing half queues bytes and hands them to
/// the kernel. Both halves share the stream; neither needs the other to be alive.
pub fn wrap_stream<S>(stream: S) -> (ReadHalf<S>, WriteHalf<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    wrap_stream_with(stream, Config::default())
}

/// [`wrap_stream`] with a custom [`Config`].
pub fn wrap_stream_with<S>(stream: S, config: Config) -> (ReadHalf<S>, WriteHalf<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = Rc::new(Shared {
        io: RefCell::new(stream),
        out: RefCell::new(Vec::new()),
        sent: Cell::new(0),
        error: Cell::new(None),
        write_shut: Cell::new(false),
        driven: Cell::new(false),
        config,
    });
    (
        ReadHalf {
            shared: shared.clone(),
            buf: Buffer::new(),
            eof: false,
        },
        WriteHalf { shared },
    )
}

/// The reading half of a wrapped stream.
pub struct ReadHalf<S> {
    pub(crate) shared: Rc<Shared<S>>,
    pub(crate) buf: Buffer,
    pub(crate) eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next bytes from the stream (everything buffered, or one read's worth); `None` at
    /// end of stream.
    ///
    /// # Errors
    /// Errors of the stream's read.
    pub async fn read(&mut self) -> io::Result<Option<&[u8]>> {
        if self.buf.is_empty() {
            if self.eof {
                return Ok(None);
            }
            poll_fn(|cx| self.poll_fill(cx)).await?;
            if self.buf.is_empty() {
                return Ok(None);
            }
        }
        Ok(Some(self.buf.take_all()))
    }

    /// Whether the stream has reported end of file.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// The buffered, unconsumed bytes.
    pub fn buffer(&mut self) -> &mut Buffer {
        &mut self.buf
    }

    /// Reads once from the stream into the buffer; `Ok(0)` means end of stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let spare = self.buf.spare(self.shared.config.read_size);
        match self.shared.poll_read(cx, spare) {
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                Poll::Ready(Ok(0))
            }
            Poll::Ready(Ok(n)) => {
                self.buf.commit(n);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

/// The writing half of a wrapped stream; clones share the same output queue.
pub struct WriteHalf<S> {
    pub(crate) shared: Rc<Shared<S>>,
}

impl<S> Clone for WriteHalf<S> {
    fn clone(&self) -> Self {
        WriteHalf {
            shared: self.shared.clone(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Queues `bytes` and waits until the kernel has them (or, inside a [`chain`](crate::chain),
    /// until less than the high-water mark is queued: the pipeline flushes the rest).
    ///
    /// # Errors
    /// Errors of the stream's write; `BrokenPipe` after [`close`](WriteHalf::close).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.shared.check()?;
        self.shared.with_out(|out| out.extend_from_slice(bytes));
        self.shared.after_write().await
    }

    /// Waits until every queued byte is with the kernel.
    ///
    /// # Errors
    /// Errors of the stream's write.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.shared.poll_flush(cx)).await
    }

    /// Flushes and shuts down the write side (the seed's `write()` with no argument).
    ///
    /// # Errors
    /// Errors of the stream's write or shutdown.
    pub async fn close(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.shared.poll_shutdown(cx)).await
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// Appends to the output queue directly (what encoders do); call
    /// [`flush`](WriteHalf::flush) or let the pipeline deliver the bytes.
    ///
    /// # Errors
    /// The stream's earlier error, or `BrokenPipe` after [`close`](WriteHalf::close).
    pub fn queue<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> io::Result<R> {
        self.shared.check()?;
        Ok(self.shared.with_out(f))
    }
}

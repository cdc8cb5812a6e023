//! `wrap_stream`: a stream split into a reading half and a writing half that share it.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::Buffer;
use crate::time::{Clock, Phase, Timeouts, Timer};

/// Queued output above which a write waits for the kernel to take some ([`Config`]).
pub const HIGH_WATER: usize = 64 * 1024;

/// Free space asked of the read buffer before each read from the stream.
pub const READ_SIZE: usize = 4 * 1024;

/// Tuning of a wrapped stream.
#[derive(Clone)]
pub struct Config {
    /// Queued output bytes above which writes wait ([`HIGH_WATER`]).
    pub high_water: usize,
    /// Free space made in the read buffer before each read ([`READ_SIZE`]).
    pub read_size: usize,
    /// Deadlines of each phase; they apply only with a [`clock`](Config::clock).
    pub timeouts: Timeouts,
    /// The runtime's time and timers; without one, nothing times out.
    pub clock: Option<Rc<dyn Clock>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            high_water: HIGH_WATER,
            read_size: READ_SIZE,
            timeouts: Timeouts::default(),
            clock: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("high_water", &self.high_water)
            .field("read_size", &self.read_size)
            .field("timeouts", &self.timeouts)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

/// The part of a connection's state that a server controls from outside the pipeline.
#[derive(Default)]
pub(crate) struct Control {
    /// Stop at the next item boundary: the reader then reports the end of the stream.
    pub(crate) closing: Cell<bool>,
    /// The reading task's waker as of its last wait: every idle wait sets it, and so does
    /// every wait that polls the read timer, which then holds the same waker. A [`Handle`]
    /// wakes it; a read deadline that the armed timer covers is checked against it.
    pub(crate) reader_waker: Cell<Option<Waker>>,
    /// The phase whose deadline passed, if one did.
    pub(crate) timed_out: Cell<Option<Phase>>,
    /// An earlier deadline for idle waits than the configured one (set when draining).
    pub(crate) idle_until: Cell<Option<Instant>>,
    /// The peer said its last message was its last, and nothing came after it: the close
    /// need not linger (see [`WriteHalf::set_peer_done`]).
    pub(crate) peer_done: Cell<bool>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("closing", &self.closing.get())
            .field("timed_out", &self.timed_out.get())
            .field("idle_until", &self.idle_until.get())
            .field("peer_done", &self.peer_done.get())
            .finish_non_exhaustive()
    }
}

/// What a [`Handle`] reaches of a stream's shared state, whatever the stream's type.
trait Controlled {
    fn control(&self) -> &Control;
}

impl<S> Controlled for Shared<S> {
    fn control(&self) -> &Control {
        &self.control
    }
}

/// A handle on one wrapped stream, for the server that owns many: ask it to close at its next
/// item boundary (draining), and see why it ended.
///
/// It points at the stream's shared state itself (one allocation per stream, not two), so it
/// is made only for streams that borrow nothing (`S: 'static`), and the stream (its socket)
/// stays open while a handle to it lives: drop handles with the connection.
#[derive(Clone)]
pub struct Handle {
    shared: Rc<dyn Controlled>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("control", self.shared.control())
            .finish()
    }
}

impl Handle {
    fn control(&self) -> &Control {
        self.shared.control()
    }

    /// Makes the connection stop before its next item: a reader waiting idle returns `None` at
    /// once; a reader inside an item finishes that item first. Used to drain a server.
    pub fn close_when_idle(&self) {
        self.control().closing.set(true);
        if let Some(w) = self.control().reader_waker.take() {
            w.wake();
        }
    }

    /// Ends idle waits at `deadline` at the latest (an earlier deadline than the configured
    /// idle timeout), waking a reader that waits idle so it takes the new deadline. Draining
    /// servers use it so a busy keep-alive connection gets its next answer (with
    /// `Connection: close`) while a quiet one is closed soon.
    pub fn idle_until(&self, deadline: Instant) {
        let d = self
            .control()
            .idle_until
            .get()
            .map_or(deadline, |d| d.min(deadline));
        self.control().idle_until.set(Some(d));
        if let Some(w) = self.control().reader_waker.take() {
            w.wake();
        }
    }

    /// Whether [`close_when_idle`](Handle::close_when_idle) was called.
    pub fn is_closing(&self) -> bool {
        self.control().closing.get()
    }

    /// The phase whose deadline passed, if the connection timed out.
    pub fn timed_out(&self) -> Option<Phase> {
        self.control().timed_out.get()
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
    /// Shared by every connection of a server (it is the same for all of them).
    pub(crate) config: Rc<Config>,
    pub(crate) control: Control,
    /// Made at the first deadline of a read or a send (boxed by the clock), then moved.
    read_timer: Cell<Option<Box<dyn Timer>>>,
    write_timer: Cell<Option<Box<dyn Timer>>>,
    /// Where the read timer is armed, as last polled (it wakes `control.reader_waker`): a
    /// read deadline that the timer already covers (an idle wait's, after each request) is
    /// then checked without touching the timer, whose lines are cold under many connections.
    read_armed: Cell<Option<Instant>>,
    /// When the current wait for the peer to take output began.
    stall_since: Cell<Option<Instant>>,
    /// The peer's EOF has been read.
    pub(crate) read_eof: Cell<bool>,
}

impl<S> Shared<S> {
    /// The clock's time, if there is a clock.
    pub(crate) fn now(&self) -> Option<Instant> {
        self.config.clock.as_ref().map(|c| c.now())
    }

    /// Whether `phase`, begun at `since`, is past its deadline; if not, arms a timer that
    /// wakes `cx` at the deadline. Without a clock or a timeout, never.
    pub(crate) fn poll_deadline(
        &self,
        cx: &mut Context<'_>,
        phase: Phase,
        since: Instant,
        now: Instant,
    ) -> Poll<()> {
        let Some(clock) = &self.config.clock else {
            return Poll::Pending;
        };
        let configured = self.config.timeouts.of(phase).map(|t| since + t);
        let cap = match phase {
            Phase::Idle => self.control.idle_until.get(),
            _ => None,
        };
        let deadline = match (configured, cap) {
            (Some(a), Some(b)) => a.min(b),
            (Some(d), None) | (None, Some(d)) => d,
            (None, None) => return Poll::Pending,
        };
        if now >= deadline {
            return Poll::Ready(());
        }
        let read = phase != Phase::Send;
        if read && self.read_covered(cx, deadline, now) {
            return Poll::Pending;
        }
        let slot = if read {
            &self.read_timer
        } else {
            &self.write_timer
        };
        let mut timer = slot.take().unwrap_or_else(|| clock.timer(deadline));
        // A deadline that moved later (an idle connection's, after each request) leaves the
        // timer where it is: it fires early, once, and is moved on then (`armed <= now`), so a
        // busy connection touches its timer once per timeout, not once per request.
        let mut armed = timer.deadline();
        if deadline < armed || armed <= now {
            timer.reset(deadline);
            armed = deadline;
        }
        let fired = timer.poll_fire(cx);
        slot.set(Some(timer));
        if read {
            self.read_armed.set(fired.is_pending().then_some(armed));
            self.set_reader_waker(cx);
        }
        fired
    }

    /// Records `cx`'s waker as the reading task's (no clone if it is the same task's).
    pub(crate) fn set_reader_waker(&self, cx: &Context<'_>) {
        let cell = &self.control.reader_waker;
        match cell.take() {
            Some(w) if w.will_wake(cx.waker()) => cell.set(Some(w)),
            old => {
                cell.set(Some(cx.waker().clone()));
                // A waker's drop may run foreign code: only after the cell is consistent.
                drop(old);
            }
        }
    }

    /// Whether the read timer, as last polled, is armed no later than `deadline` (and after
    /// `now`) and wakes `cx`'s task: it then fires in time, and nothing needs to change.
    fn read_covered(&self, cx: &Context<'_>, deadline: Instant, now: Instant) -> bool {
        let Some(armed) = self.read_armed.get() else {
            return false;
        };
        if armed <= now || armed > deadline {
            return false;
        }
        let cell = &self.control.reader_waker;
        let w = cell.take();
        let same = w.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        cell.set(w);
        same
    }

    /// Records that `phase` timed out and returns the error to report.
    pub(crate) fn time_out(&self, phase: Phase) -> io::Error {
        if self.control.timed_out.get().is_none() {
            self.control.timed_out.set(Some(phase));
        }
        if phase == Phase::Send {
            self.error.set(Some(io::ErrorKind::TimedOut));
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{phase:?} deadline passed"),
        )
    }
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
        let mut out = self.out.borrow_mut();
        if out.capacity() == 0 {
            *out = crate::pool::take_write();
        }
        f(&mut out)
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
                Poll::Pending => {
                    let Some(now) = self.now() else {
                        return Poll::Pending;
                    };
                    let since = self.stall_since.get().unwrap_or(now);
                    self.stall_since.set(Some(since));
                    return match self.poll_deadline(cx, Phase::Send, since, now) {
                        Poll::Ready(()) => Poll::Ready(Err(self.time_out(Phase::Send))),
                        Poll::Pending => Poll::Pending,
                    };
                }
                Poll::Ready(Ok(0)) => {
                    self.error.set(Some(io::ErrorKind::WriteZero));
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.sent.set(self.sent.get() + n);
                    self.stall_since.set(None);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.error.set(Some(e.kind()));
                    return Poll::Ready(Err(e));
                }
            }
        }
        if self.sent.get() == out.len() {
            // Everything is with the kernel: give the queue back until the next answer.
            crate::pool::give_write(std::mem::take(&mut *out));
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
        poll_fn(|cx| self.poll_after_write(cx)).await
    }

    /// Poll form of [`after_write`](Shared::after_write).
    pub(crate) fn poll_after_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = if self.driven.get() {
            self.config.high_water
        } else {
            0
        };
        if self.queued() > limit {
            return self.poll_flush_to(cx, limit);
        }
        Poll::Ready(Ok(()))
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

/// [`wrap_stream`] with a custom [`Config`]: a `Config`, or an `Rc<Config>` that many
/// streams share (a server's connections: each then holds a pointer, not a copy).
pub fn wrap_stream_with<S>(stream: S, config: impl Into<Rc<Config>>) -> (ReadHalf<S>, WriteHalf<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = config.into();
    let shared = Rc::new(Shared {
        io: RefCell::new(stream),
        out: RefCell::new(Vec::new()),
        sent: Cell::new(0),
        error: Cell::new(None),
        write_shut: Cell::new(false),
        driven: Cell::new(false),
        config,
        control: Control::default(),
        read_timer: Cell::new(None),
        write_timer: Cell::new(None),
        read_armed: Cell::new(None),
        stall_since: Cell::new(None),
        read_eof: Cell::new(false),
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

impl<S: 'static> ReadHalf<S> {
    /// A handle to control the connection from outside ([`Handle`]).
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
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
                self.shared.read_eof.set(true);
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

impl<S: 'static> WriteHalf<S> {
    /// A handle to control the connection from outside ([`Handle`]).
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> WriteHalf<S> {
    /// Says whether the peer has sent its last message, read whole with nothing after it
    /// (HTTP: a request with `Connection: close`, read to its end). If so, the pipeline's
    /// close does not linger: it shuts the write side down and ends at once, instead of
    /// reading until the peer's EOF, unless the peer is already known to have sent more.
    /// Lingering keeps unread input from turning the close into a reset that destroys the
    /// last answer; a peer that is done sends nothing to unread. (nginx's
    /// `lingering_close on` decides the same way.) Off by default: every close lingers.
    pub fn set_peer_done(&self, done: bool) {
        self.shared.control.peer_done.set(done);
    }
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

//! libuv's callback form of a stream (`uv_read_start`, `uv_write` with a completion callback,
//! `uv_shutdown`, `uv_close`) on top of the async handles.
//!
//! Each started direction is a task on the loop: reading runs while `read_start` is in effect,
//! writing runs while the write queue is not empty. Callbacks are called from those tasks, never
//! from inside the method that queued them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use futures_io::{AsyncRead, AsyncWrite};

use crate::executor::JoinHandle;
use crate::runtime::spawn_local;

/// Bytes asked of the kernel per read callback.
pub const READ_CHUNK: usize = 64 * 1024;

type WriteCb = Box<dyn FnOnce(io::Result<()>)>;

enum Request {
    Write(Vec<u8>, WriteCb),
    Shutdown(WriteCb),
}

struct Shared<S> {
    /// `None` once closed: the handle (and its fd) is gone.
    io: RefCell<Option<Rc<S>>>,
    reading: Cell<bool>,
    /// Bumped by every `read_start`/`read_stop`: a reader task stops when it is outdated.
    read_gen: Cell<u64>,
    reader: RefCell<Option<JoinHandle<()>>>,
    writer: RefCell<Option<JoinHandle<()>>>,
    queue: RefCell<VecDeque<Request>>,
    queued_bytes: Cell<usize>,
    closing: Cell<bool>,
}

/// A [`TcpStream`](crate::TcpStream) or [`Pipe`](crate::Pipe) driven by callbacks, as libuv
/// users write it: `read_start`/`read_stop`, `write` with a completion callback,
/// `write_queue_size`, `shutdown`, `close`.
///
/// Clones share the stream (call its methods from inside its own callbacks through a clone).
/// Close semantics are libuv's: [`close`](Stream::close) stops reading, closes the fd at once
/// (when no clone of the inner handle is held elsewhere), fails the queued writes with
/// `ECANCELED` and runs their callbacks and then the close callback from the loop, after
/// `close` has returned.
///
/// # Examples
/// ```
/// # let lp = uvlite::Loop::new()?;
/// # lp.block_on(async {
/// let (a, b) = uvlite::Pipe::socketpair()?;
/// let b = uvlite::Pipe::from_fd(b)?;
/// let echo = uvlite::Stream::new(b);
/// let writer = echo.clone();
/// echo.read_start(move |chunk| {
///     if let Ok(Some(bytes)) = chunk {
///         writer.write(bytes.to_vec(), |res| res.expect("echo written"));
///     }
/// });
/// a.write_all(b"ping").await?;
/// let mut buf = [0u8; 4];
/// let n = a.read(&mut buf).await?;
/// assert_eq!(&buf[..n], b"ping");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Stream<S: 'static> {
    shared: Rc<Shared<S>>,
}

impl<S: 'static> Clone for Stream<S> {
    fn clone(&self) -> Self {
        Stream {
            shared: self.shared.clone(),
        }
    }
}

fn cancelled() -> io::Error {
    io::Error::from_raw_os_error(libc::ECANCELED)
}

impl<S: 'static> Stream<S>
where
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    /// Wraps a handle; nothing is read until [`read_start`](Stream::read_start).
    pub fn new(io: S) -> Stream<S> {
        Stream {
            shared: Rc::new(Shared {
                io: RefCell::new(Some(Rc::new(io))),
                reading: Cell::new(false),
                read_gen: Cell::new(0),
                reader: RefCell::new(None),
                writer: RefCell::new(None),
                queue: RefCell::new(VecDeque::new()),
                queued_bytes: Cell::new(0),
                closing: Cell::new(false),
            }),
        }
    }

    /// Calls `cb` with each chunk read: `Ok(Some(bytes))`, then `Ok(None)` once at end of
    /// stream or `Err(e)` once on an error, after which reading stops (libuv's
    /// `uv_read_start`). Replaces a callback given earlier.
    ///
    /// Starting on a closed stream does nothing.
    pub fn read_start(&self, mut cb: impl FnMut(io::Result<Option<&[u8]>>) + 'static) {
        self.read_stop();
        let Some(io) = self.shared.io.borrow().clone() else {
            return;
        };
        let shared = self.shared.clone();
        shared.reading.set(true);
        let gen_ = shared.read_gen.get();
        let task = spawn_local(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            let current = |s: &Shared<S>| s.reading.get() && s.read_gen.get() == gen_;
            while current(&shared) {
                let mut r: &S = &io;
                let res = poll_fn(|cx| Pin::new(&mut r).poll_read(cx, &mut buf)).await;
                if !current(&shared) {
                    return;
                }
                match res {
                    Ok(0) => {
                        shared.reading.set(false);
                        cb(Ok(None));
                    }
                    Ok(n) => cb(Ok(Some(&buf[..n]))),
                    Err(e) => {
                        shared.reading.set(false);
                        cb(Err(e));
                    }
                }
            }
        });
        *self.shared.reader.borrow_mut() = Some(task);
    }

    /// Stops calling the read callback (libuv's `uv_read_stop`); idempotent, and safe to call
    /// from inside the callback.
    pub fn read_stop(&self) {
        self.shared.reading.set(false);
        self.shared.read_gen.set(self.shared.read_gen.get() + 1);
        if let Some(task) = self.shared.reader.borrow_mut().take() {
            task.abort();
        }
    }

    /// Whether a read callback is in effect.
    pub fn is_reading(&self) -> bool {
        self.shared.reading.get()
    }

    /// Queues `data`; `cb` gets `Ok(())` once the kernel has taken all of it, or the error
    /// (`ECANCELED` if the stream is closed first). Writes go out in order.
    pub fn write(&self, data: Vec<u8>, cb: impl FnOnce(io::Result<()>) + 'static) {
        self.push(Request::Write(data, Box::new(cb)));
    }

    /// After the queued writes, shuts down the write side (libuv's `uv_shutdown`); `cb` gets
    /// the result.
    pub fn shutdown(&self, cb: impl FnOnce(io::Result<()>) + 'static) {
        self.push(Request::Shutdown(Box::new(cb)));
    }

    /// Bytes queued by [`write`](Stream::write) and not yet taken by the kernel (libuv's
    /// `write_queue_size`): the backpressure signal.
    pub fn write_queue_size(&self) -> usize {
        self.shared.queued_bytes.get()
    }

    /// Whether [`close`](Stream::close) was called.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.get()
    }

    /// Closes the stream: reading stops, the handle is dropped at once (closing its fd unless
    /// a clone of it lives elsewhere), queued writes fail with `ECANCELED`; their callbacks and
    /// then `cb` run from the loop after `close` returns. A second `close` does nothing.
    pub fn close(&self, cb: impl FnOnce() + 'static) {
        if self.shared.closing.replace(true) {
            return;
        }
        self.read_stop();
        if let Some(task) = self.shared.writer.borrow_mut().take() {
            task.abort();
        }
        let io = self.shared.io.borrow_mut().take();
        drop(io);
        let pending: Vec<Request> = self.shared.queue.borrow_mut().drain(..).collect();
        self.shared.queued_bytes.set(0);
        spawn_local(async move {
            for req in pending {
                match req {
                    Request::Write(_, cb) | Request::Shutdown(cb) => cb(Err(cancelled())),
                }
            }
            cb();
        })
        .detach();
    }

    fn push(&self, req: Request) {
        if self.shared.closing.get() {
            let cb = match req {
                Request::Write(_, cb) | Request::Shutdown(cb) => cb,
            };
            spawn_local(async move { cb(Err(cancelled())) }).detach();
            return;
        }
        if let Request::Write(data, _) = &req {
            let n = self.shared.queued_bytes.get();
            self.shared.queued_bytes.set(n + data.len());
        }
        self.shared.queue.borrow_mut().push_back(req);
        let running = self
            .shared
            .writer
            .borrow()
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        if !running {
            let shared = self.shared.clone();
            let task = spawn_local(drain(shared));
            *self.shared.writer.borrow_mut() = Some(task);
        }
    }
}

/// Writes the queue out, calling each request's callback, until it is empty. The request in
/// flight stays at the front of the queue, so `close` finds it there and cancels it.
async fn drain<S: 'static>(shared: Rc<Shared<S>>)
where
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    let Some(io) = shared.io.borrow().clone() else {
        return;
    };
    let mut sent = 0;
    loop {
        let mut w: &S = &io;
        let res = poll_fn(|cx| {
            let queue = shared.queue.borrow();
            match queue.front() {
                None => Poll::Ready(None),
                Some(Request::Shutdown(_)) => {
                    Poll::Ready(Some(match Pin::new(&mut w).poll_close(cx) {
                        Poll::Ready(r) => r,
                        Poll::Pending => return Poll::Pending,
                    }))
                }
                Some(Request::Write(data, _)) => {
                    while sent < data.len() {
                        match Pin::new(&mut w).poll_write(cx, &data[sent..]) {
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(Some(Err(io::ErrorKind::WriteZero.into())));
                            }
                            Poll::Ready(Ok(n)) => {
                                sent += n;
                                let q = shared.queued_bytes.get();
                                shared.queued_bytes.set(q.saturating_sub(n));
                            }
                            Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Poll::Ready(Some(Ok(())))
                }
            }
        })
        .await;
        let Some(res) = res else {
            return;
        };
        let done = shared.queue.borrow_mut().pop_front();
        let cb = match done {
            Some(Request::Write(data, cb)) => {
                let q = shared.queued_bytes.get();
                shared.queued_bytes.set(q.saturating_sub(data.len() - sent));
                cb
            }
            Some(Request::Shutdown(cb)) => cb,
            None => return,
        };
        sent = 0;
        cb(res);
    }
}

impl<S: 'static> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("reading", &self.shared.reading.get())
            .field("write_queue_size", &self.shared.queued_bytes.get())
            .field("closing", &self.shared.closing.get())
            .finish()
    }
}

//! In-memory streams and a tiny executor for testing pipelines without sockets.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_io::{AsyncRead, AsyncWrite};

/// One step of a [`MockStream`]'s input script.
#[derive(Clone, Debug)]
pub enum Step {
    /// These bytes are readable (possibly over several reads).
    Data(Vec<u8>),
    /// The next read would block once (returns `Pending` after waking the task).
    Wait,
}

/// A stream that plays an input script and records everything written to it.
///
/// Reads deliver at most `read_max` bytes each (to exercise partial reads); writes accept at
/// most `write_max` bytes each, and every other write returns `Pending` once when
/// `write_stall` is set (to exercise partial writes and backpressure).
#[derive(Debug)]
pub struct MockStream {
    script: VecDeque<Step>,
    output: Rc<RefCell<Vec<u8>>>,
    /// Largest read.
    pub read_max: usize,
    /// Largest write.
    pub write_max: usize,
    /// Whether writes alternate with `Pending`.
    pub write_stall: bool,
    stalled: bool,
    /// Whether `poll_close` was called.
    pub closed: Rc<RefCell<bool>>,
    /// How many writes reached the stream, and how many reads.
    pub calls: Rc<RefCell<(usize, usize)>>,
}

impl MockStream {
    /// A stream that reads `input` and then EOF.
    pub fn new(input: &[u8]) -> MockStream {
        Self::scripted(vec![Step::Data(input.to_vec())])
    }

    /// A stream that plays `script` and then EOF.
    pub fn scripted(script: Vec<Step>) -> MockStream {
        MockStream {
            script: script.into(),
            output: Rc::new(RefCell::new(Vec::new())),
            read_max: usize::MAX,
            write_max: usize::MAX,
            write_stall: false,
            stalled: false,
            closed: Rc::new(RefCell::new(false)),
            calls: Rc::new(RefCell::new((0, 0))),
        }
    }

    /// Everything written so far (shared, so it can be read after the stream moved).
    pub fn output(&self) -> Rc<RefCell<Vec<u8>>> {
        self.output.clone()
    }
}

impl AsyncRead for MockStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let max = self.read_max;
        self.calls.borrow_mut().1 += 1;
        match self.script.front_mut() {
            None => Poll::Ready(Ok(0)),
            Some(Step::Wait) => {
                self.script.pop_front();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::Data(data)) => {
                let n = data.len().min(buf.len()).min(max);
                buf[..n].copy_from_slice(&data[..n]);
                data.drain(..n);
                if data.is_empty() {
                    self.script.pop_front();
                }
                Poll::Ready(Ok(n))
            }
        }
    }
}

impl AsyncWrite for MockStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_stall {
            self.stalled = !self.stalled;
            if self.stalled {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let n = buf.len().min(self.write_max);
        self.calls.borrow_mut().0 += 1;
        self.output.borrow_mut().extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        *self.closed.borrow_mut() = true;
        Poll::Ready(Ok(()))
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs a future whose only sources of `Pending` wake it at once (like [`MockStream`]).
///
/// # Panics
/// Panics if the future returns `Pending` without having been woken: it would hang.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            flag.0.swap(false, Ordering::SeqCst),
            "future is pending and nothing will wake it"
        );
    }
}

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

use std::cell::Cell;
use std::rc::Weak;
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

use crate::{Clock, Timer};

/// One step of a [`MockStream`]'s input script.
#[derive(Clone, Debug)]
pub enum Step {
    /// These bytes are readable (possibly over several reads).
    Data(Vec<u8>),
    /// The next read would block once (returns `Pending` after waking the task).
    Wait,
    /// Nothing arrives for this long on the stream's [`ManualClock`] (needs
    /// [`MockStream::with_clock`]).
    Pause(Duration),
    /// Nothing ever arrives again, and no EOF either: a silent peer.
    Stall,
}

/// A stream that plays an input script and records everything written to it.
///
/// Reads deliver at most `read_max` bytes each (to exercise partial reads); writes accept at
/// most `write_max` bytes each, and every other write returns `Pending` once when
/// `write_stall` is set (to exercise partial writes and backpressure).
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
    /// Whether writes block for ever (a peer that does not read).
    pub write_blocked: bool,
    clock: Option<Rc<ManualClock>>,
    pause: Option<Box<dyn Timer>>,
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
            write_blocked: false,
            clock: None,
            pause: None,
        }
    }

    /// Times [`Step::Pause`] on `clock`.
    pub fn with_clock(mut self, clock: &Rc<ManualClock>) -> MockStream {
        self.clock = Some(clock.clone());
        self
    }

    /// Everything written so far (shared, so it can be read after the stream moved).
    pub fn output(&self) -> Rc<RefCell<Vec<u8>>> {
        self.output.clone()
    }
}

impl std::fmt::Debug for MockStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockStream")
            .field("script", &self.script)
            .field("written", &self.output.borrow().len())
            .finish()
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
            Some(Step::Stall) => Poll::Pending,
            Some(Step::Pause(d)) => {
                let d = *d;
                let clock = self
                    .clock
                    .clone()
                    .expect("Step::Pause needs MockStream::with_clock");
                let timer = self
                    .pause
                    .get_or_insert_with(|| clock.timer(clock.now() + d));
                if timer.poll_fire(cx).is_ready() {
                    self.pause = None;
                    self.script.pop_front();
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
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
        if self.write_blocked {
            return Poll::Pending;
        }
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
    run(future, None)
}

/// Like [`block_on`], but when the future is stuck, virtual time jumps to the next timer of
/// `clock` (so deadlines of seconds take no time at all).
///
/// # Panics
/// Panics if the future is stuck and no timer waits: it would hang for ever.
pub fn block_on_with_clock<F: Future>(future: F, clock: &ManualClock) -> F::Output {
    run(future, Some(clock))
}

fn run<F: Future>(future: F, clock: Option<&ManualClock>) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if flag.0.swap(false, Ordering::SeqCst) {
            continue;
        }
        let advanced = clock.is_some_and(ManualClock::advance_to_next);
        assert!(
            advanced && flag.0.swap(false, Ordering::SeqCst),
            "future is pending and nothing will wake it"
        );
    }
}

/// A clock that moves only when told: virtual time for deadline tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Rc<Cell<Instant>>,
    timers: RefCell<Vec<Weak<TimerState>>>,
}

#[derive(Debug)]
struct TimerState {
    deadline: Cell<Instant>,
    waker: RefCell<Option<Waker>>,
}

impl ManualClock {
    /// A clock at an arbitrary instant.
    pub fn new() -> Rc<ManualClock> {
        Rc::new(ManualClock {
            now: Rc::new(Cell::new(Instant::now())),
            timers: RefCell::new(Vec::new()),
        })
    }

    /// Moves time forward by `d`, waking the timers that fire.
    pub fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
        self.wake_due();
    }

    /// Jumps to the earliest deadline of a waiting timer and wakes it; `false` if no timer
    /// waits.
    pub fn advance_to_next(&self) -> bool {
        let next = self
            .timers
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| t.waker.borrow().is_some())
            .map(|t| t.deadline.get())
            .min();
        match next {
            Some(at) => {
                if at > self.now.get() {
                    self.now.set(at);
                }
                self.wake_due();
                true
            }
            None => false,
        }
    }

    fn wake_due(&self) {
        let now = self.now.get();
        self.timers.borrow_mut().retain(|t| t.strong_count() > 0);
        for t in self.timers.borrow().iter().filter_map(Weak::upgrade) {
            let waker = match t.deadline.get() <= now {
                true => t.waker.borrow_mut().take(),
                false => None,
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        let state = Rc::new(TimerState {
            deadline: Cell::new(deadline),
            waker: RefCell::new(None),
        });
        self.timers.borrow_mut().push(Rc::downgrade(&state));
        Box::new(ManualTimer {
            state,
            now: self.now.clone(),
        })
    }
}

struct ManualTimer {
    state: Rc<TimerState>,
    now: Rc<Cell<Instant>>,
}

impl Timer for ManualTimer {
    fn reset(&mut self, deadline: Instant) {
        self.state.deadline.set(deadline);
    }

    fn deadline(&self) -> Instant {
        self.state.deadline.get()
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.now.get() >= self.state.deadline.get() {
            return Poll::Ready(());
        }
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

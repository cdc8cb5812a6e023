//! The loop: one per thread, holding the reactor, the timers, the signal pipe and the tasks.
//!
//! Phase order of one turn, after libuv: update the time, fire due timers, run the tasks they
//! woke, poll for I/O (not blocking if a task is ready), dispatch the events, run the tasks they
//! woke. The reactor only stores and wakes `Waker`s; the executor is the only code that polls.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mio::{Events, Poll as MioPoll, Token};

use crate::executor::{Executor, JoinHandle, Remote};
use crate::reactor::Reactor;
use crate::signal::SignalState;
use crate::timer::Timers;

/// Token of the signal self-pipe in the poll set; I/O sources use slab indices below it.
pub(crate) const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);

/// Token of the loop's `mio::Waker`, poked when a task is woken from another thread.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX - 2);

/// Events taken from the kernel per poll.
const EVENTS_CAPACITY: usize = 1024;

/// Task polls per turn before the loop polls for I/O again, so a busy task cannot starve I/O.
const TASK_BUDGET: usize = 4096;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
}

/// The state shared by the loop and every handle created on it.
pub(crate) struct Inner {
    pub(crate) id: u64,
    poll: RefCell<MioPoll>,
    registry: mio::Registry,
    events: RefCell<Events>,
    pub(crate) reactor: Reactor,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) exec: Executor,
    pub(crate) signals: SignalState,
    /// The loop's time, read from the clock at its first use in a turn (so a turn with no
    /// timer and no caller of `now` reads no clock at all).
    now: Cell<Option<Instant>>,
    stop: Cell<bool>,
    running: Cell<bool>,
}

impl Inner {
    /// The loop of this thread.
    ///
    /// # Errors
    /// Fails when no [`Loop`] exists on this thread.
    pub(crate) fn current() -> io::Result<Rc<Inner>> {
        CURRENT.with(|c| c.borrow().clone()).ok_or_else(|| {
            io::Error::other("no uvlite::Loop on this thread: create one with Loop::new()")
        })
    }

    /// Runs `f` with this thread's loop, if there is one.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Inner) -> R) -> Option<R> {
        CURRENT.with(|c| c.borrow().as_deref().map(f))
    }

    pub(crate) fn registry(&self) -> &mio::Registry {
        &self.registry
    }

    pub(crate) fn now(&self) -> Instant {
        match self.now.get() {
            Some(t) => t,
            None => {
                let t = Instant::now();
                self.now.set(Some(t));
                t
            }
        }
    }

    /// Forgets the cached time: the next use reads the clock.
    fn update_time(&self) {
        self.now.set(None);
    }

    /// Fires the due timers, reading the clock only if a timer exists.
    #[inline(always)]
    fn fire_timers(&self) {
        if self.timers.borrow().next_deadline().is_some() {
            self.fire_due_timers();
        }
    }

    #[inline(never)]
    fn fire_due_timers(&self) {
        let mut timers = self.timers.borrow_mut();
        if let Some(next) = timers.next_deadline()
            && next <= self.now()
        {
            timers.fire(self.now());
        }
    }

    /// Runs the ready tasks, if there are any (the check is inlined into the turn).
    #[inline(always)]
    fn run_ready(&self) {
        if self.exec.has_ready_tasks() {
            self.exec.run_ready(TASK_BUDGET);
        }
    }

    /// Polls the kernel for readiness and wakes whatever waits on it.
    fn poll_io(&self, timeout: Option<Duration>) -> io::Result<()> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            match event.token() {
                SIGNAL_TOKEN => self.signals.dispatch(),
                WAKER_TOKEN => self.exec.drain_remote(),
                _ => self.reactor.dispatch(event, &self.exec),
            }
        }
        Ok(())
    }

    /// Whether a turn should poll for I/O without blocking.
    fn has_work(&self) -> bool {
        self.exec.has_ready() || self.stop.get()
    }

    /// One turn of the loop; `block` says whether it may wait in the kernel for I/O or a
    /// timer.
    ///
    /// The cached time is dropped at the start of the turn and after a poll that may have
    /// waited; the clock is read again only when a timer or a caller needs it.
    fn turn(&self, block: Block) -> io::Result<()> {
        self.update_time();
        self.fire_timers();
        self.run_ready();
        let block = match block {
            Block::No => false,
            Block::Yes => true,
            // The tasks just run may have been the last ones: then nothing is left to wait
            // for (libuv's zero timeout once the loop is not alive).
            Block::WhileAlive => self.exec.referenced() > 0,
        };
        let timeout = if !block || self.has_work() {
            Some(Duration::ZERO)
        } else {
            self.timers
                .borrow()
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()))
        };
        self.poll_io(timeout)?;
        if timeout != Some(Duration::ZERO) {
            self.update_time();
            self.fire_timers();
        }
        self.run_ready();
        Ok(())
    }
}

/// Whether a turn may wait in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// Never (`run_nowait`, or a `block_on` whose future was woken).
    No,
    /// Until I/O, a timer or a wake (`block_on`).
    Yes,
    /// As `Yes`, but only while a referenced task is alive (`run`, `run_once`).
    WhileAlive,
}

/// An event loop: the reactor (mio), timers, signals and a single-threaded executor.
///
/// There is at most one `Loop` per thread; every handle ([`TcpStream`](crate::TcpStream),
/// [`Timer`](crate::Timer), [`Signal`](crate::Signal), …) created on a thread belongs to that
/// thread's loop. Tasks are `!Send` futures spawned with [`spawn_local`](crate::spawn_local).
///
/// # Examples
/// ```
/// let lp = uvlite::Loop::new()?;
/// let answer = lp.block_on(async {
///     let task = uvlite::spawn_local(async { 40 + 2 });
///     task.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Loop {
    inner: Rc<Inner>,
}

impl Loop {
    /// Creates the loop of the calling thread and ignores `SIGPIPE` for the process (as libuv
    /// programs do), so a write to a closed socket is an `EPIPE` error, not a crash.
    ///
    /// # Errors
    /// Fails if this thread already has a loop, or if the kernel refuses an epoll instance.
    pub fn new() -> io::Result<Loop> {
        if CURRENT.with(|c| c.borrow().is_some()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this thread already has a uvlite::Loop",
            ));
        }
        crate::sys::ignore_sigpipe()?;
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let poll = MioPoll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(&registry, WAKER_TOKEN)?;
        let inner = Rc::new(Inner {
            id,
            poll: RefCell::new(poll),
            registry,
            events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
            reactor: Reactor::new(),
            timers: RefCell::new(Timers::new()),
            exec: Executor::new(Remote::new(id, waker)),
            signals: SignalState::new(),
            now: Cell::new(None),
            stop: Cell::new(false),
            running: Cell::new(false),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
        Ok(Loop { inner })
    }

    /// Runs `future` to completion on this loop, running spawned tasks and I/O meanwhile.
    ///
    /// # Panics
    /// Panics if called from inside the loop (a task or another `block_on`), and propagates a
    /// panic of `future` itself. Panics of spawned tasks are caught and reported through their
    /// [`JoinHandle`].
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _running = self.enter();
        let mut future = pin!(future);
        let waker = self.inner.exec.main_waker();
        let mut cx = Context::from_waker(&waker);
        self.inner.exec.wake_main();
        loop {
            if self.inner.exec.take_main_woken()
                && let Poll::Ready(out) = future.as_mut().poll(&mut cx)
            {
                return out;
            }
            let block = !self.inner.exec.main_woken();
            let block = if block { Block::Yes } else { Block::No };
            if let Err(e) = self.inner.turn(block) {
                // The poll set is broken (EBADF, ENOMEM): nothing can make progress.
                panic!("uvlite: polling for I/O failed: {e}");
            }
        }
    }

    /// Runs until no referenced task is alive (see [`JoinHandle::set_ref`]) or
    /// [`stop`](Loop::stop) is called (libuv's `UV_RUN_DEFAULT`).
    ///
    /// # Errors
    /// Returns the error of `epoll_wait` other than `EINTR`.
    pub fn run(&self) -> io::Result<()> {
        let _running = self.enter();
        while !self.inner.stop.get() && self.alive() {
            self.inner.turn(Block::WhileAlive)?;
        }
        self.inner.stop.set(false);
        Ok(())
    }

    /// Runs one turn, waiting for I/O or a timer if no task is ready; returns whether a
    /// referenced task is still alive (libuv's `UV_RUN_ONCE`).
    ///
    /// # Errors
    /// Returns the error of `epoll_wait` other than `EINTR`.
    pub fn run_once(&self) -> io::Result<bool> {
        let _running = self.enter();
        self.inner.turn(Block::WhileAlive)?;
        self.inner.stop.set(false);
        Ok(self.alive())
    }

    /// Runs one turn without waiting; returns whether a referenced task is still alive
    /// (libuv's `UV_RUN_NOWAIT`).
    ///
    /// # Errors
    /// Returns the error of `epoll_wait` other than `EINTR`.
    pub fn run_nowait(&self) -> io::Result<bool> {
        let _running = self.enter();
        self.inner.turn(Block::No)?;
        self.inner.stop.set(false);
        Ok(self.alive())
    }

    /// Whether a referenced task is alive, so [`run`](Loop::run) would not return at once
    /// (libuv's `uv_loop_alive`).
    pub fn alive(&self) -> bool {
        self.inner.exec.referenced() > 0
    }

    /// Makes [`run`](Loop::run) return after the current turn.
    pub fn stop(&self) {
        self.inner.stop.set(true);
    }

    /// The loop's cached time: read from the clock once per turn, at its first use (libuv's
    /// `uv_now`). It never runs ahead of `Instant::now()`.
    pub fn now(&self) -> Instant {
        self.inner.now()
    }

    /// Refreshes the cached time (libuv's `uv_update_time`): the next [`now`](Loop::now)
    /// reads the clock.
    pub fn update_time(&self) {
        self.inner.update_time();
    }

    /// Spawns a task on this loop; see [`spawn_local`](crate::spawn_local).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.exec.spawn(future)
    }

    /// Spawns a task nobody will await; see [`spawn_local_detached`](crate::spawn_local_detached).
    pub fn spawn_detached<F>(&self, future: F)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.exec.spawn_detached(future);
    }

    /// Number of tasks that have not finished (referenced or not).
    pub fn tasks(&self) -> usize {
        self.inner.exec.live()
    }

    fn enter(&self) -> RunningGuard<'_> {
        assert!(
            !self.inner.running.replace(true),
            "uvlite: the loop is already running (block_on/run called from a task?)"
        );
        RunningGuard(&self.inner)
    }
}

struct RunningGuard<'a>(&'a Inner);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.set(false);
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Drop every task while the loop is still current, so handles inside them deregister
        // from the poll set; then forget the loop. Rc cycles (task -> handle -> loop) end here.
        self.inner.exec.clear();
        self.inner.exec.close_remote();
        self.inner.timers.borrow_mut().clear();
        self.inner.reactor.close_all();
        self.inner.signals.shutdown();
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Spawns a `!Send` task on this thread's loop.
///
/// The task starts running on the loop's next turn. Dropping the returned [`JoinHandle`]
/// detaches the task; [`JoinHandle::abort`] cancels it.
///
/// # Panics
/// Panics if this thread has no [`Loop`].
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let inner = Inner::current().expect("uvlite::spawn_local called outside a Loop");
    inner.exec.spawn(future)
}

/// Spawns a `!Send` task on this thread's loop that nobody will await: as
/// `spawn_local(future).detach()`, without the join state a [`JoinHandle`] needs (one
/// allocation less per task). Its output, or its panic, is dropped; the task cannot be
/// aborted, and it stays referenced (it keeps [`Loop::run`] going).
///
/// # Panics
/// Panics if this thread has no [`Loop`].
pub fn spawn_local_detached<F>(future: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let inner = Inner::current().expect("uvlite::spawn_local_detached called outside a Loop");
    inner.exec.spawn_detached(future);
}

/// The cached time of this thread's loop (refreshed once per turn), or `Instant::now()` when
/// there is no loop.
pub fn now() -> Instant {
    Inner::with_current(|i| i.now()).unwrap_or_else(Instant::now)
}

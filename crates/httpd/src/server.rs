//! A worker's server: the accept loop, one task per connection, the connection cap, counters,
//! and graceful draining.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use uvlite::{TcpListener, spawn_local_detached};

use codec_chain::Pipeline;

use crate::http::{
    Answer, Exchange, HttpError, Reader, Settings, Writer, serve_with, stream_config,
};

/// Connections a worker accepts in a row before it lets its connection tasks run (and the
/// other workers, woken by the same readiness, take their share of the queue); 0 means
/// "until the queue is empty". Set on the listener (`uvlite::TcpListener::set_accept_batch`).
/// See docs/benchmarks.md, "Balance".
pub const ACCEPT_BATCH: usize = 16;

/// nginx's self-throttle: a worker with more than 7/8 of its connection cap open waits this
/// long (or until one of its connections closes) before each accept, so that workers with
/// room take the queue first; it still accepts if nobody else does.
const THROTTLE_PAUSE: Duration = Duration::from_millis(20);

/// Default cap on open connections per worker; over it the worker stops accepting until one
/// closes (the kernel's backlog and the other workers take the rest).
pub const MAX_CONNECTIONS: usize = 10_000;

/// Counters of this worker (one loop per thread, so per thread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Responses completed.
    pub requests: u64,
    /// Connections open now.
    pub active: usize,
}

thread_local! {
    static STATS: Cell<Stats> = const { Cell::new(Stats { accepted: 0, requests: 0, active: 0 }) };
}

/// This worker's counters.
pub fn stats() -> Stats {
    STATS.with(Cell::get)
}

fn update(f: impl FnOnce(&mut Stats)) {
    STATS.with(|s| {
        let mut v = s.get();
        f(&mut v);
        s.set(v);
    });
}

pub(crate) fn count_request() {
    update(|s| s.requests += 1);
}

struct State {
    settings: Rc<Settings>,
    /// The stream tuning of `settings`, one for all connections.
    config: Rc<codec_chain::Config>,
    max_connections: usize,
    /// [`ACCEPT_BATCH`], or as set by [`Server::with_accept_batch`].
    accept_batch: Cell<usize>,
    conns: RefCell<Vec<Option<Rc<Exchange>>>>,
    free: RefCell<Vec<usize>>,
    draining: Cell<bool>,
    /// The accept loop, while it waits for a connection (woken by draining).
    accept_waker: RefCell<Option<Waker>>,
    /// The accept loop, while it waits for room under the connection cap (woken by a
    /// connection that ends, and by draining). Apart from `accept_waker` so that a
    /// connection that ends does not wake a loop that is not waiting for room.
    room_waker: RefCell<Option<Waker>>,
    idle_waker: RefCell<Option<Waker>>,
}

impl State {
    fn register(&self, ex: &Rc<Exchange>) -> usize {
        let mut conns = self.conns.borrow_mut();
        let slot = self.free.borrow_mut().pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        conns[slot] = Some(ex.clone());
        if self.draining.get() {
            ex.drain(uvlite::now() + self.settings.drain_idle);
        }
        slot
    }

    fn unregister(&self, slot: usize) {
        let ex = self.conns.borrow_mut()[slot].take();
        self.free.borrow_mut().push(slot);
        drop(ex);
    }

    fn wake(slot: &RefCell<Option<Waker>>) {
        if let Some(w) = slot.borrow_mut().take() {
            w.wake();
        }
    }
}

/// Ends a connection's bookkeeping when its task ends, however it ends.
struct ConnGuard {
    state: Rc<State>,
    /// The connection's index in `State::conns`.
    slot: usize,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.state.unregister(self.slot);
        update(|s| s.active -= 1);
        State::wake(&self.state.room_waker);
        if stats().active == 0 {
            State::wake(&self.state.idle_waker);
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection's task: its pipeline, then its bookkeeping (dropped in this order).
    ///
    /// A named future rather than an `async` block, so the task holds the pipeline once: a
    /// block would keep what it captured beside what it awaits. The pipeline, and the app's
    /// future in it, are inline: one allocation holds the whole task.
    struct Connection<F> {
        #[pin]
        pipeline: Pipeline<uvlite::TcpStream, F, Answer<uvlite::TcpStream>>,
        guard: ConnGuard,
    }
}

impl<F: Future<Output = Result<(), HttpError>>> Future for Connection<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let res = std::task::ready!(this.pipeline.poll(cx));
        if let Err(codec_chain::Error::Panic(msg)) = res {
            let peer = this.guard.state.conns.borrow()[this.guard.slot]
                .as_ref()
                .and_then(|ex| ex.peer());
            let peer = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
            eprintln!("httpd: the app panicked on a connection from {peer}: {msg}");
        }
        Poll::Ready(())
    }
}

/// One worker's HTTP server.
///
/// ```no_run
/// # async fn run(listener: uvlite::TcpListener) -> std::io::Result<()> {
/// use httpd::{apps, http::Settings, server::Server};
/// let server = Server::new(Settings::default().with_uvlite_clock(), 10_000);
/// server.accept(&listener, apps::path).await?; // returns once draining starts
/// server.wait_idle().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    state: Rc<State>,
}

impl Server {
    /// A server whose connections use `settings`, with at most `max_connections` open.
    pub fn new(settings: Settings, max_connections: usize) -> Server {
        Server {
            state: Rc::new(State {
                config: stream_config(&settings),
                settings: Rc::new(settings),
                max_connections: max_connections.max(1),
                accept_batch: Cell::new(ACCEPT_BATCH),
                conns: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                draining: Cell::new(false),
                accept_waker: RefCell::new(None),
                room_waker: RefCell::new(None),
                idle_waker: RefCell::new(None),
            }),
        }
    }

    /// This server accepting at most `n` connections in a row before it yields ([`ACCEPT_BATCH`];
    /// 0: until the queue is empty).
    pub fn with_accept_batch(self, n: usize) -> Server {
        self.state.accept_batch.set(n);
        self
    }

    /// The connection settings.
    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// Accepts connections and serves each with `app` in its own task, until
    /// [`drain`](Server::drain) is called.
    ///
    /// # Errors
    /// Only errors that make the listener unusable (`EBADF`, `EINVAL`, `ENOTSOCK`).
    pub async fn accept<A, F>(&self, listener: &TcpListener, app: A) -> io::Result<()>
    where
        A: Fn(Reader, Writer) -> F + 'static,
        F: Future<Output = Result<(), HttpError>> + 'static,
    {
        let app = Rc::new(app);
        let state = &self.state;
        let throttle_mark = state.max_connections - state.max_connections / 8;
        // uvlite yields after this many accepts in a row, and comes back without a new event.
        let batch = match state.accept_batch.get() {
            0 => u32::MAX,
            n => u32::try_from(n).unwrap_or(u32::MAX),
        };
        listener.set_accept_batch(batch);
        loop {
            // Wait for room under the cap, or for draining.
            poll_fn(|cx| {
                if state.draining.get() || stats().active < state.max_connections {
                    Poll::Ready(())
                } else {
                    *state.room_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if stats().active >= throttle_mark && !state.draining.get() {
                // Near the cap: give workers with room the first go at the queue.
                let mut pause = uvlite::Sleep::new(uvlite::now() + THROTTLE_PAUSE);
                poll_fn(|cx| {
                    let room = stats().active < throttle_mark;
                    if room || state.draining.get() || Pin::new(&mut pause).poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    *state.room_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                })
                .await;
            }
            let accepted = poll_fn(|cx| {
                if state.draining.get() {
                    return Poll::Ready(None);
                }
                *state.accept_waker.borrow_mut() = Some(cx.waker().clone());
                listener.poll_accept(cx).map(Some)
            })
            .await;
            match accepted {
                None => return Ok(()),
                Some(Ok((stream, peer))) => {
                    let _ = stream.set_nodelay(true);
                    self.spawn_connection(stream, peer, app.clone());
                }
                Some(Err(e)) if is_fatal(&e) => return Err(e),
                Some(Err(e)) if is_out_of_fds(&e) => {
                    // uvlite pauses accepting (20 ms doubling to 500 ms) and returns the error
                    // once per pause, so this logs at most a few lines a second.
                    eprintln!("httpd: accept: {e}; accepting pauses");
                }
                // The peer went away between SYN and accept, or a transient failure: go on.
                Some(Err(_)) => {}
            }
        }
    }

    fn spawn_connection<A, F>(
        &self,
        stream: uvlite::TcpStream,
        peer: std::net::SocketAddr,
        app: Rc<A>,
    ) where
        A: Fn(Reader, Writer) -> F + 'static,
        F: Future<Output = Result<(), HttpError>> + 'static,
    {
        update(|s| {
            s.accepted += 1;
            s.active += 1;
        });
        let state = self.state.clone();
        let mut slot = 0;
        let pipeline = serve_with(
            stream,
            &state.settings,
            &state.config,
            Some(peer),
            |ex| slot = state.register(ex),
            move |r, w| app(r, w),
        );
        // Nobody awaits a connection: no join state.
        spawn_local_detached(Connection {
            pipeline,
            guard: ConnGuard { state, slot },
        });
    }

    /// Starts draining: [`accept`](Server::accept) returns, every open connection answers its
    /// current or next request with `Connection: close`, and connections that stay idle for
    /// the drain grace (`Settings::drain_idle`) are closed.
    pub fn drain(&self) {
        self.drain_within(self.state.settings.drain_idle);
    }

    /// As [`drain`](Server::drain), with `idle` in place of the drain grace: `ZERO` closes
    /// idle connections at once (the supervisor is gone, nothing keeps the server running).
    /// Only the first call of either has an effect.
    pub fn drain_within(&self, idle: Duration) {
        let state = &self.state;
        if state.draining.replace(true) {
            return;
        }
        State::wake(&state.accept_waker);
        State::wake(&state.room_waker);
        let deadline = uvlite::now() + idle;
        let conns: Vec<Rc<Exchange>> = state.conns.borrow().iter().flatten().cloned().collect();
        for ex in conns {
            ex.drain(deadline);
        }
    }

    /// Whether [`drain`](Server::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.state.draining.get()
    }

    /// Completes when no connection is open.
    pub async fn wait_idle(&self) {
        poll_fn(|cx| {
            if stats().active == 0 {
                Poll::Ready(())
            } else {
                *self.state.idle_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// `EBADF`, `EINVAL`, `ENOTSOCK`: the listener itself is broken.
fn is_fatal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(9 | 22 | 88))
}

/// `ENFILE`, `EMFILE`: no fd for the new connection.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

//! The worker side: receive the listening socket on fd 3, listen, serve, and talk to the
//! master over the same pipe (ready, heartbeats with counters; drain and stop requests).

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use uvlite::{HandleType, Loop, Pipe, Signal, Sleep, TcpListener};

use crate::protocol::{Decoder, Message};
use crate::{Config, Counters, Error, WORKER_ENV, WORKER_FD};

/// Heartbeat period when the worker timeout is off or long; shorter timeouts beat at a
/// quarter of the timeout (at least every 50 ms).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Signals a worker listens for only to ignore them: an operator's `pkill -HUP httpd` must
/// reach the master without stopping (TTIN, TTOU) or killing (HUP, USR1, USR2) the workers.
const IGNORED: [i32; 6] = [
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGWINCH,
];

/// How the master (or a signal) asks a worker to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Stop accepting, finish in-flight requests (answering them with `Connection: close`),
    /// close idle connections, and return by `deadline`. After the deadline the worker exits
    /// whatever the app is doing. Sent by the master for `SIGTERM`, `SIGINT`, `SIGHUP` (old
    /// workers) and `SIGTTOU`; also what a worker does when it receives `SIGTERM`/`SIGINT`
    /// itself or its master dies.
    Graceful {
        /// When the worker exits at the latest.
        deadline: Instant,
    },
    /// The master is gone (EOF on the pipe): as `Graceful`, but nothing will replace this
    /// worker's connections' keep-alive, so idle ones can be closed at once.
    Orphaned {
        /// When the worker exits at the latest.
        deadline: Instant,
    },
    /// Exit now (`SIGQUIT`); the worker does not wait for the app.
    Fast,
}

impl Stop {
    /// The time by which the worker exits (`None` for a fast stop: now).
    pub fn deadline(&self) -> Option<Instant> {
        match *self {
            Stop::Graceful { deadline } | Stop::Orphaned { deadline } => Some(deadline),
            Stop::Fast => None,
        }
    }
}

/// What a worker gets from its master.
///
/// The app calls [`ready`](Worker::ready) once it serves (the master drains old workers in
/// a reload only after their replacements are ready, and a worker that is not ready within
/// the worker timeout is replaced), watches [`stop_requested`](Worker::stop_requested) to
/// drain, and may report counters with [`report_with`](Worker::report_with).
pub struct Worker {
    /// The worker's index (its slot), 0-based.
    pub index: usize,
    /// The listening socket, shared by every worker (or its own with `SO_REUSEPORT`).
    pub listener: TcpListener,
    control: Rc<Control>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("listener", &self.listener)
            .field("ready", &self.control.ready.get())
            .field("stop", &self.control.stop.get())
            .finish()
    }
}

impl Worker {
    /// Tells the master this worker serves (Einhorn's ACK). Idempotent.
    pub fn ready(&self) {
        if !self.control.ready.replace(true) {
            self.control.send(Message::Ready);
        }
    }

    /// Whether [`ready`](Worker::ready) was called.
    pub fn is_ready(&self) -> bool {
        self.control.ready.get()
    }

    /// Completes when the worker is asked to stop: by its master over the pipe, by a signal
    /// to the worker itself (`SIGTERM`/`SIGINT` graceful, `SIGQUIT` fast), or because the
    /// master died (graceful). A later, more urgent request (fast, or an earlier deadline)
    /// replaces an earlier one.
    pub async fn stop_requested(&self) -> Stop {
        poll_fn(|cx| self.poll_stop_requested(cx)).await
    }

    /// Poll form of [`stop_requested`](Worker::stop_requested).
    pub fn poll_stop_requested(&self, cx: &mut Context<'_>) -> Poll<Stop> {
        match self.control.stop.get() {
            Some(s) => Poll::Ready(s),
            None => {
                let mut wakers = self.control.stop_wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// The stop request, if one came.
    pub fn stop_request(&self) -> Option<Stop> {
        self.control.stop.get()
    }

    /// Sets what each heartbeat reports: `counters` is called once per heartbeat, on the
    /// worker's loop. The master shows the figures in its status table.
    pub fn report_with(&self, counters: impl Fn() -> Counters + 'static) {
        *self.control.report.borrow_mut() = Some(Box::new(counters));
    }
}

/// State shared by the app's [`Worker`] and the control task.
struct Control {
    ready: Cell<bool>,
    stop: Cell<Option<Stop>>,
    stop_wakers: RefCell<Vec<Waker>>,
    outbox: RefCell<Vec<u8>>,
    out_waker: RefCell<Option<Waker>>,
    report: RefCell<Option<Box<dyn Fn() -> Counters>>>,
}

impl Control {
    fn send(&self, msg: Message) {
        msg.encode(&mut self.outbox.borrow_mut());
        if let Some(w) = self.out_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Records a stop request unless a more urgent one is there, and arms the self-kill
    /// backstop for it.
    fn request_stop(&self, stop: Stop, now: Instant) {
        let merged = match (self.stop.get(), stop) {
            (Some(Stop::Fast), _) | (_, Stop::Fast) => Stop::Fast,
            (None, s) => s,
            (Some(old), new) => {
                let deadline = old.deadline().min(new.deadline()).unwrap_or(now);
                if matches!(old, Stop::Orphaned { .. }) || matches!(new, Stop::Orphaned { .. }) {
                    Stop::Orphaned { deadline }
                } else {
                    Stop::Graceful { deadline }
                }
            }
        };
        if self.stop.get() == Some(merged) {
            return;
        }
        self.stop.set(Some(merged));
        // Whatever the app does (a handler stuck in a loop included), SIGALRM ends the
        // process shortly after the deadline.
        let left = merged
            .deadline()
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
        crate::sys::arm_self_kill(left + Duration::from_secs(2));
        for w in self.stop_wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

fn heartbeat_period(config: &Config) -> Duration {
    match config.worker_timeout {
        Some(t) => (t / 4).clamp(Duration::from_millis(50), HEARTBEAT),
        None => HEARTBEAT,
    }
}

pub(crate) fn run<F, Fut>(config: &Config, index: usize, serve: F) -> Result<(), Error>
where
    F: FnOnce(Worker) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    crate::sys::remove_env(WORKER_ENV);
    crate::sys::die_with_master(config.graceful_timeout)?;
    name_after_argv0();
    let lp = Loop::new()?;
    lp.block_on(async {
        let pipe = Pipe::from_fd(crate::sys::adopt_inherited_fd(WORKER_FD).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e}: was this worker started by a cluster master?"),
            )
        })?)?;
        let mut decoder = Decoder::default();
        let shared = receive_listener(&pipe, &mut decoder).await?;
        // With --reuseport the master's socket carries SO_REUSEPORT (one from systemd may
        // not: then the shared socket is used).
        let reuseport = config.reuseport
            && nix::sys::socket::getsockopt(&shared, nix::sys::socket::sockopt::ReusePort)
                .unwrap_or(false);
        let listener = if reuseport {
            // Our own socket in the SO_REUSEPORT group, on the address the master bound.
            let own = crate::listen::bind(shared.local_addr()?, true)?;
            own.listen(config.backlog)?;
            own
        } else {
            shared.listen(config.backlog)?;
            shared
        };
        let control = Rc::new(Control {
            ready: Cell::new(false),
            stop: Cell::new(None),
            stop_wakers: RefCell::new(Vec::new()),
            outbox: RefCell::new(Vec::new()),
            out_waker: RefCell::new(None),
            report: RefCell::new(None),
        });
        let mut link = Link::new(config, pipe, decoder, control.clone())?;
        // The link is a task of its own, woken only by what it waits on (the pipe, the
        // heartbeat, the signals, a message to send): the app's task, woken for every
        // connection, does not poll it each time.
        let link = uvlite::spawn_local(poll_fn(move |cx| {
            link.poll(cx);
            Poll::<()>::Pending
        }));
        let app = pin!(serve(Worker {
            index,
            listener,
            control: control.clone(),
        }));
        let res = supervise(&control, app, index).await;
        link.abort();
        match res {
            Err(e) if !control.ready.get() => Err(Error::Boot(e)),
            Err(e) => Err(Error::Io(e)),
            Ok(()) => Ok(()),
        }
    })
}

/// Runs the app until it returns, or the stop request's deadline passes (at once for a
/// fast stop), while the link (another task) talks to the master.
async fn supervise<Fut>(control: &Control, mut app: Pin<&mut Fut>, index: usize) -> io::Result<()>
where
    Fut: Future<Output = io::Result<()>>,
{
    let mut deadline: Option<Sleep> = None;
    poll_fn(|cx| {
        if let Poll::Ready(res) = app.as_mut().poll(cx) {
            return Poll::Ready(res);
        }
        // Woken by a stop request, or one that becomes more urgent.
        {
            let mut wakers = control.stop_wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        }
        match control.stop.get() {
            Some(Stop::Fast) => return Poll::Ready(Ok(())),
            Some(Stop::Graceful { deadline: at } | Stop::Orphaned { deadline: at }) => {
                let sleep = deadline.get_or_insert_with(|| Sleep::new(at));
                if sleep.deadline() != at {
                    sleep.reset(at);
                }
                if Pin::new(sleep).poll(cx).is_ready() {
                    eprintln!("worker {index}: the drain deadline passed; exiting");
                    return Poll::Ready(Ok(()));
                }
            }
            None => {}
        }
        Poll::Pending
    })
    .await
}

/// The worker's end of the pipe, its heartbeat, and the signals it handles.
struct Link {
    pipe: Pipe,
    decoder: Decoder,
    control: Rc<Control>,
    eof: bool,
    beat: Sleep,
    period: Duration,
    graceful: Duration,
    term: Signal,
    int: Signal,
    quit: Signal,
    _ignored: Vec<Signal>,
}

impl Link {
    fn new(
        config: &Config,
        pipe: Pipe,
        decoder: Decoder,
        control: Rc<Control>,
    ) -> io::Result<Link> {
        let period = heartbeat_period(config);
        Ok(Link {
            pipe,
            decoder,
            control,
            eof: false,
            beat: Sleep::new(Instant::now()),
            period,
            graceful: config.graceful_timeout,
            term: Signal::new(libc::SIGTERM)?,
            int: Signal::new(libc::SIGINT)?,
            quit: Signal::new(libc::SIGQUIT)?,
            _ignored: IGNORED
                .iter()
                .map(|&s| Signal::new(s))
                .collect::<io::Result<_>>()?,
        })
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        let now = Instant::now();
        let control = &self.control;
        if self.term.poll_recv(cx).is_ready() || self.int.poll_recv(cx).is_ready() {
            control.request_stop(
                Stop::Graceful {
                    deadline: now + self.graceful,
                },
                now,
            );
        }
        if self.quit.poll_recv(cx).is_ready() {
            control.request_stop(Stop::Fast, now);
        }
        // Messages from the master.
        let mut buf = [0u8; 512];
        while !self.eof {
            match self.pipe.poll_read(cx, &mut buf) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    // The master is gone: drain and exit, as if it had asked.
                    self.eof = true;
                    control.outbox.borrow_mut().clear();
                    control.request_stop(
                        Stop::Orphaned {
                            deadline: now + self.graceful,
                        },
                        now,
                    );
                }
                Poll::Ready(Ok(n)) => self.decoder.push(&buf[..n]),
            }
            while let Some(msg) = self.decoder.next() {
                match msg {
                    Ok(Message::Drain(t)) => {
                        control.request_stop(Stop::Graceful { deadline: now + t }, now);
                    }
                    Ok(Message::Stop) => control.request_stop(Stop::Fast, now),
                    Ok(other) => eprintln!("worker: unexpected message from the master: {other:?}"),
                    Err(e) => eprintln!("worker: bad message from the master: {e}"),
                }
            }
            // Received fds other than the first are not expected: close them.
            while self.pipe.accept_pending().is_some() {}
        }
        // The heartbeat.
        if Pin::new(&mut self.beat).poll(cx).is_ready() {
            let counters = control
                .report
                .borrow()
                .as_ref()
                .map(|f| f())
                .unwrap_or_default();
            if !self.eof {
                control.send(Message::Beat(counters));
            }
            self.beat.reset(now + self.period);
            let _ = Pin::new(&mut self.beat).poll(cx);
        }
        // Messages to the master.
        if self.eof {
            return;
        }
        loop {
            let out = control.outbox.borrow();
            if out.is_empty() {
                break;
            }
            let res = pin!(self.pipe.write(&out)).poll(cx);
            drop(out);
            match res {
                Poll::Ready(Ok(n)) if n > 0 => {
                    control.outbox.borrow_mut().drain(..n);
                }
                Poll::Ready(_) => {
                    // The master is gone; the read side sees EOF next.
                    control.outbox.borrow_mut().clear();
                    break;
                }
                Poll::Pending => break,
            }
        }
        *control.out_waker.borrow_mut() = Some(cx.waker().clone());
    }
}

/// Reads the pipe until the master's handle arrives (the seed's `pipe_pending_count` loop).
/// Messages after the handle stay in `decoder`.
async fn receive_listener(pipe: &Pipe, decoder: &mut Decoder) -> io::Result<TcpListener> {
    let mut buf = [0u8; 512];
    loop {
        while let Some(msg) = decoder.next() {
            if msg == Ok(Message::Handle) {
                if pipe.pending_type() != Some(HandleType::Tcp) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the master sent something that is not a TCP socket",
                    ));
                }
                let fd = pipe.accept_pending().expect("pending_type is Some");
                return TcpListener::from_fd(fd);
            }
        }
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the master closed the pipe before sending the listening socket",
            ));
        }
        decoder.push(&buf[..n]);
    }
}

/// Workers are started as `/proc/self/fd/N`, which would make their name (`ps`, `pkill`,
/// `top`) a number: take the master's program name instead.
fn name_after_argv0() {
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let Some(name) = std::path::Path::new(&arg0).file_name() else {
        return;
    };
    use std::os::unix::ffi::OsStrExt;
    let bytes: Vec<u8> = name.as_bytes().iter().copied().take(15).collect();
    if let Ok(c) = std::ffi::CString::new(bytes) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

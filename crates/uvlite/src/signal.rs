//! Signals as async streams, delivered through a self-pipe read by the loop.
//!
//! The handler (in `sys`) sets a per-signal flag and writes one byte into the pipe; the loop
//! drains the pipe, swaps the flags and wakes every [`Signal`] listening for a raised one.
//! Signals raised several times before the loop runs are delivered once, as in libuv.
//! One loop per process owns the pipe (signal dispositions are process-wide).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use mio::Interest;
use mio::unix::SourceFd;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal as Signum;

use crate::runtime::{Inner, SIGNAL_TOKEN};
use crate::sys::{self, MAX_SIGNAL, MAX_SIGNAL_LOOPS, SIGNAL_SLOTS};

struct Listener {
    signum: i32,
    count: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

/// How many listeners (signal streams and unreaped children) need each signal, process-wide:
/// the handler is installed on 0 → 1 and the default disposition restored on 1 → 0, so a
/// process whose loops stopped listening for `SIGTERM` dies of it again.
static HANDLER_REFS: Mutex<[u32; MAX_SIGNAL as usize + 1]> =
    Mutex::new([0; MAX_SIGNAL as usize + 1]);

/// Takes a reference on uvlite's handler for `signum`, installing it if it is the first.
pub(crate) fn acquire_handler(signum: Signum) -> io::Result<()> {
    let mut refs = HANDLER_REFS.lock().unwrap_or_else(|e| e.into_inner());
    let n = &mut refs[signum as usize];
    if *n == 0 {
        sys::install_handler(signum)?;
    }
    *n += 1;
    Ok(())
}

/// Drops a reference taken by [`acquire_handler`].
pub(crate) fn release_handler(signum: Signum) {
    let mut refs = HANDLER_REFS.lock().unwrap_or_else(|e| e.into_inner());
    let n = &mut refs[signum as usize];
    *n = n.saturating_sub(1);
    if *n == 0 {
        let _ = sys::restore_default(signum);
    }
}

pub(crate) struct SignalState {
    /// Read and write ends of this loop's self-pipe, and its slot in `SIGNAL_SLOTS`.
    pipe: RefCell<Option<(OwnedFd, OwnedFd, usize)>>,
    listeners: RefCell<Vec<Weak<Listener>>>,
    child_waiters: RefCell<Vec<Waker>>,
    orphans: RefCell<Vec<std::process::Child>>,
    /// Set when the loop is dropped: orphans go to reaper threads from then on.
    shut: Cell<bool>,
}

/// Waits for `child` on a thread of its own, so it never lingers as a zombie.
fn reap_in_thread(mut child: std::process::Child) {
    let spawned = std::thread::Builder::new()
        .name(format!("uvlite-reap-{}", child.id()))
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(e) = spawned {
        // No thread: the child becomes a zombie when it exits, until this process does.
        eprintln!("uvlite: cannot start a thread to reap an orphaned child: {e}");
    }
}

impl SignalState {
    pub(crate) fn new() -> SignalState {
        SignalState {
            pipe: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            child_waiters: RefCell::new(Vec::new()),
            orphans: RefCell::new(Vec::new()),
            shut: Cell::new(false),
        }
    }

    /// Creates this loop's self-pipe and claims a slot for it, once.
    pub(crate) fn ensure_pipe(&self, inner: &Inner) -> io::Result<()> {
        if self.pipe.borrow().is_some() {
            return Ok(());
        }
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        inner.registry().register(
            &mut SourceFd(&rd.as_raw_fd()),
            SIGNAL_TOKEN,
            Interest::READABLE,
        )?;
        let slot = SIGNAL_SLOTS
            .iter()
            .position(|s| {
                s.pending.store(0, Ordering::SeqCst);
                s.pipe
                    .compare_exchange(-1, wr.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or_else(|| {
                io::Error::other(format!(
                    "more than {MAX_SIGNAL_LOOPS} uvlite loops listen for signals"
                ))
            })?;
        *self.pipe.borrow_mut() = Some((rd, wr, slot));
        Ok(())
    }

    /// Called when the self-pipe is readable.
    pub(crate) fn dispatch(&self) {
        let pending = match self.pipe.borrow().as_ref() {
            Some((rd, _, slot)) => {
                let mut sink = [0u8; 64];
                while matches!(nix::unistd::read(rd, &mut sink), Ok(n) if n > 0) {}
                SIGNAL_SLOTS[*slot].pending.swap(0, Ordering::SeqCst)
            }
            None => 0,
        };
        let mut wake = Vec::new();
        for signum in 1..=MAX_SIGNAL {
            if pending & (1u64 << (signum - 1)) == 0 {
                continue;
            }
            if signum == libc::SIGCHLD {
                wake.append(&mut self.child_waiters.borrow_mut());
                self.reap_orphans();
            }
            self.listeners.borrow_mut().retain(|l| {
                let Some(l) = l.upgrade() else {
                    return false;
                };
                if l.signum == signum {
                    l.count.set(l.count.get() + 1);
                    if let Some(w) = l.waker.borrow_mut().take() {
                        wake.push(w);
                    }
                }
                true
            });
        }
        for w in wake {
            w.wake();
        }
    }

    /// Registers a waker to be woken on the next `SIGCHLD`.
    pub(crate) fn wait_child(&self, waker: &Waker) {
        let mut waiters = self.child_waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    /// Keeps a dropped, still running child to reap it on a later `SIGCHLD` (or hands it to a
    /// reaper thread if the loop is already gone).
    pub(crate) fn adopt_orphan(&self, child: std::process::Child) {
        if self.shut.get() {
            release_handler(Signum::SIGCHLD);
            reap_in_thread(child);
            return;
        }
        self.orphans.borrow_mut().push(child);
        // It may have exited between the caller's check and now, with its SIGCHLD consumed.
        self.reap_orphans();
    }

    fn reap_orphans(&self) {
        self.orphans
            .borrow_mut()
            .retain_mut(|c| match c.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    release_handler(Signum::SIGCHLD);
                    false
                }
            });
    }

    /// Frees this loop's slot when the loop is dropped, and hands the children still running
    /// to reaper threads: each blocks in `waitpid` for its child, so no zombie outlives the
    /// loop.
    pub(crate) fn shutdown(&self) {
        self.shut.set(true);
        self.reap_orphans();
        for child in self.orphans.borrow_mut().drain(..) {
            release_handler(Signum::SIGCHLD);
            reap_in_thread(child);
        }
        if let Some((_rd, wr, slot)) = self.pipe.borrow_mut().take() {
            let _ = SIGNAL_SLOTS[slot].pipe.compare_exchange(
                wr.as_raw_fd(),
                -1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        self.child_waiters.borrow_mut().clear();
    }
}

/// A stream of deliveries of one signal to this thread's loop.
///
/// Creating the first `Signal` for a number installs uvlite's handler for it; several
/// `Signal`s may listen for the same number and each sees every delivery.
///
/// # Examples
/// ```no_run
/// # let lp = uvlite::Loop::new()?;
/// lp.block_on(async {
///     let term = uvlite::Signal::new(libc::SIGTERM)?;
///     term.recv().await;
///     println!("terminating");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signal {
    listener: Rc<Listener>,
    _inner: Rc<Inner>,
}

impl Signal {
    /// Starts listening for `signum` on this thread's loop.
    ///
    /// # Errors
    /// Fails for an invalid or uncatchable signal (`SIGKILL`, `SIGSTOP`), when there is no
    /// loop, or when another loop in the process already receives signals.
    pub fn new(signum: i32) -> io::Result<Signal> {
        let sig = Signum::try_from(signum)?;
        if matches!(sig, Signum::SIGKILL | Signum::SIGSTOP) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SIGKILL and SIGSTOP cannot be caught",
            ));
        }
        let inner = Inner::current()?;
        inner.signals.ensure_pipe(&inner)?;
        acquire_handler(sig)?;
        let listener = Rc::new(Listener {
            signum,
            count: Cell::new(0),
            waker: RefCell::new(None),
        });
        inner
            .signals
            .listeners
            .borrow_mut()
            .push(Rc::downgrade(&listener));
        Ok(Signal {
            listener,
            _inner: inner,
        })
    }

    /// The signal number this stream listens for.
    pub fn signum(&self) -> i32 {
        self.listener.signum
    }

    /// Waits for the next delivery (deliveries since the last call coalesce into one).
    pub async fn recv(&self) {
        poll_fn(|cx| self.poll_recv(cx)).await;
    }

    /// Poll form of [`recv`](Signal::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<()> {
        let l = &self.listener;
        if l.count.get() > 0 {
            l.count.set(0);
            return Poll::Ready(());
        }
        *l.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        if let Ok(sig) = Signum::try_from(self.listener.signum) {
            release_handler(sig);
        }
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("signum", &self.listener.signum)
            .finish()
    }
}

//! The reactor: readiness flags and wakers per registered fd, fed by mio's events.
//!
//! # Draining readiness
//! mio registers every fd edge-triggered: the kernel reports a change once, not a state. So a
//! slot's `readable` flag stays set until an operation proves it false: a `WouldBlock`, or a
//! short read (fewer bytes than asked for means the socket's receive queue is empty; any byte
//! that arrives later raises a new edge). Code that stops reading before it sees one of these
//! must come back by itself, because no new event will arrive for bytes already queued.
//!
//! End of stream and errors are final states: once the kernel reports the peer's FIN (or an
//! error), the direction stays ready whatever an operation clears, because the FIN may come
//! in the same edge as the last bytes and no further event would announce it.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::runtime::Inner;

/// Which half of an fd's readiness an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

#[derive(Default)]
struct Slot {
    in_use: bool,
    readable: bool,
    writable: bool,
    /// Sticky: the peer shut its write side, or the socket failed. Reads never block again.
    read_closed: bool,
    /// Sticky: the socket can no longer be written (or failed). Writes never block again.
    write_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

pub(crate) struct Reactor {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

impl Reactor {
    pub(crate) fn new() -> Reactor {
        Reactor {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }

    fn insert(&self) -> usize {
        let mut slots = self.slots.borrow_mut();
        let index = self.free.borrow_mut().pop().unwrap_or_else(|| {
            slots.push(Slot::default());
            slots.len() - 1
        });
        slots[index] = Slot {
            in_use: true,
            ..Slot::default()
        };
        index
    }

    fn remove(&self, index: usize) {
        let slot = std::mem::take(&mut self.slots.borrow_mut()[index]);
        self.free.borrow_mut().push(index);
        // Wakers are dropped after the borrow ends: a waker's drop may run arbitrary code.
        drop(slot);
    }

    /// Records an event and wakes the tasks waiting for it.
    pub(crate) fn dispatch(&self, event: &mio::event::Event) {
        let (reader, writer) = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(event.token().0) else {
                return;
            };
            if !slot.in_use {
                return;
            }
            let mut reader = None;
            let mut writer = None;
            if event.is_read_closed() || event.is_error() {
                slot.read_closed = true;
            }
            if event.is_write_closed() || event.is_error() {
                slot.write_closed = true;
            }
            if event.is_readable() || slot.read_closed {
                slot.readable = true;
                reader = slot.reader.take();
            }
            if event.is_writable() || slot.write_closed {
                slot.writable = true;
                writer = slot.writer.take();
            }
            (reader, writer)
        };
        if let Some(w) = reader {
            w.wake();
        }
        if let Some(w) = writer {
            w.wake();
        }
    }

    fn poll_ready(&self, index: usize, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        let (ready, waker) = match dir {
            Direction::Read => (slot.readable || slot.read_closed, &mut slot.reader),
            Direction::Write => (slot.writable || slot.write_closed, &mut slot.writer),
        };
        if ready {
            return Poll::Ready(());
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn is_ready(&self, index: usize, dir: Direction) -> bool {
        let slots = self.slots.borrow();
        let slot = &slots[index];
        match dir {
            Direction::Read => slot.readable || slot.read_closed,
            Direction::Write => slot.writable || slot.write_closed,
        }
    }

    fn clear(&self, index: usize, dir: Direction) {
        let mut slots = self.slots.borrow_mut();
        match dir {
            Direction::Read => slots[index].readable = false,
            Direction::Write => slots[index].writable = false,
        }
    }
}

/// An fd registered with the loop. Dropping it deregisters the fd, which must still be open:
/// declare the `Registration` field before the field that owns the fd.
pub(crate) struct Registration {
    inner: Rc<Inner>,
    index: usize,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` for read and write readiness on this thread's loop.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        Self::with_interest(fd, Interest::READABLE | Interest::WRITABLE)
    }

    pub(crate) fn with_interest(fd: RawFd, interest: Interest) -> io::Result<Registration> {
        let inner = Inner::current()?;
        let index = inner.reactor.insert();
        let res = inner
            .registry()
            .registry()
            .register(&mut SourceFd(&fd), Token(index), interest);
        if let Err(e) = res {
            inner.reactor.remove(index);
            return Err(e);
        }
        Ok(Registration { inner, index, fd })
    }

    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        self.inner.reactor.poll_ready(self.index, cx, dir)
    }

    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.inner.reactor.is_ready(self.index, dir)
    }

    pub(crate) fn clear_readiness(&self, dir: Direction) {
        self.inner.reactor.clear(self.index, dir);
    }

    /// Runs a non-blocking operation once the fd is ready, clearing readiness on `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if self.poll_ready(cx, dir).is_pending() {
                return Poll::Pending;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return Poll::Ready(res),
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Deregister explicitly: a listening socket shared with other processes stays in this
        // epoll set after close() for as long as any process holds the open file description.
        let _ = self
            .inner
            .registry()
            .registry()
            .deregister(&mut SourceFd(&self.fd));
        self.inner.reactor.remove(self.index);
    }
}

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
//!
//! # The per-event path
//! Each registration owns an `Rc<IoSlot>` of `Cell`s; the slab only maps a token to it. Polling
//! a handle touches its own slot and nothing else (no `RefCell` borrow, no loop lookup). A
//! waiter that is the task being polled is recorded as the task's executor slot, not as its
//! `Waker`: an event then schedules the task without reading the waker's allocation (one cold
//! cache line less per event with many connections), and no waker is cloned. Other waiters
//! (a combinator's own waker, the `block_on` future) are kept as a `Waker`, which stays in the
//! slot after it is woken (a `waiting` bit says whether it still wants the next event), so
//! waiting again on the same fd does not clone it: the steady state does no reference-count
//! traffic.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::executor::Executor;
use crate::runtime::Inner;

/// Which half of an fd's readiness an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

const READABLE: u8 = 1;
const WRITABLE: u8 = 1 << 1;
/// Sticky: the peer shut its write side, or the socket failed. Reads never block again.
const READ_CLOSED: u8 = 1 << 2;
/// Sticky: the socket can no longer be written (or failed). Writes never block again.
const WRITE_CLOSED: u8 = 1 << 3;
/// A task waits for the next read (write) event; cleared when it is woken.
/// INVARIANT: each waiting bit is its ready bit shifted left by 4, and each closed bit is its
/// ready bit shifted left by 2 (`dispatch` relies on both).
const READ_WAITING: u8 = 1 << 4;
const WRITE_WAITING: u8 = 1 << 5;
/// The read (write) waiter is the task recorded in the slot, not the waker in its cell.
const READ_TASK: u8 = 1 << 6;
const WRITE_TASK: u8 = 1 << 7;
const _: () = assert!(READ_TASK == READ_WAITING << 2 && WRITE_TASK == WRITE_WAITING << 2);
const _: () = assert!(READ_WAITING == READABLE << 4 && WRITE_WAITING == WRITABLE << 4);
const _: () = assert!(READ_CLOSED == READABLE << 2 && WRITE_CLOSED == WRITABLE << 2);

impl Direction {
    /// The bits that make this direction ready.
    #[inline]
    fn ready_bits(self) -> u8 {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE | WRITE_CLOSED,
        }
    }

    /// This direction's waiting and task bits, then the other direction's.
    #[inline]
    fn waiter_bits(self) -> (u8, u8, u8) {
        match self {
            Direction::Read => (READ_WAITING, READ_TASK, WRITE_WAITING | WRITE_TASK),
            Direction::Write => (WRITE_WAITING, WRITE_TASK, READ_WAITING | READ_TASK),
        }
    }
}

/// The readiness of one registered fd.
///
/// A waiter is kept as a task of this loop's executor (its slot, `task_index` and the low
/// bits of its generation, which fit beside `flags`) when it is the task being polled, and
/// as a `Waker` otherwise. Waking a task by its slot reads nothing of its waker, whose
/// allocation is one more cold line per event under many connections.
#[derive(Default)]
pub(crate) struct IoSlot {
    flags: Cell<u8>,
    task_generation: Cell<u16>,
    task_index: Cell<u32>,
    reader: Cell<Option<Waker>>,
    writer: Cell<Option<Waker>>,
}

impl IoSlot {
    #[inline]
    fn waker(&self, dir: Direction) -> &Cell<Option<Waker>> {
        match dir {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }

    /// Ready if `dir` is; otherwise records `cx`'s waker as its waiter. `task` is the slot
    /// and generation of the task being polled if `cx`'s waker is its waker
    /// ([`Executor::current_task`]).
    #[inline]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        task: Option<(u32, u32)>,
    ) -> Poll<()> {
        let flags = self.flags.get();
        if flags & dir.ready_bits() != 0 {
            return Poll::Ready(());
        }
        let (waiting, by_task, other) = dir.waiter_bits();
        let cell = self.waker(dir);
        if let Some((index, generation)) = task {
            let generation = generation as u16;
            let same = self.task_index.get() == index && self.task_generation.get() == generation;
            // One task is recorded per fd: another task waiting on the other direction
            // keeps it, and this one is kept as a waker.
            if same || flags & other != other {
                self.task_index.set(index);
                self.task_generation.set(generation);
                let mut flags = flags | waiting | by_task;
                if !same {
                    // The other direction waits on no task: its bit would name this one.
                    flags &= !(other & (READ_TASK | WRITE_TASK));
                }
                self.flags.set(flags);
                // A waker's drop may run foreign code: only after the slot is consistent.
                drop(cell.take());
                return Poll::Pending;
            }
        }
        match cell.take() {
            Some(w) if w.will_wake(cx.waker()) => cell.set(Some(w)),
            old => {
                cell.set(Some(cx.waker().clone()));
                drop(old);
            }
        }
        self.flags.set((self.flags.get() | waiting) & !by_task);
        Poll::Pending
    }

    #[inline]
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.flags.get() & dir.ready_bits() != 0
    }

    #[inline]
    pub(crate) fn clear(&self, dir: Direction) {
        let bit = match dir {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        };
        self.flags.set(self.flags.get() & !bit);
    }

    /// Records an event and schedules the tasks recorded as waiting for it; returns the
    /// waiting bits whose waiter is a `Waker`, for [`wake`](IoSlot::wake) to wake (outside
    /// the reactor's borrow: a foreign waker may run any code).
    #[inline]
    fn dispatch(&self, event: &mio::event::Event, exec: &Executor) -> u8 {
        let mut flags = self.flags.get();
        if event.is_error() || event.is_read_closed() || event.is_write_closed() {
            flags |= closed_bits(event);
        }
        // A closed direction stays ready whatever the event says.
        let mut ready = (flags & (READ_CLOSED | WRITE_CLOSED)) >> 2;
        if event.is_readable() {
            ready |= READABLE;
        }
        if event.is_writable() {
            ready |= WRITABLE;
        }
        // The waiting bits sit four above the ready bits: wake who waits on what is now ready.
        let wake = flags & (ready << 4);
        self.flags.set((flags | ready) & !wake);
        // The task bits sit two above the waiting bits.
        let by_task = wake & ((flags & (READ_TASK | WRITE_TASK)) >> 2);
        if by_task != 0 {
            exec.schedule_slot(self.task_index.get(), self.task_generation.get());
        }
        wake & !by_task
    }

    /// Wakes the wakers of `bits` (waiting bits, as [`dispatch`](IoSlot::dispatch) returns).
    fn wake(&self, bits: u8) {
        if bits & READ_WAITING != 0 {
            wake_in_place(&self.reader);
        }
        if bits & WRITE_WAITING != 0 {
            wake_in_place(&self.writer);
        }
    }

    /// Wakes every waiter and marks both directions closed (the loop is going away).
    fn close(&self) {
        let closed = READABLE | WRITABLE | READ_CLOSED | WRITE_CLOSED;
        self.flags
            .set((self.flags.get() | closed) & !(READ_TASK | WRITE_TASK));
        drop(self.reader.take());
        drop(self.writer.take());
    }
}

/// The sticky bits an event with an error or a hang-up sets (kept out of the common path).
#[cold]
#[inline(never)]
fn closed_bits(event: &mio::event::Event) -> u8 {
    let mut bits = 0;
    if event.is_error() {
        bits |= READ_CLOSED | WRITE_CLOSED;
    }
    if event.is_read_closed() {
        bits |= READ_CLOSED;
    }
    if event.is_write_closed() {
        bits |= WRITE_CLOSED;
    }
    bits
}

/// Wakes the waker in `cell` by reference and keeps it there, unless the wake itself stored
/// another one (foreign wakers may run arbitrary code).
#[inline]
fn wake_in_place(cell: &Cell<Option<Waker>>) {
    let Some(w) = cell.take() else { return };
    w.wake_by_ref();
    match cell.take() {
        None => cell.set(Some(w)),
        Some(newer) => cell.set(Some(newer)),
    }
}

pub(crate) struct Reactor {
    slots: RefCell<Vec<Option<Rc<IoSlot>>>>,
    free: RefCell<Vec<usize>>,
}

impl Reactor {
    pub(crate) fn new() -> Reactor {
        Reactor {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }

    fn insert(&self, slot: Rc<IoSlot>) -> usize {
        let mut slots = self.slots.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                slots[i] = Some(slot);
                i
            }
            None => {
                slots.push(Some(slot));
                slots.len() - 1
            }
        }
    }

    fn remove(&self, index: usize) {
        let slot = self.slots.borrow_mut()[index].take();
        self.free.borrow_mut().push(index);
        // Wakers are dropped after the borrow ends: a waker's drop may run arbitrary code.
        drop(slot);
    }

    /// Records an event and wakes the tasks waiting for it.
    #[inline]
    pub(crate) fn dispatch(&self, event: &mio::event::Event, exec: &Executor) {
        let slots = self.slots.borrow();
        let Some(Some(slot)) = slots.get(event.token().0) else {
            return;
        };
        // Scheduling a task runs no foreign code: done under the borrow, with no reference
        // count touched. A waker is woken after it, through a clone of the slot.
        let wakers = slot.dispatch(event, exec);
        if wakers != 0 {
            let slot = slot.clone();
            drop(slots);
            slot.wake(wakers);
        }
    }

    /// Wakes every waiter with its fd marked closed (the loop is being dropped).
    pub(crate) fn close_all(&self) {
        let slots: Vec<Rc<IoSlot>> = self.slots.borrow().iter().flatten().cloned().collect();
        for s in slots {
            s.close();
        }
    }
}

/// An fd registered with the loop. Dropping it deregisters the fd, which must still be open:
/// declare the `Registration` field before the field that owns the fd.
pub(crate) struct Registration {
    slot: Rc<IoSlot>,
    inner: Rc<Inner>,
    /// The slab index (the mio token); `u32` so the handle packs into 24 bytes.
    index: u32,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` for read and write readiness on this thread's loop.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        Self::with_interest(fd, Interest::READABLE | Interest::WRITABLE)
    }

    pub(crate) fn with_interest(fd: RawFd, interest: Interest) -> io::Result<Registration> {
        let inner = Inner::current()?;
        let slot = Rc::new(IoSlot::default());
        let index = inner.reactor.insert(slot.clone());
        let Ok(index32) = u32::try_from(index) else {
            inner.reactor.remove(index);
            return Err(io::Error::other("more than 2^32 registered fds"));
        };
        let res = inner
            .registry()
            .register(&mut SourceFd(&fd), Token(index), interest);
        if let Err(e) = res {
            inner.reactor.remove(index);
            return Err(e);
        }
        Ok(Registration {
            slot,
            inner,
            index: index32,
            fd,
        })
    }

    #[inline]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        let task = self.inner.exec.current_task(cx.waker());
        self.slot.poll_ready(cx, dir, task)
    }

    #[inline]
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.slot.is_ready(dir)
    }

    #[inline]
    pub(crate) fn clear_readiness(&self, dir: Direction) {
        self.slot.clear(dir);
    }

    /// Runs a non-blocking operation once the fd is ready, clearing readiness on `WouldBlock`.
    #[inline]
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.slot.clear(dir),
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
        let _ = self.inner.registry().deregister(&mut SourceFd(&self.fd));
        self.inner.reactor.remove(self.index as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn what_a_registered_fd_costs() {
        // Held in every stream handle (so in every connection task's future).
        assert_eq!(size_of::<Registration>(), 24);
        // The shared slot: boxed in an `Rc` (16 bytes of counts) beside it.
        assert_eq!(size_of::<IoSlot>(), 40);
    }

    #[test]
    fn a_woken_waker_stays_and_is_not_woken_twice() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let slot = IoSlot::default();
        assert!(slot.poll_ready(&mut cx, Direction::Read, None).is_pending());
        // The slot holds one clone of the waker; waiting again does not clone it again.
        assert_eq!(Arc::strong_count(&count), 3);
        assert!(slot.poll_ready(&mut cx, Direction::Read, None).is_pending());
        assert_eq!(Arc::strong_count(&count), 3);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // A readable event wakes the reader once and leaves the waker in place.
        slot.flags.set(slot.flags.get() | READABLE);
        slot.flags.set(slot.flags.get() & !READ_WAITING);
        wake_in_place(&slot.reader);
        assert_eq!(Arc::strong_count(&count), 3);
        assert!(slot.poll_ready(&mut cx, Direction::Read, None).is_ready());
        slot.clear(Direction::Read);
        assert!(!slot.is_ready(Direction::Read));
    }
}

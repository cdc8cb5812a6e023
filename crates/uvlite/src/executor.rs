//! The single-threaded executor: a slab of boxed futures and a run queue of slab indices.
//!
//! Each task has one `Waker`, built once when the task is spawned (an `Arc` holding the loop's
//! remote queue, the slot and its generation). The executor moves that waker out of the slot to
//! poll the task and back afterwards, so polling does no reference counting. Waking on the
//! loop's own thread pushes the slot index onto the run queue (`Vec`-backed, no allocation once
//! warm). Waking from another thread pushes onto the loop's remote queue (a `Mutex<Vec>`) and
//! pokes the loop's `mio::Waker` once until the loop drains the queue. While a task is polled,
//! the executor knows its waker's pointers, so the reactor can recognise that waker and keep
//! the task's slot in place of it ([`Executor::current_task`]).
//!
//! A task's box holds the spawned future alone, polled in place through the [`Task`] trait:
//! no wrapper future around it (an `async` wrapper would keep a second copy of the future,
//! as its captured value and as the value it polls, since rustc does not overlap the two).
//! The executor catches panics around each poll, and the task's join state travels beside
//! the box in its slot.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWakerVTable, Wake, Waker};

use crate::runtime::Inner;

/// Slot index standing for the future given to `block_on`.
pub(crate) const MAIN_TASK: u32 = u32::MAX;

/// A spawned future as the executor sees it, whatever its output type.
trait Task {
    /// Polls the future; when it completes, hands its output to `join`, the task's
    /// [`JoinState`].
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>, join: &dyn Any) -> Poll<()>;
}

impl<F: Future<Output: 'static>> Task for F {
    #[inline]
    fn poll_task(self: Pin<&mut Self>, cx: &mut Context<'_>, join: &dyn Any) -> Poll<()> {
        let out = std::task::ready!(self.poll(cx));
        if let Some(state) = join.downcast_ref::<JoinState<F::Output>>() {
            state.complete(Ok(out));
        }
        Poll::Ready(())
    }
}

/// A live task: its future, then its join state (fields drop in this order, so a task dropped
/// before it finished completes its join state with `Cancelled` after its future is gone).
/// A task spawned detached has no join state: nobody can await it.
struct Running {
    future: Pin<Box<dyn Task>>,
    join: Option<CancelGuard>,
}

struct Slot {
    generation: u32,
    scheduled: bool,
    running: bool,
    aborted: bool,
    /// Whether the task keeps [`Loop::run`](crate::Loop::run) going (libuv's ref/unref).
    referenced: bool,
    future: Option<Running>,
    waker: Option<Waker>,
}

/// The part of a loop other threads can reach: wakes for its tasks.
pub(crate) struct Remote {
    loop_id: u64,
    queue: Mutex<Vec<(u32, u32)>>,
    /// Set when the loop has been poked and has not drained the queue since.
    notified: AtomicBool,
    /// Set when the loop is gone: later wakes are dropped.
    closed: AtomicBool,
    waker: mio::Waker,
}

impl Remote {
    pub(crate) fn new(loop_id: u64, waker: mio::Waker) -> Remote {
        Remote {
            loop_id,
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker,
        }
    }

    fn push(&self, index: u32, generation: u32) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((index, generation));
        if !self.notified.swap(true, Ordering::AcqRel) {
            // Failing to poke an eventfd leaves nothing to do: the loop is going away.
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The tasks: one `RefCell` for the slab, its free list and the run queue, so scheduling and
/// running a task each take a single borrow.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: RunQueue,
}

/// A FIFO of slot indices as two `Vec`s: wakes push onto `next` (a plain `Vec::push`, cheaper
/// than a ring buffer's), and the executor takes `next` over as `batch` when `batch` is used up.
#[derive(Default)]
struct RunQueue {
    batch: Vec<u32>,
    /// Position of the next index to run in `batch`.
    pos: usize,
    next: Vec<u32>,
}

impl RunQueue {
    #[inline]
    fn push(&mut self, index: u32) {
        self.next.push(index);
    }

    #[inline]
    fn pop(&mut self) -> Option<u32> {
        if let Some(&index) = self.batch.get(self.pos) {
            self.pos += 1;
            return Some(index);
        }
        let &first = self.next.first()?;
        // The batch is done: `next` becomes the batch, keeping both allocations.
        self.batch.clear();
        std::mem::swap(&mut self.batch, &mut self.next);
        self.pos = 1;
        Some(first)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.pos >= self.batch.len() && self.next.is_empty()
    }

    fn clear(&mut self) {
        self.batch.clear();
        self.pos = 0;
        self.next.clear();
    }
}

/// The task being polled, as its waker's pointers and its slot: a waiter that is this task
/// can be recorded as its slot (see [`Executor::current_task`]).
#[derive(Clone, Copy)]
struct Current {
    data: *const (),
    vtable: *const RawWakerVTable,
    index: u32,
    generation: u32,
}

pub(crate) struct Executor {
    table: RefCell<Table>,
    /// Set while a spawned task is polled.
    current: Cell<Option<Current>>,
    live: Cell<usize>,
    unreferenced: Cell<usize>,
    main_woken: Cell<bool>,
    remote: Arc<Remote>,
    /// The remote queue's items are swapped in here to be scheduled, keeping both allocations.
    remote_spare: RefCell<Vec<(u32, u32)>>,
}

/// What a task's `Waker` points at.
struct TaskRef {
    remote: Arc<Remote>,
    index: u32,
    generation: u32,
}

impl Wake for TaskRef {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        let local = Inner::with_current(|inner| {
            if inner.id == self.remote.loop_id {
                inner.exec.schedule(self.index, self.generation);
                true
            } else {
                false
            }
        });
        if local != Some(true) {
            self.wake_remote();
        }
    }
}

impl TaskRef {
    /// A wake from another thread (or from this thread after its loop is gone): kept out of
    /// line so the local path saves fewer registers.
    #[cold]
    #[inline(never)]
    fn wake_remote(&self) {
        self.remote.push(self.index, self.generation);
    }
}

impl Executor {
    pub(crate) fn new(remote: Remote) -> Executor {
        Executor {
            table: RefCell::new(Table::default()),
            current: Cell::new(None),
            live: Cell::new(0),
            unreferenced: Cell::new(0),
            main_woken: Cell::new(false),
            remote: Arc::new(remote),
            remote_spare: RefCell::new(Vec::new()),
        }
    }
    /// Tasks that have not finished.
    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    /// Tasks that have not finished and keep `run` going.
    pub(crate) fn referenced(&self) -> usize {
        self.live.get() - self.unreferenced.get()
    }

    #[inline]
    pub(crate) fn has_ready_tasks(&self) -> bool {
        !self.table.borrow().ready.is_empty()
    }

    pub(crate) fn has_ready(&self) -> bool {
        self.main_woken.get() || !self.table.borrow().ready.is_empty()
    }

    pub(crate) fn main_waker(&self) -> Waker {
        Waker::from(Arc::new(TaskRef {
            remote: self.remote.clone(),
            index: MAIN_TASK,
            generation: 0,
        }))
    }

    pub(crate) fn wake_main(&self) {
        self.main_woken.set(true);
    }

    pub(crate) fn main_woken(&self) -> bool {
        self.main_woken.get()
    }

    pub(crate) fn take_main_woken(&self) -> bool {
        self.main_woken.replace(false)
    }

    /// Puts a task on the run queue once, however often it is woken before it runs.
    #[inline]
    pub(crate) fn schedule(&self, index: u32, generation: u32) {
        if index == MAIN_TASK {
            self.main_woken.set(true);
            return;
        }
        self.schedule_if(index, |g| g == generation);
    }

    /// The slot and generation of the task being polled, if `waker` is its waker: whoever
    /// keeps it to wake the task later may keep these instead and wake the task with
    /// [`schedule_slot`](Executor::schedule_slot), which reads nothing of the waker's
    /// allocation (a cold line per wake under many connections).
    #[inline]
    pub(crate) fn current_task(&self, waker: &Waker) -> Option<(u32, u32)> {
        let cur = self.current.get()?;
        (std::ptr::eq(waker.data(), cur.data) && std::ptr::eq(waker.vtable(), cur.vtable))
            .then_some((cur.index, cur.generation))
    }

    /// As [`schedule`](Executor::schedule), for a slot recorded by
    /// [`current_task`](Executor::current_task) with the generation's low 16 bits: a slot
    /// reused 65,536 times since it was recorded gets a spurious wake, which futures allow.
    #[inline]
    pub(crate) fn schedule_slot(&self, index: u32, generation: u16) {
        self.schedule_if(index, |g| g as u16 == generation);
    }

    /// Puts the task in slot `index` on the run queue once, if it is live and its
    /// generation passes `current`.
    #[inline]
    fn schedule_if(&self, index: u32, current: impl FnOnce(u32) -> bool) {
        let mut table = self.table.borrow_mut();
        let table = &mut *table;
        if let Some(slot) = table.slots.get_mut(index as usize)
            && current(slot.generation)
            && !slot.scheduled
            && (slot.future.is_some() || slot.running)
        {
            slot.scheduled = true;
            table.ready.push(index);
        }
    }

    /// Schedules the tasks woken from other threads (the loop's `mio::Waker` fired).
    pub(crate) fn drain_remote(&self) {
        self.remote.notified.store(false, Ordering::Release);
        let mut spare = self.remote_spare.borrow_mut();
        std::mem::swap(
            &mut *self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()),
            &mut *spare,
        );
        for &(index, generation) in spare.iter() {
            self.schedule(index, generation);
        }
        spare.clear();
    }

    pub(crate) fn close_remote(&self) {
        self.remote.close();
    }

    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(JoinState {
            result: RefCell::new(None),
            waiter: RefCell::new(None),
        });
        let (index, generation) = self.insert(Running {
            future: Box::pin(future),
            join: Some(CancelGuard(state.clone())),
        });
        JoinHandle {
            state,
            index,
            generation,
            loop_id: self.remote.loop_id,
        }
    }

    /// Spawns a task nobody will await: no join state, its output is dropped.
    pub(crate) fn spawn_detached<F>(&self, future: F)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.insert(Running {
            future: Box::pin(future),
            join: None,
        });
    }

    /// Puts `task` in a free slot and on the run queue; its slot index and generation.
    fn insert(&self, task: Running) -> (u32, u32) {
        let mut table = self.table.borrow_mut();
        let table = &mut *table;
        let index = match table.free.pop() {
            Some(i) => i,
            None => {
                table.slots.push(Slot {
                    generation: 0,
                    scheduled: false,
                    running: false,
                    aborted: false,
                    referenced: true,
                    future: None,
                    waker: None,
                });
                u32::try_from(table.slots.len() - 1).expect("more than 2^32 tasks")
            }
        };
        let slot = &mut table.slots[index as usize];
        slot.future = Some(task);
        slot.waker = Some(Waker::from(Arc::new(TaskRef {
            remote: self.remote.clone(),
            index,
            generation: slot.generation,
        })));
        slot.scheduled = true;
        slot.aborted = false;
        slot.referenced = true;
        let generation = slot.generation;
        table.ready.push(index);
        self.live.set(self.live.get() + 1);
        (index, generation)
    }

    /// Polls ready tasks until the queue is empty or `budget` polls were made.
    #[inline(never)]
    pub(crate) fn run_ready(&self, budget: usize) {
        for _ in 0..budget {
            // One borrow pops the index and takes the task out of its slot.
            let (index, generation, mut task, waker) = {
                let mut table = self.table.borrow_mut();
                let table = &mut *table;
                let Some(index) = table.ready.pop() else {
                    return;
                };
                let slot = &mut table.slots[index as usize];
                slot.scheduled = false;
                let Some(task) = slot.future.take() else {
                    continue;
                };
                slot.running = true;
                // Moved out and back: polling costs no reference counting on the waker.
                let waker = slot.waker.take().expect("a live task has its waker");
                (index, slot.generation, task, waker)
            };
            let join: &dyn Any = match &task.join {
                Some(guard) => &*guard.0,
                None => &(),
            };
            let future = task.future.as_mut();
            self.current.set(Some(Current {
                data: waker.data(),
                vtable: waker.vtable(),
                index,
                generation,
            }));
            let polled = catch_unwind(AssertUnwindSafe(|| {
                future.poll_task(&mut Context::from_waker(&waker), join)
            }));
            self.current.set(None);
            let done = match polled {
                Ok(poll) => poll.is_ready(),
                Err(payload) => {
                    if let Some(guard) = &task.join {
                        guard.0.fail(JoinError::Panicked(payload));
                    }
                    true
                }
            };
            let mut table = self.table.borrow_mut();
            let slot = &mut table.slots[index as usize];
            slot.running = false;
            if done || slot.aborted {
                self.release(&mut table, index);
                drop(table);
                // Dropped outside the borrow: the future's destructors may wake or spawn tasks.
                drop(task);
                drop(waker);
            } else {
                slot.future = Some(task);
                slot.waker = Some(waker);
            }
        }
    }

    fn release(&self, table: &mut Table, index: u32) {
        let slot = &mut table.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.scheduled = false;
        slot.aborted = false;
        slot.waker = None;
        if !slot.referenced {
            self.unreferenced.set(self.unreferenced.get() - 1);
        }
        slot.referenced = true;
        table.free.push(index);
        self.live.set(self.live.get() - 1);
    }

    fn abort(&self, index: u32, generation: u32) {
        let (future, waker) = {
            let mut table = self.table.borrow_mut();
            let Some(slot) = table.slots.get_mut(index as usize) else {
                return;
            };
            if slot.generation != generation {
                return;
            }
            if slot.running {
                slot.aborted = true;
                return;
            }
            let Some(future) = slot.future.take() else {
                return;
            };
            let waker = slot.waker.take();
            self.release(&mut table, index);
            (future, waker)
        };
        drop(future);
        drop(waker);
    }

    fn set_referenced(&self, index: u32, generation: u32, referenced: bool) {
        let mut table = self.table.borrow_mut();
        let Some(slot) = table.slots.get_mut(index as usize) else {
            return;
        };
        if slot.generation != generation || slot.referenced == referenced {
            return;
        }
        slot.referenced = referenced;
        let n = self.unreferenced.get();
        self.unreferenced
            .set(if referenced { n - 1 } else { n + 1 });
    }

    /// Drops every task (when the loop goes away).
    pub(crate) fn clear(&self) {
        loop {
            let futures: Vec<(Running, Option<Waker>)> = {
                let mut table = self.table.borrow_mut();
                let mut out = Vec::new();
                for i in 0..table.slots.len() {
                    if let Some(f) = table.slots[i].future.take() {
                        out.push((f, table.slots[i].waker.take()));
                        self.release(&mut table, i as u32);
                    }
                }
                out
            };
            if futures.is_empty() {
                break;
            }
            // Destructors may spawn more tasks; the loop above collects those too.
            drop(futures);
        }
        self.table.borrow_mut().ready.clear();
    }
}

struct JoinState<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    waiter: RefCell<Option<Waker>>,
}

impl<T> JoinState<T> {
    fn complete(&self, out: Result<T, JoinError>) {
        let mut result = self.result.borrow_mut();
        if result.is_none() {
            *result = Some(out);
            drop(result);
            let waiter = self.waiter.borrow_mut().take();
            if let Some(w) = waiter {
                w.wake();
            }
        }
    }
}

/// The output side of a task's [`JoinState`], whatever the output type.
trait Join: Any {
    /// Completes the state with `err`, unless it is complete already.
    fn fail(&self, err: JoinError);
}

impl<T: 'static> Join for JoinState<T> {
    fn fail(&self, err: JoinError) {
        self.complete(Err(err));
    }
}

/// Completes the join state with `Cancelled` when a task is dropped before it finished.
struct CancelGuard(Rc<dyn Join>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.fail(JoinError::Cancelled);
    }
}

/// Why a task did not produce its output.
pub enum JoinError {
    /// The task was aborted, or dropped with its loop.
    Cancelled,
    /// The task panicked; this is the panic payload.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::Panicked(_) => f.write_str("JoinError::Panicked(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(non-string payload)");
                write!(f, "task panicked: {msg}")
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// A handle to a spawned task: await it for the task's output.
///
/// Dropping the handle detaches the task (it keeps running); [`abort`](JoinHandle::abort)
/// cancels it.
#[must_use = "dropping a JoinHandle detaches the task; call .detach() to say so"]
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
    index: u32,
    generation: u32,
    loop_id: u64,
}

impl<T> JoinHandle<T> {
    fn with_exec(&self, f: impl FnOnce(&Executor)) {
        Inner::with_current(|inner| {
            if inner.id == self.loop_id {
                f(&inner.exec);
            }
        });
    }

    /// Cancels the task: its future is dropped now, or right after its current poll if it is
    /// aborting itself. Awaiting the handle then gives [`JoinError::Cancelled`].
    pub fn abort(&self) {
        self.with_exec(|exec| exec.abort(self.index, self.generation));
    }

    /// Lets the task run on without anyone awaiting it.
    pub fn detach(self) {}

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.result.borrow().is_some()
    }

    /// Whether the task keeps [`Loop::run`](crate::Loop::run) going (libuv's `uv_ref` /
    /// `uv_unref`): `run` returns when only unreferenced tasks are left, as a libuv loop does
    /// when only unreferenced handles are. Tasks start referenced; the flag is not a count.
    pub fn set_ref(&self, referenced: bool) {
        self.with_exec(|exec| exec.set_referenced(self.index, self.generation, referenced));
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.state.result.borrow_mut().take() {
            return Poll::Ready(out);
        }
        let mut waiter = self.state.waiter.borrow_mut();
        match &*waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.index)
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_box_holds_the_future_alone() {
        let big = [7u8; 600];
        let future = async move {
            std::future::ready(()).await;
            big[599]
        };
        let size = std::mem::size_of_val(&future);
        let state = Rc::new(JoinState::<u8> {
            result: RefCell::new(None),
            waiter: RefCell::new(None),
        });
        let task = Running {
            future: Box::pin(future),
            join: Some(CancelGuard(state.clone())),
        };
        assert_eq!(std::mem::size_of_val(&*task.future), size);
        drop(task);
        assert!(matches!(
            *state.result.borrow(),
            Some(Err(JoinError::Cancelled))
        ));
    }
}

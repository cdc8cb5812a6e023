//! The single-threaded executor: a slab of boxed futures and a run queue of slab indices.
//!
//! Each task has one `Waker`, built once when the task is spawned (an `Arc` holding the loop id,
//! the slot and its generation). Waking pushes the slot index onto the run queue through the
//! thread's current loop, so waking never allocates. A waker used on a thread other than its
//! loop's does nothing: tasks and their wakers belong to one thread.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::Inner;

/// Slot index standing for the future given to `block_on`.
pub(crate) const MAIN_TASK: u32 = u32::MAX;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Slot {
    generation: u32,
    scheduled: bool,
    running: bool,
    aborted: bool,
    future: Option<BoxFuture>,
    waker: Option<Waker>,
}

pub(crate) struct Executor {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    ready: RefCell<VecDeque<u32>>,
    live: Cell<usize>,
    main_woken: Cell<bool>,
}

/// What a task's `Waker` points at.
struct TaskRef {
    loop_id: u64,
    index: u32,
    generation: u32,
}

impl Wake for TaskRef {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        Inner::with_current(|inner| {
            if inner.id == self.loop_id {
                inner.exec.schedule(self.index, self.generation);
            }
        });
    }
}

impl Executor {
    pub(crate) fn new() -> Executor {
        Executor {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            live: Cell::new(0),
            main_woken: Cell::new(false),
        }
    }

    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn has_ready(&self) -> bool {
        self.main_woken.get() || !self.ready.borrow().is_empty()
    }

    pub(crate) fn main_waker(&self, loop_id: u64) -> Waker {
        Waker::from(Arc::new(TaskRef {
            loop_id,
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
    pub(crate) fn schedule(&self, index: u32, generation: u32) {
        if index == MAIN_TASK {
            self.main_woken.set(true);
            return;
        }
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(index as usize)
            && slot.generation == generation
            && !slot.scheduled
            && slot.future.is_some()
        {
            slot.scheduled = true;
            self.ready.borrow_mut().push_back(index);
        }
    }

    pub(crate) fn spawn<F>(&self, loop_id: u64, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(JoinState {
            result: RefCell::new(None),
            waiter: RefCell::new(None),
        });
        let task_state = state.clone();
        let task = async move {
            let guard = CancelGuard(task_state);
            let mut future = pin!(future);
            let out =
                poll_fn(
                    |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                        Err(payload) => Poll::Ready(Err(JoinError::Panicked(payload))),
                    },
                )
                .await;
            guard.0.complete(out);
        };

        let index = self.free.borrow_mut().pop();
        let mut slots = self.slots.borrow_mut();
        let index = match index {
            Some(i) => i,
            None => {
                slots.push(Slot {
                    generation: 0,
                    scheduled: false,
                    running: false,
                    aborted: false,
                    future: None,
                    waker: None,
                });
                u32::try_from(slots.len() - 1).expect("more than 2^32 tasks")
            }
        };
        let slot = &mut slots[index as usize];
        slot.future = Some(Box::pin(task));
        slot.waker = Some(Waker::from(Arc::new(TaskRef {
            loop_id,
            index,
            generation: slot.generation,
        })));
        slot.scheduled = true;
        slot.aborted = false;
        let generation = slot.generation;
        drop(slots);
        self.ready.borrow_mut().push_back(index);
        self.live.set(self.live.get() + 1);
        JoinHandle {
            state,
            index,
            generation,
            loop_id,
        }
    }

    /// Polls ready tasks until the queue is empty or `budget` polls were made.
    pub(crate) fn run_ready(&self, budget: usize) {
        for _ in 0..budget {
            let Some(index) = self.ready.borrow_mut().pop_front() else {
                return;
            };
            self.run_task(index);
        }
    }

    fn run_task(&self, index: u32) {
        let (mut future, waker) = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[index as usize];
            slot.scheduled = false;
            let Some(future) = slot.future.take() else {
                return;
            };
            slot.running = true;
            (future, slot.waker.clone().expect("live task has a waker"))
        };
        let mut cx = Context::from_waker(&waker);
        let done = future.as_mut().poll(&mut cx).is_ready();
        let finished = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[index as usize];
            slot.running = false;
            if done || slot.aborted {
                self.release(slot, index);
                true
            } else {
                slot.future = Some(future);
                return;
            }
        };
        if finished {
            // Dropped outside the borrow: the future's destructors may wake or spawn tasks.
            drop(future);
        }
    }

    fn release(&self, slot: &mut Slot, index: u32) {
        slot.generation = slot.generation.wrapping_add(1);
        slot.scheduled = false;
        slot.aborted = false;
        slot.waker = None;
        self.free.borrow_mut().push(index);
        self.live.set(self.live.get() - 1);
    }

    fn abort(&self, index: u32, generation: u32) {
        let future = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(index as usize) else {
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
            self.release(slot, index);
            future
        };
        drop(future);
    }

    /// Drops every task (when the loop goes away).
    pub(crate) fn clear(&self) {
        loop {
            let futures: Vec<BoxFuture> = {
                let mut slots = self.slots.borrow_mut();
                let mut out = Vec::new();
                for (i, slot) in slots.iter_mut().enumerate() {
                    if let Some(f) = slot.future.take() {
                        out.push(f);
                        slot.generation = slot.generation.wrapping_add(1);
                        slot.waker = None;
                        slot.scheduled = false;
                        self.free.borrow_mut().push(i as u32);
                        self.live.set(self.live.get() - 1);
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
        self.ready.borrow_mut().clear();
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
            if let Some(w) = self.waiter.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Completes the join state with `Cancelled` when a task is dropped before it finished.
struct CancelGuard<T>(Rc<JoinState<T>>);

impl<T> Drop for CancelGuard<T> {
    fn drop(&mut self) {
        self.0.complete(Err(JoinError::Cancelled));
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
    /// Cancels the task: its future is dropped now, or right after its current poll if it is
    /// aborting itself. Awaiting the handle then gives [`JoinError::Cancelled`].
    pub fn abort(&self) {
        let (index, generation, loop_id) = (self.index, self.generation, self.loop_id);
        Inner::with_current(|inner| {
            if inner.id == loop_id {
                inner.exec.abort(index, generation);
            }
        });
    }

    /// Lets the task run on without anyone awaiting it.
    pub fn detach(self) {}

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.result.borrow().is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.state.result.borrow_mut().take() {
            return Poll::Ready(out);
        }
        *self.state.waiter.borrow_mut() = Some(cx.waker().clone());
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

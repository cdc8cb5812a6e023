//! Timers: a binary heap of deadlines over a slab of entries.
//!
//! Moving a deadline later (the common case: an idle timeout pushed back on every request)
//! only rewrites the entry; the heap keeps the old, earlier deadline and re-queues the entry
//! when that one comes up. Moving it earlier pushes a new heap item and leaves the old one
//! stale. Stale items are skipped when popped, and the heap is rebuilt when they outnumber
//! the live ones, so memory stays proportional to the live timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::Inner;

struct Entry {
    generation: u32,
    live: bool,
    fired: bool,
    deadline: Instant,
    /// The deadline under which this entry sits in the heap, if it does.
    queued: Option<Instant>,
    waker: Option<Waker>,
}

pub(crate) struct Timers {
    entries: Vec<Entry>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    stale: usize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            entries: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            stale: 0,
        }
    }

    fn insert(&mut self, deadline: Instant) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    live: false,
                    fired: false,
                    deadline,
                    queued: None,
                    waker: None,
                });
                u32::try_from(self.entries.len() - 1).expect("more than 2^32 timers")
            }
        };
        let e = &mut self.entries[index as usize];
        e.live = true;
        e.fired = false;
        e.deadline = deadline;
        e.queued = Some(deadline);
        e.waker = None;
        let generation = e.generation;
        self.heap.push(Reverse((deadline, index, generation)));
        (index, generation)
    }

    fn reset(&mut self, index: u32, deadline: Instant) {
        let e = &mut self.entries[index as usize];
        e.deadline = deadline;
        e.fired = false;
        match e.queued {
            Some(q) if q <= deadline => {}
            Some(_) => {
                self.stale += 1;
                e.queued = Some(deadline);
                self.heap.push(Reverse((deadline, index, e.generation)));
            }
            None => {
                e.queued = Some(deadline);
                self.heap.push(Reverse((deadline, index, e.generation)));
            }
        }
        self.maybe_compact();
    }

    fn remove(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        if e.queued.is_some() {
            self.stale += 1;
        }
        e.live = false;
        e.queued = None;
        e.generation = e.generation.wrapping_add(1);
        let waker = e.waker.take();
        self.free.push(index);
        drop(waker);
        self.maybe_compact();
    }

    fn poll(&mut self, index: u32, cx: &mut Context<'_>) -> Poll<()> {
        let e = &mut self.entries[index as usize];
        if e.fired {
            return Poll::Ready(());
        }
        match &e.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => e.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Fires every timer whose deadline is at or before `now`.
    pub(crate) fn fire(&mut self, now: Instant) {
        while let Some(&Reverse((at, index, generation))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let e = &mut self.entries[index as usize];
            if !e.live || e.generation != generation || e.queued != Some(at) {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            if e.deadline <= now {
                e.queued = None;
                e.fired = true;
                if let Some(w) = e.waker.take() {
                    w.wake();
                }
            } else {
                e.queued = Some(e.deadline);
                self.heap.push(Reverse((e.deadline, index, generation)));
            }
        }
    }

    /// The earliest deadline in the heap (possibly a stale one: waking early is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    fn maybe_compact(&mut self) {
        if self.stale > 64 && self.stale > self.heap.len() / 2 {
            let entries = &self.entries;
            self.heap.retain(|Reverse((at, i, g))| {
                let e = &entries[*i as usize];
                e.live && e.generation == *g && e.queued == Some(*at)
            });
            self.stale = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        for e in &mut self.entries {
            e.waker = None;
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

/// A future that completes at a deadline; see [`sleep`] and [`sleep_until`].
///
/// The deadline can be moved with [`reset`](Sleep::reset) without allocating, so one `Sleep`
/// can serve as a connection's idle or header timeout for its whole life.
pub struct Sleep {
    inner: Rc<Inner>,
    index: u32,
}

impl Sleep {
    /// A timer on this thread's loop firing at `deadline`.
    ///
    /// # Panics
    /// Panics if this thread has no [`Loop`](crate::Loop).
    pub fn new(deadline: Instant) -> Sleep {
        let inner = Inner::current().expect("uvlite::sleep called outside a Loop");
        let (index, _) = inner.timers.borrow_mut().insert(deadline);
        Sleep { inner, index }
    }

    /// When this timer fires.
    pub fn deadline(&self) -> Instant {
        self.inner.timers.borrow().entries[self.index as usize].deadline
    }

    /// Whether the deadline has passed (as seen by the loop's timer phase).
    pub fn is_elapsed(&self) -> bool {
        self.inner.timers.borrow().entries[self.index as usize].fired
    }

    /// Moves the deadline (earlier or later); a fired timer is armed again.
    pub fn reset(&mut self, deadline: Instant) {
        self.inner.timers.borrow_mut().reset(self.index, deadline);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.timers.borrow_mut().poll(self.index, cx)
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.inner.timers.borrow_mut().remove(self.index);
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// Completes after `duration`; never earlier.
///
/// # Panics
/// Panics if this thread has no [`Loop`](crate::Loop).
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::new(Instant::now() + duration)
}

/// Completes at `deadline`; never earlier.
///
/// # Panics
/// Panics if this thread has no [`Loop`](crate::Loop).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(deadline)
}

/// The error of [`timeout`] when the deadline came first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline has elapsed")
    }
}

/// Runs `future` for at most `duration`.
///
/// # Errors
/// Returns [`Elapsed`] (and drops the future) if the deadline passes first.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer = sleep(duration);
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushing_a_deadline_later_does_not_grow_the_heap() {
        let mut t = Timers::new();
        let start = Instant::now();
        let (i, _) = t.insert(start + Duration::from_secs(1));
        for k in 2..10_000 {
            t.reset(i, start + Duration::from_secs(k));
        }
        assert_eq!(t.heap_len(), 1);
        // At the old deadline the entry moves to its real one instead of firing.
        t.fire(start + Duration::from_secs(1));
        assert!(!t.entries[i as usize].fired);
        t.fire(start + Duration::from_secs(9_999));
        assert!(t.entries[i as usize].fired);
    }

    #[test]
    fn stale_items_are_compacted() {
        let mut t = Timers::new();
        let start = Instant::now();
        let (i, _) = t.insert(start + Duration::from_secs(1_000_000));
        for k in (1..10_000).rev() {
            t.reset(i, start + Duration::from_secs(k));
        }
        assert!(t.heap_len() < 200, "heap has {} items", t.heap_len());
        for _ in 0..10_000 {
            let (j, _) = t.insert(start + Duration::from_secs(5));
            t.remove(j);
        }
        assert!(t.heap_len() < 200, "heap has {} items", t.heap_len());
    }
}

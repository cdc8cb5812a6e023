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
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::Inner;

struct Entry {
    generation: u32,
    live: bool,
    /// Armed: it will fire at `deadline` (a stopped [`Timer`] is live but not armed).
    armed: bool,
    /// Firings not yet observed by the handle.
    fires: u64,
    deadline: Instant,
    /// Zero for a one-shot timer; otherwise it is re-armed this long after each firing.
    repeat: Duration,
    /// The deadline under which this entry sits in the heap, if it does.
    queued: Option<Instant>,
    waker: Option<Waker>,
}

/// The heap of deadlines: `O(log n)` to arm, re-arm earlier or fire; `O(1)` to push a deadline
/// later or to stop (the heap item goes stale and is skipped).
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

    /// A new, unarmed entry.
    fn insert(&mut self) -> u32 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    live: false,
                    armed: false,
                    fires: 0,
                    deadline: Instant::now(),
                    repeat: Duration::ZERO,
                    queued: None,
                    waker: None,
                });
                u32::try_from(self.entries.len() - 1).expect("more than 2^32 timers")
            }
        };
        let e = &mut self.entries[index as usize];
        e.live = true;
        e.armed = false;
        e.fires = 0;
        e.repeat = Duration::ZERO;
        e.queued = None;
        e.waker = None;
        index
    }

    /// Arms an entry to fire at `deadline` (then every `repeat`, if not zero); unobserved
    /// firings are forgotten.
    fn arm(&mut self, index: u32, deadline: Instant, repeat: Duration) {
        let e = &mut self.entries[index as usize];
        e.deadline = deadline;
        e.repeat = repeat;
        e.fires = 0;
        e.armed = true;
        match e.queued {
            // Later than (or at) the queued deadline: fire() moves it on when that comes up.
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

    /// Stops an entry: it will not fire until armed again.
    fn disarm(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        e.armed = false;
        if e.queued.take().is_some() {
            self.stale += 1;
        }
        self.maybe_compact();
    }

    fn remove(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        if e.queued.is_some() {
            self.stale += 1;
        }
        e.live = false;
        e.armed = false;
        e.queued = None;
        e.generation = e.generation.wrapping_add(1);
        let waker = e.waker.take();
        self.free.push(index);
        drop(waker);
        self.maybe_compact();
    }

    /// Ready with the number of firings since the last ready poll.
    fn poll_fires(&mut self, index: u32, cx: &mut Context<'_>, consume: bool) -> Poll<u64> {
        let e = &mut self.entries[index as usize];
        if e.fires > 0 {
            let n = e.fires;
            if consume {
                e.fires = 0;
            }
            return Poll::Ready(n);
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
                e.fires += 1;
                if e.repeat.is_zero() {
                    e.queued = None;
                    e.armed = false;
                } else {
                    // As libuv: the next deadline counts from the loop's time, never earlier.
                    e.deadline = now + e.repeat;
                    e.queued = Some(e.deadline);
                    self.heap.push(Reverse((e.deadline, index, generation)));
                }
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
        let index = {
            let mut timers = inner.timers.borrow_mut();
            let index = timers.insert();
            timers.arm(index, deadline, Duration::ZERO);
            index
        };
        Sleep { inner, index }
    }

    /// When this timer fires.
    pub fn deadline(&self) -> Instant {
        self.inner.timers.borrow().entries[self.index as usize].deadline
    }

    /// Whether the deadline has passed (as seen by the loop's timer phase).
    pub fn is_elapsed(&self) -> bool {
        self.inner.timers.borrow().entries[self.index as usize].fires > 0
    }

    /// Moves the deadline (earlier or later); a fired timer is armed again.
    pub fn reset(&mut self, deadline: Instant) {
        self.inner
            .timers
            .borrow_mut()
            .arm(self.index, deadline, Duration::ZERO);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let fires = self
            .inner
            .timers
            .borrow_mut()
            .poll_fires(self.index, cx, false);
        fires.map(|_| ())
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

/// A libuv-style timer handle: one-shot or repeating, stopped and restarted at will; await
/// [`tick`](Timer::tick) for its firings.
///
/// It never fires early: a firing happens on the first loop turn at or after its deadline, and
/// a repeating timer's next deadline counts from the loop's time at the firing (as libuv's).
/// Firings the task has not observed yet are counted, not queued.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let lp = uvlite::Loop::new()?;
/// lp.block_on(async {
///     let timer = uvlite::Timer::new();
///     timer.start(Duration::from_millis(1), Duration::from_millis(2));
///     let mut seen = 0;
///     while seen < 3 {
///         seen += timer.tick().await;
///     }
///     timer.stop();
///     assert!(!timer.is_active());
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Timer {
    inner: Rc<Inner>,
    index: u32,
}

impl Timer {
    /// A stopped timer on this thread's loop (`uv_timer_init`).
    ///
    /// # Panics
    /// Panics if this thread has no [`Loop`](crate::Loop).
    pub fn new() -> Timer {
        let inner = Inner::current().expect("uvlite::Timer::new called outside a Loop");
        let index = inner.timers.borrow_mut().insert();
        Timer { inner, index }
    }

    /// Arms the timer to fire after `timeout`, then every `repeat` if it is not zero
    /// (`uv_timer_start`). Restarting forgets unobserved firings.
    pub fn start(&self, timeout: Duration, repeat: Duration) {
        let deadline = Instant::now() + timeout;
        self.inner
            .timers
            .borrow_mut()
            .arm(self.index, deadline, repeat);
    }

    /// Stops the timer; it does not fire until started again (`uv_timer_stop`).
    pub fn stop(&self) {
        self.inner.timers.borrow_mut().disarm(self.index);
    }

    /// Restarts a repeating timer with its repeat as the timeout (`uv_timer_again`).
    ///
    /// # Errors
    /// `InvalidInput` if the repeat is zero (libuv's `EINVAL`).
    pub fn again(&self) -> io::Result<()> {
        let repeat = self.repeat();
        if repeat.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Timer::again needs a repeating timer",
            ));
        }
        self.start(repeat, repeat);
        Ok(())
    }

    /// Changes the repeat interval; it takes effect at the next firing (`uv_timer_set_repeat`).
    pub fn set_repeat(&self, repeat: Duration) {
        self.inner.timers.borrow_mut().entries[self.index as usize].repeat = repeat;
    }

    /// The repeat interval (zero for a one-shot timer).
    pub fn repeat(&self) -> Duration {
        self.inner.timers.borrow().entries[self.index as usize].repeat
    }

    /// Whether the timer is armed.
    pub fn is_active(&self) -> bool {
        self.inner.timers.borrow().entries[self.index as usize].armed
    }

    /// Time until the next firing, zero if due or stopped (`uv_timer_get_due_in`).
    pub fn due_in(&self) -> Duration {
        let timers = self.inner.timers.borrow();
        let e = &timers.entries[self.index as usize];
        if e.armed {
            e.deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        }
    }

    /// Waits for the next firing; returns how many firings happened since the last `tick`
    /// returned (at least 1).
    pub async fn tick(&self) -> u64 {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Poll form of [`tick`](Timer::tick).
    pub fn poll_tick(&self, cx: &mut Context<'_>) -> Poll<u64> {
        self.inner
            .timers
            .borrow_mut()
            .poll_fires(self.index, cx, true)
    }
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::new()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.inner.timers.borrow_mut().remove(self.index);
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("active", &self.is_active())
            .field("repeat", &self.repeat())
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

    /// A fresh entry armed at `deadline`.
    fn sleep_at(t: &mut Timers, deadline: Instant) -> u32 {
        let i = t.insert();
        t.arm(i, deadline, Duration::ZERO);
        i
    }

    #[test]
    fn pushing_a_deadline_later_does_not_grow_the_heap() {
        let mut t = Timers::new();
        let start = Instant::now();
        let i = sleep_at(&mut t, start + Duration::from_secs(1));
        for k in 2..10_000 {
            t.arm(i, start + Duration::from_secs(k), Duration::ZERO);
        }
        assert_eq!(t.heap_len(), 1);
        // At the old deadline the entry moves to its real one instead of firing.
        t.fire(start + Duration::from_secs(1));
        assert_eq!(t.entries[i as usize].fires, 0);
        t.fire(start + Duration::from_secs(9_999));
        assert_eq!(t.entries[i as usize].fires, 1);
    }

    #[test]
    fn stale_items_are_compacted() {
        let mut t = Timers::new();
        let start = Instant::now();
        let i = sleep_at(&mut t, start + Duration::from_secs(1_000_000));
        for k in (1..10_000).rev() {
            t.arm(i, start + Duration::from_secs(k), Duration::ZERO);
        }
        assert!(t.heap_len() < 200, "heap has {} items", t.heap_len());
        for _ in 0..10_000 {
            let j = sleep_at(&mut t, start + Duration::from_secs(5));
            t.remove(j);
        }
        for _ in 0..10_000 {
            t.disarm(i);
            t.arm(i, start + Duration::from_secs(3), Duration::ZERO);
        }
        assert!(t.heap_len() < 200, "heap has {} items", t.heap_len());
    }

    #[test]
    fn a_repeating_entry_re_arms_from_the_firing_time() {
        let mut t = Timers::new();
        let start = Instant::now();
        let i = t.insert();
        t.arm(
            i,
            start + Duration::from_millis(10),
            Duration::from_millis(5),
        );
        t.fire(start + Duration::from_millis(9));
        assert_eq!(t.entries[i as usize].fires, 0);
        t.fire(start + Duration::from_millis(12));
        assert_eq!(t.entries[i as usize].fires, 1);
        // Next deadline: 12 + 5, not 10 + 5.
        t.fire(start + Duration::from_millis(16));
        assert_eq!(t.entries[i as usize].fires, 1);
        t.fire(start + Duration::from_millis(17));
        assert_eq!(t.entries[i as usize].fires, 2);
        t.disarm(i);
        t.fire(start + Duration::from_secs(60));
        assert_eq!(t.entries[i as usize].fires, 2);
        assert!(!t.entries[i as usize].armed);
    }

    /// 100,000 live timers in virtual time: each fires exactly once, never before its
    /// deadline, and the heap stays proportional to the live timers through re-arms and stops.
    #[test]
    fn a_hundred_thousand_timers() {
        const N: u64 = 100_000;
        let mut t = Timers::new();
        let start = Instant::now();
        let at = |k: u64| start + Duration::from_micros((k * 7_919) % 1_000_003);
        let ids: Vec<u32> = (0..N).map(|k| sleep_at(&mut t, at(k))).collect();
        // Move every other one (half earlier, half later), stop every tenth.
        for (k, &i) in ids.iter().enumerate() {
            let k = k as u64;
            if k.is_multiple_of(2) {
                t.arm(i, at(k * 3 + 1), Duration::ZERO);
            }
            if k % 10 == 5 {
                t.disarm(i);
            }
        }
        let expected = |k: u64| {
            if k.is_multiple_of(2) {
                at(k * 3 + 1)
            } else {
                at(k)
            }
        };
        assert!(
            t.heap_len() as u64 <= 2 * N,
            "heap has {} items",
            t.heap_len()
        );
        let mut now = start;
        let end = start + Duration::from_secs(2);
        while now <= end {
            t.fire(now);
            for (k, &i) in ids.iter().enumerate().step_by(997) {
                let fired = t.entries[i as usize].fires;
                if k % 10 == 5 {
                    assert_eq!(fired, 0);
                } else {
                    assert_eq!(fired, u64::from(expected(k as u64) <= now), "timer {k}");
                }
            }
            now += Duration::from_millis(50);
        }
        let fired = ids
            .iter()
            .filter(|&&i| t.entries[i as usize].fires == 1)
            .count() as u64;
        assert_eq!(fired, N - N / 10);
        assert_eq!(t.heap_len(), 0);
    }
}

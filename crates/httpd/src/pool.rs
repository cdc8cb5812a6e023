//! A per-thread free list sized by demand, for the storage that connections take while they
//! serve a request and give back while they are idle.

/// Gives back counted per window: the peaks of the current and the last window bound what
/// the pool keeps.
const WINDOW: u32 = 4096;

/// Free items of one kind, and how many are out.
///
/// It keeps at most as many items, out and free together, as were out at once lately (the
/// higher peak of the current and the last window of [`WINDOW`] give-backs). Steady traffic
/// therefore allocates nothing (the items of the peak are kept), while ten thousand idle
/// connections cost only the storage of the requests that were in progress at once, not one
/// item each; a spike's items are let go one window after it.
pub(crate) struct Pool<T> {
    free: Vec<T>,
    out: usize,
    peak: usize,
    last_peak: usize,
    returns: u32,
}

impl<T> Pool<T> {
    pub(crate) const fn new() -> Pool<T> {
        Pool {
            free: Vec::new(),
            out: 0,
            peak: 0,
            last_peak: 0,
            returns: 0,
        }
    }

    /// A free item, if there is one; either way one more item is out (make one if `None`).
    pub(crate) fn take(&mut self) -> Option<T> {
        self.out += 1;
        self.peak = self.peak.max(self.out);
        self.free.pop()
    }

    /// Takes back an item that was out; keeps it if the recent peak needs it.
    pub(crate) fn give(&mut self, item: T) {
        if self.returned() {
            self.free.push(item);
        }
    }

    /// Counts a return; whether the pool has room for the returned item.
    fn returned(&mut self) -> bool {
        self.out = self.out.saturating_sub(1);
        self.returns += 1;
        if self.returns == WINDOW {
            self.returns = 0;
            self.last_peak = self.peak;
            self.peak = self.out;
        }
        self.free.len() + self.out < self.peak.max(self.last_peak)
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rounds` times, `at_once` items taken (made when the pool has none), then all given
    /// back; returns how many were made.
    fn rounds(pool: &mut Pool<Box<u32>>, rounds: usize, at_once: usize) -> usize {
        let mut made = 0;
        for _ in 0..rounds {
            let items: Vec<_> = (0..at_once)
                .map(|_| {
                    pool.take().unwrap_or_else(|| {
                        made += 1;
                        Box::new(0)
                    })
                })
                .collect();
            items.into_iter().for_each(|i| pool.give(i));
        }
        made
    }

    #[test]
    fn steady_traffic_finds_a_free_item_every_time() {
        let mut pool: Pool<Box<u32>> = Pool::new();
        // Three requests in progress at once, then all three done.
        let made = rounds(&mut pool, 3 * WINDOW as usize, 3);
        assert_eq!(made, 3, "only the peak's items are ever made");
        assert_eq!(pool.free(), 3);
    }

    #[test]
    fn idle_holders_beyond_the_peak_keep_nothing_in_the_pool() {
        let mut pool: Pool<Box<u32>> = Pool::new();
        // 1,000 connections, 10 busy at a time: each takes an item, then goes idle.
        let made = rounds(&mut pool, 100, 10);
        assert_eq!(made, 10);
        assert_eq!(pool.free(), 10, "the peak's items, not one per connection");
    }

    #[test]
    fn a_spike_is_let_go_after_a_window() {
        let mut pool: Pool<Box<u32>> = Pool::new();
        let spike: Vec<_> = (0..100).map(|_| pool.take().unwrap_or_default()).collect();
        spike.into_iter().for_each(|i| pool.give(i));
        assert_eq!(pool.free(), 100);
        // Then one request at a time: two windows later, the spike's items go, one per
        // give-back.
        for _ in 0..2 * WINDOW + 100 {
            let i = pool.take().unwrap_or_default();
            pool.give(i);
        }
        assert!(
            pool.free() <= 2,
            "{} items kept after the spike",
            pool.free()
        );
    }
}

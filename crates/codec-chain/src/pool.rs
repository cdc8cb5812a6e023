//! Buffers kept per thread for reuse, so an idle connection holds no buffer and a busy one
//! allocates none: read buffers (kept initialised, so reuse costs no zeroing) and output
//! queues (kept empty).

use std::cell::RefCell;

/// Most buffers of each kind kept per thread; more are freed.
const MAX_POOLED: usize = 1024;

/// Most bytes of storage kept per kind and thread (4 MiB): a burst of connections with big
/// answers in flight does not leave its buffers pinned for good.
const MAX_POOLED_BYTES: usize = 4 << 20;

/// Largest buffer kept; bigger ones (a connection that needed a big read or a big answer)
/// are freed rather than pinned.
const MAX_POOLED_SIZE: usize = 64 * 1024;

/// The free buffers of one kind, and their total capacity.
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            free: Vec::new(),
            bytes: 0,
        }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let v = self.free.pop()?;
        self.bytes -= v.capacity();
        Some(v)
    }

    fn give(&mut self, v: Vec<u8>) {
        let size = v.capacity();
        if size == 0 || size > MAX_POOLED_SIZE {
            return;
        }
        if self.free.len() < MAX_POOLED && self.bytes + size <= MAX_POOLED_BYTES {
            self.bytes += size;
            self.free.push(v);
        }
    }
}

thread_local! {
    static READ: RefCell<Pool> = const { RefCell::new(Pool::new()) };
    static WRITE: RefCell<Pool> = const { RefCell::new(Pool::new()) };
}

/// A read buffer: initialised bytes (its `len`), at least `min` of them.
pub(crate) fn take_read(min: usize) -> Vec<u8> {
    let mut v = READ
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default();
    if v.len() < min {
        v.resize(min, 0);
    }
    v
}

/// Gives a read buffer back (its contents are garbage from now on).
pub(crate) fn give_read(v: Vec<u8>) {
    // (`try_with`: at thread exit the pool may be gone before the last connection.)
    let _ = READ.try_with(|p| p.borrow_mut().give(v));
}

/// An empty output queue.
pub(crate) fn take_write() -> Vec<u8> {
    WRITE
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives an output queue back.
pub(crate) fn give_write(mut v: Vec<u8>) {
    v.clear();
    let _ = WRITE.try_with(|p| p.borrow_mut().give(v));
}

/// Read buffers in this thread's pool.
#[cfg(test)]
pub(crate) fn pooled_reads() -> usize {
    READ.with(|p| p.borrow().free.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_big_buffers_leaves_at_most_the_byte_cap_pooled() {
        let mut pool = Pool::new();
        for _ in 0..MAX_POOLED {
            pool.give(Vec::with_capacity(MAX_POOLED_SIZE));
        }
        assert!(
            pool.bytes <= MAX_POOLED_BYTES,
            "{} bytes pooled",
            pool.bytes
        );
        assert_eq!(pool.free.len(), MAX_POOLED_BYTES / MAX_POOLED_SIZE);
        // Taking one back makes room for exactly one more.
        let v = pool.take().unwrap();
        assert_eq!(pool.bytes, MAX_POOLED_BYTES - MAX_POOLED_SIZE);
        pool.give(v);
        assert_eq!(pool.bytes, MAX_POOLED_BYTES);
    }

    #[test]
    fn small_buffers_are_kept_up_to_the_count_cap() {
        let mut pool = Pool::new();
        for _ in 0..MAX_POOLED + 10 {
            pool.give(Vec::with_capacity(4096));
        }
        assert_eq!(pool.free.len(), MAX_POOLED);
        assert_eq!(pool.bytes, MAX_POOLED * 4096);
        // Empty and oversized buffers are never kept.
        pool.give(Vec::new());
        pool.give(Vec::with_capacity(MAX_POOLED_SIZE + 1));
        assert_eq!(pool.free.len(), MAX_POOLED);
    }
}

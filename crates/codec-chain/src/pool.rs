//! Buffers kept per thread for reuse, so an idle connection holds no buffer and a busy one
//! allocates none: read buffers (kept initialised, so reuse costs no zeroing) and output
//! queues (kept empty).

use std::cell::RefCell;

/// Most buffers of each kind kept per thread; more are freed.
const MAX_POOLED: usize = 1024;

/// Largest buffer kept; bigger ones (a connection that needed a big read or a big answer)
/// are freed rather than pinned.
const MAX_POOLED_SIZE: usize = 64 * 1024;

thread_local! {
    static READ: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static WRITE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn give(pool: &'static std::thread::LocalKey<RefCell<Vec<Vec<u8>>>>, v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > MAX_POOLED_SIZE {
        return;
    }
    pool.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            p.push(v);
        }
    });
}

/// A read buffer: initialised bytes (its `len`), at least `min` of them.
pub(crate) fn take_read(min: usize) -> Vec<u8> {
    let mut v = READ.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    if v.len() < min {
        v.resize(min, 0);
    }
    v
}

/// Gives a read buffer back (its contents are garbage from now on).
pub(crate) fn give_read(v: Vec<u8>) {
    give(&READ, v);
}

/// An empty output queue.
pub(crate) fn take_write() -> Vec<u8> {
    WRITE.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

/// Gives an output queue back.
pub(crate) fn give_write(mut v: Vec<u8>) {
    v.clear();
    give(&WRITE, v);
}

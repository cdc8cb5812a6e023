//! The read buffer a [`Decoder`](crate::Decoder) works on.

/// Bytes read from a stream and not yet consumed by the decoder.
///
/// The storage is initialised once and reused: consuming moves a start offset, and the bytes
/// left over are moved to the front only when the free space at the end runs short, so a
/// buffer that is drained completely (the common case) costs nothing to reset.
#[derive(Debug, Default)]
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    /// An empty buffer with no storage yet.
    pub fn new() -> Buffer {
        Buffer::default()
    }

    /// The unconsumed bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks the first `n` unconsumed bytes as consumed.
    ///
    /// # Panics
    /// Panics if `n` is larger than [`len`](Buffer::len).
    pub fn consume(&mut self, n: usize) {
        assert!(
            n <= self.len(),
            "consume({n}) past the end of {} bytes",
            self.len()
        );
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes every unconsumed byte at once.
    pub fn take_all(&mut self) -> &[u8] {
        let (start, end) = (self.start, self.end);
        self.start = 0;
        self.end = 0;
        &self.data[start..end]
    }

    /// Appends bytes (for tests and for callers that feed a decoder by hand).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Bytes of storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Gives the storage back to this thread's pool if the buffer is empty, so an idle
    /// connection holds none; the next read takes a buffer from the pool again.
    pub fn release(&mut self) {
        if self.is_empty() && !self.data.is_empty() {
            crate::pool::give_read(std::mem::take(&mut self.data));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space of at least `min` bytes at the end, compacting or growing as needed.
    pub(crate) fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = crate::pool::take_read(min);
        }
        if self.data.len() - self.end < min {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.data.len() - self.end < min {
                let want = (self.end + min).max(self.data.len() * 2);
                self.data.resize(want, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Adds `n` bytes written into [`spare`](Buffer::spare) to the unconsumed ones.
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.data.len());
        self.end += n;
    }
}

impl Drop for Buffer {
    /// Gives the storage back to this thread's pool: a connection that ends (say, after
    /// `Connection: close`) leaves its buffer to the next one, which then neither allocates
    /// nor zeroes one.
    fn drop(&mut self) {
        if !self.data.is_empty() {
            crate::pool::give_read(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_gives_its_storage_to_the_pool() {
        let mut b = Buffer::new();
        b.extend_from_slice(b"unread bytes");
        let before = crate::pool::pooled_reads();
        drop(b);
        assert_eq!(crate::pool::pooled_reads(), before + 1);
        // The next buffer takes it: no allocation, the same storage.
        let mut b = Buffer::new();
        b.extend_from_slice(b"x");
        assert_eq!(crate::pool::pooled_reads(), before);
        // A buffer that never held storage gives nothing.
        drop(Buffer::new());
        assert_eq!(crate::pool::pooled_reads(), before);
    }

    #[test]
    fn consume_compact_and_grow() {
        let mut b = Buffer::new();
        b.extend_from_slice(b"hello world");
        b.consume(6);
        assert_eq!(b.as_slice(), b"world");
        let cap = b.capacity();
        b.extend_from_slice(&[b'!'; 100]);
        assert_eq!(&b.as_slice()[..6], b"world!");
        assert_eq!(b.len(), 105);
        assert!(b.capacity() >= cap);
        b.consume(105);
        assert!(b.is_empty());
        b.release();
        assert_eq!(b.capacity(), 0);
    }
}

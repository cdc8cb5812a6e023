//! The steady state allocates nothing: waking, polling and the per-event path; and what an
//! idle task costs. A counting global allocator (per thread) measures it.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{Future, pending, poll_fn};
use std::io;
use std::task::Poll;

use uvlite::{TcpListener, TcpStream, spawn_local};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + layout.size()));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + new_size.saturating_sub(layout.size())));
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

fn bytes() -> usize {
    BYTES.with(Cell::get)
}

/// Completes after being woken (by itself) `n` times.
fn yields(n: usize) -> impl Future<Output = ()> {
    let mut left = n;
    poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[test]
fn waking_and_polling_do_not_allocate() -> io::Result<()> {
    util::run(async {
        // Two tasks ping-ponging wakes through the run queue, after a warm-up.
        spawn_local(yields(1_000)).await.unwrap();
        let other = spawn_local(yields(10_000));
        let before = allocs();
        yields(10_000).await;
        let during = allocs() - before;
        other.await.unwrap();
        assert_eq!(during, 0, "{during} allocations in 20,000 wakes");
        Ok(())
    })
}

#[test]
fn tcp_round_trips_do_not_allocate() -> io::Result<()> {
    util::run(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        listener.listen(8)?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let echo = spawn_local(async move {
            let mut buf = [0u8; 64];
            loop {
                let n = server.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), io::Error>(());
                }
                server.write_all(&buf[..n]).await?;
            }
        });
        let mut buf = [0u8; 64];
        let mut round_trip = async || -> io::Result<()> {
            client.write_all(b"ping").await?;
            let mut got = 0;
            while got < 4 {
                got += client.read(&mut buf[got..]).await?;
            }
            assert_eq!(&buf[..4], b"ping");
            Ok(())
        };
        for _ in 0..100 {
            round_trip().await?;
        }
        let before = allocs();
        for _ in 0..1_000 {
            round_trip().await?;
        }
        let during = allocs() - before;
        client.shutdown(std::net::Shutdown::Write)?;
        echo.await.unwrap()?;
        assert_eq!(during, 0, "{during} allocations in 1,000 round trips");
        Ok(())
    })
}

#[test]
fn an_idle_task_costs_under_half_a_kilobyte() -> io::Result<()> {
    const TASKS: usize = 10_000;
    util::run(async {
        // Warm the run queue and the slab, then count what 10,000 idle tasks add.
        let warm: Vec<_> = (0..TASKS).map(|_| spawn_local(pending::<()>())).collect();
        yields(1).await;
        for t in &warm {
            t.abort();
        }
        drop(warm);
        let before = bytes();
        let tasks: Vec<_> = (0..TASKS).map(|_| spawn_local(pending::<()>())).collect();
        yields(1).await;
        let per_task = (bytes() - before - tasks.capacity() * size_of::<usize>() * 3) / TASKS;
        println!("bytes per idle task (future, waker, join state): {per_task}");
        assert!(per_task < 512, "{per_task} bytes per idle task");
        for t in &tasks {
            t.abort();
        }
        Ok(())
    })
}

//! The executor: spawn, join, abort, panics, and the run modes.

mod util;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use uvlite::{JoinError, Loop, sleep, spawn_local};

#[test]
fn join_handles_return_outputs_in_any_order() -> io::Result<()> {
    util::run(async {
        let slow = spawn_local(async {
            sleep(Duration::from_millis(30)).await;
            1
        });
        let fast = spawn_local(async { 2 });
        assert_eq!(fast.await.unwrap(), 2);
        assert_eq!(slow.await.unwrap(), 1);
        Ok(())
    })
}

#[test]
fn a_panicking_task_reports_it_and_the_loop_lives_on() -> io::Result<()> {
    util::run(async {
        let bad = spawn_local(async {
            if Rc::new(1).as_ref() == &1 {
                panic!("boom");
            }
        });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: boom");
        assert_eq!(spawn_local(async { 5 }).await.unwrap(), 5);
        Ok(())
    })
}

#[test]
fn detached_tasks_run_to_the_end() -> io::Result<()> {
    let lp = Loop::new()?;
    let count = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let c = count.clone();
        lp.spawn_detached(async move {
            sleep(Duration::from_millis(1)).await;
            c.set(c.get() + 1);
            c.get()
        });
    }
    lp.run()?;
    assert_eq!(count.get(), 3);
    assert_eq!(lp.tasks(), 0);
    Ok(())
}

#[test]
fn run_returns_when_the_last_task_ends_in_the_first_turn() {
    // Tasks that end without waiting (one returns, one panics) finish in the turn's first
    // pass over the ready tasks: the turn must not then wait in the kernel for nothing.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lp = Loop::new().unwrap();
        lp.spawn(async { 1 }).detach();
        let panicked = lp.spawn(async { panic!("on purpose") });
        lp.run().unwrap();
        assert!(!lp.alive());
        let joined = lp.block_on(panicked);
        done.send(matches!(joined, Err(uvlite::JoinError::Panicked(_))))
            .unwrap();
    });
    let panicked = finished
        .recv_timeout(util::LIMIT)
        .expect("Loop::run did not return once its tasks had ended");
    assert!(
        panicked,
        "the panic was not reported through the JoinHandle"
    );
}

#[test]
fn abort_drops_the_future_and_reports_cancelled() -> io::Result<()> {
    util::run(async {
        let dropped = Rc::new(Cell::new(false));
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let flag = Flag(dropped.clone());
        let task = spawn_local(async move {
            let _flag = flag;
            sleep(Duration::from_secs(3600)).await;
        });
        sleep(Duration::from_millis(5)).await;
        task.abort();
        assert!(dropped.get());
        assert!(matches!(task.await, Err(JoinError::Cancelled)));
        Ok(())
    })
}

#[test]
fn run_returns_when_no_task_is_left_and_stop_stops_it() -> io::Result<()> {
    let lp = Loop::new()?;
    let count = Rc::new(Cell::new(0));
    for _ in 0..10 {
        let c = count.clone();
        lp.spawn(async move {
            sleep(Duration::from_millis(1)).await;
            c.set(c.get() + 1);
        })
        .detach();
    }
    lp.run()?;
    assert_eq!(count.get(), 10);
    assert_eq!(lp.tasks(), 0);

    lp.spawn(async { sleep(Duration::from_secs(3600)).await })
        .detach();
    assert!(lp.run_nowait()?);
    lp.stop();
    lp.run()?; // returns at once: stop was requested
    assert_eq!(lp.tasks(), 1);
    Ok(())
}

#[test]
fn one_loop_per_thread() -> io::Result<()> {
    let _lp = Loop::new()?;
    assert_eq!(
        Loop::new().err().map(|e| e.kind()),
        Some(io::ErrorKind::AlreadyExists)
    );
    Ok(())
}

/// A one-shot value that another thread sets: the receiving future stores its waker, the
/// sending thread wakes it (the waker crosses threads).
struct Shared {
    value: Option<u32>,
    waker: Option<std::task::Waker>,
}

fn channel() -> (
    std::sync::Arc<std::sync::Mutex<Shared>>,
    impl std::future::Future<Output = u32>,
) {
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let rx = shared.clone();
    let fut = std::future::poll_fn(move |cx| {
        let mut s = rx.lock().unwrap();
        match s.value.take() {
            Some(v) => std::task::Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    });
    (shared, fut)
}

fn send_later(shared: std::sync::Arc<std::sync::Mutex<Shared>>, value: u32) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let waker = {
            let mut s = shared.lock().unwrap();
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
}

#[test]
fn a_task_woken_from_another_thread_runs() -> io::Result<()> {
    util::run(async {
        let (tx, rx) = channel();
        let task = spawn_local(rx);
        send_later(tx, 41);
        assert_eq!(task.await.unwrap(), 41);
        Ok(())
    })
}

#[test]
fn block_on_woken_from_another_thread_returns() -> io::Result<()> {
    let lp = Loop::new()?;
    let (tx, rx) = channel();
    send_later(tx, 7);
    // Nothing else is alive on the loop: only the remote wake can end this (the timeout only
    // bounds the test).
    let got = lp.block_on(uvlite::timeout(util::LIMIT, rx));
    assert_eq!(got, Ok(7));
    Ok(())
}

#[test]
fn a_waker_outliving_its_loop_is_harmless() -> io::Result<()> {
    let waker = {
        let lp = Loop::new()?;
        lp.block_on(std::future::poll_fn(|cx| {
            std::task::Poll::Ready(cx.waker().clone())
        }))
    };
    waker.wake_by_ref();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    // A new loop on this thread is not disturbed by the old loop's waker.
    let lp = Loop::new()?;
    assert_eq!(lp.block_on(async { 1 }), 1);
    Ok(())
}

#[test]
fn run_returns_when_only_unreferenced_tasks_are_left() -> io::Result<()> {
    let lp = Loop::new()?;
    let forever = lp.spawn(async { sleep(Duration::from_secs(3600)).await });
    forever.set_ref(false);
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    lp.spawn(async move {
        sleep(Duration::from_millis(5)).await;
        d.set(true);
    })
    .detach();
    assert!(lp.alive());
    lp.run()?;
    assert!(done.get());
    assert!(!lp.alive());
    assert_eq!(lp.tasks(), 1);
    assert!(!forever.is_finished());
    forever.set_ref(true);
    assert!(lp.alive());
    Ok(())
}

#[test]
fn a_task_that_wakes_itself_runs_again() -> io::Result<()> {
    util::run(async {
        let mut polls = 0;
        let task = spawn_local(std::future::poll_fn(move |cx| {
            polls += 1;
            if polls == 3 {
                return std::task::Poll::Ready(polls);
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }));
        assert_eq!(task.await.unwrap(), 3);
        Ok(())
    })
}

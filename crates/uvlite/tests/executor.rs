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

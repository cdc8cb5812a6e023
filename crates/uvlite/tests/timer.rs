//! Timers: never early, reset, and timeout.

mod util;

use std::io;
use std::time::{Duration, Instant};

use uvlite::{Elapsed, sleep, sleep_until, timeout};

#[test]
fn timers_never_fire_early() -> io::Result<()> {
    util::run(async {
        for ms in [1u64, 5, 20, 50] {
            let start = Instant::now();
            sleep(Duration::from_millis(ms)).await;
            assert!(start.elapsed() >= Duration::from_millis(ms));
        }
        Ok(())
    })
}

#[test]
fn reset_moves_the_deadline_both_ways() -> io::Result<()> {
    util::run(async {
        let start = Instant::now();
        let mut t = sleep_until(start + Duration::from_secs(3600));
        t.reset(start + Duration::from_millis(20));
        (&mut t).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(t.is_elapsed());
        let again = Instant::now();
        t.reset(again + Duration::from_millis(10));
        t.reset(again + Duration::from_millis(40));
        (&mut t).await;
        assert!(again.elapsed() >= Duration::from_millis(40));
        Ok(())
    })
}

#[test]
fn timeout_cancels_a_slow_future() -> io::Result<()> {
    util::run(async {
        let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600))).await;
        assert_eq!(slow, Err(Elapsed));
        let fast = timeout(Duration::from_secs(3600), async { 7 }).await;
        assert_eq!(fast, Ok(7));
        Ok(())
    })
}

#[test]
fn a_repeating_timer_fires_again_and_again_never_early() -> io::Result<()> {
    util::run(async {
        let timer = uvlite::Timer::new();
        assert!(!timer.is_active());
        let start = Instant::now();
        timer.start(Duration::from_millis(10), Duration::from_millis(5));
        assert!(timer.is_active());
        let mut last = start;
        let mut fires = 0;
        let mut gaps_ok = true;
        while fires < 4 {
            fires += timer.tick().await;
            let now = Instant::now();
            let min = if last == start { 10 } else { 5 };
            gaps_ok &= now - last >= Duration::from_millis(min);
            last = now;
        }
        assert!(gaps_ok, "a firing came early");
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert!(timer.is_active());
        timer.stop();
        assert!(!timer.is_active());
        // A stopped timer never fires.
        let stopped = timeout(Duration::from_millis(30), timer.tick()).await;
        assert_eq!(stopped, Err(Elapsed));
        Ok(())
    })
}

#[test]
fn again_restarts_a_repeating_timer_and_refuses_a_one_shot() -> io::Result<()> {
    util::run(async {
        let timer = uvlite::Timer::new();
        timer.start(Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(
            timer.again().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        timer.set_repeat(Duration::from_millis(15));
        let start = Instant::now();
        timer.again()?;
        assert!(timer.due_in() <= Duration::from_millis(15));
        assert_eq!(timer.tick().await, 1);
        assert!(start.elapsed() >= Duration::from_millis(15));
        // A one-shot timer fires once and is then inactive.
        timer.start(Duration::from_millis(1), Duration::ZERO);
        assert_eq!(timer.tick().await, 1);
        assert!(!timer.is_active());
        Ok(())
    })
}

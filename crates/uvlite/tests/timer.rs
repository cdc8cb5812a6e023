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

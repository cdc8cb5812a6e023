//! Timers: a repeating `Timer`, a `sleep`, and a `timeout` around a slow future.
//!
//! Run with: `cargo run -p uvlite --example timers`.

use std::time::{Duration, Instant};

use uvlite::{Loop, Timer, sleep, timeout};

fn main() -> std::io::Result<()> {
    let lp = Loop::new()?;
    let start = Instant::now();
    lp.block_on(async {
        // A heartbeat every 100 ms, from its own task.
        let beat = uvlite::spawn_local(async move {
            let timer = Timer::new();
            timer.start(Duration::from_millis(100), Duration::from_millis(100));
            loop {
                let n = timer.tick().await;
                println!("{:>5.0?} tick (x{n})", start.elapsed());
            }
        });

        sleep(Duration::from_millis(350)).await;
        println!("{:>5.0?} slept 350 ms", start.elapsed());

        let slow = timeout(Duration::from_millis(200), sleep(Duration::from_secs(10))).await;
        println!("{:>5.0?} slow future: {slow:?}", start.elapsed());

        beat.abort();
    });
    // Nothing is left: run() returns at once.
    lp.run()?;
    println!("done after {:.0?}", start.elapsed());
    Ok(())
}

//! Signals as async streams: count SIGUSR1, stop on the second SIGINT.
//!
//! Run with: `cargo run -p uvlite --example signals`, then `kill -USR1 <pid>` and Ctrl-C.

use std::future::poll_fn;
use std::task::Poll;

use uvlite::{Loop, Signal};

fn main() -> std::io::Result<()> {
    let lp = Loop::new()?;
    lp.block_on(async {
        let usr1 = Signal::new(libc::SIGUSR1)?;
        let int = Signal::new(libc::SIGINT)?;
        println!(
            "pid {}: try `kill -USR1 {0}`; Ctrl-C twice to stop",
            std::process::id()
        );
        let (mut usr1_seen, mut int_seen) = (0, 0);
        while int_seen < 2 {
            // Wait for whichever comes first.
            let got_int = poll_fn(|cx| {
                if int.poll_recv(cx).is_ready() {
                    Poll::Ready(true)
                } else if usr1.poll_recv(cx).is_ready() {
                    Poll::Ready(false)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if got_int {
                int_seen += 1;
                println!("SIGINT ({int_seen}/2)");
            } else {
                usr1_seen += 1;
                println!("SIGUSR1 #{usr1_seen}");
            }
        }
        Ok(())
    })
}

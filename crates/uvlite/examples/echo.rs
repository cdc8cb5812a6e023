//! A TCP echo server: one task per connection.
//!
//! Run with: `cargo run -p uvlite --example echo` (then `nc 127.0.0.1 8000`).

use std::io;

use uvlite::{Loop, TcpListener, spawn_local};

fn main() -> io::Result<()> {
    let lp = Loop::new()?;
    lp.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:8000".parse().unwrap())?;
        listener.listen(1024)?;
        println!(
            "echo server on {}: try `nc 127.0.0.1 8000`",
            listener.local_addr()?
        );
        loop {
            // EMFILE and friends come back once, then accept pauses by itself: no spinning.
            let (conn, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            conn.set_nodelay(true)?;
            spawn_local(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                println!("{peer} left");
            })
            .detach();
        }
    })
}

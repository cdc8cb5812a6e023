//! A worker's accept loop: one task per connection, each running the chosen app.

use std::io;
use std::time::Duration;

use uvlite::{TcpListener, sleep, spawn_local};

use crate::App;
use crate::http::serve;

/// Pause after `EMFILE`/`ENFILE` before accepting again (the queue stays in the kernel and
/// other workers keep accepting meanwhile).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever, serving each with `app` in its own task.
///
/// # Errors
/// Only errors that make the listener unusable (`EBADF`, `EINVAL`, `ENOTSOCK`).
pub async fn serve_listener(listener: TcpListener, app: App) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                spawn_local(async move {
                    let res = match app {
                        App::Path => serve(stream, crate::apps::path).await,
                        App::Hello => serve(stream, crate::apps::hello).await,
                    };
                    if let Err(codec_chain::Error::Panic(msg)) = res {
                        eprintln!("httpd: a connection's app panicked: {msg}");
                    }
                })
                .detach();
            }
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) if is_out_of_fds(&e) => {
                eprintln!("httpd: accept: {e}; pausing {ACCEPT_BACKOFF:?}");
                sleep(ACCEPT_BACKOFF).await;
            }
            // The peer went away between SYN and accept, or a transient failure: go on.
            Err(_) => {}
        }
    }
}

/// `EBADF`, `EINVAL`, `ENOTSOCK`: the listener itself is broken.
fn is_fatal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(9 | 22 | 88))
}

/// `ENFILE`, `EMFILE`: no fd for the new connection.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

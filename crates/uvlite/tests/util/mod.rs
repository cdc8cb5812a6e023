//! Helpers shared by the uvlite integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::time::Duration;

/// Hard limit for one test body.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Runs `body` on a fresh loop, failing the test if it takes longer than [`LIMIT`].
pub(crate) fn run<F, T>(body: F) -> io::Result<T>
where
    F: Future<Output = io::Result<T>>,
{
    let lp = uvlite::Loop::new()?;
    lp.block_on(async {
        match uvlite::timeout(LIMIT, body).await {
            Ok(r) => r,
            Err(_) => panic!("test body did not finish within {LIMIT:?}"),
        }
    })
}

/// Returns after the loop has run every task that was ready (each once): spawned tasks get
/// their first poll, and reach their first wait, before the caller goes on.
pub(crate) async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

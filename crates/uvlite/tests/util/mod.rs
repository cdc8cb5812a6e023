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

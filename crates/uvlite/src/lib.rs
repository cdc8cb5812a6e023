#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod executor;
mod pipe;
mod process;
mod reactor;
mod runtime;
mod signal;
mod stream;
mod sys;
mod tcp;
mod timer;

pub use executor::{JoinError, JoinHandle};
pub use pipe::{HandleType, Pipe, PipeListener};
pub use process::Process;
pub use runtime::{Loop, now, spawn_local, spawn_local_detached};
pub use signal::Signal;
pub use stream::{READ_CHUNK, Stream};
pub use tcp::{ACCEPT_BATCH, ACCEPT_PAUSE_MAX, ACCEPT_PAUSE_MIN, TcpListener, TcpStream};
pub use timer::{Elapsed, Sleep, Timer, sleep, sleep_until, timeout};

use std::io;
use std::path::PathBuf;

/// Number of CPUs this process may run on (at least 1), like libuv's `#uv_cpu_info()`.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The path of the running executable, like libuv's `uv_exepath()`.
///
/// # Errors
/// Fails if `/proc/self/exe` cannot be read.
pub fn exepath() -> io::Result<PathBuf> {
    std::env::current_exe()
}

/// Monotonic time in nanoseconds from an arbitrary origin, like libuv's `uv_hrtime()`.
pub fn hrtime() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod master;
pub mod supervisor;
mod sys;
mod worker;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use supervisor::{Counters, EXIT_CANNOT_BOOT, Supervisor};
pub use worker::Worker;

/// The environment variable that marks a process as worker number N of its master.
pub const WORKER_ENV: &str = "CLUSTER_WORKER";

/// The fd at which a worker finds its end of the master's socketpair.
pub const WORKER_FD: i32 = 3;

/// Default `listen(2)` backlog of the shared socket (the seed used 256).
pub const BACKLOG: i32 = 1024;

/// Default time a stopping master waits for workers before `SIGKILL`.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a cluster.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the master binds (without listening; the workers listen).
    pub addr: SocketAddr,
    /// Number of worker processes.
    pub workers: usize,
    /// `listen(2)` backlog ([`BACKLOG`]).
    pub backlog: i32,
    /// Time between `SIGTERM` and `SIGKILL` when stopping ([`STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
    /// Arguments for the worker processes (the executable is this one, `uvlite::exepath()`).
    /// By default the master's own arguments.
    pub worker_args: Vec<OsString>,
}

impl Config {
    /// A cluster on `addr` with one worker per CPU.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            workers: uvlite::cpu_count(),
            backlog: BACKLOG,
            stop_timeout: STOP_TIMEOUT,
            worker_args: std::env::args_os().skip(1).collect(),
        }
    }
}

/// Why a cluster could not run.
#[derive(Debug)]
pub enum Error {
    /// The address could not be bound (in use, not local, no permission).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error of `bind(2)` or `listen(2)`.
        source: io::Error,
    },
    /// A worker process could not be started.
    Spawn(io::Error),
    /// Another I/O failure (the loop, the pipes, the signals).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Spawn(e) => write!(f, "cannot start a worker: {e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Spawn(e) | Error::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// Which side of the cluster this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The supervisor: binds, spawns, supervises.
    Master,
    /// Worker number `index`, started by a master.
    Worker {
        /// The worker's index, 0-based.
        index: usize,
    },
}

/// This process's role, from [`WORKER_ENV`].
pub fn role() -> Role {
    match std::env::var(WORKER_ENV).ok().and_then(|v| v.parse().ok()) {
        Some(index) => Role::Worker { index },
        None => Role::Master,
    }
}

/// Runs this process's side of the cluster.
///
/// In the master, binds `config.addr`, starts `config.workers` copies of this executable with
/// [`WORKER_ENV`] set and a socketpair at fd 3, sends each the bound socket, and supervises
/// them until `SIGTERM` or `SIGINT`, then stops them and returns. In a worker, receives the
/// socket, listens, and runs `serve` with it until `serve` returns or the master goes away.
///
/// # Errors
/// [`Error::Bind`] if the address cannot be bound, [`Error::Spawn`] if a worker cannot start,
/// [`Error::Io`] for other failures.
pub fn run<F, Fut>(config: &Config, serve: F) -> Result<(), Error>
where
    F: FnOnce(Worker) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    match role() {
        Role::Master => master::run(config),
        Role::Worker { index } => worker::run(config, index, serve),
    }
}

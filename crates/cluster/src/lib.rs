#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod listen;
mod master;
mod protocol;
mod status;
pub mod supervisor;
mod sys;
mod worker;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use supervisor::{Counters, EXIT_CANNOT_BOOT, Supervisor};
pub use worker::{HEARTBEAT, Stop, Worker};

/// The environment variable that marks a process as worker number N of its master.
pub const WORKER_ENV: &str = "CLUSTER_WORKER";

/// The environment variable by which an upgrading master tells the new one where its
/// inherited fds are (`<listener>,<parent pipe>[,<status listener>]`).
pub const UPGRADE_ENV: &str = "CLUSTER_UPGRADE";

/// The fd at which a worker finds its end of the master's socketpair.
pub const WORKER_FD: i32 = 3;

/// Default `listen(2)` backlog of the shared socket (the seed used 256).
pub const BACKLOG: i32 = 1024;

/// Default time a draining worker has to finish its in-flight requests before it exits (and
/// [`supervisor::KILL_GRACE`] later, is killed).
pub const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time without a heartbeat after which a worker is killed and replaced (unicorn's
/// and gunicorn's `timeout`); also the time a new worker has to report ready.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run a cluster.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the master binds (unless systemd or an upgrading master passes a socket).
    pub addr: SocketAddr,
    /// Number of worker processes at start (`SIGTTIN`/`SIGTTOU` change it).
    pub workers: usize,
    /// `listen(2)` backlog ([`BACKLOG`]).
    pub backlog: i32,
    /// Time a draining worker has to finish ([`GRACEFUL_TIMEOUT`]).
    pub graceful_timeout: Duration,
    /// Time without a heartbeat before a worker is killed ([`WORKER_TIMEOUT`]); `None`
    /// turns the check off.
    pub worker_timeout: Option<Duration>,
    /// Each worker listens on its own `SO_REUSEPORT` socket instead of the shared one: the
    /// kernel spreads connections evenly, but those queued on a worker that exits are reset.
    pub reuseport: bool,
    /// Where the master serves its status table over HTTP (`None`: nowhere).
    pub status: Option<SocketAddr>,
    /// A file the master writes its pid to once its workers are ready.
    pub pid_file: Option<PathBuf>,
    /// Arguments for the worker processes (the executable is the master's own). By default
    /// the master's own arguments.
    pub worker_args: Vec<OsString>,
}

impl Config {
    /// A cluster on `addr` with one worker per CPU and the default timeouts.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            workers: uvlite::cpu_count(),
            backlog: BACKLOG,
            graceful_timeout: GRACEFUL_TIMEOUT,
            worker_timeout: Some(WORKER_TIMEOUT),
            reuseport: false,
            status: None,
            pid_file: None,
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
    /// A socket passed in (systemd's `LISTEN_FDS`, an upgrading master) is unusable.
    Inherited(String),
    /// A worker process could not be started.
    Spawn(io::Error),
    /// In a worker: the app failed before it reported ready. The process should exit with
    /// [`EXIT_CANNOT_BOOT`] ([`Error::exit_code`]) so that the master stops respawning.
    Boot(io::Error),
    /// In the master: a worker exited with [`EXIT_CANNOT_BOOT`]; the master stopped.
    CannotBoot {
        /// The worker's slot.
        slot: usize,
        /// Its process id.
        pid: u32,
    },
    /// Another I/O failure (the loop, the pipes, the signals).
    Io(io::Error),
}

impl Error {
    /// The exit code for a process that fails with this error: [`EXIT_CANNOT_BOOT`] for
    /// [`Error::Boot`], 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Boot(_) => EXIT_CANNOT_BOOT as u8,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Inherited(msg) => f.write_str(msg),
            Error::Spawn(e) => write!(f, "cannot start a worker: {e}"),
            Error::Boot(e) => write!(f, "cannot boot: {e}"),
            Error::CannotBoot { slot, pid } => write!(
                f,
                "worker {slot} (pid {pid}) cannot boot (exit code {EXIT_CANNOT_BOOT}): see \
                 its error above; stopped without respawning"
            ),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Spawn(e) | Error::Boot(e) | Error::Io(e) => Some(e),
            Error::Inherited(_) | Error::CannotBoot { .. } => None,
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
/// In the master: takes the listening socket (from an upgrading master, from systemd's
/// `LISTEN_FDS`, or by binding `config.addr`), starts `config.workers` copies of this
/// executable with [`WORKER_ENV`] set and a socketpair at fd 3, sends each the socket, and
/// supervises them (respawn, reload, upgrade, stop: see the crate docs) until a stop signal.
/// In a worker: receives the socket, listens, and runs `serve` until it returns, the master
/// asks it to stop (see [`Worker::stop_requested`]), or the master goes away.
///
/// # Errors
/// In the master: [`Error::Bind`], [`Error::Inherited`], [`Error::Spawn`],
/// [`Error::CannotBoot`], [`Error::Io`]. In a worker: [`Error::Boot`] if `serve` fails
/// before [`Worker::ready`], [`Error::Io`] otherwise. Exit with [`Error::exit_code`].
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

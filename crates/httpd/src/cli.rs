//! The command line of `httpd`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use codec_chain::Timeouts;
use codec_http::Limits;

use crate::App;
use crate::http::Settings;
use crate::log::Target;

/// The usage text printed by `--help` and after a bad flag.
pub const USAGE: &str = "\
Usage: httpd [OPTIONS]

A pre-forked HTTP/1.1 server: the master binds ADDR and starts N workers that all accept on
the same socket (passed to each over a Unix socketpair at fd 3).

Options:
  --listen ADDR            Address to listen on (default 0.0.0.0:8080)
  --workers N              Worker processes (default: one per CPU)
  --app NAME               path: the request's path (default); hello: \"Hello, World!\";
                           echo: the request as the server read it, as JSON;
                           drip: ?chunks=N&size=BYTES&delay=MS streamed slowly
  --access-log PATH        Log requests in Common Log Format to PATH (\"-\": stdout);
                           off by default
Limits (over a limit: the status in brackets, and the connection closes):
  --max-head BYTES         Request line and fields together (default 8192) [431]
  --max-headers N          Header fields per request (default 100) [431]
  --max-target BYTES       Request target (default 8192) [414]
  --max-body BYTES         Body read whole by the echo app (default 1048576) [413]
  --max-connections N      Open connections per worker; over it the worker stops accepting
                           until one closes (default 10000)
  --max-requests N         Requests per connection, 0 for no limit (default 0)
  --high-water BYTES       Unsent response bytes per connection above which the connection
                           is not read until they drain (default 65536)
Deadlines (SECS may be fractional, or end in ms; 0 turns one off):
  --header-timeout SECS    Whole request head, from its first byte (default 10) [408]
  --idle-timeout SECS      Idle keep-alive connection (default 60)
  --body-timeout SECS      Between two reads of a request body (default 30)
  --send-timeout SECS      Without the client taking any response bytes (default 30)
  --linger SECS            After the last response, for the client to close (default 5;
                           none when it sent `Connection: close` and nothing after)
  --graceful-timeout SECS  On SIGTERM, time to finish in-flight requests (default 30)
Supervision (the master; see docs/operating.md):
  --worker-timeout SECS    A worker silent this long (no heartbeat) is killed and replaced;
                           also the time a new worker has to become ready (default 30)
  --status ADDR            Serve the master's table of workers (pid, state, restarts,
                           connections, requests) over HTTP on ADDR; 503 while stopping
  --reuseport              Give each worker its own SO_REUSEPORT socket: the kernel spreads
                           connections evenly, but connections queued on a worker that
                           exits (reload, crash) are reset; off by default
  --pid-file PATH          Write the master's pid to PATH once its workers are ready
  --accept-batch N         Connections a worker accepts in a row before it serves them
                           (default 16; 0: until the queue is empty)
  -h, --help               Print this help and exit

Signals to the master: TERM or INT drains the workers (in-flight requests finish with
Connection: close, idle connections close) and exits 0; QUIT stops them at once; HUP starts
new workers and drains each old one once its replacement is ready; TTIN/TTOU add/remove a
worker; USR2 starts the binary on disk as a new master on the same socket, and this one
drains once the new one's workers are ready; USR1 prints the table of workers to stderr.
Exit codes: 0 stopped cleanly, 1 runtime failure (e.g. address in use, a worker that cannot
boot), 2 bad usage; a worker exits 3 when it cannot boot, and is then not respawned.";

/// A parsed command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--workers`.
    pub workers: usize,
    /// `--app`.
    pub app: App,
    /// `--access-log`.
    pub access_log: Option<Target>,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--graceful-timeout`.
    pub graceful_timeout: Duration,
    /// Everything that shapes a connection.
    pub settings: Settings,
    /// `--worker-timeout` (`None`: off).
    pub worker_timeout: Option<Duration>,
    /// `--status`.
    pub status: Option<SocketAddr>,
    /// `--reuseport`.
    pub reuseport: bool,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--accept-batch` (0: no limit).
    pub accept_batch: usize,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Box<Options>),
    /// Print the help.
    Help,
}

/// A command-line mistake.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn bad(msg: String) -> UsageError {
    UsageError(msg)
}

/// Parses `SECS`, `1.5`, `250ms`; `0` is `None` (no deadline).
fn duration(flag: &str, v: &str) -> Result<Option<Duration>, UsageError> {
    let err = || {
        bad(format!(
            "{flag}: {v:?} is not a duration (SECS, 1.5, 250ms)"
        ))
    };
    let d = if let Some(ms) = v.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| err())?)
    } else {
        let secs: f64 = v
            .strip_suffix('s')
            .unwrap_or(v)
            .parse()
            .map_err(|_| err())?;
        if !(0.0..=1e7).contains(&secs) {
            return Err(err());
        }
        Duration::from_secs_f64(secs)
    };
    Ok((!d.is_zero()).then_some(d))
}

fn number(flag: &str, v: &str, min: u64, max: u64) -> Result<u64, UsageError> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(format!(
            "{flag}: {v:?} is not a number from {min} to {max}"
        ))),
    }
}

/// Parses the arguments (without the program name).
///
/// # Errors
/// An unknown flag, a missing or invalid value.
pub fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut opts = Options {
        listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
        workers: uvlite::cpu_count(),
        app: App::Path,
        access_log: None,
        max_connections: crate::server::MAX_CONNECTIONS,
        graceful_timeout: Duration::from_secs(30),
        settings: Settings::default(),
        worker_timeout: Some(cluster::WORKER_TIMEOUT),
        status: None,
        reuseport: false,
        pid_file: None,
        accept_batch: crate::server::ACCEPT_BATCH,
    };
    let limits: &mut Limits = &mut opts.settings.limits;
    let mut limits_v = *limits;
    let mut timeouts: Timeouts = opts.settings.timeouts;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        if flag == "--reuseport" && inline.is_none() {
            opts.reuseport = true;
            continue;
        }
        let known = [
            "--listen",
            "--workers",
            "--app",
            "--access-log",
            "--max-head",
            "--max-headers",
            "--max-target",
            "--max-body",
            "--max-connections",
            "--max-requests",
            "--high-water",
            "--header-timeout",
            "--idle-timeout",
            "--body-timeout",
            "--send-timeout",
            "--linger",
            "--graceful-timeout",
            "--worker-timeout",
            "--status",
            "--pid-file",
            "--accept-batch",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(bad(format!("unknown argument {arg:?}")));
        }
        let v = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(bad(format!("{flag} needs a value"))),
        };
        let f = flag.as_str();
        match f {
            "--listen" => {
                opts.listen = v
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        bad(format!("--listen: invalid address {v:?} (want HOST:PORT)"))
                    })?;
            }
            "--workers" => opts.workers = number(f, &v, 1, 1024)? as usize,
            "--app" => {
                opts.app = App::from_name(&v).ok_or_else(|| {
                    bad(format!(
                        "--app: unknown app {v:?} (path, hello, echo or drip)"
                    ))
                })?;
            }
            "--access-log" => {
                opts.access_log = Some(if v == "-" {
                    Target::Stdout
                } else {
                    Target::File(PathBuf::from(v))
                });
            }
            "--max-head" => limits_v.max_head = number(f, &v, 64, 1 << 20)? as usize,
            "--max-headers" => {
                limits_v.max_headers = number(f, &v, 1, codec_http::HEADER_SLOTS as u64)? as usize;
            }
            "--max-target" => limits_v.max_target = number(f, &v, 1, 1 << 20)? as usize,
            "--max-body" => opts.settings.max_body = number(f, &v, 0, u64::MAX >> 1)?,
            "--max-connections" => opts.max_connections = number(f, &v, 1, 1 << 20)? as usize,
            "--max-requests" => {
                let n = number(f, &v, 0, u64::MAX >> 1)?;
                opts.settings.max_requests = (n > 0).then_some(n);
            }
            "--high-water" => opts.settings.high_water = number(f, &v, 1024, 1 << 30)? as usize,
            "--header-timeout" => timeouts.item = duration(f, &v)?,
            "--idle-timeout" => timeouts.idle = duration(f, &v)?,
            "--body-timeout" => timeouts.payload = duration(f, &v)?,
            "--send-timeout" => timeouts.send = duration(f, &v)?,
            "--linger" => timeouts.linger = duration(f, &v)?,
            "--graceful-timeout" => {
                opts.graceful_timeout = duration(f, &v)?.unwrap_or(Duration::ZERO);
            }
            "--worker-timeout" => opts.worker_timeout = duration(f, &v)?,
            "--status" => {
                opts.status = Some(
                    v.to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| {
                            bad(format!("--status: invalid address {v:?} (want HOST:PORT)"))
                        })?,
                );
            }
            "--pid-file" => opts.pid_file = Some(PathBuf::from(v)),
            "--accept-batch" => opts.accept_batch = number(f, &v, 0, 1 << 20)? as usize,
            _ => unreachable!("every known flag is handled"),
        }
    }
    opts.settings.limits = limits_v;
    opts.settings.timeouts = timeouts;
    Ok(Command::Run(Box::new(opts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, UsageError> {
        match parse(args.iter().copied())? {
            Command::Run(o) => Ok(*o),
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let o = run(&[]).unwrap();
        assert_eq!(o.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(o.app, App::Path);
        assert_eq!(o.settings.timeouts, Timeouts::default());
        assert_eq!(o.access_log, None);
        let o = run(&[
            "--listen",
            "127.0.0.1:9000",
            "--workers=3",
            "--app",
            "echo",
            "--header-timeout",
            "2.5",
            "--idle-timeout=250ms",
            "--linger",
            "0",
            "--max-head",
            "1024",
            "--max-requests",
            "7",
            "--access-log",
            "-",
        ])
        .unwrap();
        assert_eq!(o.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(o.workers, 3);
        assert_eq!(o.app, App::Echo);
        assert_eq!(o.settings.timeouts.item, Some(Duration::from_millis(2500)));
        assert_eq!(o.settings.timeouts.idle, Some(Duration::from_millis(250)));
        assert_eq!(o.settings.timeouts.linger, None);
        assert_eq!(o.settings.limits.max_head, 1024);
        assert_eq!(o.settings.max_requests, Some(7));
        assert_eq!(o.access_log, Some(Target::Stdout));
        assert!(matches!(parse(["--help"]).unwrap(), Command::Help));
    }

    #[test]
    fn supervision_flags() {
        let o = run(&[]).unwrap();
        assert_eq!(o.worker_timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            (o.status, o.reuseport, o.pid_file.clone()),
            (None, false, None)
        );
        let o = run(&[
            "--worker-timeout",
            "0",
            "--status",
            "127.0.0.1:9090",
            "--reuseport",
            "--pid-file=/run/httpd.pid",
        ])
        .unwrap();
        assert_eq!(o.worker_timeout, None);
        assert_eq!(o.status, Some("127.0.0.1:9090".parse().unwrap()));
        assert!(o.reuseport);
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/httpd.pid")));
        assert_eq!(o.accept_batch, 16);
        assert_eq!(run(&["--accept-batch", "0"]).unwrap().accept_batch, 0);
        assert!(run(&["--status", "nowhere"]).is_err());
        assert!(run(&["--worker-timeout", "soon"]).is_err());
        assert!(run(&["--reuseport=yes"]).is_err());
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(run(&["--bogus"]).unwrap_err().0.contains("--bogus"));
        assert!(run(&["--workers", "0"]).is_err());
        assert!(run(&["--workers", "x"]).is_err());
        assert!(run(&["--listen"]).unwrap_err().0.contains("needs a value"));
        assert!(run(&["--listen", "nope"]).is_err());
        assert!(run(&["--app", "php"]).is_err());
        assert!(run(&["--idle-timeout", "-1"]).is_err());
        assert!(run(&["--idle-timeout", "soon"]).is_err());
        assert!(run(&["--max-headers", "100000"]).is_err());
    }
}

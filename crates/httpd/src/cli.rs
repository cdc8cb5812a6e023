//! The command line of `httpd`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::App;

/// The usage text printed by `--help` and after a bad flag.
pub const USAGE: &str = "\
Usage: httpd [OPTIONS]

A pre-forked HTTP/1.1 server: the master binds ADDR and starts N workers that all accept on
the same socket (passed to each over a Unix socketpair at fd 3).

Options:
  --listen ADDR    Address to listen on (default 0.0.0.0:8080)
  --workers N      Worker processes (default: one per CPU)
  --app NAME       What to answer: path (the request's path, the default) or hello
                   (\"Hello, World!\")
  -h, --help       Print this help and exit

Signals to the master: SIGTERM or SIGINT stops the workers and exits 0.
Exit codes: 0 stopped cleanly, 1 runtime failure (e.g. address in use), 2 bad usage.";

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--workers`.
    pub workers: usize,
    /// `--app`.
    pub app: App,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Run(Options),
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
    };
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => {
                let v = value("--listen")?;
                opts.listen = v
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        UsageError(format!("--listen: invalid address {v:?} (want HOST:PORT)"))
                    })?;
            }
            "--workers" => {
                let v = value("--workers")?;
                opts.workers = match v.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => n,
                    _ => {
                        return Err(UsageError(format!(
                            "--workers: {v:?} is not a number from 1 to 1024"
                        )));
                    }
                };
            }
            "--app" => {
                let v = value("--app")?;
                opts.app = App::from_name(&v).ok_or_else(|| {
                    UsageError(format!("--app: unknown app {v:?} (path or hello)"))
                })?;
            }
            _ => return Err(UsageError(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(Command::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, UsageError> {
        match parse(args.iter().copied())? {
            Command::Run(o) => Ok(o),
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let o = run(&[]).unwrap();
        assert_eq!(o.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(o.app, App::Path);
        let o = run(&[
            "--listen",
            "127.0.0.1:9000",
            "--workers=3",
            "--app",
            "hello",
        ])
        .unwrap();
        assert_eq!(o.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(o.workers, 3);
        assert_eq!(o.app, App::Hello);
        assert_eq!(parse(["--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(run(&["--bogus"]).unwrap_err().0.contains("--bogus"));
        assert!(run(&["--workers", "0"]).is_err());
        assert!(run(&["--workers", "x"]).is_err());
        assert!(run(&["--listen"]).unwrap_err().0.contains("needs a value"));
        assert!(run(&["--listen", "nope"]).is_err());
        assert!(run(&["--app", "php"]).is_err());
    }
}

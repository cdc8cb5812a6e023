//! Where the master's listening socket comes from: an upgrading master ([`UPGRADE_ENV`]),
//! systemd's socket activation (`LISTEN_FDS`/`LISTEN_PID`), or `bind(2)`. Inherited sockets
//! are checked first (a TCP socket, listening), and the variables are removed from the
//! environment so that workers and later upgrades do not see them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};
use uvlite::{Pipe, TcpListener};

use crate::{Config, Error, UPGRADE_ENV};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const SD_LISTEN_FDS_START: i32 = 3;

/// How the master got its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// It bound `config.addr`.
    Bound,
    /// systemd passed it.
    Systemd,
    /// The old master of a binary upgrade passed it.
    Upgrade,
}

/// What a master starts with.
pub(crate) struct Opened {
    pub(crate) listener: TcpListener,
    pub(crate) source: Source,
    /// The pipe to the old master, after an upgrade.
    pub(crate) parent: Option<Pipe>,
    /// The status listener the old master passed on, after an upgrade.
    pub(crate) status: Option<TcpListener>,
}

/// The fds an upgrading master passes: `<listener>,<parent pipe>[,<status listener>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UpgradeFds {
    pub(crate) listener: i32,
    pub(crate) parent: i32,
    pub(crate) status: Option<i32>,
}

impl UpgradeFds {
    pub(crate) fn parse(v: &str) -> Result<UpgradeFds, String> {
        let fds: Vec<i32> = v
            .split(',')
            .map(|f| f.parse().ok().filter(|&n| n >= 3))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{UPGRADE_ENV}={v:?}: not a list of fds"))?;
        match fds[..] {
            [listener, parent] => Ok(UpgradeFds {
                listener,
                parent,
                status: None,
            }),
            [listener, parent, status] => Ok(UpgradeFds {
                listener,
                parent,
                status: Some(status),
            }),
            _ => Err(format!("{UPGRADE_ENV}={v:?}: want 2 or 3 fds")),
        }
    }

    pub(crate) fn format(&self) -> String {
        match self.status {
            Some(s) => format!("{},{},{s}", self.listener, self.parent),
            None => format!("{},{}", self.listener, self.parent),
        }
    }
}

/// How many fds systemd passed to this process: `None` when the variables are absent or for
/// another process (`LISTEN_PID` is not `pid`), as `sd_listen_fds(3)` reads them.
pub(crate) fn systemd_fds(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    pid: u32,
) -> Result<Option<u32>, String> {
    let (Some(lpid), Some(lfds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    if lpid.trim().parse::<u32>().ok() != Some(pid) {
        return Ok(None);
    }
    match lfds.trim().parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("LISTEN_FDS={lfds:?} is not a number")),
    }
}

/// Opens the master's listening socket (see the module docs).
pub(crate) fn open(config: &Config) -> Result<Opened, Error> {
    if let Some(v) = std::env::var_os(UPGRADE_ENV) {
        crate::sys::remove_env(UPGRADE_ENV);
        let v = v.to_string_lossy().into_owned();
        let fds = UpgradeFds::parse(&v).map_err(Error::Inherited)?;
        let listener = adopt_listener(fds.listener, UPGRADE_ENV)?;
        let parent = crate::sys::adopt_inherited_fd(fds.parent)
            .and_then(Pipe::from_fd)
            .map_err(|e| Error::Inherited(format!("{UPGRADE_ENV}: fd {}: {e}", fds.parent)))?;
        let status = match fds.status {
            Some(fd) => Some(adopt_listener(fd, UPGRADE_ENV)?),
            None => None,
        };
        return Ok(Opened {
            listener,
            source: Source::Upgrade,
            parent: Some(parent),
            status,
        });
    }
    let pid_var = std::env::var("LISTEN_PID").ok();
    let fds_var = std::env::var("LISTEN_FDS").ok();
    let passed = systemd_fds(pid_var.as_deref(), fds_var.as_deref(), std::process::id());
    if pid_var.is_some() || fds_var.is_some() {
        for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            crate::sys::remove_env(key);
        }
    }
    match passed.map_err(Error::Inherited)? {
        Some(1) => {
            let listener = adopt_listener(SD_LISTEN_FDS_START, "LISTEN_FDS")?;
            return Ok(Opened {
                listener,
                source: Source::Systemd,
                parent: None,
                status: None,
            });
        }
        Some(n) => {
            return Err(Error::Inherited(format!(
                "LISTEN_FDS={n}: this server listens on one socket; give the socket unit \
                 one ListenStream="
            )));
        }
        None => {}
    }
    let listener = bind(config.addr, config.reuseport).map_err(|source| Error::Bind {
        addr: config.addr,
        source,
    })?;
    if !config.reuseport {
        // Listen now, so connections queue from the start; workers listen again (a no-op).
        // With SO_REUSEPORT the master must not: it would get a share it never accepts.
        listener
            .listen(config.backlog)
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
    }
    Ok(Opened {
        listener,
        source: Source::Bound,
        parent: None,
        status: None,
    })
}

/// Adopts an inherited fd as a listening TCP socket, or says why it is not one.
fn adopt_listener(fd: i32, from: &str) -> Result<TcpListener, Error> {
    let bad = |why: String| Error::Inherited(format!("{from}: fd {fd} {why}"));
    let owned = crate::sys::adopt_inherited_fd(fd).map_err(|e| bad(format!("{e}")))?;
    let listener =
        TcpListener::from_fd(owned).map_err(|_| bad("is not a TCP socket".to_owned()))?;
    // A master with --reuseport holds its socket bound but not listening (each worker listens
    // on its own); from an upgrading master, that is what to expect.
    let reuseport_master =
        from == UPGRADE_ENV && socket::getsockopt(&listener, sockopt::ReusePort).unwrap_or(false);
    if !listener.is_listening() && !reuseport_master {
        return Err(bad("is a TCP socket that is not listening".to_owned()));
    }
    Ok(listener)
}

/// A non-blocking, close-on-exec TCP socket bound to `addr` (not listening), with
/// `SO_REUSEADDR`, and `SO_REUSEPORT` if asked.
pub(crate) fn bind(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    if !reuseport {
        return TcpListener::bind(addr);
    }
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    TcpListener::from_fd(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_fds_round_trip_and_reject_garbage() {
        for v in ["3,4", "3,4,5", "10,11,12"] {
            assert_eq!(UpgradeFds::parse(v).unwrap().format(), v);
        }
        for v in ["", "3", "3,x", "1,2", "3,4,5,6", "-3,4"] {
            assert!(UpgradeFds::parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn listen_fds_are_ours_only_with_our_pid() {
        assert_eq!(systemd_fds(None, None, 7), Ok(None));
        assert_eq!(systemd_fds(Some("7"), None, 7), Ok(None));
        assert_eq!(systemd_fds(Some("8"), Some("1"), 7), Ok(None));
        assert_eq!(systemd_fds(Some("7"), Some("1"), 7), Ok(Some(1)));
        assert_eq!(systemd_fds(Some("7"), Some("2"), 7), Ok(Some(2)));
        assert_eq!(systemd_fds(Some("7"), Some("0"), 7), Ok(None));
        assert!(systemd_fds(Some("7"), Some("one"), 7).is_err());
    }
}

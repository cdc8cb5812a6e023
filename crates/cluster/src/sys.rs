//! Every `unsafe` block of cluster: adopting the inherited fd 3 and clearing the worker marker
//! from the environment.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, fcntl};

/// Takes ownership of `fd`, inherited from the master, after checking that it is open.
pub(crate) fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD on a raw number only queries the fd table; it has no memory effects.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !open {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd {fd} is not open: was this worker started by a cluster master?"),
        ));
    }
    // SAFETY: the master mapped our end of its socketpair to this fd number and nothing in
    // this process has taken it (it is adopted once, at worker start).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Close-on-exec from now on, so programs the worker runs do not inherit it.
    fcntl(&owned, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}

/// Removes `key` from the environment, so processes the worker starts are not workers.
pub(crate) fn remove_env(key: &str) {
    // SAFETY: called once at worker start, before any thread is spawned, so no other thread
    // reads the environment concurrently.
    unsafe { std::env::remove_var(key) }
}

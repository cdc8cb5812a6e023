//! Every `unsafe` block of cluster: adopting inherited fds, editing the environment at start,
//! and the worker's master-death backstop (a signal handler that arms `alarm(2)`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal the kernel sends a worker when its master dies (`PR_SET_PDEATHSIG`). Nothing
/// else uses `SIGPWR`; its handler only arms the self-kill alarm, the pipe's EOF does the rest.
const MASTER_DEATH_SIGNAL: Signal = Signal::SIGPWR;

/// Seconds the master-death handler gives the worker before `SIGALRM` ends it.
static SELF_KILL_SECS: AtomicU32 = AtomicU32::new(1);

/// Takes ownership of `fd`, inherited from the parent, after checking that it is open, and
/// marks it close-on-exec.
pub(crate) fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD on a raw number only queries the fd table; it has no memory effects.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !open {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd {fd} is not open"),
        ));
    }
    // SAFETY: the parent (master, systemd, or the old master of an upgrade) mapped the fd to
    // this number for us, and nothing in this process has taken it: each inherited fd is
    // adopted once, at start, and the callers pass distinct numbers.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Close-on-exec from now on, so programs this process runs do not inherit it.
    fcntl(&owned, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}

/// Removes `key` from the environment, so the processes this one starts do not see it.
pub(crate) fn remove_env(key: &str) {
    // SAFETY: called at start (worker start, master start), before this process spawns any
    // thread, so no other thread reads the environment concurrently.
    unsafe { std::env::remove_var(key) }
}

/// The handler of [`MASTER_DEATH_SIGNAL`]: arm the self-kill alarm. It runs even when the
/// worker's loop is stuck in a handler, which is the case it exists for.
extern "C" fn on_master_death(_: libc::c_int) {
    let secs = SELF_KILL_SECS.load(Ordering::Relaxed);
    // SAFETY: alarm(2) is async-signal-safe and touches no memory of ours.
    unsafe {
        libc::alarm(secs);
    }
}

/// Makes this worker outlive its master by at most `grace` (plus a second): the kernel sends
/// [`MASTER_DEATH_SIGNAL`] when the master dies, whose handler arms `alarm(2)`, and the
/// default action of `SIGALRM` ends the process. A healthy worker is gone before that: it sees
/// EOF on its pipe, drains, and exits.
pub(crate) fn die_with_master(grace: Duration) -> io::Result<()> {
    SELF_KILL_SECS.store(whole_secs(grace) + 1, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(on_master_death),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: `on_master_death` only reads an atomic and calls alarm(2), both
    // async-signal-safe.
    unsafe { nix::sys::signal::sigaction(MASTER_DEATH_SIGNAL, &action) }?;
    nix::sys::prctl::set_pdeathsig(MASTER_DEATH_SIGNAL)?;
    Ok(())
}

/// Ends this process with `SIGALRM` after `after` (rounded up to a second), whatever its
/// loop is doing: the backstop of a drain's deadline.
pub(crate) fn arm_self_kill(after: Duration) {
    nix::unistd::alarm::set(whole_secs(after).max(1));
}

fn whole_secs(d: Duration) -> u32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.min(u64::from(u32::MAX / 2)) as u32
}

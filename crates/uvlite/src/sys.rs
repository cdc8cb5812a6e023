//! Every `unsafe` block of uvlite: signal dispositions, the signal handler, and the fd mapping
//! that runs in a forked child before `exec`.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Highest signal number (Linux: `SIGRTMAX` is 64).
pub(crate) const MAX_SIGNAL: i32 = 64;

/// Most loops in one process that can receive signals at the same time.
pub(crate) const MAX_SIGNAL_LOOPS: usize = 64;

/// Where the handler reports a signal to one loop: that loop's self-pipe and a bit per signal.
pub(crate) struct SignalSlot {
    /// Write end of the loop's self-pipe, or -1 if the slot is free.
    pub(crate) pipe: AtomicI32,
    /// Bit `signum - 1` is set when `signum` arrived and the loop has not seen it yet.
    pub(crate) pending: AtomicU64,
}

/// One slot per loop that listens for signals; every raised signal is reported to all.
pub(crate) static SIGNAL_SLOTS: [SignalSlot; MAX_SIGNAL_LOOPS] = [const {
    SignalSlot {
        pipe: AtomicI32::new(-1),
        pending: AtomicU64::new(0),
    }
}; MAX_SIGNAL_LOOPS];

/// The handler of every signal uvlite listens for: mark it pending in every loop's slot and
/// poke that loop's self-pipe. Only async-signal-safe work: atomics and `write(2)`; `errno` is
/// preserved.
extern "C" fn on_signal(signum: libc::c_int) {
    if !(1..=MAX_SIGNAL).contains(&signum) {
        return;
    }
    let saved = nix::errno::Errno::last_raw();
    let bit = 1u64 << (signum - 1);
    for slot in &SIGNAL_SLOTS {
        let fd = slot.pipe.load(Ordering::SeqCst);
        if fd < 0 {
            continue;
        }
        slot.pending.fetch_or(bit, Ordering::SeqCst);
        let byte = [signum as u8];
        // SAFETY: `byte` is a valid one-byte buffer for the duration of the call; a full or
        // closed pipe only makes write fail, which is fine: the pending bit carries the signal.
        unsafe {
            libc::write(fd, byte.as_ptr().cast(), 1);
        }
    }
    nix::errno::Errno::set_raw(saved);
}

/// Installs uvlite's handler for `signum` (with `SA_RESTART`).
pub(crate) fn install_handler(signum: Signal) -> io::Result<()> {
    let mut flags = SaFlags::SA_RESTART;
    if signum == Signal::SIGCHLD {
        flags |= SaFlags::SA_NOCLDSTOP;
    }
    let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
    // SAFETY: `on_signal` only touches atomics and calls write(2), both async-signal-safe.
    unsafe { signal::sigaction(signum, &action) }?;
    Ok(())
}

/// Puts `signum` back to its default disposition.
pub(crate) fn restore_default(signum: Signal) -> io::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    unsafe { signal::sigaction(signum, &action) }?;
    Ok(())
}

/// Ignores `SIGPIPE` for the whole process: a write to a closed peer returns `EPIPE`.
pub(crate) fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: SIG_IGN runs no code of ours in signal context.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }?;
    Ok(())
}

/// Arranges for the child of `cmd` to find `fds[i]` at fd `3 + i`, without close-on-exec.
///
/// The fds are first duplicated above the highest target (so that mapping one cannot clobber a
/// source of another), then `dup2`ed into place; `dup2` clears `FD_CLOEXEC` on the target.
pub(crate) fn map_child_fds(cmd: &mut Command, fds: Vec<RawFd>) {
    if fds.is_empty() {
        return;
    }
    let floor = 3 + fds.len() as RawFd;
    let mut scratch = vec![-1 as RawFd; fds.len()];
    let closure = move || {
        for (i, &fd) in fds.iter().enumerate() {
            // SAFETY: fcntl on an fd number has no memory effects; errors are checked.
            let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
            if high < 0 {
                return Err(io::Error::last_os_error());
            }
            scratch[i] = high;
        }
        for (i, &high) in scratch.iter().enumerate() {
            // SAFETY: dup2 on fd numbers has no memory effects; errors are checked.
            if unsafe { libc::dup2(high, 3 + i as RawFd) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec; it only calls fcntl and dup2, which are
    // async-signal-safe, and writes into `scratch`, allocated before the fork.
    unsafe {
        cmd.pre_exec(closure);
    }
}

/// Takes ownership of an fd the kernel just installed in this process through `SCM_RIGHTS`.
pub(crate) fn adopt_received_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `recvmsg` created this fd for us a moment ago and nothing else refers to it, so
    // this is its only owner.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

//! Child processes: spawn with extra fds at 3, 4, …, and wait for the exit status
//! asynchronously (`SIGCHLD` wakes waiters, `waitpid(pid, WNOHANG)` reaps).

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{Child, Command, ExitStatus};
use std::rc::Rc;
use std::task::{Context, Poll};

use nix::sys::signal::{self, Signal as Signum};
use nix::unistd::Pid;

use crate::runtime::Inner;

/// A child process.
///
/// Build the command with [`std::process::Command`] (program, arguments, environment,
/// directory, stdio), then [`spawn`](Process::spawn) it with the fds it should find at 3, 4, ….
/// libuv's stdio slots map onto `Command`: *inherit* is the default, *ignore* is
/// `Stdio::null()`, and *create pipe* is one end of [`Pipe::socketpair`](crate::Pipe::socketpair)
/// given as `Stdio::from(child_end)`, the other end read and written on the loop.
///
/// No zombie is left behind: the exit status is collected by [`wait`](Process::wait) (woken
/// by `SIGCHLD`); a `Process` dropped while its child runs hands the child to the loop, which
/// reaps it on a later `SIGCHLD`; a loop dropped with such children still running hands each
/// to a thread that waits for it. Dropping a `Process` does not kill the child.
///
/// # Examples
/// ```no_run
/// # let lp = uvlite::Loop::new()?;
/// lp.block_on(async {
///     let mut child = uvlite::Process::spawn(&mut std::process::Command::new("true"), &[])?;
///     let status = child.wait().await?;
///     assert!(status.success());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Process {
    child: Option<Child>,
    status: Option<ExitStatus>,
    inner: Rc<Inner>,
}

impl Process {
    /// Starts `cmd` with `extra_fds[i]` duplicated to fd `3 + i` in the child (without
    /// close-on-exec there; the parent's fds are untouched).
    ///
    /// # Errors
    /// Errors of `fork`/`exec` (a missing program is `NotFound`), or no loop on this thread.
    pub fn spawn(cmd: &mut Command, extra_fds: &[BorrowedFd<'_>]) -> io::Result<Process> {
        let inner = Inner::current()?;
        // The handler must be in place before the child can exit, or the wake-up is lost.
        inner.signals.ensure_pipe(&inner)?;
        crate::signal::acquire_handler(Signum::SIGCHLD)?;
        crate::sys::map_child_fds(cmd, extra_fds.iter().map(|fd| fd.as_raw_fd()).collect());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                crate::signal::release_handler(Signum::SIGCHLD);
                return Err(e);
            }
        };
        Ok(Process {
            child: Some(child),
            status: None,
            inner,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("child is only taken on drop")
    }

    /// Sends `signum` to the child; a no-op once it has been reaped.
    ///
    /// # Errors
    /// An invalid signal number, or errors of `kill(2)`.
    pub fn kill(&self, signum: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let sig = Signum::try_from(signum)?;
        signal::kill(Pid::from_raw(self.pid() as i32), sig)?;
        Ok(())
    }

    /// Reaps the child if it has exited, without waiting.
    ///
    /// # Errors
    /// Errors of `waitpid(2)`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let s = child.try_wait()?;
        self.status = s;
        Ok(s)
    }

    /// Waits for the child to exit and returns its status (code or signal).
    ///
    /// # Errors
    /// Errors of `waitpid(2)`.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// Poll form of [`wait`](Process::wait).
    ///
    /// # Errors
    /// As [`wait`](Process::wait).
    pub fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        // Register before checking, so a SIGCHLD between the check and the registration still
        // wakes us.
        self.inner.signals.wait_child(cx.waker());
        match self.try_wait() {
            Ok(Some(s)) => Poll::Ready(Ok(s)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Reap now if we can; otherwise the loop keeps the child and reaps it on a later
        // SIGCHLD (or, if the loop goes first, a reaper thread waits for it).
        if self.status.is_some() || self.try_wait().ok().flatten().is_some() {
            crate::signal::release_handler(Signum::SIGCHLD);
        } else {
            if let Some(child) = self.child.take() {
                self.inner.signals.adopt_orphan(child);
            }
        }
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("status", &self.status)
            .finish()
    }
}

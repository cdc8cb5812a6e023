//! Signals delivered through the loop.

mod util;

use std::io;

use nix::sys::signal::{Signal as Signum, raise};
use uvlite::Signal;

#[test]
fn every_listener_sees_a_raised_signal() -> io::Result<()> {
    util::run(async {
        let a = Signal::new(libc::SIGUSR1)?;
        let b = Signal::new(libc::SIGUSR1)?;
        raise(Signum::SIGUSR1)?;
        a.recv().await;
        b.recv().await;
        assert_eq!(a.signum(), libc::SIGUSR1);
        Ok(())
    })
}

#[test]
fn sigkill_cannot_be_caught() -> io::Result<()> {
    util::run(async {
        assert!(Signal::new(libc::SIGKILL).is_err());
        Ok(())
    })
}

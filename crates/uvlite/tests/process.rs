//! Child processes: exit status, signals, and fds at slot 3.

mod util;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use uvlite::{Pipe, Process};

#[test]
fn exit_code_of_a_child() -> io::Result<()> {
    util::run(async {
        let mut child = Process::spawn(Command::new("sh").args(["-c", "exit 3"]), &[])?;
        let status = child.wait().await?;
        assert_eq!(status.code(), Some(3));
        Ok(())
    })
}

#[test]
fn a_killed_child_reports_the_signal() -> io::Result<()> {
    util::run(async {
        let mut child = Process::spawn(Command::new("sleep").arg("30"), &[])?;
        child.kill(libc::SIGTERM)?;
        let status = child.wait().await?;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        Ok(())
    })
}

#[test]
fn spawn_with_a_pipe_at_fd_3() -> io::Result<()> {
    util::run(async {
        let (pipe, child_end) = Pipe::socketpair()?;
        // The child reads a line from fd 3, answers on fd 3 and exits with code 4.
        let mut child = Process::spawn(
            Command::new("sh").args(["-c", "read line <&3; echo \"got $line\" >&3; exit 4"]),
            &[child_end.as_fd()],
        )?;
        drop(child_end);
        pipe.write_all(b"ping\n").await?;
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        loop {
            let n = pipe.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"got ping\n");
        assert_eq!(child.wait().await?.code(), Some(4));
        Ok(())
    })
}

#[test]
fn missing_program_is_not_found() -> io::Result<()> {
    util::run(async {
        let err = Process::spawn(&mut Command::new("/nonexistent/program"), &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        Ok(())
    })
}

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

/// Whether `pid` still exists, zombie or not.
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (up to the test limit) for `pid` to disappear; a zombie never does.
fn wait_gone(pid: u32) -> bool {
    let deadline = std::time::Instant::now() + util::LIMIT;
    while std::time::Instant::now() < deadline {
        if !exists(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[test]
fn a_dropped_child_is_reaped_while_the_loop_runs() -> io::Result<()> {
    util::run(async {
        let child = Process::spawn(Command::new("sleep").arg("0.2"), &[])?;
        let pid = child.pid();
        drop(child);
        assert!(exists(pid));
        let deadline = std::time::Instant::now() + util::LIMIT;
        while exists(pid) && std::time::Instant::now() < deadline {
            uvlite::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!exists(pid), "pid {pid} was left as a zombie");
        Ok(())
    })
}

#[test]
fn a_child_dropped_with_its_loop_is_reaped_too() -> io::Result<()> {
    let lp = uvlite::Loop::new()?;
    let pid = lp.block_on(async {
        let child = Process::spawn(Command::new("sleep").arg("0.3"), &[])?;
        Ok::<_, io::Error>(child.pid())
    })?;
    drop(lp);
    assert!(exists(pid));
    assert!(wait_gone(pid), "pid {pid} was left as a zombie");
    Ok(())
}

#[test]
fn stdio_can_be_a_uvlite_pipe() -> io::Result<()> {
    util::run(async {
        let (pipe, child_end) = Pipe::socketpair()?;
        let mut child = Process::spawn(
            Command::new("sh")
                .args(["-c", "echo out; echo err >&2"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::from(child_end.try_clone()?))
                .stderr(std::process::Stdio::from(child_end)),
            &[],
        )?;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = pipe.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"out\nerr\n");
        assert!(child.wait().await?.success());
        Ok(())
    })
}

#[test]
fn a_child_whose_process_outlives_the_loop_is_reaped_too() -> io::Result<()> {
    let lp = uvlite::Loop::new()?;
    let child = lp.block_on(async { Process::spawn(Command::new("sleep").arg("0.3"), &[]) })?;
    let pid = child.pid();
    drop(lp);
    drop(child);
    assert!(wait_gone(pid), "pid {pid} was left as a zombie");
    Ok(())
}

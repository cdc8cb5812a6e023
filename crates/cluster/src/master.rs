//! The master side: bind, spawn a worker per slot with a socketpair at fd 3, send each the
//! bound socket with `write2(".")`, then supervise until a stop signal.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};
use std::task::Poll;
use std::time::Duration;

use uvlite::{Loop, Pipe, Process, Signal, TcpListener, timeout};

use crate::{Config, Error, WORKER_ENV};

/// Time allowed for a worker to take the listening socket from its pipe.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(5);

struct Child {
    index: usize,
    process: Process,
    /// The master's end of the worker's pipe, kept open: the worker sees EOF only when the
    /// master is gone.
    _pipe: Pipe,
}

enum Event {
    Stop,
    Exited(usize, io::Result<ExitStatus>),
}

pub(crate) fn run(config: &Config) -> Result<(), Error> {
    let lp = Loop::new()?;
    lp.block_on(supervise(config))
}

async fn supervise(config: &Config) -> Result<(), Error> {
    let listener = TcpListener::bind(config.addr).map_err(|source| Error::Bind {
        addr: config.addr,
        source,
    })?;
    let term = Signal::new(libc::SIGTERM)?;
    let int = Signal::new(libc::SIGINT)?;
    let exe = uvlite::exepath()?;

    let mut children = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let child = start_worker(config, &exe, index, &listener).await?;
        println!("worker {index} pid {}", child.process.pid());
        children.push(child);
    }

    loop {
        let event = poll_fn(|cx| {
            if term.poll_recv(cx).is_ready() || int.poll_recv(cx).is_ready() {
                return Poll::Ready(Event::Stop);
            }
            for (i, c) in children.iter_mut().enumerate() {
                if let Poll::Ready(status) = c.process.poll_wait(cx) {
                    return Poll::Ready(Event::Exited(i, status));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Stop => {
                stop_workers(&mut children, config.stop_timeout).await;
                return Ok(());
            }
            Event::Exited(i, status) => {
                let c = children.swap_remove(i);
                match status {
                    Ok(s) => eprintln!("worker {} pid {} exited: {s}", c.index, c.process.pid()),
                    Err(e) => eprintln!("worker {} pid {}: {e}", c.index, c.process.pid()),
                }
                if children.is_empty() {
                    return Err(Error::Io(io::Error::other("every worker exited")));
                }
            }
        }
    }
}

/// SIGTERM to every worker, up to `grace` for them to exit, then SIGKILL for the rest.
async fn stop_workers(children: &mut Vec<Child>, grace: Duration) {
    for c in children.iter() {
        let _ = c.process.kill(libc::SIGTERM);
    }
    let all_exited = timeout(grace, wait_all(children)).await;
    if all_exited.is_err() {
        for c in children.iter() {
            eprintln!(
                "worker {} pid {} did not stop in {grace:?}: SIGKILL",
                c.index,
                c.process.pid()
            );
            let _ = c.process.kill(libc::SIGKILL);
        }
        wait_all(children).await;
    }
}

/// Waits until every child has exited, removing each as it goes.
async fn wait_all(children: &mut Vec<Child>) {
    poll_fn(|cx| {
        children.retain_mut(|c| c.process.poll_wait(cx).is_pending());
        if children.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

async fn start_worker(
    config: &Config,
    exe: &std::path::Path,
    index: usize,
    listener: &TcpListener,
) -> Result<Child, Error> {
    let (pipe, child_end) = Pipe::socketpair()?;
    let mut cmd = Command::new(exe);
    cmd.args(&config.worker_args)
        .env(WORKER_ENV, index.to_string());
    let process = Process::spawn(&mut cmd, &[child_end.as_fd()]).map_err(Error::Spawn)?;
    drop(child_end);
    // The seed's write2(pipe, ".", server): one byte carries the listening socket.
    timeout(HANDOFF_TIMEOUT, pipe.write2(b".", listener.as_fd()))
        .await
        .map_err(io::Error::from)??;
    Ok(Child {
        index,
        process,
        _pipe: pipe,
    })
}

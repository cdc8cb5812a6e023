//! The worker side: receive the listening socket on fd 3, listen, serve.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;

use uvlite::{HandleType, Loop, Pipe, TcpListener};

use crate::{Config, Error, WORKER_ENV, WORKER_FD};

/// What a worker gets from its master.
#[derive(Debug)]
pub struct Worker {
    /// The worker's index, 0-based.
    pub index: usize,
    /// The shared listening socket, already listening.
    pub listener: TcpListener,
}

pub(crate) fn run<F, Fut>(config: &Config, index: usize, serve: F) -> Result<(), Error>
where
    F: FnOnce(Worker) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    crate::sys::remove_env(WORKER_ENV);
    let lp = Loop::new()?;
    lp.block_on(async {
        let pipe = Pipe::from_fd(crate::sys::adopt_inherited_fd(WORKER_FD)?)?;
        let listener = receive_listener(&pipe).await?;
        listener.listen(config.backlog)?;
        let serve = pin!(serve(Worker { index, listener }));
        let master_gone = pin!(wait_for_eof(&pipe));
        // Serve until the app returns or the master's end of the pipe closes.
        let (mut serve, mut master_gone) = (serve, master_gone);
        poll_fn(|cx| {
            if let Poll::Ready(r) = serve.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            if let Poll::Ready(()) = master_gone.as_mut().poll(cx) {
                return Poll::Ready(Ok(()));
            }
            Poll::Pending
        })
        .await
    })?;
    Ok(())
}

/// Reads the pipe until the master's handle arrives (the seed's `pipe_pending_count` loop).
async fn receive_listener(pipe: &Pipe) -> io::Result<TcpListener> {
    let mut buf = [0u8; 64];
    while pipe.pending_count() == 0 {
        if pipe.read(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the master closed the pipe before sending the listening socket",
            ));
        }
    }
    if pipe.pending_type() != Some(HandleType::Tcp) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the master sent something that is not a TCP socket",
        ));
    }
    let fd = pipe.accept_pending().expect("pending_count > 0");
    TcpListener::from_fd(fd)
}

/// Completes when the master's end of the pipe closes (the master died or stopped).
async fn wait_for_eof(pipe: &Pipe) {
    let mut buf = [0u8; 64];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

//! `httpd`: the master binds the port and supervises one worker per CPU; each worker accepts
//! on the shared socket and serves the chosen app. Run `httpd --help` for the flags and
//! docs/operating.md for the signals.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::task::Poll;
use std::time::{Duration, Instant};

use cluster::{Counters, Stop, Worker};
use httpd::cli::{self, Command, Options, USAGE};
use httpd::handler::Handler;
use httpd::http::{Reader, Writer};
use httpd::server::{self, Server};
use httpd::{App, apps, drip, log};
use uvlite::{sleep, spawn_local, timeout};

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => *opts,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("httpd: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = cluster::Config::new(opts.listen);
    config.workers = opts.workers;
    config.graceful_timeout = opts.graceful_timeout;
    config.worker_timeout = opts.worker_timeout;
    config.reuseport = opts.reuseport;
    config.status = opts.status;
    config.pid_file = opts.pid_file.clone();
    if cluster::role() == cluster::Role::Master {
        println!(
            "httpd: serving {} on http://{} with {} workers",
            opts.app.name(),
            opts.listen,
            opts.workers
        );
    }
    match cluster::run(&config, move |worker| run_worker(worker, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("httpd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A worker: serve until the master (or a signal) asks it to stop, then drain.
async fn run_worker(worker: Worker, opts: Options) -> io::Result<()> {
    if let Some(target) = &opts.access_log {
        // Before ready: a log that cannot be opened is a boot failure (exit code 3).
        log::init(target).map_err(|e| {
            let what = match target {
                log::Target::Stdout => "stdout".to_owned(),
                log::Target::File(p) => p.display().to_string(),
            };
            io::Error::new(e.kind(), format!("--access-log {what}: {e}"))
        })?;
        spawn_local(async {
            loop {
                sleep(Duration::from_secs(1)).await;
                log::flush();
            }
        })
        .detach();
    }
    let server = Server::new(
        opts.settings.clone().with_uvlite_clock(),
        opts.max_connections,
    )
    .with_accept_batch(opts.accept_batch);
    worker.report_with(|| {
        let s = server::stats();
        Counters {
            accepted: s.accepted,
            requests: s.requests,
            active: s.active as u64,
        }
    });
    let listener = &worker.listener;
    let res = match opts.app {
        App::Path => serve(&worker, &server, server.accept(listener, apps::path)).await,
        App::Hello => serve(&worker, &server, server.accept(listener, apps::hello)).await,
        App::Drip => serve(&worker, &server, server.accept(listener, drip::drip)).await,
        App::Echo => {
            let echo = Handler::new(apps::echo);
            let app = move |r: Reader, w: Writer| echo.clone().serve(r, w);
            serve(&worker, &server, server.accept(listener, app)).await
        }
    };
    log::flush();
    res
}

/// Reports ready, runs the accept loop until a stop request, then drains: a graceful stop
/// waits for the open connections until its deadline, a fast one returns at once.
async fn serve(
    worker: &Worker,
    server: &Server,
    accept: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    worker.ready();
    let mut accept = pin!(accept);
    let stop = poll_fn(|cx| {
        if let Poll::Ready(stop) = worker.poll_stop_requested(cx) {
            return Poll::Ready(Ok(stop));
        }
        accept.as_mut().poll(cx).map(|r| r.map(|()| Stop::Fast))
    })
    .await?;
    match stop {
        Stop::Fast => return Ok(()),
        Stop::Graceful { .. } => server.drain(),
        // The master is gone: in-flight requests finish, idle connections close now.
        Stop::Orphaned { .. } => server.drain_within(Duration::ZERO),
    }
    let deadline = stop.deadline().unwrap_or_else(Instant::now);
    let left = deadline.saturating_duration_since(Instant::now());
    if timeout(left, server.wait_idle()).await.is_err() {
        eprintln!(
            "httpd: worker {}: {} connections still open at the drain deadline; exiting",
            worker.index,
            server::stats().active
        );
    }
    Ok(())
}

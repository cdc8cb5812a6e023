//! `httpd`: the master binds the port and supervises one worker per CPU; each worker accepts
//! on the shared socket and serves the chosen app. Run `httpd --help` for the flags.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use httpd::cli::{self, Command, Options, USAGE};
use httpd::handler::Handler;
use httpd::http::{Reader, Writer};
use httpd::server::Server;
use httpd::{App, apps, log};
use uvlite::{Signal, sleep, spawn_local, timeout};

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
    // The master waits for the workers' graceful drain before it kills them.
    config.stop_timeout = opts.graceful_timeout + Duration::from_secs(2);
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
            ExitCode::from(1)
        }
    }
}

/// A worker: serve until SIGTERM, then drain for up to the graceful timeout.
async fn run_worker(worker: cluster::Worker, opts: Options) -> io::Result<()> {
    if let Some(target) = &opts.access_log {
        log::init(target)?;
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
    );
    let listener = &worker.listener;
    let res = match opts.app {
        App::Path => serve_until_term(&server, server.accept(listener, apps::path)).await,
        App::Hello => serve_until_term(&server, server.accept(listener, apps::hello)).await,
        App::Echo => {
            let echo = Handler::new(apps::echo);
            let app = move |r: Reader, w: Writer| echo.clone().serve(r, w);
            serve_until_term(&server, server.accept(listener, app)).await
        }
    };
    if server.is_draining()
        && timeout(opts.graceful_timeout, server.wait_idle())
            .await
            .is_err()
    {
        eprintln!(
            "httpd: worker {}: connections still open after {:?}; exiting",
            worker.index, opts.graceful_timeout
        );
    }
    log::flush();
    res
}

/// Runs the accept loop until it fails or SIGTERM/SIGINT asks for a graceful stop.
async fn serve_until_term(
    server: &Server,
    accept: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    // SIGINT too: Ctrl-C in a terminal reaches the whole process group.
    let term = Signal::new(libc::SIGTERM)?;
    let int = Signal::new(libc::SIGINT)?;
    let mut accept = pin!(accept);
    poll_fn(|cx| {
        if term.poll_recv(cx).is_ready() || int.poll_recv(cx).is_ready() {
            server.drain();
        }
        accept.as_mut().poll(cx)
    })
    .await
}

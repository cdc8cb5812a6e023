//! `httpd`: the master binds the port and supervises one worker per CPU; each worker accepts
//! on the shared socket and serves the chosen app. Run `httpd --help` for the flags.

use std::process::ExitCode;

use httpd::cli::{self, Command, USAGE};

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => opts,
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
    if cluster::role() == cluster::Role::Master {
        println!(
            "httpd: serving {} on http://{} with {} workers",
            opts.app.name(),
            opts.listen,
            opts.workers
        );
    }
    let app = opts.app;
    match cluster::run(&config, move |worker| {
        httpd::server::serve_listener(worker.listener, app)
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("httpd: {e}");
            ExitCode::from(1)
        }
    }
}

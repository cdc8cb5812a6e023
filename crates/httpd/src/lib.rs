//! The http-cluster server as a library: the HTTP glue between codec-http and codec-chain
//! ([`http`]), the built-in apps ([`apps`]), a worker's accept loop ([`server`]) and the
//! command line ([`cli`]). The `httpd` binary wires them to the `cluster` supervisor.
#![forbid(unsafe_code)]

pub mod apps;
pub mod cli;
pub mod http;
pub mod server;

/// Which built-in app a server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// The seed's app: the request's path and a newline.
    Path,
    /// `Hello, World!` (TechEmpower plaintext).
    Hello,
}

impl App {
    /// The app's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            App::Path => "path",
            App::Hello => "hello",
        }
    }

    /// The app named `name`.
    pub fn from_name(name: &str) -> Option<App> {
        match name {
            "path" => Some(App::Path),
            "hello" => Some(App::Hello),
            _ => None,
        }
    }
}

//! The http-cluster server as a library: the HTTP glue between codec-http and codec-chain
//! ([`http`]), the simple request→response form ([`handler`]), the built-in apps ([`apps`]),
//! a worker's server with its accept loop and draining ([`server`]), the access log ([`log`])
//! and the command line ([`cli`]). The `httpd` binary wires them to the `cluster` supervisor.
#![forbid(unsafe_code)]

pub mod apps;
pub mod cli;
pub mod drip;
pub mod handler;
pub mod http;
pub mod log;
mod pool;
pub mod server;

/// Which built-in app a server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// The seed's app: the request's path and a newline.
    Path,
    /// `Hello, World!` (TechEmpower plaintext).
    Hello,
    /// The request as the server read it, as JSON.
    Echo,
    /// A slow streamed response, for draining tests ([`drip`]).
    Drip,
}

impl App {
    /// The app's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            App::Path => "path",
            App::Hello => "hello",
            App::Echo => "echo",
            App::Drip => "drip",
        }
    }

    /// The app named `name`.
    pub fn from_name(name: &str) -> Option<App> {
        match name {
            "path" => Some(App::Path),
            "hello" => Some(App::Hello),
            "echo" => Some(App::Echo),
            "drip" => Some(App::Drip),
            _ => None,
        }
    }
}

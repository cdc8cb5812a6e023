//! Project automation, std only (the cargo-xtask pattern).
//!
//! - `cargo xtask test`: `cargo fmt --check`, `cargo clippy --workspace --all-targets -D
//!   warnings`, and every test of the workspace.
//! - `cargo xtask ci`: what `.ci/run` calls: `test`, the docs with warnings denied, and tidy.
//! - `cargo xtask tidy`: house rules no compiler checks (see `tidy.rs`).
//! - `cargo xtask bench`: httpd beside the raw reference server and its peers (see `bench.rs`).
//! - `cargo xtask balance`: how evenly httpd's workers share the load (see `balance.rs`).
#![forbid(unsafe_code)]

mod balance;
mod bench;
mod conformance;
mod json;
mod tidy;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

type DynError = Box<dyn std::error::Error>;

const HELP: &str = "\
Usage: cargo xtask <TASK>

Tasks:
  test    cargo fmt --check, cargo clippy -D warnings, cargo test (the whole workspace)
  ci      test, then docs with warnings denied, then tidy (what .ci/run runs);
          --skip-test leaves out the `test` part when it has just run
  tidy    check the house rules (unsafe only in sys.rs, SAFETY comments, forbid headers)
  conformance [--cases DIR] [--jobs N] [--only TEXT]
          run the public HTTP/1.1 request corpora against `httpd --app echo` over TCP
          (default DIR: ../shared/conformance beside the checkout, skipped if absent)
  bench   httpd beside the raw reference server (and nginx with --vs nginx) under wrk, plus
          memory, allocations and criterion; `cargo xtask bench --help` for the options
  balance per-worker requests, connections and CPU under load, and their coefficient of
          variation; `cargo xtask balance --help` for the options
";

fn main() -> ExitCode {
    let task = env::args().nth(1);
    let res = match task.as_deref() {
        Some("test") => test(),
        Some("ci") => ci(env::args().any(|a| a == "--skip-test")),
        Some("tidy") => tidy::run(&root()),
        Some("conformance") => conformance::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("bench") => return bench::main(&root(), env::args().skip(2)),
        Some("balance") => return balance::main(&root(), env::args().skip(2)),
        Some("-h" | "--help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("xtask: unknown task {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
        None => {
            eprint!("{HELP}");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it, and fails if it fails.
pub(crate) fn run(name: &str, mut cmd: Command) -> Result<(), DynError> {
    let start = Instant::now();
    eprintln!("xtask: {name}");
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("{name} failed ({status})").into());
    }
    eprintln!("xtask: {name} ok in {:.1?}", start.elapsed());
    Ok(())
}

fn test() -> Result<(), DynError> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy -D warnings", clippy)?;

    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    run("cargo test --workspace", tests)?;
    Ok(())
}

fn ci(skip_test: bool) -> Result<(), DynError> {
    if !skip_test {
        test()?;
    }
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("cargo doc -D warnings", doc)?;
    tidy::run(&root())?;
    Ok(())
}

//! `cargo xtask balance`: how evenly the workers share the load.
//!
//! Starts the release `httpd` (`--app hello`, a status listener) once per variant, drives it
//! with a load, and reads each worker's accepted connections and requests from the master's
//! status table and its CPU time from `/proc/PID/stat`, before and after. It prints, per
//! scenario and variant, the coefficient of variation (σ/μ) over workers of requests,
//! connections and CPU, and max/mean of requests; all variants run in the same sitting, so
//! they compare with each other, not with figures from another day.
//!
//! Scenarios (N workers):
//! - `heavy`: short connections (`Connection: close`), 8·N clients, every core busy (wrk
//!   when installed, else client threads).
//! - `keepalive`: 100·N keep-alive connections (wrk), balance of connections.
//! - `light`: ⌈N/2⌉ clients, each one short-connection request every 2 ms.
//! - `nearcap`: 90·N keep-alive connections (wrk) against `--max-connections 100`: the
//!   self-throttle (a worker over 7/8 of its cap lets the others accept first) at work.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::DynError;

const HELP: &str = "\
Usage: cargo xtask balance [--workers N] [--seconds S] [--runs R] [--variants LIST]
                           [--scenarios LIST] [--httpd PATH]...

Runs the release httpd under each scenario and variant and prints the coefficient of
variation of per-worker requests, connections and CPU (docs/benchmarks.md, \"Balance\").
  --workers N       workers (default: CPUs)
  --seconds S       load per run (default 10)
  --runs R          runs per scenario and variant, reported one by one (default 1)
  --variants LIST   comma-separated: shared, batch1, batch4, unbounded, reuseport
                    (default shared,reuseport); each is a set of httpd flags, see VARIANTS
  --scenarios LIST  comma-separated: heavy, keepalive, light, nearcap (default all)
  --httpd PATH      run this binary instead of building target/release/httpd; give it
                    more than once to compare builds (A/B) in the same sitting
";

/// Variant name → extra httpd flags.
const VARIANTS: &[(&str, &[&str])] = &[
    ("shared", &[]),
    ("batch1", &["--accept-batch", "1"]),
    ("batch4", &["--accept-batch", "4"]),
    ("unbounded", &["--accept-batch", "0"]),
    ("reuseport", &["--reuseport"]),
];

pub(crate) fn main(root: &Path, args: impl Iterator<Item = String>) -> std::process::ExitCode {
    match run(root, args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask balance: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Options {
    workers: usize,
    seconds: u64,
    runs: usize,
    variants: Vec<String>,
    scenarios: Vec<String>,
    binaries: Vec<std::path::PathBuf>,
}

fn run(root: &Path, args: impl Iterator<Item = String>) -> Result<(), DynError> {
    let mut o = Options {
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        seconds: 10,
        runs: 1,
        variants: vec!["shared".into(), "reuseport".into()],
        scenarios: ["heavy", "keepalive", "light", "nearcap"]
            .map(String::from)
            .to_vec(),
        binaries: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--workers" => o.workers = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--runs" => o.runs = value()?.parse()?,
            "--variants" => o.variants = value()?.split(',').map(str::to_owned).collect(),
            "--scenarios" => o.scenarios = value()?.split(',').map(str::to_owned).collect(),
            "--httpd" => o.binaries.push(value()?.into()),
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a:?}\n\n{HELP}").into()),
        }
    }
    for v in &o.variants {
        if !VARIANTS.iter().any(|(n, _)| n == v) {
            return Err(format!("unknown variant {v:?}").into());
        }
    }
    if o.binaries.is_empty() {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root)
            .args(["build", "--release", "-p", "httpd", "--bin", "httpd"])
            .status()?;
        if !status.success() {
            return Err("cargo build --release -p httpd failed".into());
        }
        o.binaries.push(root.join("target/release/httpd"));
    }
    let wrk = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    println!(
        "# balance: {} workers, {} s per run, load from {}",
        o.workers,
        o.seconds,
        if wrk { "wrk" } else { "client threads" }
    );
    for (i, b) in o.binaries.iter().enumerate() {
        println!("# binary {}: {}", i + 1, b.display());
    }
    println!(
        "| scenario | variant | bin | run | req/s | requests CV | max/mean | connections CV | CPU CV | per-worker requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for scenario in &o.scenarios {
        for variant in &o.variants {
            for run in 1..=o.runs {
                // Binaries alternate within a run, so an A/B shares the machine's moods.
                for (bin, httpd) in o.binaries.iter().enumerate() {
                    let r = measure(httpd, &o, scenario, variant, wrk)?;
                    println!(
                        "| {scenario} | {variant} | {} | {run} | {:.0} | {:.3} | {:.2} | {:.3} | {:.3} | {:?} |",
                        bin + 1,
                        r.rate,
                        cv(&r.requests),
                        max_over_mean(&r.requests),
                        cv(&r.accepted),
                        cv(&r.cpu),
                        r.requests
                    );
                }
            }
        }
    }
    println!("\nCV baseline for uniform random assignment: sqrt(N/C) (N workers, C connections).");
    Ok(())
}

struct Result1 {
    rate: f64,
    requests: Vec<f64>,
    accepted: Vec<f64>,
    cpu: Vec<f64>,
}

fn free_addr() -> Result<SocketAddr, DynError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn measure(
    httpd: &Path,
    o: &Options,
    scenario: &str,
    variant: &str,
    wrk: bool,
) -> Result<Result1, DynError> {
    let addr = free_addr()?;
    let status = free_addr()?;
    let flags = VARIANTS.iter().find(|(n, _)| *n == variant).unwrap().1;
    let mut server = Server(
        Command::new(httpd)
            .args([
                "--listen",
                &addr.to_string(),
                "--status",
                &status.to_string(),
            ])
            .args(["--workers", &o.workers.to_string(), "--app", "hello"])
            .args(flags)
            .args(if scenario == "nearcap" {
                &["--max-connections", "100"][..]
            } else {
                &[]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = loop {
        if let Ok(t) = table(status)
            && t.len() == o.workers
        {
            break t;
        }
        if Instant::now() > deadline {
            return Err("httpd did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let cpu0: Vec<f64> = before.iter().map(|w| cpu_secs(w.0)).collect();
    let t0 = Instant::now();
    let secs = o.seconds;
    match scenario {
        "heavy" if wrk => wrk_run(addr, 8 * o.workers, secs, true)?,
        "heavy" => threads_run(addr, 8 * o.workers, secs, None),
        "keepalive" if wrk => wrk_run(addr, 100 * o.workers, secs, false)?,
        "nearcap" if wrk => wrk_run(addr, 90 * o.workers, secs, false)?,
        "keepalive" | "nearcap" => return Err("this scenario needs wrk".into()),
        "light" => threads_run(
            addr,
            o.workers.div_ceil(2),
            secs,
            Some(Duration::from_millis(2)),
        ),
        other => return Err(format!("unknown scenario {other:?}").into()),
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1: Vec<f64> = before.iter().map(|w| cpu_secs(w.0)).collect();
    // Let a heartbeat carry the last counters.
    std::thread::sleep(Duration::from_millis(1500));
    let after = table(status)?;
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let _ = server.0.wait();
    let mut requests = Vec::new();
    let mut accepted = Vec::new();
    for w in &before {
        let a = after
            .iter()
            .find(|x| x.0 == w.0)
            .ok_or("a worker was replaced during the run")?;
        requests.push((a.2 - w.2) as f64);
        accepted.push((a.1 - w.1) as f64);
    }
    let cpu = cpu1.iter().zip(&cpu0).map(|(a, b)| a - b).collect();
    Ok(Result1 {
        rate: requests.iter().sum::<f64>() / elapsed,
        requests,
        accepted,
        cpu,
    })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The ready workers of the status table: (pid, accepted, requests).
fn table(status: SocketAddr) -> Result<Vec<(u32, u64, u64)>, DynError> {
    let mut s = TcpStream::connect(status)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let body = out.split_once("\r\n\r\n").ok_or("no status body")?.1;
    let mut rows = Vec::new();
    for line in body.lines().skip(2) {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() == 9 && f[2] == "ready" {
            rows.push((f[1].parse()?, f[6].parse()?, f[7].parse()?));
        }
    }
    Ok(rows)
}

/// User + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = f.get(11..13).map_or(0.0, |t| {
        t.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

fn wrk_run(addr: SocketAddr, conns: usize, secs: u64, close: bool) -> Result<(), DynError> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        "1",
        "-c",
        &conns.to_string(),
        "-d",
        &format!("{secs}s"),
    ]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd.arg(format!("http://{addr}/")).output()?;
    if !out.status.success() {
        return Err(format!("wrk failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// `clients` threads doing short-connection requests for `secs`, pausing `pace` after each.
fn threads_run(addr: SocketAddr, clients: usize, secs: u64, pace: Option<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::with_capacity(512);
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
                        buf.clear();
                        if s.write_all(req).is_ok() && s.read_to_end(&mut buf).is_ok() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some(p) = pace {
                        std::thread::sleep(p);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Coefficient of variation: population standard deviation over the mean.
fn cv(v: &[f64]) -> f64 {
    let m = mean(v);
    if m == 0.0 {
        return 0.0;
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    var.sqrt() / m
}

fn max_over_mean(v: &[f64]) -> f64 {
    let m = mean(v);
    if m == 0.0 {
        return 0.0;
    }
    v.iter().copied().fold(0.0, f64::max) / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cv_and_max_over_mean() {
        assert_eq!(cv(&[5.0, 5.0, 5.0]), 0.0);
        assert!((cv(&[1.0, 3.0]) - 0.5).abs() < 1e-12);
        assert!((max_over_mean(&[1.0, 3.0]) - 1.5).abs() < 1e-12);
        assert_eq!(cv(&[0.0, 0.0]), 0.0);
    }
}

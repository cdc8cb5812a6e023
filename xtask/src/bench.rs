//! `cargo xtask bench`: httpd beside the raw reference server (and nginx with `--vs nginx`)
//! in the same run, driven by wrk; memory per idle connection; allocations per request; the
//! criterion benches. Writes `target/bench/report.md` and `report.json`.
//!
//! Every figure that matters is a ratio to a baseline measured in the same run, in
//! interleaved order (each repeat runs every server once), and reported as the median of the
//! repeats: the machine is shared and noisy, so absolute numbers from two runs do not compare.

mod callgrind;
mod procfs;
mod report;
mod wrk;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use procfs::Ticks;
use report::{Alloc, Budget, Idle, Report, Row};

use crate::DynError;

const HELP: &str = "\
Usage: cargo xtask bench [--quick] [--vs nginx] [--duration SECS] [--repeat N]
                         [--idle-connections N] [--no-criterion] [--callgrind | --no-callgrind]

Builds httpd and the raw reference server (benches/src/bin/raw-server.rs) in release, then
in the same run: wrk against each (keep-alive with 100 and 1,000 connections, pipelined ×16,
Connection: close), one worker pinned to CPU 0 with wrk on CPU 1, then all workers unpinned;
memory per idle keep-alive connection; heap allocations per keep-alive request; the
criterion benches; with valgrind, instructions per request under callgrind and where they
go, and cache misses per request under 1,000 connections (callgrind's cache simulator).
Prints the tables and writes target/bench/report.md and report.json.

  --quick               one repeat of 2 s, pinned setup only, no criterion, no callgrind:
                        under a minute
  --vs nginx            nginx beside them, with an equivalent config (needs nginx on PATH)
  --duration SECS       length of each wrk run (default 10)
  --repeat N            repeats of each run, medians reported (default 3)
  --idle-connections N  connections for the idle-memory check (default 10000)
  --no-criterion        skip `cargo bench -p benches`
  --callgrind           profile under callgrind even with --quick (needs valgrind)
  --no-callgrind        skip the callgrind profile
";

const INSTALL_WRK: &str = "\
xtask bench: wrk is not on PATH. Install it, then run again:
    apt-get install -y wrk        (Debian, Ubuntu)
    dnf install -y wrk            (Fedora)
    brew install wrk              (macOS)
or build it from https://github.com/wg/wrk.";

struct Options {
    quick: bool,
    nginx: bool,
    duration: u32,
    repeat: usize,
    idle: usize,
    criterion: bool,
    /// `None`: when valgrind is there and not `--quick`.
    callgrind: Option<bool>,
}

/// Runs the task; exit code 2 for bad usage or a missing wrk.
pub(crate) fn main(root: &Path, args: impl Iterator<Item = String>) -> ExitCode {
    let opts = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xtask bench: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    if which("wrk").is_none() {
        eprintln!("{INSTALL_WRK}");
        return ExitCode::from(2);
    }
    if opts.nginx && which("nginx").is_none() {
        eprintln!(
            "xtask bench: --vs nginx needs nginx on PATH (apt-get install -y nginx-light, or \
             nginx)"
        );
        return ExitCode::from(2);
    }
    match run(root, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        quick: false,
        nginx: false,
        duration: 10,
        repeat: 3,
        idle: 10_000,
        criterion: true,
        callgrind: None,
    };
    let (mut duration, mut repeat) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => o.quick = true,
            "--vs" => match value("--vs")?.as_str() {
                "nginx" => o.nginx = true,
                other => return Err(format!("--vs: unknown peer {other:?} (nginx)")),
            },
            "--duration" => {
                duration = Some(
                    value("--duration")?
                        .parse()
                        .ok()
                        .filter(|&d| d > 0)
                        .ok_or("--duration: want whole seconds")?,
                )
            }
            "--repeat" => {
                repeat = Some(
                    value("--repeat")?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--repeat: want a count")?,
                )
            }
            "--idle-connections" => {
                o.idle = value("--idle-connections")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--idle-connections: want a count")?
            }
            "--no-criterion" => o.criterion = false,
            "--callgrind" => o.callgrind = Some(true),
            "--no-callgrind" => o.callgrind = Some(false),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.quick {
        o.duration = 2;
        o.repeat = 1;
        o.criterion = false;
    }
    o.duration = duration.unwrap_or(o.duration);
    o.repeat = repeat.unwrap_or(o.repeat);
    Ok(Some(o))
}

/// The loads, as wrk runs them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Load {
    KeepAlive100,
    KeepAlive1000,
    Pipelined16,
    Close,
}

impl Load {
    const ALL: [Load; 4] = [
        Load::KeepAlive100,
        Load::KeepAlive1000,
        Load::Pipelined16,
        Load::Close,
    ];

    fn name(self) -> &'static str {
        match self {
            Load::KeepAlive100 => "keep-alive c=100",
            Load::KeepAlive1000 => "keep-alive c=1000",
            Load::Pipelined16 => "pipelined ×16 c=100",
            Load::Close => "Connection: close c=100",
        }
    }

    fn connections(self) -> usize {
        match self {
            Load::KeepAlive1000 => 1000,
            _ => 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Httpd,
    Raw,
    /// The raw server in its `--close` mode, for the Connection: close load.
    RawClose,
    Nginx,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Httpd => "httpd",
            Kind::Raw | Kind::RawClose => "raw",
            Kind::Nginx => "nginx",
        }
    }

    fn serves(self, load: Load) -> bool {
        match self {
            Kind::Raw => load != Load::Close,
            Kind::RawClose => load == Load::Close,
            Kind::Httpd | Kind::Nginx => true,
        }
    }
}

/// One machine layout: how many workers, and whether server and wrk are pinned.
struct Setup {
    name: String,
    workers: usize,
    pinned: bool,
    wrk_threads: usize,
}

/// A server started for the bench; stopped when dropped.
struct Server {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    pids: Vec<u32>,
}

impl Drop for Server {
    fn drop(&mut self) {
        kill("TERM", &[self.child.id()]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive: Vec<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        kill("KILL", &alive);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

struct Ctx {
    root: PathBuf,
    out: PathBuf,
    taskset: bool,
    tck: u64,
}

fn run(root: &Path, opts: &Options) -> Result<(), DynError> {
    let started = Instant::now();
    let out = root.join("target/bench");
    fs::create_dir_all(&out)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ctx = Ctx {
        root: root.to_path_buf(),
        out: out.clone(),
        taskset: which("taskset").is_some() && cpus >= 2,
        tck: procfs::clock_ticks(),
    };
    let soft = procfs::raise_nofile(opts.idle as u64 + 2_000);
    let mut report = Report {
        command: format!(
            "cargo xtask bench {}",
            std::env::args().skip(2).collect::<Vec<_>>().join(" ")
        )
        .trim_end()
        .to_owned(),
        date: shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: machine(cpus),
        load: fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        ..Report::default()
    };
    report.notes.push(format!(
        "wrk {}; each run {} s, {} repeat(s), interleaved",
        shell("sh", &["-c", "wrk -v 2>&1 | head -1 | cut -d' ' -f2"]),
        opts.duration,
        opts.repeat
    ));
    if !ctx.taskset {
        report
            .notes
            .push("not pinned: taskset missing or fewer than 2 CPUs".into());
    }

    build(&ctx)?;
    report.alloc = allocations(&ctx)?;

    let mut setups = vec![Setup {
        name: "1 worker pinned to CPU 0, wrk -t1 on CPU 1".into(),
        workers: 1,
        pinned: ctx.taskset,
        wrk_threads: 1,
    }];
    if !opts.quick {
        setups.push(Setup {
            name: format!("{cpus} workers unpinned, wrk -t{}", (cpus / 2).max(1)),
            workers: cpus,
            pinned: false,
            wrk_threads: (cpus / 2).max(1),
        });
    }
    let mut kinds = vec![Kind::Httpd, Kind::Raw, Kind::RawClose];
    if opts.nginx {
        kinds.push(Kind::Nginx);
    }
    for setup in &setups {
        report.rows.extend(end_to_end(&ctx, opts, setup, &kinds)?);
    }

    if (opts.idle as u64) + 100 > soft {
        report.notes.push(format!(
            "idle memory skipped: the open-file limit ({soft}) is below {} connections",
            opts.idle
        ));
    } else {
        for &kind in &kinds {
            if kind == Kind::RawClose {
                continue;
            }
            report.idle.push(idle_memory(&ctx, kind, opts.idle)?);
        }
    }

    if opts.criterion {
        report.criterion = criterion(&ctx)?;
    }
    let have_valgrind = which("valgrind").is_some() && which("callgrind_control").is_some();
    match opts.callgrind {
        Some(true) if !have_valgrind => {
            return Err("--callgrind needs valgrind (apt-get install -y valgrind)".into());
        }
        Some(true) => (report.profiles, report.cache) = profiles(&ctx)?,
        None if have_valgrind && !opts.quick => (report.profiles, report.cache) = profiles(&ctx)?,
        None if !opts.quick => report
            .notes
            .push("callgrind profile skipped: valgrind is not on PATH".into()),
        _ => {}
    }
    report.budgets = budgets(&report, &setups[0].name);
    report
        .notes
        .push(format!("took {:.0} s", started.elapsed().as_secs_f64()));

    let md = report.markdown();
    println!("\n{md}");
    fs::write(out.join("report.md"), &md)?;
    fs::write(out.join("report.json"), report.json())?;
    eprintln!(
        "xtask bench: wrote {} and report.json",
        out.join("report.md").display()
    );
    Ok(())
}

fn build(ctx: &Ctx) -> Result<(), DynError> {
    let mut cmd = crate::cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "httpd",
        "-p",
        "benches",
        "--bin",
        "httpd",
        "--bin",
        "raw-server",
    ]);
    crate::run("cargo build --release (httpd, raw-server)", cmd)?;
    for bin in ["httpd", "raw-server"] {
        if !ctx.root.join("target/release").join(bin).exists() {
            return Err(format!("target/release/{bin} is missing after the build").into());
        }
    }
    Ok(())
}

/// Runs the allocation test in release and reads its `alloc:` lines.
fn allocations(ctx: &Ctx) -> Result<Vec<Alloc>, DynError> {
    eprintln!("xtask bench: allocations per request (crates/httpd/tests/alloc.rs)");
    let out = crate::cargo()
        .current_dir(&ctx.root)
        .args([
            "test",
            "--release",
            "-p",
            "httpd",
            "--test",
            "alloc",
            "--",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = parse_alloc(&text);
    if rows.is_empty() {
        return Err(format!("the allocation test printed no result:\n{text}").into());
    }
    Ok(rows)
}

/// `alloc: app=hello requests=2024 allocations=0 bytes=0 per_request=0.0000` lines (with
/// `--nocapture` they may follow libtest's `test name ... ` on the same line).
fn parse_alloc(text: &str) -> Vec<Alloc> {
    text.lines()
        .filter_map(|l| Some(&l[l.find("alloc: ")? + "alloc: ".len()..]))
        .filter_map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            };
            Some(Alloc {
                app: field("app")?.to_owned(),
                requests: field("requests")?.parse().ok()?,
                allocations: field("allocations")?.parse().ok()?,
                bytes: field("bytes")?.parse().ok()?,
            })
        })
        .collect()
}

/// One measurement: wrk's figures and the server's CPU time over the run.
struct Sample {
    wrk: wrk::WrkResult,
    cpu: Ticks,
}

fn end_to_end(
    ctx: &Ctx,
    opts: &Options,
    setup: &Setup,
    kinds: &[Kind],
) -> Result<Vec<Row>, DynError> {
    eprintln!("xtask bench: {}", setup.name);
    let servers: Vec<Server> = kinds
        .iter()
        .map(|&k| start(ctx, k, setup.workers, setup.pinned))
        .collect::<Result<_, _>>()?;
    // Warm-up: let every server grow its buffers and pools before anything is counted.
    for s in &servers {
        let load = if s.kind == Kind::RawClose {
            Load::Close
        } else {
            Load::KeepAlive100
        };
        wrk(ctx, setup, load, s.addr, 1)?;
    }
    let mut samples: Vec<(usize, Load, Kind, Sample)> = Vec::new();
    for rep in 0..opts.repeat {
        for load in Load::ALL {
            for s in servers.iter().filter(|s| s.kind.serves(load)) {
                let pids = procfs::tree(s.child.id());
                let before = procfs::ticks(&pids);
                let w = wrk(ctx, setup, load, s.addr, opts.duration)?;
                let cpu = procfs::ticks(&pids).since(before);
                eprintln!(
                    "xtask bench:   [{}/{}] {:<24} {:<6} {:>10.0} req/s  {:.3} µs CPU/req  p99 {:.0} µs{}",
                    rep + 1,
                    opts.repeat,
                    load.name(),
                    s.kind.name(),
                    w.rps,
                    cpu.total() as f64 * 1e6 / ctx.tck as f64 / w.requests.max(1) as f64,
                    w.p99_us,
                    if w.socket_errors + w.non_2xx > 0 {
                        format!(
                            "  ({} socket errors, {} non-2xx)",
                            w.socket_errors, w.non_2xx
                        )
                    } else {
                        String::new()
                    }
                );
                samples.push((rep, load, s.kind, Sample { wrk: w, cpu }));
            }
        }
    }
    drop(servers);
    let per_req =
        |t: u64, s: &Sample| t as f64 * 1e6 / ctx.tck as f64 / s.wrk.requests.max(1) as f64;
    let mut rows = Vec::new();
    for load in Load::ALL {
        let of = |kind: Kind| -> Vec<(usize, &Sample)> {
            samples
                .iter()
                .filter(|(_, l, k, _)| *l == load && *k == kind)
                .map(|(rep, _, _, s)| (*rep, s))
                .collect()
        };
        let httpd = of(Kind::Httpd);
        for &kind in kinds.iter().filter(|k| k.serves(load)) {
            let mine = of(kind);
            // httpd ÷ this server, repeat by repeat (the two ran one after the other, so they
            // saw nearly the same machine), then the median of those ratios.
            let vs_httpd = (kind != Kind::Httpd).then(|| {
                let pairs: Vec<(&Sample, &Sample)> = mine
                    .iter()
                    .filter_map(|(rep, s)| Some((httpd.iter().find(|(r, _)| r == rep)?.1, *s)))
                    .collect();
                (
                    median(pairs.iter().map(|(h, s)| h.wrk.rps / s.wrk.rps).collect()),
                    median(
                        pairs
                            .iter()
                            .map(|(h, s)| per_req(h.cpu.total(), h) / per_req(s.cpu.total(), s))
                            .collect(),
                    ),
                )
            });
            rows.push(Row {
                setup: setup.name.clone(),
                run: load.name(),
                server: kind.name(),
                rps: median(mine.iter().map(|(_, s)| s.wrk.rps).collect()),
                user_us: median(mine.iter().map(|(_, s)| per_req(s.cpu.user, s)).collect()),
                total_us: median(
                    mine.iter()
                        .map(|(_, s)| per_req(s.cpu.total(), s))
                        .collect(),
                ),
                p99_us: median(mine.iter().map(|(_, s)| s.wrk.p99_us).collect()),
                errors: mine
                    .iter()
                    .map(|(_, s)| s.wrk.socket_errors + s.wrk.non_2xx)
                    .sum(),
                repeats: mine.len(),
                vs_httpd,
            });
        }
    }
    Ok(rows)
}

/// The median of the numbers in `v` (NaN, a missing figure, is left out).
fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs wrk once against `addr`.
fn wrk(
    ctx: &Ctx,
    setup: &Setup,
    load: Load,
    addr: SocketAddr,
    secs: u32,
) -> Result<wrk::WrkResult, DynError> {
    let mut cmd = pinned(setup.pinned, "1", "wrk");
    cmd.arg(format!("-t{}", setup.wrk_threads))
        .arg(format!("-c{}", load.connections()))
        .arg(format!("-d{secs}s"))
        .args(["--timeout", "5s", "--latency"]);
    match load {
        Load::Pipelined16 => {
            cmd.arg("-s").arg(ctx.root.join("benches/wrk/pipeline.lua"));
        }
        Load::Close => {
            cmd.args(["-H", "Connection: close"]);
        }
        Load::KeepAlive100 | Load::KeepAlive1000 => {}
    }
    cmd.arg(format!("http://{addr}/"));
    if load == Load::Pipelined16 {
        cmd.args(["--", "16"]);
    }
    let out = cmd.stderr(Stdio::piped()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    wrk::parse(&text).ok_or_else(|| {
        format!(
            "wrk gave no result against {addr} ({}):\n{text}{}",
            load.name(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

/// `cmd`, run through `taskset -c cpu` when `pin` is set.
fn pinned(pin: bool, cpu: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", cpu]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_addr() -> Result<SocketAddr, DynError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Starts a server on a free loopback port and waits until it answers.
fn start(ctx: &Ctx, kind: Kind, workers: usize, pin: bool) -> Result<Server, DynError> {
    let addr = free_addr()?;
    let bin = ctx.root.join("target/release");
    let mut cmd = match kind {
        Kind::Httpd => {
            let mut c = pinned(pin, "0", bin.join("httpd"));
            c.args(["--listen", &addr.to_string(), "--app", "hello"])
                .arg(format!("--workers={workers}"));
            c
        }
        Kind::Raw | Kind::RawClose => {
            let mut c = pinned(pin, "0", bin.join("raw-server"));
            c.args(["--listen", &addr.to_string()])
                .args(["--threads", &workers.to_string()]);
            if kind == Kind::RawClose {
                c.arg("--close");
            }
            c
        }
        Kind::Nginx => {
            let dir = ctx.out.join(format!("nginx-{}", addr.port()));
            fs::create_dir_all(dir.join("logs"))?;
            fs::write(dir.join("nginx.conf"), nginx_conf(addr, workers))?;
            let mut c = pinned(pin, "0", "nginx");
            c.arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf"));
            c.args(["-e", "logs/error.log"]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
    // Keep reading the server's stdout so it never blocks on a full pipe.
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        kind,
        child,
        addr,
        pids: Vec::new(),
    };
    wait_ready(&mut server)?;
    // httpd prints `worker <i> pid <pid>` for each worker; wait for all before counting CPU.
    if kind == Kind::Httpd {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = 0;
        while seen < workers && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
                && line.starts_with("worker ")
            {
                seen += 1;
            }
        }
    }
    server.pids = procfs::tree(server.child.id());
    Ok(server)
}

/// Waits until `GET /` on the server gets a `200`.
fn wait_ready(server: &mut Server) -> Result<(), DynError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{} exited at start ({status})", server.kind.name()).into());
        }
        if let Ok(mut s) = TcpStream::connect(server.addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = Vec::new();
            if s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                .is_ok()
                && read_hello(&mut s, &mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{} never answered on {}", server.kind.name(), server.addr).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads one `Hello, World!` response (every server here answers with that body).
fn read_hello(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    while !buf.ends_with(b"Hello, World!") {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// nginx as close to httpd as its config allows: N workers, no access log, keep-alive
/// requests practically unlimited, a fixed `Hello, World!` body.
fn nginx_conf(addr: SocketAddr, workers: usize) -> String {
    format!(
        "daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid nginx.pid;
error_log logs/error.log warn;
events {{
    worker_connections 16384;
    use epoll;
}}
http {{
    access_log off;
    server_tokens off;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 65s;
    client_body_temp_path tmp_body;
    proxy_temp_path tmp_proxy;
    fastcgi_temp_path tmp_fastcgi;
    uwsgi_temp_path tmp_uwsgi;
    scgi_temp_path tmp_scgi;
    server {{
        listen {addr} backlog=1024;
        location / {{
            default_type text/plain;
            return 200 \"Hello, World!\";
        }}
    }}
}}
"
    )
}

/// Opens `n` keep-alive connections, each after one request, and returns the server's
/// resident memory before and after.
fn idle_memory(ctx: &Ctx, kind: Kind, n: usize) -> Result<Idle, DynError> {
    eprintln!(
        "xtask bench: memory of {n} idle keep-alive connections: {}",
        kind.name()
    );
    let server = start(ctx, kind, 1, false)?;
    let mut buf = Vec::new();
    // Warm-up on a few connections, then let them go.
    for _ in 0..4 {
        let mut s = TcpStream::connect(server.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        for _ in 0..8 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
            read_hello(&mut s, &mut buf)?;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = procfs::rss_kib(&server.pids);
    let mut conns = Vec::with_capacity(n);
    // In batches: connect and send, then read every answer.
    for start in (0..n).step_by(500) {
        let batch = (n - start).min(500);
        for _ in 0..batch {
            let mut s = TcpStream::connect(server.addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
            conns.push(s);
        }
        for s in &mut conns[start..] {
            read_hello(s, &mut buf)?;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = procfs::rss_kib(&server.pids);
    drop(conns);
    Ok(Idle {
        server: kind.name(),
        connections: n,
        rss_before_kib: before,
        rss_after_kib: after,
    })
}

/// Requests per profiled load under callgrind.
const PROFILE_REQUESTS: u64 = 2_000;

/// Connections of the cache-simulator load (as the keep-alive c=1000 budget's).
const CACHE_CONNECTIONS: u32 = 1_000;

/// Seconds counted of the cache-simulator load (after a 3 s warm-up).
const CACHE_SECS: u32 = 6;

/// httpd (hello app, one worker) and the raw server under callgrind: instructions per
/// request on one connection, then cache misses per request under 1,000 connections.
fn profiles(
    ctx: &Ctx,
) -> Result<(Vec<callgrind::Profile>, Vec<callgrind::CacheProfile>), DynError> {
    eprintln!(
        "xtask bench: instructions per request under callgrind, and cache misses per request \
         under {CACHE_CONNECTIONS} connections (--cache-sim=yes)"
    );
    let bin = ctx.root.join("target/release");
    let (mut out, mut cache) = (Vec::new(), Vec::new());
    for (name, program) in [("httpd", "httpd"), ("raw", "raw-server")] {
        let args = |addr: SocketAddr| {
            let mut args = vec!["--listen".to_owned(), addr.to_string()];
            if name == "httpd" {
                args.extend(["--workers", "1", "--app", "hello"].map(String::from));
            }
            args
        };
        let program = bin.join(program);
        let addr = free_addr()?;
        out.extend(callgrind::profile(
            &ctx.out,
            name,
            &program,
            &args(addr),
            addr,
            PROFILE_REQUESTS,
        )?);
        let addr = free_addr()?;
        cache.push(callgrind::cache_profile(
            &ctx.out,
            name,
            &program,
            &args(addr),
            addr,
            CACHE_CONNECTIONS,
            CACHE_SECS,
        )?);
    }
    Ok((out, cache))
}

/// Baselines of criterion groups: the member with one of these names is what the others
/// are divided by.
const CRITERION_BASELINES: &[&str] = &["baseline", "raw", "httparse", "mio", "std"];

/// Runs `cargo bench -p benches` and reads the medians it wrote under target/criterion.
fn criterion(ctx: &Ctx) -> Result<Vec<report::Criterion>, DynError> {
    let since = SystemTime::now();
    let mut cmd = crate::cargo();
    cmd.args(["bench", "-p", "benches"]);
    crate::run("cargo bench -p benches", cmd)?;
    let mut found: Vec<(String, String, String, f64)> = Vec::new(); // (id, group, function, ns)
    for est in files_named(&ctx.root.join("target/criterion"), "estimates.json") {
        let Some(dir) = est.parent() else { continue };
        if dir.file_name().is_none_or(|n| n != "new") {
            continue;
        }
        let fresh = fs::metadata(&est)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if !fresh {
            continue;
        }
        let (Ok(e), Ok(b)) = (
            fs::read_to_string(&est),
            fs::read_to_string(dir.join("benchmark.json")),
        ) else {
            continue;
        };
        let (Some(median), Some(id)) = (
            report::json_number_after(&e, "\"median\"", "point_estimate"),
            report::json_string(&b, "full_id"),
        ) else {
            continue;
        };
        let group = report::json_string(&b, "group_id").unwrap_or_default();
        let function = report::json_string(&b, "function_id").unwrap_or_default();
        found.push((id, group, function, median));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found
        .iter()
        .map(|(id, group, function, ns)| {
            let baseline = found
                .iter()
                .find(|(_, g, f, _)| {
                    g == group && f != function && CRITERION_BASELINES.contains(&f.as_str())
                })
                .map(|(bid, _, _, bns)| (bid.clone(), ns / bns));
            report::Criterion {
                id: id.clone(),
                median_ns: *ns,
                baseline,
            }
        })
        .collect())
}

fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_named(&p, name));
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
    out
}

/// design.md §5, checked against the pinned setup.
fn budgets(r: &Report, pinned: &str) -> Vec<Budget> {
    let mut out = Vec::new();
    let get = |run: &str, server: &str| r.row(pinned, run, server);
    let pipe = Load::Pipelined16.name();
    // httpd ÷ `server` for `run`: (req/s, total CPU per request), paired by repeat.
    let vs = |run: &str, server: &str| get(run, server).and_then(|r| r.vs_httpd);
    if let Some((ratio, _)) = vs(pipe, "raw") {
        out.push(Budget {
            what: format!("{pipe}: req/s ÷ raw"),
            target: "≥ 0.95×".into(),
            measured: format!("{ratio:.3}×"),
            met: Some(ratio >= 0.95),
        });
    }
    if let Some((ratio, _)) = vs(pipe, "nginx") {
        out.push(Budget {
            what: format!("{pipe}: req/s ÷ nginx"),
            target: "> 1× (ahead of every peer)".into(),
            measured: format!("{ratio:.3}×"),
            met: Some(ratio > 1.0),
        });
    }
    for load in [Load::KeepAlive100, Load::KeepAlive1000] {
        let (Some(h), Some(raw), Some((_, ratio))) = (
            get(load.name(), "httpd"),
            get(load.name(), "raw"),
            vs(load.name(), "raw"),
        ) else {
            continue;
        };
        out.push(Budget {
            what: format!("{}: user CPU per request", load.name()),
            target: "≤ 0.35 µs".into(),
            measured: format!("{:.3} µs (raw {:.3} µs)", h.user_us, raw.user_us),
            met: Some(h.user_us <= 0.35),
        });
        out.push(Budget {
            what: format!("{}: total CPU per request ÷ raw", load.name()),
            target: "≤ 1.05×".into(),
            measured: format!("{ratio:.3}× ({:.3} µs)", h.total_us),
            met: Some(ratio <= 1.05),
        });
        if let Some((ratio, _)) = vs(load.name(), "nginx") {
            out.push(Budget {
                what: format!("{}: req/s ÷ nginx", load.name()),
                target: "≥ 1× (the best peer)".into(),
                measured: format!("{ratio:.3}×"),
                met: Some(ratio >= 1.0),
            });
        }
    }
    let close = Load::Close.name();
    if get(close, "httpd").is_some() {
        let n = vs(close, "nginx").map(|(ratio, _)| ratio);
        out.push(Budget {
            what: format!("{close}: req/s ÷ nginx"),
            target: "≥ 1.0×".into(),
            measured: n.map_or("no nginx in this run (--vs nginx)".into(), |n| {
                format!("{n:.3}×")
            }),
            met: n.map(|n| n >= 1.0),
        });
    }
    // The codec's budgets, if the criterion benches of those names ran.
    if let Some(c) = r
        .criterion
        .iter()
        .find(|c| c.id == "decode_get_6_headers/codec_http")
        && let Some((_, ratio)) = &c.baseline
    {
        out.push(Budget {
            what: "codec: decode a 6-header GET ÷ httparse".into(),
            target: "≤ 1.2×".into(),
            measured: format!("{ratio:.3}× ({:.0} ns)", c.median_ns),
            met: Some(*ratio <= 1.2),
        });
    }
    if let Some(c) = r.criterion.iter().find(|c| c.id == "encode_response_head") {
        out.push(Budget {
            what: "codec: encode a response head".into(),
            target: "≤ 50 ns".into(),
            measured: format!("{:.0} ns", c.median_ns),
            met: Some(c.median_ns <= 50.0),
        });
    }
    if let Some(i) = r.idle.iter().find(|i| i.server == "httpd") {
        out.push(Budget {
            what: "memory per idle keep-alive connection".into(),
            target: "≤ 1 KiB".into(),
            measured: format!("{:.2} KiB", i.per_connection_kib()),
            met: Some(i.per_connection_kib() <= 1.0),
        });
    }
    if !r.alloc.is_empty() {
        let total: u64 = r.alloc.iter().map(|a| a.allocations).sum();
        let apps: Vec<&str> = r.alloc.iter().map(|a| a.app.as_str()).collect();
        out.push(Budget {
            what: format!(
                "heap allocations per keep-alive request ({})",
                apps.join(", ")
            ),
            target: "0".into(),
            measured: total.to_string(),
            met: Some(total == 0),
        });
    }
    out
}

/// The path of `program` on PATH, if it is there.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// CPU model, count, memory and kernel, from /proc.
fn machine(cpus: usize) -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} × {model}, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_lines() {
        let out = "running 2 tests\ntest hello ... alloc: app=hello requests=2024 allocations=0 bytes=0 \
                   per_request=0.0000\ntest a ... ok\nalloc: app=path requests=10 \
                   allocations=3 bytes=96 per_request=0.3\nalloc: app=broken\n";
        assert_eq!(
            parse_alloc(out),
            vec![
                Alloc {
                    app: "hello".into(),
                    requests: 2024,
                    allocations: 0,
                    bytes: 0
                },
                Alloc {
                    app: "path".into(),
                    requests: 10,
                    allocations: 3,
                    bytes: 96
                },
            ]
        );
    }

    #[test]
    fn options() {
        let p = |a: &[&str]| parse(a.iter().map(|s| s.to_string()));
        let o = p(&["--quick", "--vs", "nginx"]).unwrap().unwrap();
        assert!(o.quick && o.nginx && !o.criterion);
        assert_eq!((o.duration, o.repeat), (2, 1));
        let o = p(&["--quick", "--duration", "5"]).unwrap().unwrap();
        assert_eq!(o.duration, 5);
        let o = p(&[]).unwrap().unwrap();
        assert_eq!((o.duration, o.repeat, o.idle), (10, 3, 10_000));
        assert!(p(&["--vs", "apache"]).is_err());
        assert!(p(&["--repeat", "0"]).is_err());
        assert!(p(&["--duration"]).is_err());
        assert!(p(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        assert_eq!(median(vec![f64::NAN, 5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn budgets_compare_httpd_with_the_baselines() {
        let setup = "pinned";
        let row = |run: &'static str, server: &'static str, rps: f64, user: f64, total: f64| Row {
            setup: setup.into(),
            run,
            server,
            rps,
            user_us: user,
            total_us: total,
            p99_us: 1.0,
            errors: 0,
            repeats: 1,
            vs_httpd: None,
        };
        let ka = Load::KeepAlive100.name();
        let pipe = Load::Pipelined16.name();
        let r = Report {
            rows: vec![
                row(pipe, "httpd", 960.0, 0.1, 1.0),
                Row {
                    vs_httpd: Some((0.96, 1.0)),
                    ..row(pipe, "raw", 1000.0, 0.1, 1.0)
                },
                row(ka, "httpd", 100.0, 0.40, 6.0),
                Row {
                    vs_httpd: Some((1.0, 1.04)),
                    ..row(ka, "raw", 100.0, 0.25, 5.77)
                },
            ],
            ..Report::default()
        };
        let b = budgets(&r, setup);
        let met = |what: &str| b.iter().find(|b| b.what.starts_with(what)).unwrap().met;
        assert_eq!(met(&format!("{pipe}: req/s ÷ raw")), Some(true));
        assert_eq!(met(&format!("{ka}: user CPU")), Some(false));
        assert_eq!(met(&format!("{ka}: total CPU")), Some(true));
    }
}

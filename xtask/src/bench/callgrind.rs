//! Instructions per request under callgrind, and where they go.
//!
//! The server runs under `valgrind --tool=callgrind --trace-children=yes` (so httpd's worker
//! is profiled too). After a warm-up, xtask zeroes the worker's counters with
//! `callgrind_control --zero`, sends a known number of requests, and asks for a dump
//! (`callgrind_control --dump`): the dump holds exactly the user-space instructions spent on
//! those requests (plus the loop's idle wake-ups, which are few), so instructions per request
//! are repeatable to a fraction of a percent, unlike CPU time on a shared machine. Kernel
//! work (syscalls) is not counted by callgrind.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::DynError;

/// One profiled load on one server.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub(crate) server: &'static str,
    pub(crate) load: &'static str,
    pub(crate) requests: u64,
    pub(crate) instructions: u64,
    /// Instructions by the source the code came from (a workspace crate, a dependency, std,
    /// libc), most first.
    pub(crate) by_source: Vec<(String, u64)>,
    /// Self cost by function, most first (inlined code counts for the function it was
    /// inlined into).
    pub(crate) top: Vec<(String, u64)>,
}

impl Profile {
    pub(crate) fn per_request(&self) -> f64 {
        self.instructions as f64 / self.requests.max(1) as f64
    }
}

/// One server under many keep-alive connections with callgrind's cache simulator: what the
/// instruction profile on one connection cannot show, the cache lines a request finds cold
/// when other connections' requests ran in between (user space only: the kernel's own
/// misses, and its evictions of the server's lines, are not simulated).
#[derive(Clone, Debug)]
pub(crate) struct CacheProfile {
    pub(crate) server: &'static str,
    pub(crate) connections: u32,
    pub(crate) requests: u64,
    pub(crate) misses: Misses,
}

/// Totals of a dump made with `--cache-sim=yes`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Misses {
    pub(crate) instructions: u64,
    /// First-level data cache misses on reads and on writes.
    pub(crate) d1_read: u64,
    pub(crate) d1_write: u64,
    /// Data misses of the simulated 512 KiB second level (reads and writes): lines not
    /// touched lately by any request, which on hardware come from L3 or memory.
    pub(crate) ll: u64,
}

impl CacheProfile {
    /// `n` per request.
    pub(crate) fn per_request(&self, n: u64) -> f64 {
        n as f64 / self.requests.max(1) as f64
    }
}

/// The totals of a callgrind dump made with `--cache-sim=yes` (its `events:` and
/// `summary:` lines); `None` without the cache events.
pub(crate) fn misses(text: &str) -> Option<Misses> {
    let events: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("events:"))?
        .split_whitespace()
        .collect();
    let totals: Vec<u64> = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })?
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    // Trailing zero events may be left out of the totals line.
    let at = |name: &str| {
        let i = events.iter().position(|e| *e == name)?;
        Some(totals.get(i).copied().unwrap_or(0))
    };
    Some(Misses {
        instructions: at("Ir")?,
        d1_read: at("D1mr")?,
        d1_write: at("D1mw")?,
        ll: at("DLmr")? + at("DLmw")?,
    })
}

/// What a callgrind output file says: total, self cost per function and per source file.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Costs {
    pub(crate) total: u64,
    pub(crate) by_fn: HashMap<String, u64>,
    pub(crate) by_file: HashMap<String, u64>,
}

/// Parses callgrind's output format (one event, `Ir`): name compression `(id) name`, `fl=`,
/// `fi=`/`fe=` for inlined files, `fn=`, and `calls=` lines whose next cost line is the
/// callee's inclusive cost (skipped: only self cost is added up).
pub(crate) fn parse(text: &str) -> Costs {
    let mut costs = Costs::default();
    let mut files: HashMap<String, String> = HashMap::new();
    let mut fns: HashMap<String, String> = HashMap::new();
    let (mut file, mut inlined, mut func) = (String::new(), None::<String>, String::new());
    let mut skip_next = false;
    // `(id) name` defines id; `(id)` refers to it; without an id, the name itself.
    let name = |table: &mut HashMap<String, String>, v: &str| -> String {
        let v = v.trim();
        if let Some(rest) = v.strip_prefix('(')
            && let Some((id, tail)) = rest.split_once(')')
        {
            let tail = tail.trim();
            if tail.is_empty() {
                return table.get(id).cloned().unwrap_or_default();
            }
            table.insert(id.to_owned(), tail.to_owned());
            return tail.to_owned();
        }
        v.to_owned()
    };
    for line in text.lines() {
        let Some(first) = line.chars().next() else {
            continue;
        };
        if first.is_ascii_digit() || first == '+' || first == '-' || first == '*' {
            if skip_next {
                skip_next = false;
                continue;
            }
            let Some(cost) = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u64>().ok())
            else {
                continue;
            };
            costs.total += cost;
            *costs.by_fn.entry(func.clone()).or_default() += cost;
            let f = inlined.as_ref().unwrap_or(&file);
            *costs.by_file.entry(f.clone()).or_default() += cost;
        } else if let Some(v) = line.strip_prefix("fl=") {
            file = name(&mut files, v);
            inlined = None;
        } else if let Some(v) = line
            .strip_prefix("fi=")
            .or_else(|| line.strip_prefix("fe="))
        {
            let f = name(&mut files, v);
            inlined = (f != file).then_some(f);
        } else if let Some(v) = line.strip_prefix("fn=") {
            func = name(&mut fns, v);
            inlined = None;
        } else if let Some(v) = line
            .strip_prefix("cfi=")
            .or_else(|| line.strip_prefix("cfl="))
        {
            name(&mut files, v);
        } else if let Some(v) = line.strip_prefix("cfn=") {
            name(&mut fns, v);
        } else if line.starts_with("calls=") {
            skip_next = true;
        }
    }
    costs
}

/// The part of the code a source path belongs to: a workspace crate, a crates.io crate,
/// Rust's standard library, or libc and the rest.
pub(crate) fn source_of(path: &str) -> String {
    if let Some(i) = path.find("crates/") {
        let rest = &path[i + "crates/".len()..];
        return rest.split('/').next().unwrap_or(rest).to_owned();
    }
    if path.contains("/benches/src/") {
        return "raw-server".into();
    }
    if let Some(i) = path.find("registry/src/") {
        let krate = path[i..].split('/').nth(3).unwrap_or("");
        // `httparse-1.10.1` → `httparse`.
        let name = match krate.rsplit_once('-') {
            Some((n, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => n,
            _ => krate,
        };
        return name.to_owned();
    }
    if path.starts_with("/rustc/") || path.contains("/library/") {
        return "std (core, alloc, std)".into();
    }
    "libc and other (no Rust source)".into()
}

/// The request both servers get.
const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: xtask-bench\r\n\
Accept: text/plain\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";

/// A server running under callgrind; it and its children are stopped when this is dropped.
struct UnderCallgrind {
    child: Child,
    dir: PathBuf,
    prefix: String,
    /// The process that serves: httpd's worker (the master's only child), or the server.
    pid: u32,
}

impl UnderCallgrind {
    /// Starts `program args` under `valgrind --tool=callgrind` with `options`, its dumps in
    /// `out/callgrind/{prefix}.PID.out.N`, and waits until it answers on `addr`: that first
    /// connection comes back with it.
    fn start(
        out: &Path,
        prefix: String,
        options: &[&str],
        program: &Path,
        args: &[String],
        addr: std::net::SocketAddr,
    ) -> Result<(UnderCallgrind, TcpStream), DynError> {
        let dir = out.join("callgrind");
        fs::create_dir_all(&dir)?;
        let child = Command::new("valgrind")
            .arg("--tool=callgrind")
            .args(options)
            .args(["--trace-children=yes", "-q"])
            .arg(format!(
                "--callgrind-out-file={}/{prefix}.%p.out",
                dir.display()
            ))
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start valgrind: {e}"))?;
        let mut server = UnderCallgrind {
            child,
            dir,
            prefix,
            pid: 0,
        };
        let conn = connect_when_up(addr, &mut server.child)?;
        let pids = super::procfs::tree(server.child.id());
        server.pid = *pids.last().expect("the tree holds the root");
        Ok((server, conn))
    }

    /// Zeroes the serving process's counters.
    fn zero(&self) -> Result<(), DynError> {
        control(&["--zero"], self.pid)
    }

    /// Dumps the counters since the last zero, as `label`; returns the dump.
    fn dump(&self, label: &str) -> Result<String, DynError> {
        control(&[&format!("--dump={label}")], self.pid)?;
        let file = newest_dump(&self.dir, &format!("{}.{}.out.", self.prefix, self.pid))
            .ok_or("callgrind wrote no dump")?;
        Ok(fs::read_to_string(file)?)
    }
}

impl Drop for UnderCallgrind {
    fn drop(&mut self) {
        let pids = super::procfs::tree(self.child.id());
        let _ = Command::new("kill")
            .arg("-TERM")
            .args(pids.iter().map(u32::to_string))
            .status();
        let _ = self.child.wait();
    }
}

/// Profiles `program args` (a server listening on `addr`): keep-alive one request at a
/// time, and pipelined ×16, `requests` each.
pub(crate) fn profile(
    out: &Path,
    server: &'static str,
    program: &Path,
    args: &[String],
    addr: std::net::SocketAddr,
    requests: u64,
) -> Result<Vec<Profile>, DynError> {
    let prefix = format!("{server}-{}", addr.port());
    let (valgrind, mut conn) = UnderCallgrind::start(out, prefix, &[], program, args, addr)?;
    let mut buf = Vec::new();
    let batch = REQUEST.repeat(16);
    for _ in 0..200 {
        exchange(&mut conn, REQUEST, 1, &mut buf)?;
    }
    for _ in 0..20 {
        exchange(&mut conn, &batch, 16, &mut buf)?;
    }
    let mut profiles = Vec::new();
    for (load, depth) in [("keep-alive, one at a time", 1), ("pipelined ×16", 16)] {
        valgrind.zero()?;
        let bytes = if depth == 1 { REQUEST } else { &batch[..] };
        for _ in 0..requests / depth {
            exchange(&mut conn, bytes, depth as usize, &mut buf)?;
        }
        let costs = parse(&valgrind.dump(load)?);
        profiles.push(summarize(server, load, requests / depth * depth, &costs));
    }
    Ok(profiles)
}

/// Runs `program args` (listening on `addr`) under callgrind's cache simulator, warms it up
/// with `wrk -c{connections}` for 3 s, then counts `secs` seconds of the same load.
pub(crate) fn cache_profile(
    out: &Path,
    server: &'static str,
    program: &Path,
    args: &[String],
    addr: std::net::SocketAddr,
    connections: u32,
    secs: u32,
) -> Result<CacheProfile, DynError> {
    let prefix = format!("{server}-cache-{}", addr.port());
    // The same caches on every host, so the counts compare across machines (valgrind would
    // otherwise read the host's): 32 KiB first level, and a 512 KiB per-core second level
    // as the simulated last level. A first-level miss is also counted when a line that a
    // request touches twice was pushed out in between (by the other connections' events of
    // the same batch), which a second level catches; a second-level miss is a line that no
    // recent request touched, the expensive kind on hardware.
    let options = [
        "--cache-sim=yes",
        "--I1=32768,8,64",
        "--D1=32768,8,64",
        "--LL=524288,8,64",
    ];
    let (valgrind, conn) = UnderCallgrind::start(out, prefix, &options, program, args, addr)?;
    drop(conn);
    let wrk = |secs: u32| -> Result<u64, DynError> {
        let out = Command::new("wrk")
            .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s")])
            .args(["--timeout", "10s", "--latency"])
            .arg(format!("http://{addr}/"))
            .stderr(Stdio::piped())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let r = super::wrk::parse(&text)
            .ok_or_else(|| format!("wrk gave no result against {addr}:\n{text}"))?;
        if r.socket_errors > 0 || r.non_2xx > 0 {
            return Err(format!("wrk saw errors against {addr} under valgrind:\n{text}").into());
        }
        Ok(r.requests)
    };
    wrk(3)?;
    valgrind.zero()?;
    let requests = wrk(secs)?;
    let misses =
        misses(&valgrind.dump("cache")?).ok_or("the dump has no cache events (--cache-sim=yes)")?;
    Ok(CacheProfile {
        server,
        connections,
        requests,
        misses,
    })
}

fn summarize(server: &'static str, load: &'static str, requests: u64, c: &Costs) -> Profile {
    let mut by_source: HashMap<String, u64> = HashMap::new();
    for (file, cost) in &c.by_file {
        *by_source.entry(source_of(file)).or_default() += cost;
    }
    let sorted = |m: HashMap<String, u64>, n: usize| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    };
    Profile {
        server,
        load,
        requests,
        instructions: c.total,
        by_source: sorted(by_source, 12),
        top: sorted(c.by_fn.clone(), 15),
    }
}

fn control(args: &[&str], pid: u32) -> Result<(), DynError> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()?;
    if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("OK") {
        return Err(format!(
            "callgrind_control {args:?} {pid} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// The dump `{prefix}N` with the highest N.
fn newest_dump(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n: u32 = name.strip_prefix(prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

fn connect_when_up(
    addr: std::net::SocketAddr,
    child: &mut std::process::Child,
) -> Result<TcpStream, DynError> {
    // Valgrind starts slowly, and httpd's worker starts after its master.
    for _ in 0..600 {
        if let Some(status) = child.try_wait()? {
            return Err(format!("the server exited under valgrind ({status})").into());
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut buf = Vec::new();
            if exchange(&mut s, REQUEST, 1, &mut buf).is_ok() {
                return Ok(s);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the server under valgrind never answered on {addr}").into())
}

/// Sends `bytes` and reads `n` `Hello, World!` responses.
fn exchange(s: &mut TcpStream, bytes: &[u8], n: usize, buf: &mut Vec<u8>) -> Result<(), DynError> {
    s.write_all(bytes)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let mut seen = 0;
    let mut scanned = 0;
    while seen < n {
        let got = s.read(&mut chunk)?;
        if got == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..got]);
        while let Some(i) = buf[scanned..].windows(BODY.len()).position(|w| w == BODY) {
            scanned += i + BODY.len();
            seen += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
version: 1
creator: callgrind-3.19.0
events: Ir
fl=(1) /work/crates/codec-http/src/request.rs
fn=(1) codec_http::request::RequestDecoder::decode
10 100
fi=(2) /root/.cargo/registry/src/index.crates.io-x/httparse-1.10.1/src/lib.rs
20 50
fe=(1)
+1 7
cfi=(3) ./string/memmove.S
cfn=(2) __memcpy_avx
calls=3 0
11 999
fl=(3)
fn=(2)
0 30
fn=(1)
12 3
";

    #[test]
    fn cache_totals_from_the_summary_line() {
        let dump = "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
                    summary: 1000 400 300 20 17 5 1 2 1\n\
                    fl=(1) x.rs\nfn=(1) f\n0 1000 400 300 20 17 5\n";
        let m = misses(dump).unwrap();
        assert_eq!(
            m,
            Misses {
                instructions: 1000,
                d1_read: 17,
                d1_write: 5,
                ll: 3,
            }
        );
        // Trailing zero events may be left out of the summary.
        let short =
            "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 1000 400 300 20 17 5 1 2\n";
        assert_eq!(misses(short).map(|m| m.ll), Some(2));
        // A dump without the cache events (no `--cache-sim=yes`) has no misses to give.
        assert_eq!(misses("events: Ir\nsummary: 1000\n"), None);
        assert_eq!(misses(OUT), None);
    }

    #[test]
    fn self_costs_by_function_and_file() {
        let c = parse(OUT);
        // The `calls=` line's inclusive 999 is not self cost.
        assert_eq!(c.total, 100 + 50 + 7 + 30 + 3);
        assert_eq!(c.by_fn["codec_http::request::RequestDecoder::decode"], 160);
        assert_eq!(c.by_fn["__memcpy_avx"], 30);
        assert_eq!(c.by_file["/work/crates/codec-http/src/request.rs"], 107);
        assert_eq!(
            c.by_file["/root/.cargo/registry/src/index.crates.io-x/httparse-1.10.1/src/lib.rs"],
            50
        );
        // The last `fn=(1)` came after `fl=(3)`: its cost is counted in memmove.S's file.
        assert_eq!(c.by_file["./string/memmove.S"], 33);
    }

    #[test]
    fn sources() {
        assert_eq!(
            source_of("/work/wt/crates/codec-http/src/request.rs"),
            "codec-http"
        );
        assert_eq!(
            source_of("/root/.cargo/registry/src/index.crates.io-1949/httparse-1.10.1/src/iter.rs"),
            "httparse"
        );
        assert_eq!(
            source_of("/rustc/5980/library/core/src/str/validations.rs"),
            "std (core, alloc, std)"
        );
        assert_eq!(
            source_of("./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S"),
            "libc and other (no Rust source)"
        );
        assert_eq!(
            source_of("/work/wt/benches/src/bin/raw-server.rs"),
            "raw-server"
        );
    }
}

//! The bench report: the tables (stdout and `target/bench/report.md`) and `report.json`,
//! both written by hand (xtask is std only).

use std::fmt::Write as _;

use super::callgrind::{CacheProfile, Profile};

/// One server under one load, the medians of its repeats.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// e.g. `1 worker pinned`.
    pub(crate) setup: String,
    /// e.g. `keep-alive c=100`.
    pub(crate) run: &'static str,
    /// e.g. `httpd`, `raw`, `nginx`.
    pub(crate) server: &'static str,
    pub(crate) rps: f64,
    /// Server CPU per request in µs: user space, and user + kernel.
    pub(crate) user_us: f64,
    pub(crate) total_us: f64,
    pub(crate) p99_us: f64,
    /// Socket errors and non-2xx responses over all repeats.
    pub(crate) errors: u64,
    pub(crate) repeats: usize,
    /// httpd's req/s and total CPU per request divided by this server's, repeat by repeat,
    /// the median of those ratios (`None` for httpd itself).
    pub(crate) vs_httpd: Option<(f64, f64)>,
}

/// Memory per idle keep-alive connection.
#[derive(Clone, Debug)]
pub(crate) struct Idle {
    pub(crate) server: &'static str,
    pub(crate) connections: usize,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
}

impl Idle {
    pub(crate) fn per_connection_kib(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.connections as f64
    }
}

/// Heap allocations per keep-alive request after warm-up (`crates/httpd/tests/alloc.rs`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Alloc {
    pub(crate) app: String,
    pub(crate) requests: u64,
    pub(crate) allocations: u64,
    pub(crate) bytes: u64,
}

/// A criterion bench's median, and its ratio to the baseline of its group if it has one.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Criterion {
    pub(crate) id: String,
    pub(crate) median_ns: f64,
    pub(crate) baseline: Option<(String, f64)>,
}

/// A budget of design.md §5 and what this run measured for it.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    pub(crate) what: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    /// `None` when this run could not tell (e.g. no nginx to compare with).
    pub(crate) met: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) load: String,
    pub(crate) notes: Vec<String>,
    pub(crate) rows: Vec<Row>,
    pub(crate) idle: Vec<Idle>,
    pub(crate) alloc: Vec<Alloc>,
    pub(crate) criterion: Vec<Criterion>,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) cache: Vec<CacheProfile>,
    pub(crate) budgets: Vec<Budget>,
}

impl Report {
    /// httpd's row for `setup` and `run`.
    pub(crate) fn row(&self, setup: &str, run: &str, server: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.setup == setup && r.run == run && r.server == server)
    }

    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# cargo xtask bench\n");
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(s, "- date: {}", self.date);
        let _ = writeln!(s, "- machine: {}", self.machine);
        let _ = writeln!(s, "- load average before the run: {}", self.load);
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        let mut setups: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !setups.contains(&r.setup.as_str()) {
                setups.push(&r.setup);
            }
        }
        for setup in setups {
            let _ = writeln!(s, "\n## End to end: {setup}\n");
            let _ = writeln!(
                s,
                "Medians of the repeats. CPU is the server's (master and workers) from \
                 /proc/PID/stat, per request. The last two columns are httpd's figure \
                 divided by this server's in the same repeat, median over the repeats \
                 (req/s: above 1 is httpd ahead; CPU: below 1 is httpd cheaper).\n"
            );
            let _ = writeln!(
                s,
                "| run | server | req/s | user µs/req | total µs/req | p99 | errors | \
                 httpd ÷ it, req/s | httpd ÷ it, CPU/req |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
            for r in self.rows.iter().filter(|r| r.setup == setup) {
                let (rr, rc) = match r.vs_httpd {
                    Some((rps, cpu)) => (format!("{rps:.3}×"), format!("{cpu:.3}×")),
                    None => (String::new(), String::new()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {rr} | {rc} |",
                    r.run,
                    r.server,
                    r.rps,
                    r.user_us,
                    r.total_us,
                    latency(r.p99_us),
                    r.errors
                );
            }
        }
        if !self.idle.is_empty() {
            let _ = writeln!(s, "\n## Memory per idle keep-alive connection\n");
            let _ = writeln!(
                s,
                "Resident memory (VmRSS of master and workers) before and after opening the \
                 connections, each after one request; kernel socket memory is not included.\n"
            );
            let _ = writeln!(
                s,
                "| server | connections | RSS before | RSS after | per connection |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|");
            for i in &self.idle {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} KiB | {} KiB | {:.2} KiB |",
                    i.server,
                    i.connections,
                    i.rss_before_kib,
                    i.rss_after_kib,
                    i.per_connection_kib()
                );
            }
        }
        if !self.alloc.is_empty() {
            let _ = writeln!(s, "\n## Heap allocations per keep-alive request\n");
            let _ = writeln!(
                s,
                "After warm-up, in the server's thread (`cargo test --release -p httpd --test \
                 alloc -- --nocapture`).\n"
            );
            let _ = writeln!(s, "| app | requests | allocations | bytes | per request |");
            let _ = writeln!(s, "|---|---:|---:|---:|---:|");
            for a in &self.alloc {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.4} |",
                    a.app,
                    a.requests,
                    a.allocations,
                    a.bytes,
                    a.allocations as f64 / a.requests.max(1) as f64
                );
            }
        }
        if !self.criterion.is_empty() {
            let _ = writeln!(s, "\n## Criterion benches (`cargo bench -p benches`)\n");
            let _ = writeln!(s, "| bench | median | ratio to its group's baseline |");
            let _ = writeln!(s, "|---|---:|---:|");
            for c in &self.criterion {
                let ratio = match &c.baseline {
                    Some((b, r)) => format!("{r:.3}× {b}"),
                    None => String::new(),
                };
                let _ = writeln!(s, "| {} | {} | {ratio} |", c.id, nanos(c.median_ns));
            }
        }
        if !self.profiles.is_empty() {
            self.profile_markdown(&mut s);
        }
        if !self.cache.is_empty() {
            self.cache_markdown(&mut s);
        }
        if !self.budgets.is_empty() {
            let _ = writeln!(s, "\n## Budgets (design.md §5)\n");
            let _ = writeln!(s, "| budget | target | measured | met |");
            let _ = writeln!(s, "|---|---|---|---|");
            for b in &self.budgets {
                let met = match b.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "n/a",
                };
                let _ = writeln!(s, "| {} | {} | {} | {met} |", b.what, b.target, b.measured);
            }
        }
        s
    }

    fn cache_markdown(&self, s: &mut String) {
        let c = self.cache[0].connections;
        let _ = writeln!(
            s,
            "\n## Cache misses per request under {c} connections (callgrind's cache simulator)\n"
        );
        let _ = writeln!(
            s,
            "`wrk -t1 -c{c}` against the server under `valgrind --tool=callgrind \
             --cache-sim=yes`, counted after a 3 s warm-up. A request finds cold the lines that \
             other connections' requests pushed out; only user space is simulated (32 KiB \
             first-level data cache, 512 KiB second level), so the kernel's own misses and its \
             evictions of the server's lines are not counted. A second-level miss is a line no \
             recent request touched (on hardware, from L3 or memory); a first-level miss may \
             also be a line the same request touched earlier. The count ends after wrk closed \
             its connections, so it includes their closes (about 6% of httpd's instructions). \
             Repeatable to a few percent.\n"
        );
        let _ = writeln!(
            s,
            "| server | requests | instructions/request | L1d read misses/request | \
             L1d write misses/request | L2 misses/request | httpd ÷ raw, L1d | httpd ÷ raw, L2 |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let l1 = |p: &CacheProfile| p.per_request(p.misses.d1_read + p.misses.d1_write);
        let l2 = |p: &CacheProfile| p.per_request(p.misses.ll);
        let raw = self.cache.iter().find(|p| p.server == "raw");
        for p in &self.cache {
            // Raw's second-level misses round to nothing (its whole state fits): no ratio.
            let ratio = |f: &dyn Fn(&CacheProfile) -> f64| match raw {
                Some(r) if p.server == "httpd" && f(r) >= 0.005 => format!("{:.2}×", f(p) / f(r)),
                Some(_) if p.server == "httpd" => "(raw ≈ 0)".to_owned(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
                p.server,
                p.requests,
                p.per_request(p.misses.instructions),
                p.per_request(p.misses.d1_read),
                p.per_request(p.misses.d1_write),
                l2(p),
                ratio(&l1),
                ratio(&l2)
            );
        }
    }

    fn profile_markdown(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Instructions per request (callgrind)\n");
        let _ = writeln!(
            s,
            "User-space instructions of the serving process per request, over one keep-alive \
             connection after a warm-up (kernel work is not counted). Repeatable to well under \
             1% from run to run.\n"
        );
        let _ = writeln!(
            s,
            "| load | server | requests | instructions/request | httpd ÷ raw |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|");
        for p in &self.profiles {
            let raw = self
                .profiles
                .iter()
                .find(|r| r.load == p.load && r.server == "raw");
            let ratio = match raw {
                Some(r) if p.server == "httpd" => {
                    format!("{:.2}×", p.per_request() / r.per_request())
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {ratio} |",
                p.load,
                p.server,
                p.requests,
                p.per_request()
            );
        }
        for p in self.profiles.iter().filter(|p| p.server == "httpd") {
            let per = |n: u64| n as f64 / p.requests.max(1) as f64;
            let pct = |n: u64| 100.0 * n as f64 / p.instructions.max(1) as f64;
            let _ = writeln!(s, "\nhttpd, {}: by source\n", p.load);
            let _ = writeln!(s, "| source | instructions/request | share |");
            let _ = writeln!(s, "|---|---:|---:|");
            for (src, n) in &p.by_source {
                let _ = writeln!(s, "| {src} | {:.0} | {:.1}% |", per(*n), pct(*n));
            }
            let _ = writeln!(s, "\nhttpd, {}: functions by self cost\n", p.load);
            let _ = writeln!(s, "| function | instructions/request | share |");
            let _ = writeln!(s, "|---|---:|---:|");
            for (f, n) in &p.top {
                let f = f.replace('|', "\\|");
                let _ = writeln!(s, "| `{f}` | {:.0} | {:.1}% |", per(*n), pct(*n));
            }
        }
    }

    pub(crate) fn json(&self) -> String {
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"command\": {},", q(&self.command));
        let _ = writeln!(s, "  \"date\": {},", q(&self.date));
        let _ = writeln!(s, "  \"machine\": {},", q(&self.machine));
        let _ = writeln!(s, "  \"load\": {},", q(&self.load));
        let notes: Vec<String> = self.notes.iter().map(|n| q(n)).collect();
        let _ = writeln!(s, "  \"notes\": [{}],", notes.join(", "));
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "    {{\"setup\": {}, \"run\": {}, \"server\": {}, \"rps\": {}, \
                     \"cpu_user_us_per_req\": {}, \"cpu_total_us_per_req\": {}, \
                     \"p99_us\": {}, \"errors\": {}, \"repeats\": {}, \
                     \"httpd_over_it_rps\": {}, \"httpd_over_it_cpu\": {}}}",
                    q(&r.setup),
                    q(r.run),
                    q(r.server),
                    num(r.rps),
                    num(r.user_us),
                    num(r.total_us),
                    num(r.p99_us),
                    r.errors,
                    r.repeats,
                    r.vs_httpd.map_or("null".into(), |v| num(v.0)),
                    r.vs_httpd.map_or("null".into(), |v| num(v.1))
                )
            })
            .collect();
        let _ = writeln!(s, "  \"end_to_end\": [\n{}\n  ],", rows.join(",\n"));
        let idle: Vec<String> = self
            .idle
            .iter()
            .map(|i| {
                format!(
                    "    {{\"server\": {}, \"connections\": {}, \"rss_before_kib\": {}, \
                     \"rss_after_kib\": {}, \"kib_per_connection\": {}}}",
                    q(i.server),
                    i.connections,
                    i.rss_before_kib,
                    i.rss_after_kib,
                    num(i.per_connection_kib())
                )
            })
            .collect();
        let _ = writeln!(s, "  \"idle_memory\": [\n{}\n  ],", idle.join(",\n"));
        let alloc: Vec<String> = self
            .alloc
            .iter()
            .map(|a| {
                format!(
                    "    {{\"app\": {}, \"requests\": {}, \"allocations\": {}, \"bytes\": {}}}",
                    q(&a.app),
                    a.requests,
                    a.allocations,
                    a.bytes
                )
            })
            .collect();
        let _ = writeln!(s, "  \"allocations\": [\n{}\n  ],", alloc.join(",\n"));
        let crit: Vec<String> = self
            .criterion
            .iter()
            .map(|c| {
                let (b, r) = match &c.baseline {
                    Some((b, r)) => (q(b), num(*r)),
                    None => ("null".into(), "null".into()),
                };
                format!(
                    "    {{\"id\": {}, \"median_ns\": {}, \"baseline\": {b}, \"ratio\": {r}}}",
                    q(&c.id),
                    num(c.median_ns)
                )
            })
            .collect();
        let _ = writeln!(s, "  \"criterion\": [\n{}\n  ],", crit.join(",\n"));
        let profiles: Vec<String> = self
            .profiles
            .iter()
            .map(|p| {
                let list = |v: &[(String, u64)]| {
                    v.iter()
                        .map(|(k, n)| format!("[{}, {n}]", q(k)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "    {{\"server\": {}, \"load\": {}, \"requests\": {}, \"instructions\": {}, \
                     \"instructions_per_request\": {}, \"by_source\": [{}], \"top_functions\": [{}]}}",
                    q(p.server),
                    q(p.load),
                    p.requests,
                    p.instructions,
                    num(p.per_request()),
                    list(&p.by_source),
                    list(&p.top)
                )
            })
            .collect();
        let _ = writeln!(s, "  \"callgrind\": [\n{}\n  ],", profiles.join(",\n"));
        let cache: Vec<String> = self
            .cache
            .iter()
            .map(|p| {
                format!(
                    "    {{\"server\": {}, \"connections\": {}, \"requests\": {}, \
                     \"instructions\": {}, \"d1_read_misses\": {}, \"d1_write_misses\": {}, \
                     \"l2_misses\": {}}}",
                    q(p.server),
                    p.connections,
                    p.requests,
                    p.misses.instructions,
                    p.misses.d1_read,
                    p.misses.d1_write,
                    p.misses.ll
                )
            })
            .collect();
        let _ = writeln!(s, "  \"cache\": [\n{}\n  ],", cache.join(",\n"));
        let budgets: Vec<String> = self
            .budgets
            .iter()
            .map(|b| {
                let met = match b.met {
                    Some(m) => m.to_string(),
                    None => "null".into(),
                };
                format!(
                    "    {{\"budget\": {}, \"target\": {}, \"measured\": {}, \"met\": {met}}}",
                    q(&b.what),
                    q(&b.target),
                    q(&b.measured)
                )
            })
            .collect();
        let _ = writeln!(s, "  \"budgets\": [\n{}\n  ]", budgets.join(",\n"));
        s.push_str("}\n");
        s
    }
}

/// A JSON string.
pub(crate) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (`null` for NaN and infinities, which JSON cannot hold).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "null".into()
    }
}

fn latency(us: f64) -> String {
    if us.is_nan() {
        "—".into()
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn nanos(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The value of the number after `"key":` at or after `from` in a JSON text (enough for
/// criterion's estimates.json, whose shape is fixed).
pub(crate) fn json_number_after(text: &str, from: &str, key: &str) -> Option<f64> {
    let start = text.find(from)?;
    let rest = &text[start..];
    let k = rest.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = rest[k..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string value of `"key":` in a JSON text (no escapes expected: criterion's ids).
pub(crate) fn json_string(text: &str, key: &str) -> Option<String> {
    let k = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[k..].trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":280.7,"upper_bound":301.7},"point_estimate":290.29,"standard_error":5.39},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":272.7,"upper_bound":275.8},"point_estimate":273.69,"standard_error":0.87}}"#;

    #[test]
    fn criterion_files() {
        assert_eq!(
            json_number_after(ESTIMATES, "\"median\"", "point_estimate"),
            Some(273.69)
        );
        assert_eq!(
            json_number_after(ESTIMATES, "\"mean\"", "point_estimate"),
            Some(290.29)
        );
        let bench = r#"{"group_id":"decode","function_id":"httparse","value_str":null,"full_id":"decode/httparse"}"#;
        assert_eq!(
            json_string(bench, "full_id").as_deref(),
            Some("decode/httparse")
        );
        assert_eq!(json_string(bench, "value_str"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(q("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn tables_show_ratios_to_httpd() {
        let row = |server, rps, total_us| Row {
            setup: "1 worker pinned".into(),
            run: "pipelined ×16",
            server,
            rps,
            user_us: 0.5,
            total_us,
            p99_us: 1500.0,
            errors: 0,
            repeats: 3,
            vs_httpd: (server != "httpd").then_some((0.9, 1.25)),
        };
        let report = Report {
            rows: vec![row("httpd", 900.0, 2.0), row("raw", 1000.0, 1.6)],
            ..Report::default()
        };
        let md = report.markdown();
        assert!(
            md.contains(
                "| pipelined ×16 | raw | 1000 | 0.500 | 1.600 | 1.50 ms | 0 | 0.900× | 1.250× |"
            ),
            "{md}"
        );
        let json = report.json();
        assert!(
            json.contains("\"server\": \"raw\", \"rps\": 1000.0000"),
            "{json}"
        );
    }

    #[test]
    fn cache_misses_per_request_and_the_ratio_to_raw() {
        use super::super::callgrind::Misses;
        let profile = |server, requests, instructions, d1_read, d1_write, ll| CacheProfile {
            server,
            connections: 1000,
            requests,
            misses: Misses {
                instructions,
                d1_read,
                d1_write,
                ll,
            },
        };
        // httpd's figures against a raw server with `raw_l2` second-level misses.
        let against_raw = |raw_l2| Report {
            cache: vec![
                profile("httpd", 1000, 3_000_000, 20_000, 5_000, 10_000),
                profile("raw", 2000, 1_200_000, 800, 200, raw_l2),
            ],
            ..Report::default()
        };
        let report = against_raw(400);
        let md = report.markdown();
        // 25 first-level misses per request against raw's 0.5; 10 second-level against 0.2.
        assert!(
            md.contains("| httpd | 1000 | 3000 | 20.00 | 5.00 | 10.00 | 50.00× | 50.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| raw | 2000 | 600 | 0.40 | 0.10 | 0.20 |  |  |"),
            "{md}"
        );
        // A raw server with (almost) no second-level misses gets no ratio.
        let md = against_raw(3).markdown();
        assert!(md.contains("| 10.00 | 50.00× | (raw ≈ 0) |"), "{md}");
        let json = report.json();
        assert!(
            json.contains("\"server\": \"raw\", \"connections\": 1000, \"requests\": 2000"),
            "{json}"
        );
    }
}

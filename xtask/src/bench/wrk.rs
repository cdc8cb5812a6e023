//! Reading wrk's text output (wrk 4.x with `--latency`), by hand: xtask is std only.

/// What one wrk run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct WrkResult {
    /// Responses completed (`N requests in ...`).
    pub(crate) requests: u64,
    /// `Requests/sec:`.
    pub(crate) rps: f64,
    /// The 99th percentile latency, in microseconds (`99%` of the latency distribution);
    /// NaN when wrk recorded no latency (it prints `0.00us`, as it may when pipelining).
    pub(crate) p99_us: f64,
    /// Connect, read, write and timeout errors added up (`Socket errors:`).
    pub(crate) socket_errors: u64,
    /// `Non-2xx or 3xx responses:`.
    pub(crate) non_2xx: u64,
}

/// Parses wrk's report; `None` if the lines every run prints are missing.
pub(crate) fn parse(out: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    let (mut have_requests, mut have_rps, mut have_p99) = (false, false, false);
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().ok()?;
            have_rps = true;
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_us = duration_us(v.trim())?;
            if r.p99_us == 0.0 {
                r.p99_us = f64::NAN;
            }
            have_p99 = true;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            r.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().ok()?;
        } else if let Some((n, rest)) = line.split_once(' ')
            && rest.starts_with("requests in ")
        {
            r.requests = n.parse().ok()?;
            have_requests = true;
        }
    }
    (have_requests && have_rps && have_p99).then_some(r)
}

/// `650.00us`, `1.27ms`, `2.00s`, `1.00m` in microseconds.
fn duration_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALIVE: &str = "\
Running 3s test @ http://127.0.0.1:18081/
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.45ms    1.11ms  12.46ms   94.64%
    Req/Sec    51.92k     9.07k   58.60k    90.00%
  Latency Distribution
     50%    1.27ms
     75%    1.41ms
     90%    1.61ms
     99%    7.41ms
  155124 requests in 3.01s, 20.27MB read
Requests/sec:  51513.69
Transfer/sec:      6.73MB
";

    #[test]
    fn a_keep_alive_report() {
        let r = parse(KEEP_ALIVE).unwrap();
        assert_eq!(r.requests, 155_124);
        assert_eq!(r.rps, 51_513.69);
        assert!((r.p99_us - 7_410.0).abs() < 1e-6);
        assert_eq!((r.socket_errors, r.non_2xx), (0, 0));
    }

    #[test]
    fn errors_and_other_units() {
        let out = KEEP_ALIVE.replace("7.41ms", "650.50us").replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 12, write 3, timeout 1\n  \
                 Non-2xx or 3xx responses: 7\nRequests/sec",
        );
        let r = parse(&out).unwrap();
        assert!((r.p99_us - 650.5).abs() < 1e-6);
        assert_eq!((r.socket_errors, r.non_2xx), (16, 7));
        assert_eq!(duration_us("1.50s"), Some(1.5e6));
        assert_eq!(duration_us("2.00m"), Some(120e6));
        assert_eq!(duration_us("3.0parsecs"), None);
    }

    #[test]
    fn a_failed_run_is_not_a_result() {
        assert_eq!(
            parse("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
        // Without --latency there is no p99.
        assert_eq!(parse(&KEEP_ALIVE.replace("99%", "98%")), None);
    }

    #[test]
    fn no_latency_recorded_is_not_zero() {
        let r = parse(&KEEP_ALIVE.replace("7.41ms", "0.00us")).unwrap();
        assert!(r.p99_us.is_nan());
    }
}

//! Runs public HTTP/1.1 request corpora through `RequestDecoder` and lists the cases whose
//! verdict disagrees with their label (whole input, one byte at a time, random cuts).
//!
//! Run with: `cargo run -p codec-http --example conformance -- /work/shared/conformance`
//! (the directory holds `*.json` files in the schema its README describes; they are not part
//! of this repository). Add `-v` to print each disagreeing case's bytes.

use std::collections::BTreeMap;
use std::process::ExitCode;

use codec_http::{Event, RequestDecoder};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    args.retain(|a| a != "-v");
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "/work/shared/conformance".into());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("conformance: no directory {dir}; nothing to run");
        return ExitCode::SUCCESS;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut bad = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Some(doc) = json::parse(&text) else {
            eprintln!("{}: not JSON", path.display());
            continue;
        };
        let Some(Json::Arr(cases)) = doc.get("cases") else {
            continue;
        };
        let mut tally: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for case in cases {
            total += 1;
            let label = case
                .get("server_expect")
                .or_else(|| case.get("expect"))
                .and_then(Json::str)
                .unwrap_or("either");
            let name = case
                .get("id")
                .or_else(|| case.get("name"))
                .and_then(Json::str)
                .unwrap_or("?");
            let raw = latin1(case.get("raw").and_then(Json::str).unwrap_or(""));
            let statuses: Vec<u16> = match case.get("status") {
                Some(Json::Arr(a)) => a.iter().filter_map(|s| s.num().map(|n| n as u16)).collect(),
                _ => Vec::new(),
            };
            let min = case.get("min_responses").and_then(Json::num);
            let max = case
                .get("max_responses")
                .or_else(|| case.get("server_responses"))
                .and_then(Json::num);
            let missing_host = matches!(case.get("missing_host"), Some(Json::Bool(true)));
            let smuggled = matches!(
                case.get("smuggled_must_not_be_answered"),
                Some(Json::Bool(true))
            );
            let mut problems = Vec::new();
            if missing_host {
                // The raw bytes lack Host: 400 (once the head is whole). The label judges the
                // variant with Host.
                if let Some(p) = judge(&raw, "no-host", &[400], None, None, smuggled) {
                    problems.push(format!("without Host: {p}"));
                }
                if let Some(with) = case.get("raw_with_host").and_then(Json::str)
                    && let Some(p) = judge(&latin1(with), label, &statuses, min, max, smuggled)
                {
                    problems.push(format!("with Host: {p}"));
                }
            } else if let Some(p) = judge(&raw, label, &statuses, min, max, smuggled) {
                problems.push(p);
            }
            let entry = tally.entry(label.to_owned()).or_default();
            entry.0 += 1;
            if !problems.is_empty() {
                entry.1 += 1;
                bad += 1;
                println!(
                    "{}: {name} [{label}]: {}",
                    file_name(&path),
                    problems.join("; ")
                );
                if verbose {
                    println!("    {:?}", String::from_utf8_lossy(&raw));
                }
            }
        }
        for (label, (n, wrong)) in tally {
            eprintln!("{}: {label}: {n} cases, {wrong} disagree", file_name(&path));
        }
    }
    eprintln!("conformance: {total} cases, {bad} disagree");
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The bytes of a string of latin-1 code points.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// What the decoder made of a byte stream.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// Request heads decoded (targets).
    heads: Vec<Vec<u8>>,
    /// Requests finished (`End`).
    ends: usize,
    /// The error and how many requests had ended before it.
    error: Option<(u16, usize)>,
    /// Keep-alive of the first request.
    first_keep_alive: Option<bool>,
    /// Keep-alive of the request being decoded (a server closes after one without).
    keep_alive: bool,
    /// The stream stopped after an Upgrade/CONNECT request.
    paused: bool,
    /// The stream stopped after a request without keep-alive.
    closed: bool,
    /// Every byte was decoded (nothing left over at the end).
    complete: bool,
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let mut dec = RequestDecoder::new();
    let mut buf = Vec::new();
    let mut out = Outcome {
        heads: Vec::new(),
        ends: 0,
        error: None,
        first_keep_alive: None,
        keep_alive: true,
        paused: false,
        closed: false,
        complete: false,
    };
    'feed: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let d = match dec.decode(&buf) {
                Ok(d) => d,
                Err(e) => {
                    out.error = Some((e.status_hint(), out.ends));
                    break 'feed;
                }
            };
            let consumed = d.consumed;
            let more = d.event.is_some();
            match d.event {
                Some(Event::Head(h)) => {
                    out.first_keep_alive.get_or_insert(h.keep_alive());
                    out.keep_alive = h.keep_alive();
                    out.heads.push(h.target().to_vec());
                }
                Some(Event::End) => {
                    out.ends += 1;
                    if !out.keep_alive {
                        // The server answers and closes: what follows is never read.
                        out.closed = true;
                        break 'feed;
                    }
                }
                Some(Event::Body(_)) | None => {}
            }
            buf.drain(..consumed);
            if dec.is_paused() {
                out.paused = true;
                break 'feed;
            }
            if !more {
                break;
            }
        }
    }
    out.complete = out.error.is_none() && buf.is_empty() && dec.is_idle();
    out
}

/// Cuts `raw` whole, byte by byte and at pseudo-random points; returns a problem, if any.
fn judge(
    raw: &[u8],
    label: &str,
    statuses: &[u16],
    min: Option<f64>,
    max: Option<f64>,
    smuggled: bool,
) -> Option<String> {
    let whole = run(&[raw]);
    let bytes: Vec<&[u8]> = raw.chunks(1).collect();
    let mut seed = raw.len() as u64 * 2_654_435_761 + 1;
    let mut random = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = 1 + (seed >> 33) as usize % 17;
        let (a, b) = rest.split_at(n.min(rest.len()));
        random.push(a);
        rest = b;
    }
    for (how, other) in [("byte by byte", run(&bytes)), ("random cuts", run(&random))] {
        let same = other.heads == whole.heads
            && other.ends == whole.ends
            && other.error.map(|e| e.0) == whole.error.map(|e| e.0);
        if !same {
            return Some(format!("{how} differs: {other:?} vs whole {whole:?}"));
        }
    }
    if smuggled
        && whole
            .heads
            .iter()
            .any(|t| t.windows(9).any(|w| w == b"/smuggled"))
    {
        return Some("the smuggled request was decoded".into());
    }
    let rejected_first = whole.error.is_some_and(|(_, ends)| ends == 0);
    let ok = match label {
        "reject" => {
            rejected_first
                && (statuses.is_empty() || whole.error.is_some_and(|(s, _)| statuses.contains(&s)))
        }
        // Errors are fine only after the responses the case requires (a stray byte after
        // the last request, say).
        "accept" => {
            whole
                .error
                .is_none_or(|(_, ends)| min.is_some_and(|m| ends as f64 >= m))
                && max.is_none_or(|m| whole.ends as f64 <= m)
        }
        // An HTTP/1.1 request without Host is never served: a 400 once its head is whole,
        // unless the connection closed before it (or the head never ended).
        "no-host" => match whole.error {
            Some((status, _)) => status == 400,
            None => whole.closed || whole.heads.len() > whole.ends || !whole.complete,
        },
        "reject_or_te_then_close" => {
            whole.error.is_some_and(|(_, ends)| ends <= 1)
                || (whole.ends <= 1 && whole.first_keep_alive == Some(false))
        }
        "incomplete" => whole.error.is_none(),
        _ => true,
    };
    (!ok).then(|| format!("decoder: {whole:?}"))
}

/// Just enough JSON for the corpora: objects, arrays, strings, numbers, booleans, null.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

mod json {
    use super::Json;

    pub(super) fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            let ok = self.s[self.i..].starts_with(lit.as_bytes());
            if ok {
                self.i += lit.len();
            }
            ok
        }

        fn value(&mut self) -> Option<Json> {
            self.ws();
            match *self.s.get(self.i)? {
                b'{' => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    loop {
                        self.ws();
                        if self.eat("}") {
                            return Some(Json::Obj(fields));
                        }
                        if !fields.is_empty() && !self.eat(",") {
                            return None;
                        }
                        self.ws();
                        let Json::Str(k) = self.string()? else {
                            return None;
                        };
                        self.ws();
                        if !self.eat(":") {
                            return None;
                        }
                        fields.push((k, self.value()?));
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    loop {
                        self.ws();
                        if self.eat("]") {
                            return Some(Json::Arr(items));
                        }
                        if !items.is_empty() && !self.eat(",") {
                            return None;
                        }
                        items.push(self.value()?);
                    }
                }
                b'"' => self.string(),
                b't' => self.eat("true").then_some(Json::Bool(true)),
                b'f' => self.eat("false").then_some(Json::Bool(false)),
                b'n' => self.eat("null").then_some(Json::Null),
                _ => {
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|b| b"+-0123456789.eE".contains(b))
                    {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    text.parse().ok().map(Json::Num)
                }
            }
        }

        fn hex4(&mut self) -> Option<u32> {
            let text = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
            self.i += 4;
            u32::from_str_radix(text, 16).ok()
        }

        fn string(&mut self) -> Option<Json> {
            if !self.eat("\"") {
                return None;
            }
            let mut out = String::new();
            loop {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&b| b != b'"' && b != b'\\') {
                    self.i += 1;
                }
                out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
                match *self.s.get(self.i)? {
                    b'"' => {
                        self.i += 1;
                        return Some(Json::Str(out));
                    }
                    _ => {
                        self.i += 1;
                        let c = *self.s.get(self.i)?;
                        self.i += 1;
                        match c {
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'u' => {
                                let mut code = self.hex4()?;
                                if (0xd800..0xdc00).contains(&code) && self.eat("\\u") {
                                    let low = self.hex4()?;
                                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                                }
                                out.push(char::from_u32(code)?);
                            }
                            other => out.push(other as char),
                        }
                    }
                }
            }
        }
    }
}

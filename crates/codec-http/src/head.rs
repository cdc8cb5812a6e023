//! What both decoders share about heads: finding the end of a head without re-scanning it,
//! the field rules of RFC 9112 §5–6, and byte ranges into the head.

use crate::error::{Error, ErrorKind};
use crate::{Limits, is_token, swar, tchar};

/// Header slots given to httparse (on the stack, uninitialised, so they cost nothing);
/// [`Limits::max_headers`] is capped at this.
pub const HEADER_SLOTS: usize = 128;

/// A byte range inside a head, relative to the head's first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The range of `part` inside `base`; empty if `part` is not a subslice of `base` (an
    /// empty string from a parser may point anywhere).
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        if start > base.len() || part.len() > base.len() - start {
            return Span::default();
        }
        Span {
            start: start as u32,
            len: part.len() as u32,
        }
    }

    /// The range `start..end` (both within a head, which is far below 4 GiB).
    #[inline(always)]
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    pub(crate) fn start(&self) -> usize {
        self.start as usize
    }

    pub(crate) fn get<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start as usize..(self.start + self.len) as usize)
            .unwrap_or_default()
    }
}

/// Iterator over `(name, value)` header fields; names are tokens, so always ASCII.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) iter: std::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (n, v) = self.iter.next()?;
        let name = std::str::from_utf8(n.get(self.raw)).unwrap_or("");
        Some((name, v.get(self.raw)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Where a head ends, once it has all arrived.
pub(crate) enum HeadStep {
    /// Not complete yet: discard this many bytes (empty lines before the head) and call again
    /// with more.
    NeedMore(usize),
    /// The head is `buf[skip..end]`; the parser has run on it.
    Done { skip: usize, end: usize },
}

/// Finds the end of a head, remembering how far it looked so a head that trickles in costs
/// linear work. The common case, a whole valid head in one buffer, goes to httparse directly
/// and is scanned once.
///
/// Anything else (a partial head, or one httparse refuses) is scanned line by line: each line
/// is checked as soon as it is whole (the start line even byte by byte), so a bad head fails
/// as early as its first bad line, and with the same error however the bytes were cut.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScanner {
    /// Some of this head has been seen (and the empty lines before it discarded).
    started: bool,
    /// Next byte to look at for an LF.
    pos: usize,
    /// First byte of the line being scanned.
    line_start: usize,
    /// Whether the start line has been seen whole (and checked).
    first_line_done: bool,
    /// How far the start line has been checked, byte by byte.
    start: StartLine,
    /// What the fields seen so far say about framing (errors surface early).
    fields: Fields,
}

/// Where a byte-by-byte check of a request line stands.
#[derive(Clone, Copy, Debug, Default)]
struct StartLine {
    checked: usize,
    part: Part,
    /// Where the target or the version starts.
    mark: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Part {
    #[default]
    Method,
    Target,
    Version,
}

/// Counts bytes looked at while finding heads, so a test can show the work is linear.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static BYTES: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn add(n: usize) {
        BYTES.with(|b| b.set(b.get() + n));
    }

    pub(crate) fn take() -> usize {
        BYTES.with(|b| b.replace(0))
    }
}

#[cfg(not(test))]
mod work {
    #[inline(always)]
    pub(crate) fn add(_: usize) {}
}

impl HeadScanner {
    /// Whether part of a head has arrived.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Looks for a complete head at the start of `buf`. `parse` runs httparse on a prefix: it
    /// returns `Ok(Some(n))` for a complete head of `n` bytes (and records what it found),
    /// `Ok(None)` if more bytes are needed, or the error. `request` says whether the start line
    /// is a request line (checked byte by byte while it is incomplete).
    pub(crate) fn read(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        request: bool,
        parse: &mut impl FnMut(&[u8]) -> Result<Option<usize>, Error>,
    ) -> Result<HeadStep, Error> {
        let mut skip = 0;
        if !self.started {
            // RFC 9112 §2.2: ignore empty lines (CRLF) before the start line.
            while buf.len() >= skip + 2 && buf[skip] == b'\r' && buf[skip + 1] == b'\n' {
                skip += 2;
            }
            match buf.get(skip) {
                None => return Ok(HeadStep::NeedMore(skip)),
                Some(b'\n') => return Err(ErrorKind::BareLf.into()),
                Some(b'\r') if buf.len() == skip + 1 => return Ok(HeadStep::NeedMore(skip)),
                Some(_) => {}
            }
            // The fast path: the whole head is usually here; parse it once.
            let window = &buf[skip..buf.len().min(skip + limits.max_head)];
            work::add(window.len());
            if let Ok(Some(n)) = parse(window) {
                return Ok(HeadStep::Done {
                    skip,
                    end: skip + n,
                });
            }
            // Partial or refused: scan it line by line from the start.
            *self = HeadScanner {
                started: true,
                pos: skip,
                line_start: skip,
                ..HeadScanner::default()
            };
        }
        let window = &buf[..buf.len().min(skip + limits.max_head)];
        match self.scan(window, skip, limits, request, parse)? {
            Some(end) => {
                let head = &buf[skip..end];
                work::add(head.len());
                match parse(head)? {
                    Some(n) if n == head.len() => {}
                    _ => return Err(ErrorKind::InvalidHeaderValue.into()),
                }
                *self = HeadScanner::default();
                Ok(HeadStep::Done { skip, end })
            }
            None => {
                let have = buf.len() - skip;
                if have >= limits.max_head {
                    // A start line this long can only be a long target.
                    return Err(if self.first_line_done || !request {
                        ErrorKind::HeadTooLarge.into()
                    } else {
                        ErrorKind::TargetTooLong.into()
                    });
                }
                // The caller discards the skipped empty lines; keep the scan in step.
                self.pos -= skip;
                self.line_start -= skip;
                Ok(HeadStep::NeedMore(skip))
            }
        }
    }

    /// Scans for the blank line from where the last call stopped; returns the index just past
    /// it. Each whole line is checked here, as the bytes arrive.
    fn scan(
        &mut self,
        buf: &[u8],
        skip: usize,
        limits: &Limits,
        request: bool,
        parse: &mut impl FnMut(&[u8]) -> Result<Option<usize>, Error>,
    ) -> Result<Option<usize>, Error> {
        let mut pos = self.pos;
        loop {
            // Whitespace at the start of a field line is obs-fold (or whitespace between the
            // start line and the first field, RFC 9112 §2.2).
            if self.first_line_done
                && pos == self.line_start
                && matches!(buf.get(pos), Some(b' ' | b'\t'))
            {
                return Err(ErrorKind::ObsFold.into());
            }
            let Some(off) = memchr::memchr(b'\n', &buf[pos..]) else {
                work::add(buf.len() - pos);
                break;
            };
            work::add(off + 1);
            let lf = pos + off;
            if lf == 0 || buf[lf - 1] != b'\r' {
                return Err(ErrorKind::BareLf.into());
            }
            if lf - 1 == self.line_start {
                // An empty line: the head ends here.
                return Ok(Some(lf + 1));
            }
            let line = &buf[self.line_start..lf - 1];
            if self.first_line_done {
                let (name, value) = check_field_line(line)?;
                self.fields.see(name, value)?;
            } else {
                if request {
                    self.start.check(line, limits)?;
                }
                // The whole start line gets httparse's and the role's checks.
                work::add(lf + 1 - skip);
                parse(&buf[skip..=lf])?;
                self.first_line_done = true;
            }
            self.line_start = lf + 1;
            pos = lf + 1;
        }
        // The line that is still arriving.
        let tail = &buf[self.line_start..];
        if !self.first_line_done && request {
            self.start.check(tail, limits)?;
        }
        if let [b'\r', next, ..] = tail
            && *next != b'\n'
        {
            // A bare CR where a field or the blank line should start.
            return Err(ErrorKind::InvalidHeaderValue.into());
        }
        self.pos = buf.len();
        Ok(None)
    }
}

impl StartLine {
    /// Checks the bytes of a request line (`line`, without its LF) not checked yet: what
    /// httparse would refuse is refused here as soon as it arrives, with the same error.
    fn check(&mut self, line: &[u8], limits: &Limits) -> Result<(), Error> {
        work::add(line.len().saturating_sub(self.checked));
        for (i, &b) in line.iter().enumerate().skip(self.checked) {
            match self.part {
                Part::Method if b == b' ' && i > 0 => {
                    self.part = Part::Target;
                    self.mark = i + 1;
                }
                Part::Method if !tchar(b) || b == b' ' => {
                    return Err(ErrorKind::InvalidMethod.into());
                }
                Part::Method => {}
                Part::Target => {
                    if i - self.mark >= limits.max_target.saturating_add(1) {
                        return Err(ErrorKind::TargetTooLong.into());
                    }
                    if b == b' ' && i > self.mark {
                        self.part = Part::Version;
                        self.mark = i + 1;
                    } else if b <= b' ' || b == 0x7f {
                        return Err(ErrorKind::InvalidTarget.into());
                    }
                }
                Part::Version => {
                    let k = i - self.mark;
                    let ok = match k {
                        0..=4 => b == b"HTTP/"[k],
                        5 | 7 => b.is_ascii_digit(),
                        6 => b == b'.',
                        8 => b == b'\r',
                        _ => false,
                    };
                    if !ok {
                        return Err(ErrorKind::InvalidVersion.into());
                    }
                    if k == 7 && line[self.mark + 5] != b'1' {
                        return Err(ErrorKind::UnsupportedVersion.into());
                    }
                }
            }
        }
        self.checked = self.checked.max(line.len());
        Ok(())
    }
}

/// Checks one whole field line (without its CRLF) as httparse would: a token name right
/// before the colon, and a value of visible bytes, spaces and tabs. Returns the name and the
/// trimmed value.
fn check_field_line(line: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let Some(colon) = line.iter().position(|&b| !tchar(b)) else {
        return Err(ErrorKind::InvalidHeaderName.into());
    };
    if line[colon] != b':' {
        return Err(slow_field_error(line));
    }
    let name = &line[..colon];
    if name.is_empty() {
        return Err(ErrorKind::InvalidHeaderName.into());
    }
    let value = &line[colon + 1..];
    if !field_value(value) {
        return Err(ErrorKind::InvalidHeaderValue.into());
    }
    Ok((name, trim_ows(value)))
}

/// The error for a field line whose name is not followed by a colon.
#[cold]
fn slow_field_error(line: &[u8]) -> Error {
    if memchr::memchr(b'\r', line).is_some() {
        // A bare CR, wherever it is (RFC 9112 §2.2).
        return ErrorKind::InvalidHeaderValue.into();
    }
    let Some(colon) = memchr::memchr(b':', line) else {
        return ErrorKind::InvalidHeaderName.into();
    };
    let name = &line[..colon];
    if let [.., b' ' | b'\t'] = name
        && is_token(trim_ows(name))
    {
        return ErrorKind::WhitespaceBeforeColon.into();
    }
    ErrorKind::InvalidHeaderName.into()
}

/// Whether `v` is a field value: tabs, visible bytes, spaces and obs-text, no other control
/// byte (no CR, LF, NUL, DEL). Eight bytes at a time: a word with no byte below 0x20 and no
/// DEL passes at once; only a word holding one (a tab, say) is looked at byte by byte.
#[inline(always)]
fn field_value(v: &[u8]) -> bool {
    let exact = |w: &[u8]| w.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f));
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        if swar::controls(swar::word(c)) != 0 && !exact(c) {
            return false;
        }
    }
    exact(chunks.remainder())
}

/// Maps an httparse error on a head, looking at the start line to tell 400 from 505.
pub(crate) fn map_httparse_error(e: httparse::Error, raw: &[u8], request: bool) -> Error {
    let line_end = memchr::memchr2(b'\r', b'\n', raw).unwrap_or(raw.len());
    let line = &raw[..line_end];
    match e {
        httparse::Error::Token if request => {
            let method_end = memchr::memchr(b' ', line).unwrap_or(line.len());
            if is_token(&line[..method_end]) {
                ErrorKind::InvalidTarget.into()
            } else {
                ErrorKind::InvalidMethod.into()
            }
        }
        httparse::Error::Version => {
            // A well-formed `HTTP/x.y` with another major version gets 505, anything else 400.
            let version = if request {
                line.rsplit(|&b| b == b' ').next().unwrap_or(b"")
            } else {
                line.split(|&b| b == b' ').next().unwrap_or(b"")
            };
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
                {
                    ErrorKind::UnsupportedVersion.into()
                }
                _ => ErrorKind::InvalidVersion.into(),
            }
        }
        httparse::Error::HeaderName => ErrorKind::InvalidHeaderName.into(),
        httparse::Error::HeaderValue | httparse::Error::NewLine => {
            ErrorKind::InvalidHeaderValue.into()
        }
        httparse::Error::TooManyHeaders => ErrorKind::TooManyHeaders.into(),
        httparse::Error::Status | httparse::Error::Token => ErrorKind::InvalidStatus.into(),
    }
}

/// Whether the line before `pos` in `raw` ended with CRLF.
///
/// httparse accepts a bare LF; RFC 9112 §2.2 lets a recipient refuse it, and we do. Each line
/// of a head ends right before the next field name (values cannot hold CR or LF), and the
/// last one before the blank line, so two bytes per line tell.
#[inline(always)]
pub(crate) fn crlf_before(raw: &[u8], pos: usize) -> bool {
    pos >= 2 && raw.get(pos - 2..pos) == Some(b"\r\n")
}

/// Checks that the last field line and the blank line of a complete head end in CRLF.
pub(crate) fn check_head_end(raw: &[u8]) -> Result<(), Error> {
    let n = raw.len();
    if crlf_before(raw, n) && crlf_before(raw, n - 2) {
        Ok(())
    } else {
        Err(ErrorKind::BareLf.into())
    }
}

/// Strips optional whitespace (SP, HTAB) from both ends.
#[inline(always)]
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: u8| b == b' ' || b == b'\t';
    let mut v = v;
    while let [first, rest @ ..] = v
        && ows(*first)
    {
        v = rest;
    }
    while let [rest @ .., last] = v
        && ows(*last)
    {
        v = rest;
    }
    v
}

/// The elements of a comma-separated list, trimmed, empty ones skipped (RFC 9110 §5.6.1).
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// The largest length accepted, for `Content-Length` and chunk sizes: `i64::MAX`, as nginx
/// (`off_t`). A peer with signed lengths would read anything larger as negative or wrap it.
pub(crate) const MAX_LENGTH: u64 = i64::MAX as u64;

/// `Content-Length = 1*DIGIT`, nothing else: no sign, no space inside, no list, no hex; at
/// most [`MAX_LENGTH`].
pub(crate) fn parse_content_length(v: &[u8]) -> Result<u64, Error> {
    if v.is_empty() {
        return Err(ErrorKind::InvalidContentLength.into());
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(ErrorKind::InvalidContentLength.into());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .filter(|&n| n <= MAX_LENGTH)
            .ok_or(Error::new(ErrorKind::InvalidContentLength))?;
    }
    Ok(n)
}

/// What a `Transfer-Encoding` value asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Exactly `chunked`.
    Chunked,
    /// Well-formed codings, not ending in `chunked` (a response body then runs until close).
    NotChunked,
    /// Well-formed, ending in `chunked`, with other codings before it, which this codec does
    /// not implement.
    Unknown,
}

/// Parses a `Transfer-Encoding` list (RFC 9112 §6.1). Malformed lists and `chunked` applied
/// twice are errors; what is left is for the caller to judge by role.
pub(crate) fn transfer_coding(v: &[u8]) -> Result<Coding, Error> {
    if eq_lower(v, b"chunked") {
        return Ok(Coding::Chunked);
    }
    let mut elements = 0;
    let mut chunked_seen = false;
    let mut last_chunked = false;
    // RFC 9110 §5.6.1: empty list elements are ignored.
    for e in list_elements(v) {
        // A coding may carry parameters (`;q=...`) only in TE, not in Transfer-Encoding.
        if !is_token(e) || chunked_seen {
            // Anything after `chunked` (even a second `chunked`) makes the length unknowable.
            return Err(ErrorKind::InvalidTransferEncoding.into());
        }
        elements += 1;
        last_chunked = e.eq_ignore_ascii_case(b"chunked");
        chunked_seen |= last_chunked;
    }
    Ok(match (elements, last_chunked) {
        (0, _) => return Err(ErrorKind::InvalidTransferEncoding.into()),
        (1, true) => Coding::Chunked,
        (_, true) => Coding::Unknown,
        (_, false) => Coding::NotChunked,
    })
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is allowed.
pub(crate) fn valid_host(v: &[u8]) -> bool {
    if let [b'[', rest @ ..] = v {
        let Some(close) = memchr::memchr(b']', rest) else {
            return false;
        };
        let literal = &rest[..close];
        // IPv6 and IPv4 literals; IPvFuture and zone ids are not accepted.
        return !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            && match &rest[close + 1..] {
                [] => true,
                [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
                _ => false,
            };
    }
    // reg-name bytes, then at most one colon followed by digits only. The common case, a
    // name without a port, in one branch-free pass.
    if v.iter().fold(true, |ok, &b| ok & REG_NAME[b as usize]) {
        return true;
    }
    match v.iter().position(|&b| !REG_NAME[b as usize]) {
        None => true,
        Some(i) => v[i] == b':' && v[i + 1..].iter().all(u8::is_ascii_digit),
    }
}

/// The bytes of `reg-name`: unreserved, sub-delims and `%` (of a pct-encoding).
static REG_NAME: [bool; 256] = byte_table(b"-._~%!$&'()*+,;=");

/// A byte allowed in a request target: any visible ASCII byte (no whitespace, no control
/// bytes, no bytes above 0x7e, which RFC 3986 wants percent-encoded). RFC 3986 allows fewer
/// (`"`, `<`, `{`, `|` ... are not `pchar`), but clients send them unencoded, and httparse,
/// hyper and nginx take them; the target's form is what matters for framing.
static TARGET: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x21;
    while i < 0x7f {
        t[i] = true;
        i += 1;
    }
    t
};

/// A table of the ASCII letters and digits plus `extra`.
const fn byte_table(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

/// Whether `b` may appear in a request target.
#[inline(always)]
pub(crate) fn target_byte(b: u8) -> bool {
    TARGET[b as usize]
}

/// The request target's form fits the method (RFC 9112 §3.2), for a target whose bytes all
/// pass [`target_byte`]: origin form (`/path?query`), absolute form (`http://...`,
/// `https://...`), authority form (`host:port`, CONNECT only) or asterisk form (`*`, OPTIONS
/// only).
pub(crate) fn target_form(method: &[u8], target: &[u8]) -> bool {
    if method.len() == 7 && method == b"CONNECT" {
        // authority-form = uri-host ":" port, with a port.
        return matches!(memchr::memrchr(b':', target), Some(i) if i + 1 < target.len())
            && valid_host(target);
    }
    match target {
        [b'*'] => method == b"OPTIONS",
        [b'/', ..] => true,
        // absolute-form, for the schemes an HTTP server serves (RFC 9110 §4.2): an authority
        // must follow.
        [first, ..] if first.is_ascii_alphabetic() => {
            let rest = match memchr::memchr(b':', target) {
                Some(4) if target[..4].eq_ignore_ascii_case(b"http") => &target[5..],
                Some(5) if target[..5].eq_ignore_ascii_case(b"https") => &target[6..],
                _ => return false,
            };
            rest.starts_with(b"//")
        }
        _ => false,
    }
}

/// What a head's fields say about framing and the connection; shared by both decoders.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields {
    pub(crate) content_length: Option<u64>,
    pub(crate) coding: Option<Coding>,
    pub(crate) hosts: u32,
    pub(crate) host_valid: bool,
    pub(crate) conn_close: bool,
    pub(crate) conn_keep_alive: bool,
    pub(crate) conn_upgrade: bool,
    pub(crate) has_upgrade: bool,
    pub(crate) expect_continue: bool,
}

impl Fields {
    /// Looks at one field (names compared case-insensitively, value already trimmed).
    #[inline(always)]
    pub(crate) fn see(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        match name.len() {
            4 if eq_lower(name, b"host") => {
                self.hosts += 1;
                self.host_valid = valid_host(value);
            }
            6 if eq_lower(name, b"expect") => {
                self.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
            7 if eq_lower(name, b"upgrade") => self.has_upgrade = true,
            10 if eq_lower(name, b"connection") => {
                // The common values first, then the general list.
                if eq_lower(value, b"keep-alive") {
                    self.conn_keep_alive = true;
                    return Ok(());
                }
                if eq_lower(value, b"close") {
                    self.conn_close = true;
                    return Ok(());
                }
                for token in list_elements(value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.conn_keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        self.conn_upgrade = true;
                    }
                }
            }
            14 if eq_lower(name, b"content-length") => {
                if self.content_length.is_some() {
                    return Err(ErrorKind::DuplicateContentLength.into());
                }
                self.content_length = Some(parse_content_length(value)?);
            }
            17 if eq_lower(name, b"transfer-encoding") => {
                if self.coding.is_some() {
                    return Err(ErrorKind::RepeatedTransferEncoding.into());
                }
                self.coding = Some(transfer_coding(value)?);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether `name` equals `lower` (lowercase letters, digits and `-`) ignoring ASCII case.
/// Exact for bytes other than CR (`b | 0x20` maps only CR onto `-`), so for tokens and field
/// values. Compares eight bytes at a time (the first and last eight overlap for lengths 9 to
/// 16), so a field name costs a few instructions whatever its length.
#[inline(always)]
fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    use swar::word;
    const CASE: u64 = u64::from_ne_bytes([0x20; 8]);
    let n = name.len();
    if n != lower.len() {
        return false;
    }
    if n < 8 {
        return name
            .iter()
            .zip(lower)
            .fold(0u8, |acc, (&a, &b)| acc | ((a | 0x20) ^ b))
            == 0;
    }
    let mut diff = ((word(name) | CASE) ^ word(lower))
        | ((word(&name[n - 8..]) | CASE) ^ word(&lower[n - 8..]));
    let mut i = 8;
    while i + 8 < n {
        diff |= (word(&name[i..]) | CASE) ^ word(&lower[i..]);
        i += 8;
    }
    diff == 0
}

/// Checks a field line of a trailer section: `name: value`, a token name with no whitespace
/// before the colon, and a value without control bytes. Returns (name, trimmed value).
pub(crate) fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let bad = || Error::new(ErrorKind::InvalidTrailer);
    // The name's letters and dashes a word at a time, other bytes looked up (as field_line).
    let mut i = 0;
    let colon = loop {
        let j = swar::find_not_name_letter(line, i).ok_or_else(bad)?;
        match line[j] {
            b':' if j > 0 => break j,
            b if tchar(b) => i = j + 1,
            _ => return Err(bad()),
        }
    };
    // The value: no control byte but the tab.
    let mut i = colon + 1;
    while let Some(j) = swar::find_control(line, i) {
        if line[j] != b'\t' {
            return Err(bad());
        }
        i = j + 1;
    }
    Ok((&line[..colon], trim_ows(&line[colon + 1..])))
}

/// Calls `check` on variants of a field line: each byte of `base` in turn replaced by each of
/// a dozen telling bytes (controls, separators, high bytes), the line whole and cut short
/// around the change. For tests that hold a fast reading against a plain one.
#[cfg(test)]
pub(crate) fn each_variant(base: &[u8], mut check: impl FnMut(&[u8])) {
    for at in 0..base.len() {
        for b in [
            0u8, b'\t', b' ', b'\r', b'\n', b':', b'"', b'_', b'~', 0x7f, 0x80, 0xff,
        ] {
            let mut line = base.to_vec();
            line[at] = b;
            for len in [line.len(), at + 1, at.saturating_sub(3)] {
                check(&line[..len]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trailer line rules, byte by byte.
    fn split_field_plain(line: &[u8]) -> Option<(&[u8], &[u8])> {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let name_ok = !name.is_empty() && name.iter().all(|&b| tchar(b));
        let value_ok = value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        (name_ok && value_ok).then(|| (name, trim_ows(value)))
    }

    #[test]
    fn split_field_agrees_with_the_rules_byte_by_byte() {
        each_variant(b"X-Checksum_2.v: some value\twith tab ", |line| {
            assert_eq!(
                split_field(line).ok(),
                split_field_plain(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        });
    }
}

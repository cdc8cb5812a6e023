//! The server side of the wire: decoding requests.

use std::mem::MaybeUninit;

use crate::error::{Error, ErrorKind};
use crate::{Limits, Version, tchar};

/// Header slots given to httparse (on the stack, uninitialised, so they cost nothing);
/// [`Limits::max_headers`] is capped at this.
pub const HEADER_SLOTS: usize = 256;

/// A byte range inside a head, relative to the head's first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(base: &[u8], part: &[u8]) -> Span {
        // Both slices come from the same buffer: `part` lies inside `base`.
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u32,
            len: part.len() as u32,
        }
    }

    pub(crate) fn get<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.start as usize..(self.start + self.len) as usize]
    }
}

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no `Content-Length`, no `Transfer-Encoding`, or `Content-Length: 0`).
    #[default]
    Empty,
    /// `Content-Length: n` with `n > 0`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Everything the decoder learned from a request head, as offsets into the head's bytes.
///
/// Together with the raw head bytes it rebuilds a [`RequestHead`] view
/// ([`RequestParts::view`]), so a server can copy both out of its read buffer (one `memcpy`
/// and a `clone_from` that reuses its allocation) and keep the request while the buffer moves
/// on to the body.
#[derive(Debug, Default)]
pub struct RequestParts {
    method: Span,
    target: Span,
    version: Version,
    headers: Vec<(Span, Span)>,
    keep_alive: bool,
    body: BodyKind,
    expect_continue: bool,
    upgrade: bool,
}

impl Clone for RequestParts {
    fn clone(&self) -> Self {
        let mut c = RequestParts::default();
        c.clone_from(self);
        c
    }

    /// Reuses `self`'s header storage: no allocation once it is large enough.
    fn clone_from(&mut self, src: &Self) {
        self.method = src.method;
        self.target = src.target;
        self.version = src.version;
        self.headers.clone_from(&src.headers);
        self.keep_alive = src.keep_alive;
        self.body = src.body;
        self.expect_continue = src.expect_continue;
        self.upgrade = src.upgrade;
    }
}

impl RequestParts {
    /// A view of the head whose bytes are `raw` (the bytes [`RequestHead::raw`] returned).
    pub fn view<'a>(&'a self, raw: &'a [u8]) -> RequestHead<'a> {
        RequestHead { raw, parts: self }
    }
}

/// A decoded request head, borrowed from the caller's buffer and the decoder.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    raw: &'a [u8],
    parts: &'a RequestParts,
}

impl<'a> RequestHead<'a> {
    /// The method, e.g. `GET` (a token, so always ASCII).
    pub fn method(&self) -> &'a str {
        std::str::from_utf8(self.parts.method.get(self.raw)).unwrap_or("")
    }

    /// The request target exactly as sent (origin form `/a?b`, absolute form, `*`, or an
    /// authority for CONNECT).
    pub fn target(&self) -> &'a [u8] {
        self.parts.target.get(self.raw)
    }

    /// The request target as text (httparse admits only UTF-8 targets).
    pub fn path(&self) -> &'a str {
        std::str::from_utf8(self.target()).unwrap_or("")
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.parts.version
    }

    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection` lists `close`; HTTP/1.0 only if it lists `keep-alive` (and not `close`).
    pub fn keep_alive(&self) -> bool {
        self.parts.keep_alive
    }

    /// How the body is delimited.
    pub fn body_kind(&self) -> BodyKind {
        self.parts.body
    }

    /// Whether the client sent `Expect: 100-continue` and waits for `100 Continue` before
    /// sending the body.
    pub fn expect_continue(&self) -> bool {
        self.parts.expect_continue
    }

    /// Whether the client asks to switch protocols (`Upgrade` listed in `Connection`).
    pub fn is_upgrade(&self) -> bool {
        self.parts.upgrade
    }

    /// The header fields in arrival order, with their case and duplicates kept.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            raw: self.raw,
            iter: self.parts.headers.iter(),
        }
    }

    /// The value of the first field named `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The head's bytes, from the request line to the blank line included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The offsets behind this view; see [`RequestParts::view`].
    pub fn parts(&self) -> &'a RequestParts {
        self.parts
    }
}

/// Iterator over `(name, value)` header fields; names are tokens, so always ASCII.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    raw: &'a [u8],
    iter: std::slice::Iter<'a, (Span, Span)>,
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

/// What one call to [`RequestDecoder::decode`] produced.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// Bytes of the input the caller must now discard (drain from the front of its buffer).
    pub consumed: usize,
    /// The event, or `None`: discard `consumed` bytes, then call again with more input.
    pub event: Option<Event<'a>>,
}

/// An event of the request stream: `Head`, then `Body` chunks, then `End`, for each request.
#[derive(Debug)]
pub enum Event<'a> {
    /// A request head.
    Head(RequestHead<'a>),
    /// Some body bytes (never empty).
    Body(&'a [u8]),
    /// The end of the current request's body (emitted for bodiless requests too).
    End,
}

/// What a decoding step found, as offsets (so no borrow of the input outlives the step).
enum Step {
    NeedMore(usize),
    Head { skip: usize, end: usize },
    Body { start: usize, end: usize },
    End(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    End,
}

/// How far a partial head has been scanned, so a trickled head costs linear work.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Next byte to look at for an LF.
    pos: usize,
    /// First byte of the line being scanned.
    line_start: usize,
    /// Whether the request line has been seen whole.
    first_line_done: bool,
}

/// Decodes a stream of HTTP/1.1 requests: bytes in, [`Event`]s out.
///
/// The caller owns the buffer: it passes everything it has not discarded yet, and discards
/// `consumed` bytes after each call. Nothing is copied; events borrow the input.
///
/// # Examples
/// ```
/// use codec_http::{Event, RequestDecoder};
///
/// let mut dec = RequestDecoder::new();
/// let mut buf: &[u8] = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
/// let mut got = Vec::new();
/// loop {
///     let d = dec.decode(buf).unwrap();
///     match d.event {
///         Some(Event::Head(h)) => got.push(format!("{} {}", h.method(), h.path())),
///         Some(Event::Body(b)) => got.push(String::from_utf8_lossy(b).into_owned()),
///         Some(Event::End) => { got.push("end".into()); break }
///         None => unreachable!("the whole request is in the buffer"),
///     }
///     buf = &buf[d.consumed..];
/// }
/// assert_eq!(got, ["POST /echo", "hello", "end"]);
/// ```
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
    scan: Scan,
    parts: RequestParts,
    body_seen: u64,
    metadata_seen: usize,
    error: Option<Error>,
}

impl Default for RequestDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> RequestDecoder {
        Self::with_limits(Limits::default())
    }

    /// A decoder with custom limits.
    pub fn with_limits(limits: Limits) -> RequestDecoder {
        RequestDecoder {
            limits,
            state: State::Head,
            scan: Scan::default(),
            parts: RequestParts::default(),
            body_seen: 0,
            metadata_seen: 0,
            error: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder is between requests with nothing of the next one seen yet.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.scan.pos == 0 && self.error.is_none()
    }

    /// Whether the decoder is inside a request head (some of it has arrived).
    pub fn in_head(&self) -> bool {
        self.state == State::Head && self.scan.pos > 0
    }

    /// Decodes the next event from `buf`.
    ///
    /// # Errors
    /// A malformed or over-limit request; see [`Error::status_hint`]. The error is sticky.
    pub fn decode<'b>(&'b mut self, buf: &'b [u8]) -> Result<Decoded<'b>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let step = match self.state {
            State::Head => self.decode_head(buf),
            State::Length(remaining) => Ok(self.decode_length(buf, remaining)),
            State::Chunked(_) => self.decode_chunked(buf),
            State::End => {
                self.state = State::Head;
                Ok(Step::End(0))
            }
        };
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return Err(e);
            }
        };
        Ok(match step {
            Step::NeedMore(consumed) => need_more(consumed),
            Step::Head { skip, end } => Decoded {
                consumed: end,
                event: Some(Event::Head(RequestHead {
                    raw: &buf[skip..end],
                    parts: &self.parts,
                })),
            },
            Step::Body { start, end } => Decoded {
                consumed: end,
                event: Some(Event::Body(&buf[start..end])),
            },
            Step::End(consumed) => Decoded {
                consumed,
                event: Some(Event::End),
            },
        })
    }

    /// Tells the decoder the stream ended; `rest` is what the caller still holds undiscarded.
    ///
    /// # Errors
    /// [`ErrorKind::UnexpectedEof`] if the stream ended inside a request.
    pub fn eof(&mut self, rest: &[u8]) -> Result<(), Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let between = self.state == State::Head && rest.iter().all(|&b| b == b'\r' || b == b'\n');
        if between {
            Ok(())
        } else {
            let e = Error::new(ErrorKind::UnexpectedEof);
            self.error = Some(e);
            Err(e)
        }
    }

    fn decode_head(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let mut skip = 0;
        if self.scan.pos == 0 {
            // RFC 9112 §2.2: ignore empty lines before the request line.
            while buf.len() >= skip + 2 && buf[skip] == b'\r' && buf[skip + 1] == b'\n' {
                skip += 2;
            }
            match buf.get(skip) {
                Some(b'\n') => return Err(ErrorKind::BareLf.into()),
                None => return Ok(Step::NeedMore(skip)),
                Some(b'\r') if buf.len() == skip + 1 => return Ok(Step::NeedMore(skip)),
                Some(_) => {}
            }
            self.scan.pos = skip;
            self.scan.line_start = skip;
        }
        let Some(end) = self.scan_head(buf)? else {
            let have = buf.len() - skip;
            if !self.scan.first_line_done
                && have > self.limits.max_target.saturating_add(REQUEST_LINE_SLACK)
            {
                return Err(ErrorKind::TargetTooLong.into());
            }
            if have > self.limits.max_head {
                return Err(ErrorKind::HeadTooLarge.into());
            }
            // The caller discards the skipped empty lines; keep the scan in step.
            self.scan.pos -= skip;
            self.scan.line_start -= skip;
            return Ok(Step::NeedMore(skip));
        };
        if end - skip > self.limits.max_head {
            return Err(ErrorKind::HeadTooLarge.into());
        }
        self.parse_head(&buf[skip..end])?;
        self.scan = Scan::default();
        self.body_seen = 0;
        self.metadata_seen = 0;
        self.state = match self.parts.body {
            BodyKind::Empty => State::End,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Chunked(Chunk::Size),
        };
        Ok(Step::Head { skip, end })
    }

    /// Looks for the blank line ending the head, from where the last call stopped.
    /// Returns the index just past it.
    fn scan_head(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let mut pos = self.scan.pos;
        while let Some(off) = memchr::memchr(b'\n', &buf[pos..]) {
            let lf = pos + off;
            if lf == 0 || buf[lf - 1] != b'\r' {
                return Err(ErrorKind::BareLf.into());
            }
            if lf - 1 == self.scan.line_start {
                // An empty line: the head ends here (leading empty lines were skipped).
                return Ok(Some(lf + 1));
            }
            // Look at the first byte of the next line: whitespace there is obs-fold (or
            // whitespace between the request line and the first field, RFC 9112 §2.2).
            let Some(&next) = buf.get(lf + 1) else {
                self.scan.pos = lf;
                return Ok(None);
            };
            if next == b' ' || next == b'\t' {
                return Err(ErrorKind::ObsFold.into());
            }
            self.scan.first_line_done = true;
            self.scan.line_start = lf + 1;
            pos = lf + 1;
        }
        self.scan.pos = buf.len();
        Ok(None)
    }

    /// Parses a complete head (`raw` ends with the blank line) into `self.parts`.
    fn parse_head(&mut self, raw: &[u8]) -> Result<(), Error> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
        let max = self.limits.max_headers.min(HEADER_SLOTS);
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(raw, &mut slots[..max]) {
            Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
            Ok(_) => return Err(ErrorKind::InvalidHeaderValue.into()),
            Err(e) => return Err(map_httparse_error(e, raw)),
        }
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(ErrorKind::InvalidMethod.into());
        };
        if target.len() > self.limits.max_target {
            return Err(ErrorKind::TargetTooLong.into());
        }
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        let parts = &mut self.parts;
        parts.method = Span::of(raw, method.as_bytes());
        parts.target = Span::of(raw, target.as_bytes());
        parts.version = version;
        parts.headers.clear();
        parts.expect_continue = false;
        parts.upgrade = false;

        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut te_seen = false;
        let mut hosts = 0u32;
        let mut conn_close = false;
        let mut conn_keep_alive = false;
        let mut conn_upgrade = false;
        let mut has_upgrade = false;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            let value = trim_ows(h.value);
            parts
                .headers
                .push((Span::of(raw, name), Span::of(raw, value)));
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
                6 if name.eq_ignore_ascii_case(b"expect")
                    && value.eq_ignore_ascii_case(b"100-continue") =>
                {
                    parts.expect_continue = true;
                }
                7 if name.eq_ignore_ascii_case(b"upgrade") => has_upgrade = true,
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for token in list_elements(value) {
                        if token.eq_ignore_ascii_case(b"close") {
                            conn_close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            conn_keep_alive = true;
                        } else if token.eq_ignore_ascii_case(b"upgrade") {
                            conn_upgrade = true;
                        }
                    }
                }
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    if content_length.is_some() {
                        return Err(ErrorKind::DuplicateContentLength.into());
                    }
                    content_length = Some(parse_content_length(value)?);
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    if version == Version::Http10 {
                        return Err(ErrorKind::TransferEncodingInHttp10.into());
                    }
                    if te_seen {
                        return Err(ErrorKind::RepeatedTransferEncoding.into());
                    }
                    te_seen = true;
                    check_transfer_encoding(value)?;
                    chunked = true;
                }
                _ => {}
            }
        }
        if version == Version::Http11 && hosts == 0 {
            return Err(ErrorKind::MissingHost.into());
        }
        if hosts > 1 {
            return Err(ErrorKind::DuplicateHost.into());
        }
        if chunked && content_length.is_some() {
            return Err(ErrorKind::ContentLengthWithTransferEncoding.into());
        }
        parts.body = match (chunked, content_length) {
            (true, _) => BodyKind::Chunked,
            (false, Some(0) | None) => BodyKind::Empty,
            (false, Some(n)) => {
                if self.limits.max_body.is_some_and(|max| n > max) {
                    return Err(ErrorKind::BodyTooLarge.into());
                }
                BodyKind::Length(n)
            }
        };
        parts.keep_alive = match version {
            Version::Http11 => !conn_close,
            Version::Http10 => conn_keep_alive && !conn_close,
        };
        parts.upgrade = has_upgrade && conn_upgrade;
        Ok(())
    }

    fn decode_length(&mut self, buf: &[u8], remaining: u64) -> Step {
        if buf.is_empty() {
            return Step::NeedMore(0);
        }
        let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let left = remaining - n as u64;
        self.state = if left == 0 {
            State::End
        } else {
            State::Length(left)
        };
        Step::Body { start: 0, end: n }
    }

    fn decode_chunked(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let mut pos = 0;
        loop {
            let State::Chunked(chunk) = self.state else {
                unreachable!("decode_chunked outside a chunked body");
            };
            match chunk {
                Chunk::Size => {
                    let Some(line) = self.chunk_line(&buf[pos..])? else {
                        return Ok(Step::NeedMore(pos));
                    };
                    let size = parse_chunk_size(&buf[pos..pos + line - 2])?;
                    self.metadata_seen += line;
                    if self.metadata_seen > self.limits.max_chunk_metadata {
                        return Err(ErrorKind::ChunkMetadataTooLarge.into());
                    }
                    pos += line;
                    if size == 0 {
                        self.state = State::Chunked(Chunk::Trailers);
                    } else {
                        self.body_seen = self.body_seen.saturating_add(size);
                        if self.limits.max_body.is_some_and(|max| self.body_seen > max) {
                            return Err(ErrorKind::BodyTooLarge.into());
                        }
                        self.state = State::Chunked(Chunk::Data(size));
                    }
                }
                Chunk::Data(remaining) => {
                    let avail = buf.len() - pos;
                    if avail == 0 {
                        return Ok(Step::NeedMore(pos));
                    }
                    let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    let left = remaining - n as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Step::Body {
                        start: pos,
                        end: pos + n,
                    });
                }
                Chunk::DataEnd => match &buf[pos..] {
                    [] | [b'\r'] => return Ok(Step::NeedMore(pos)),
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::Chunked(Chunk::Size);
                    }
                    _ => return Err(ErrorKind::MissingChunkCrlf.into()),
                },
                Chunk::Trailers => {
                    let Some(line) = self.chunk_line(&buf[pos..])? else {
                        return Ok(Step::NeedMore(pos));
                    };
                    if line == 2 {
                        self.state = State::Head;
                        return Ok(Step::End(pos + 2));
                    }
                    check_trailer(&buf[pos..pos + line - 2])?;
                    self.metadata_seen += line;
                    if self.metadata_seen > self.limits.max_chunk_metadata {
                        return Err(ErrorKind::ChunkMetadataTooLarge.into());
                    }
                    pos += line;
                }
            }
        }
    }

    /// The length of the CRLF-terminated line at the start of `buf` (CRLF included), or
    /// `None` if it is not complete yet.
    fn chunk_line(&self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let room = self
            .limits
            .max_chunk_metadata
            .saturating_sub(self.metadata_seen)
            .saturating_add(2);
        let window = &buf[..buf.len().min(room)];
        match memchr::memchr(b'\n', window) {
            Some(lf) if lf > 0 && window[lf - 1] == b'\r' => Ok(Some(lf + 1)),
            Some(_) => Err(ErrorKind::BareLf.into()),
            None if window.len() == room => Err(ErrorKind::ChunkMetadataTooLarge.into()),
            None => Ok(None),
        }
    }
}

/// Bytes allowed on a request line beyond the target: method, spaces, version, CRLF.
const REQUEST_LINE_SLACK: usize = 64;

fn need_more<'b>(consumed: usize) -> Decoded<'b> {
    Decoded {
        consumed,
        event: None,
    }
}

fn map_httparse_error(e: httparse::Error, raw: &[u8]) -> Error {
    let line_end = memchr::memchr(b'\r', raw).unwrap_or(raw.len());
    let line = &raw[..line_end];
    match e {
        httparse::Error::Token => {
            let method_end = memchr::memchr(b' ', line).unwrap_or(line.len());
            if method_end > 0 && line[..method_end].iter().all(|&b| tchar(b)) {
                ErrorKind::InvalidTarget.into()
            } else {
                ErrorKind::InvalidMethod.into()
            }
        }
        httparse::Error::Version => {
            // A well-formed `HTTP/x.y` with another major version gets 505, anything else 400.
            let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
                {
                    ErrorKind::UnsupportedVersion.into()
                }
                _ => ErrorKind::InvalidVersion.into(),
            }
        }
        httparse::Error::HeaderName => {
            // A space or tab before the colon is its own case (RFC 9112 §5.1).
            ErrorKind::InvalidHeaderName.into()
        }
        httparse::Error::HeaderValue | httparse::Error::NewLine => {
            ErrorKind::InvalidHeaderValue.into()
        }
        httparse::Error::TooManyHeaders => ErrorKind::TooManyHeaders.into(),
        httparse::Error::Status => ErrorKind::InvalidStatus.into(),
    }
}

/// Strips optional whitespace (SP, HTAB) from both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
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

/// `Content-Length = 1*DIGIT`, nothing else: no sign, no space inside, no list, no hex.
fn parse_content_length(v: &[u8]) -> Result<u64, Error> {
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
            .ok_or(Error::new(ErrorKind::InvalidContentLength))?;
    }
    Ok(n)
}

/// Accepts exactly one coding, `chunked` (any case). `chunked` before another coding is 400;
/// any other coding is one this codec does not implement: 501.
fn check_transfer_encoding(v: &[u8]) -> Result<(), Error> {
    let mut elements = 0;
    let mut last_chunked = false;
    let mut unknown = false;
    for raw in v.split(|&b| b == b',') {
        let e = trim_ows(raw);
        if e.is_empty() || !e.iter().all(|&b| tchar(b)) {
            return Err(ErrorKind::InvalidTransferEncoding.into());
        }
        if elements > 0 && last_chunked {
            // Something after chunked: the length cannot be known (RFC 9112 §6.3).
            return Err(ErrorKind::InvalidTransferEncoding.into());
        }
        elements += 1;
        last_chunked = e.eq_ignore_ascii_case(b"chunked");
        unknown |= !last_chunked;
    }
    if elements == 0 {
        return Err(ErrorKind::InvalidTransferEncoding.into());
    }
    if unknown {
        return Err(ErrorKind::UnknownTransferCoding.into());
    }
    Ok(())
}

/// `chunk-size [ chunk-ext ]` with the CRLF already removed. The size is 1*HEXDIG with checked
/// arithmetic; extensions are `*( BWS ";" BWS name [ BWS "=" BWS value ] )` and are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ErrorKind::InvalidChunkSize.into());
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(Error::new(ErrorKind::ChunkSizeOverflow))?;
    }
    check_chunk_ext(&line[digits..])?;
    Ok(size)
}

fn check_chunk_ext(mut ext: &[u8]) -> Result<(), Error> {
    let bad = || Error::new(ErrorKind::InvalidChunkSize);
    loop {
        ext = trim_start_ows(ext);
        if ext.is_empty() {
            return Ok(());
        }
        let [b';', rest @ ..] = ext else {
            return Err(bad());
        };
        ext = trim_start_ows(rest);
        let name = ext.iter().take_while(|&&b| tchar(b)).count();
        if name == 0 {
            return Err(bad());
        }
        ext = trim_start_ows(&ext[name..]);
        if let [b'=', rest @ ..] = ext {
            ext = trim_start_ows(rest);
            if let [b'"', rest @ ..] = ext {
                let mut i = 0;
                loop {
                    match rest.get(i) {
                        None => return Err(bad()),
                        Some(b'"') => break,
                        Some(b'\\') if rest.get(i + 1).is_some_and(|&c| qdtext(c)) => i += 2,
                        Some(&c) if qdtext(c) && c != b'\\' => i += 1,
                        Some(_) => return Err(bad()),
                    }
                }
                ext = &rest[i + 1..];
            } else {
                let value = ext.iter().take_while(|&&b| tchar(b)).count();
                if value == 0 {
                    return Err(bad());
                }
                ext = &ext[value..];
            }
        }
    }
}

fn trim_start_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    v
}

/// A byte allowed inside a quoted string (qdtext, or the escaped byte of a quoted-pair).
fn qdtext(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// A trailer field line: `name: value` with a token name and no control bytes in the value.
fn check_trailer(line: &[u8]) -> Result<(), Error> {
    let colon = memchr::memchr(b':', line).ok_or(Error::new(ErrorKind::InvalidTrailer))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| tchar(b)) {
        return Err(ErrorKind::InvalidTrailer.into());
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ErrorKind::InvalidTrailer.into());
    }
    Ok(())
}

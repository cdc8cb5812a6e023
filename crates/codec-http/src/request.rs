//! The server side of the wire: decoding requests.

use crate::body::{BodyDecoder, BodyStep, Trailers};
use crate::error::{Error, ErrorKind};
use crate::head::{
    Coding, Fields, HEADER_SLOTS, HeadScanner, HeadStep, Headers, Span, target_byte, target_form,
};
use crate::swar::{HIGH, ONES, word, zeros};
use crate::{Limits, Version, swar};

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
    connect: bool,
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
        self.connect = src.connect;
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
    /// Never after an Upgrade or CONNECT request: what the client sends next may be in
    /// another protocol, so a server that declines should close; one that knows better calls
    /// [`RequestDecoder::resume`].
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

    /// Whether the client asks to switch protocols (an HTTP/1.1 request with `Upgrade`,
    /// listed in `Connection`). The decoder pauses after this request.
    pub fn is_upgrade(&self) -> bool {
        self.parts.upgrade
    }

    /// Whether this is a `CONNECT` (a tunnel request). The decoder pauses after it.
    pub fn is_connect(&self) -> bool {
        self.parts.connect
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a head.
    Head,
    /// Reading a body.
    Body,
    /// A bodiless request: `End` comes next.
    End,
    /// After an Upgrade or CONNECT request: the bytes that follow may belong to another
    /// protocol, so nothing more is decoded until [`RequestDecoder::resume`].
    Paused,
    /// After an error, which every later call returns again.
    Failed,
}

/// Decodes a stream of HTTP/1.1 requests: bytes in, [`Event`]s out (the server's side).
///
/// The caller owns the buffer: it passes everything it has not discarded yet, and discards
/// `consumed` bytes after each call. Nothing is copied; events borrow the input. A result
/// with no event and `consumed == 0` means "read more" (or, if [`is_paused`] says so, "the
/// rest is not HTTP/1.1 any more").
///
/// After an `Upgrade` request (`Upgrade` listed in `Connection`) or a `CONNECT`, the decoder
/// pauses once the request's `End` is out: the bytes that follow belong to the new protocol
/// if the server agrees (101, or 2xx to CONNECT), so they are left in the caller's buffer.
/// Such a request's head says `keep_alive() == false`: a server that declines answers and
/// closes. One that wants to go on with HTTP/1.1 anyway calls [`resume`].
///
/// [`is_paused`]: RequestDecoder::is_paused
/// [`resume`]: RequestDecoder::resume
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
    scan: HeadScanner,
    parts: RequestParts,
    body: BodyDecoder,
    pause_after: bool,
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
            scan: HeadScanner::default(),
            parts: RequestParts::default(),
            body: BodyDecoder::new(),
            pause_after: false,
            error: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder is between requests with nothing of the next one seen yet.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && !self.scan.started() && self.error.is_none()
    }

    /// Whether the decoder is inside a request head (some of it has arrived).
    pub fn in_head(&self) -> bool {
        self.state == State::Head && self.scan.started()
    }

    /// Whether decoding stopped after an Upgrade or CONNECT request; see
    /// [`resume`](RequestDecoder::resume).
    pub fn is_paused(&self) -> bool {
        self.state == State::Paused
    }

    /// Goes on decoding HTTP/1.1 after a pause: the server declined the upgrade (it answered
    /// with something other than 101, or other than 2xx to CONNECT). No effect otherwise.
    pub fn resume(&mut self) {
        if self.state == State::Paused {
            self.state = State::Head;
        }
    }

    /// Makes the decoder as good as new for another connection, keeping its limits and the
    /// storage it has grown (for servers that pool decoders): no head in progress, no error,
    /// no pause, no trailers of an earlier body.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.scan = HeadScanner::default();
        self.parts.headers.clear();
        self.body.reset();
        self.pause_after = false;
        self.error = None;
    }

    /// The trailer fields of the last chunked request body, readable after its
    /// [`Event::End`] until the next body starts.
    pub fn trailers(&self) -> Trailers<'_> {
        self.body.trailers()
    }

    /// Decodes the next event from `buf`.
    ///
    /// # Errors
    /// A malformed or over-limit request; see [`Error::status_hint`]. The error is sticky:
    /// every later call returns it again.
    #[inline]
    pub fn decode<'b>(&'b mut self, buf: &'b [u8]) -> Result<Decoded<'b>, Error> {
        // A head and a body chunk each take a path of their own: neither pays for the
        // other's registers and frame.
        if self.state == State::Head {
            self.decode_head(buf)
        } else {
            self.decode_rest(buf)
        }
    }

    /// Everything but a head: body chunks, `End`, a pause, a sticky error.
    #[inline(never)]
    fn decode_rest<'b>(&'b mut self, buf: &'b [u8]) -> Result<Decoded<'b>, Error> {
        let step = match self.state {
            State::Body => {
                if let Some((start, end)) = self.body.whole_chunk(buf, &self.limits) {
                    return Ok(Decoded {
                        consumed: end + 2,
                        event: Some(Event::Body(&buf[start..end])),
                    });
                }
                self.body.step(buf, &self.limits)
            }
            State::End => Ok(BodyStep::End(0)),
            State::Paused => Ok(BodyStep::NeedMore(0)),
            // (`decode` sends a head to `decode_head`: `Head` never comes here.)
            State::Failed | State::Head => {
                return Err(self.error.unwrap_or(ErrorKind::UnexpectedEof.into()));
            }
        };
        match step {
            Ok(BodyStep::NeedMore(consumed)) => Ok(Decoded {
                consumed,
                event: None,
            }),
            Ok(BodyStep::Data {
                start,
                end,
                consumed,
            }) => Ok(Decoded {
                consumed,
                event: Some(Event::Body(&buf[start..end])),
            }),
            Ok(BodyStep::End(consumed)) => {
                self.state = self.after_end();
                Ok(Decoded {
                    consumed,
                    event: Some(Event::End),
                })
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Makes `e` sticky.
    #[cold]
    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed;
        self.error = Some(e);
        e
    }

    /// A head, or the part of one that is here.
    #[inline(never)]
    fn decode_head<'b>(&'b mut self, buf: &'b [u8]) -> Result<Decoded<'b>, Error> {
        let (parts, limits) = (&mut self.parts, &self.limits);
        let read = self.scan.read(buf, limits, true, &mut |raw| {
            parse_request(parts, limits, raw)
        });
        match read {
            Ok(HeadStep::NeedMore(skip)) => Ok(Decoded {
                consumed: skip,
                event: None,
            }),
            Ok(HeadStep::Done { skip, end }) => {
                self.pause_after = self.parts.upgrade || self.parts.connect;
                self.state = match self.parts.body {
                    BodyKind::Empty => {
                        self.body.start_empty();
                        State::End
                    }
                    BodyKind::Length(n) => {
                        self.body.start_length(n);
                        State::Body
                    }
                    BodyKind::Chunked => {
                        self.body.start_chunked();
                        State::Body
                    }
                };
                Ok(Decoded {
                    consumed: end,
                    event: Some(Event::Head(RequestHead {
                        raw: &buf[skip..end],
                        parts: &self.parts,
                    })),
                })
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn after_end(&self) -> State {
        if self.pause_after {
            State::Paused
        } else {
            State::Head
        }
    }

    /// Tells the decoder the stream ended; `rest` is what the caller still holds undiscarded.
    ///
    /// # Errors
    /// [`ErrorKind::UnexpectedEof`] if the stream ended inside a request.
    pub fn eof(&mut self, rest: &[u8]) -> Result<(), Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let clean = match self.state {
            State::Head => rest.iter().all(|&b| b == b'\r' || b == b'\n'),
            State::Paused => true,
            State::Body | State::End | State::Failed => false,
        };
        if clean {
            Ok(())
        } else {
            Err(self.fail(ErrorKind::UnexpectedEof.into()))
        }
    }
}

/// Reads the field line at `raw[pos..]`: its name, its trimmed value, and where the next line
/// starts; `None` if the line is not complete. Finding the CR and checking the value are one
/// pass, sixteen bytes at a time (a CR is below 0x20, like every byte a value may not hold but
/// the tab). Errors here are approximate: a head that fails is checked again line by line
/// by the scanner, which names the fault.
#[inline(always)]
fn field_line(raw: &[u8], pos: usize) -> Result<Option<FieldLine>, Error> {
    // The name: every byte up to the first colon must be a tchar (a colon is not one, so
    // this also ends the name at the line's first non-tchar byte). Letters and `-` are
    // skipped a word at a time; any other byte is looked up.
    let mut i = pos;
    let colon = loop {
        let Some(j) = swar::find_not_name_letter(raw, i) else {
            return Ok(None);
        };
        match raw[j] {
            b':' if j > pos => break j,
            b if crate::tchar(b) => i = j + 1,
            _ => return Err(ErrorKind::InvalidHeaderName.into()),
        }
    };
    // Optional whitespace before the value (RFC 9112 §5.1), usually one space: that one is
    // taken before the loop (which then mostly stops at once; fewer instructions per field).
    let mut v0 = colon + 1;
    if raw.get(v0) == Some(&b' ') {
        v0 += 1;
    }
    while let Some(b' ' | b'\t') = raw.get(v0) {
        v0 += 1;
    }
    // The value, up to the CR: the first control byte must be the CR; a tab is the only
    // other control byte a value may hold, and the scan goes on after it.
    let mut i = v0;
    let cr = loop {
        let Some(j) = swar::find_control(raw, i) else {
            return Ok(None);
        };
        match raw[j] {
            b'\r' => break j,
            b'\t' => i = j + 1,
            _ => return Err(ErrorKind::InvalidHeaderValue.into()),
        }
    };
    match raw.get(cr + 1) {
        Some(b'\n') => {
            // Optional whitespace after the value, rare; the leading one is already skipped,
            // so this stops at `v0` at the latest. (The outer test is the loop's first: it
            // keeps the common case to one comparison.)
            let mut v1 = cr;
            if v1 > v0 && matches!(raw[v1 - 1], b' ' | b'\t') {
                while v1 > v0 && matches!(raw[v1 - 1], b' ' | b'\t') {
                    v1 -= 1;
                }
            }
            Ok(Some(FieldLine {
                name: (pos, colon),
                value: (v0, v1),
                next: cr + 2,
            }))
        }
        Some(_) => Err(ErrorKind::InvalidHeaderValue.into()),
        None => Ok(None),
    }
}

/// Where a field line's parts are in the head: the name's and the trimmed value's ranges,
/// and where the next line starts.
struct FieldLine {
    name: (usize, usize),
    value: (usize, usize),
    next: usize,
}

/// The index of the first byte at or after `i` that cannot be in a request target (see
/// [`target_byte`]: anything but visible ASCII), eight bytes at a time.
#[inline(always)]
fn target_end(raw: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = raw.get(i..i + 8) {
        let x = word(w);
        // Below 0x21, from 0x80 up, or DEL; the lowest flag is exact.
        let m = (x.wrapping_sub(ONES * 0x21) & !x & HIGH) | (x & HIGH) | zeros(x ^ (ONES * 0x7f));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    raw[i..]
        .iter()
        .position(|&b| !target_byte(b))
        .map(|j| i + j)
}

/// Parses a request head at the start of `raw` into `parts`: `Ok(None)` if it is not complete.
///
/// One pass, a line at a time: `memchr` finds each LF, then the line is checked with lookup
/// tables and eight-byte words (the same checks the scanner makes on a head that trickles in,
/// so the two agree). httparse is not used here: checking each line while it is in cache and
/// recording the ranges as we go costs less than httparse's pass followed by ours.
fn parse_request(
    parts: &mut RequestParts,
    limits: &Limits,
    raw: &[u8],
) -> Result<Option<usize>, Error> {
    // The request line: method SP target SP HTTP/1.d CRLF, one table lookup per byte.
    let Some(sp) = raw.iter().position(|&b| !crate::tchar(b)) else {
        return Ok(None);
    };
    if sp == 0 || raw[sp] != b' ' {
        return Err(ErrorKind::InvalidMethod.into());
    }
    let method = &raw[..sp];
    let t0 = sp + 1;
    let Some(t1) = target_end(raw, t0) else {
        return Ok(None);
    };
    if t1 == t0 || raw[t1] != b' ' {
        return Err(ErrorKind::InvalidTarget.into());
    }
    let target = &raw[t0..t1];
    let Some(version) = raw.get(t1 + 1..t1 + 11) else {
        return Ok(None);
    };
    let version = match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0', b'\r', b'\n'] => Version::Http10,
        // RFC 9112 §2.3: a higher minor version of HTTP/1 is processed as HTTP/1.1.
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            b'1'..=b'9',
            b'\r',
            b'\n',
        ] => Version::Http11,
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'0' | b'2'..=b'9',
            b'.',
            b'0'..=b'9',
            b'\r',
            b'\n',
        ] => {
            return Err(ErrorKind::UnsupportedVersion.into());
        }
        _ => return Err(ErrorKind::InvalidVersion.into()),
    };
    let lf = t1 + 10;
    if target.len() > limits.max_target {
        return Err(ErrorKind::TargetTooLong.into());
    }
    if !target_form(method, target) {
        return Err(ErrorKind::InvalidTarget.into());
    }
    parts.method = Span::new(0, sp);
    parts.target = Span::new(t0, t1);
    parts.version = version;
    parts.headers.clear();

    // The fields, up to the blank line.
    let max_headers = limits.max_headers.min(HEADER_SLOTS);
    let mut fields = Fields::default();
    let mut pos = lf + 1;
    let end = loop {
        match raw.get(pos..pos + 2) {
            Some(b"\r\n") => break pos + 2,
            Some([b' ' | b'\t', _]) => return Err(ErrorKind::ObsFold.into()),
            None if raw.len() - pos < 2 => return Ok(None),
            _ => {}
        }
        let Some(line) = field_line(raw, pos)? else {
            return Ok(None);
        };
        if parts.headers.len() == max_headers {
            return Err(ErrorKind::TooManyHeaders.into());
        }
        let ((n0, n1), (v0, v1)) = (line.name, line.value);
        parts.headers.push((Span::new(n0, n1), Span::new(v0, v1)));
        fields.see(&raw[n0..n1], &raw[v0..v1])?;
        pos = line.next;
    };
    if fields.hosts > 1 {
        return Err(ErrorKind::DuplicateHost.into());
    }
    if version == Version::Http11 && fields.hosts == 0 {
        return Err(ErrorKind::MissingHost.into());
    }
    if fields.hosts == 1 && !fields.host_valid {
        return Err(ErrorKind::InvalidHost.into());
    }
    parts.body = match (fields.coding, fields.content_length) {
        (Some(_), _) if version == Version::Http10 => {
            return Err(ErrorKind::TransferEncodingInHttp10.into());
        }
        (Some(_), Some(_)) => return Err(ErrorKind::ContentLengthWithTransferEncoding.into()),
        (Some(Coding::Chunked), None) => BodyKind::Chunked,
        // RFC 9112 §6.3: in a request, chunked must be the final coding, or the length cannot
        // be known: 400.
        (Some(Coding::NotChunked), None) => {
            return Err(ErrorKind::InvalidTransferEncoding.into());
        }
        (Some(Coding::Unknown), None) => return Err(ErrorKind::UnknownTransferCoding.into()),
        (None, Some(0) | None) => BodyKind::Empty,
        (None, Some(n)) => {
            if limits.max_body.is_some_and(|max| n > max) {
                return Err(ErrorKind::BodyTooLarge.into());
            }
            BodyKind::Length(n)
        }
    };
    // RFC 9110 §7.8 and §10.1.1: Upgrade and 100-continue mean nothing in HTTP/1.0.
    let http11 = version == Version::Http11;
    parts.expect_continue = http11 && fields.expect_continue;
    parts.upgrade = http11 && fields.has_upgrade && fields.conn_upgrade;
    parts.connect = method == b"CONNECT";
    // After an Upgrade or CONNECT request the client may already be sending another
    // protocol: a server that declines closes rather than read those bytes as requests.
    parts.keep_alive = !(parts.upgrade || parts.connect)
        && match version {
            Version::Http11 => !fields.conn_close,
            Version::Http10 => fields.conn_keep_alive && !fields.conn_close,
        };
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::work;

    /// Feeds `head` one byte at a time, as a slow client would; returns the bytes looked at.
    fn trickle(head: &[u8]) -> usize {
        let mut dec = RequestDecoder::new();
        let mut buf = Vec::new();
        work::take();
        for &b in head {
            buf.push(b);
            let d = dec.decode(&buf).unwrap();
            let (consumed, done) = (d.consumed, d.event.is_some());
            buf.drain(..consumed);
            if done {
                assert_eq!(buf.len(), 0);
                return work::take();
            }
        }
        panic!("the head never completed");
    }

    fn head_of(len: usize, line: &[u8]) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        while head.len() + line.len() + 2 <= len {
            head.extend_from_slice(line);
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    #[test]
    fn a_trickled_head_costs_linear_work() {
        // An 8 KiB head one byte at a time: rescanning from the start on every byte would look
        // at about n²/2 = 33 million bytes; remembering how far the scan got looks at each
        // byte a few times (the fast path, the scan, the start line, the final parse).
        let short = format!("X-Filler: {}\r\n", "a".repeat(80));
        let long = format!("X-Filler: {}\r\n", "a".repeat(1000));
        for line in [short.as_bytes(), long.as_bytes()] {
            let head = head_of(8 * 1024 - 64, line);
            let n = head.len();
            let work = trickle(&head);
            assert!(
                work <= 3 * n + 64,
                "looked at {work} bytes for a head of {n}"
            );
            // Twice the head, about twice the work: linear, not quadratic.
            let half = trickle(&head_of(n / 2, line));
            assert!(work <= 3 * half, "{work} for {n} bytes, {half} for half");
        }
        // A long request line trickled is checked byte by byte, once.
        let target = "a".repeat(8000);
        let head = format!("GET /{target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let work = trickle(head.as_bytes());
        assert!(
            work <= 4 * head.len(),
            "looked at {work} bytes for {}",
            head.len()
        );
    }
}

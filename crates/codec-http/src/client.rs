//! The client's side of the wire: encoding requests, decoding responses.

use std::mem::MaybeUninit;

use crate::body::{BodyDecoder, BodyStep, Trailers};
use crate::error::{Error, ErrorKind};
use crate::head::{
    Coding, Fields, HEADER_SLOTS, HeadScanner, HeadStep, Headers, Span, check_head_end,
    crlf_before, map_httparse_error,
};
use crate::response::{BodyEncoder, check_fields, valid_value, write_fields, write_framing};
use crate::{Framing, Limits, Version, is_token};

/// A request head to encode.
#[derive(Clone, Copy, Debug)]
pub struct ClientRequest<'a> {
    /// The method, a token such as `GET`.
    pub method: &'a str,
    /// The request target as it goes on the wire (`/path?query`, an absolute URI, `*`, or
    /// `host:port` for CONNECT).
    pub target: &'a [u8],
    /// Header fields, written in order (HTTP/1.1 needs a `Host`). `Content-Length` and
    /// `Transfer-Encoding` are not allowed here: they come from `framing`.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// How the body is delimited: a length (`Length(0)` writes no field for GET and HEAD) or
    /// chunked; a request cannot be close-delimited.
    pub framing: Framing,
}

impl<'a> ClientRequest<'a> {
    /// A request with no body.
    pub fn new(method: &'a str, target: &'a [u8], headers: &'a [(&'a str, &'a [u8])]) -> Self {
        ClientRequest {
            method,
            target,
            headers,
            framing: Framing::Length(0),
        }
    }
}

/// Encodes HTTP/1.1 requests into a caller's `Vec<u8>` (the client's side).
///
/// # Examples
/// ```
/// use codec_http::{ClientRequest, Framing, RequestEncoder};
///
/// let mut enc = RequestEncoder::new();
/// let mut out = Vec::new();
/// let mut req = ClientRequest::new("POST", b"/submit", &[("Host", b"example.com")]);
/// req.framing = Framing::chunked();
/// enc.head(&req, &mut out).unwrap();
/// enc.body(b"hello", &mut out).unwrap();
/// enc.end(&mut out).unwrap();
/// assert_eq!(
///     out,
///     b"POST /submit HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n\
///       5\r\nhello\r\n0\r\n\r\n"
/// );
/// ```
#[derive(Debug)]
pub struct RequestEncoder {
    body: BodyEncoder,
}

impl Default for RequestEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestEncoder {
    /// A new encoder, ready for a head.
    pub fn new() -> RequestEncoder {
        RequestEncoder {
            body: BodyEncoder::new(),
        }
    }

    /// Whether the encoder is between messages.
    pub fn is_idle(&self) -> bool {
        self.body.is_idle()
    }

    /// Whether the current request needs nothing more before [`end`](RequestEncoder::end).
    pub fn is_complete(&self) -> bool {
        self.body.is_complete()
    }

    /// Writes a request line and header fields.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] inside a message, [`ErrorKind::InvalidRequestLine`],
    /// [`ErrorKind::InvalidHeaderField`], [`ErrorKind::FramingHeader`],
    /// [`ErrorKind::InvalidFraming`]. Nothing is written on error.
    pub fn head(&mut self, req: &ClientRequest<'_>, dst: &mut Vec<u8>) -> Result<(), Error> {
        if !self.body.is_idle() {
            return Err(ErrorKind::InvalidState.into());
        }
        let method = req.method.as_bytes();
        let target_ok = !req.target.is_empty()
            && req.target.iter().all(|&b| b > b' ' && b != 0x7f)
            && valid_value(req.target);
        if !is_token(method) || !target_ok {
            return Err(ErrorKind::InvalidRequestLine.into());
        }
        if req.framing == Framing::CloseDelimited {
            return Err(ErrorKind::InvalidFraming.into());
        }
        let len = check_fields(req.headers)?;
        dst.reserve(method.len() + req.target.len() + 13 + len + 42);
        dst.extend_from_slice(method);
        dst.push(b' ');
        dst.extend_from_slice(req.target);
        dst.extend_from_slice(b" HTTP/1.1\r\n");
        write_fields(req.headers, dst);
        let bodiless_method = method == b"GET" || method == b"HEAD";
        if !(req.framing == Framing::Length(0) && bodiless_method) {
            write_framing(req.framing, dst);
        }
        dst.extend_from_slice(b"\r\n");
        self.body.start(Some(req.framing), false);
        Ok(())
    }

    /// Writes body bytes, framed as the head declared.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyTooLong`] past the
    /// declared `Content-Length`.
    pub fn body(&mut self, chunk: &[u8], dst: &mut Vec<u8>) -> Result<(), Error> {
        self.body.body(chunk, dst)
    }

    /// Ends the request (the last chunk for a chunked body).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyTooShort`] if fewer
    /// bytes than the declared `Content-Length` were written.
    pub fn end(&mut self, dst: &mut Vec<u8>) -> Result<(), Error> {
        self.body.end(dst)
    }
}

/// What the decoder learned from a response head, as offsets into the head's bytes.
#[derive(Debug, Default)]
struct ResponseParts {
    status: u16,
    reason: Span,
    version: Version,
    headers: Vec<(Span, Span)>,
    keep_alive: bool,
}

/// A decoded response head, borrowed from the caller's buffer and the decoder.
#[derive(Clone, Copy, Debug)]
pub struct ClientResponse<'a> {
    raw: &'a [u8],
    parts: &'a ResponseParts,
}

impl<'a> ClientResponse<'a> {
    /// The status code, 100..=999.
    pub fn status(&self) -> u16 {
        self.parts.status
    }

    /// The reason phrase as sent (may be empty).
    pub fn reason(&self) -> &'a [u8] {
        self.parts.reason.get(self.raw)
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.parts.version
    }

    /// Whether this is an interim (1xx) response; the final one follows.
    pub fn is_interim(&self) -> bool {
        self.parts.status < 200
    }

    /// Whether the connection may carry another request after this response: not if the
    /// body runs until close, not if `Connection` lists `close`, and for HTTP/1.0 only if it
    /// lists `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.parts.keep_alive
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

    /// The head's bytes, from the status line to the blank line included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// An event of the response stream: `Head` (interim ones too), then `Body` chunks, then `End`
/// for each final response.
#[derive(Debug)]
pub enum ResponseEvent<'a> {
    /// A response head: an interim (1xx) one, with no body and no `End`, or the final one.
    Head(ClientResponse<'a>),
    /// Some body bytes (never empty).
    Body(&'a [u8]),
    /// The end of the final response's body.
    End,
}

/// What one call to [`ResponseDecoder::decode`] produced.
#[derive(Debug)]
pub struct ResponseDecoded<'a> {
    /// Bytes of the input the caller must now discard.
    pub consumed: usize,
    /// The event, or `None`: discard `consumed` bytes, then call again with more input.
    pub event: Option<ResponseEvent<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Body,
    End,
    /// After 101, or 2xx to CONNECT: the rest belongs to another protocol.
    Switched,
}

/// Decodes a stream of HTTP/1.1 responses (the client's side).
///
/// Whether a response has a body depends on its request (RFC 9112 §6.3): tell the decoder
/// with [`request_method`](ResponseDecoder::request_method) before each response to HEAD or
/// CONNECT. Responses to HEAD, 1xx, 204 and 304 have no body; a body with neither length nor
/// chunked coding runs until the connection closes, and [`eof`](ResponseDecoder::eof) ends
/// it. After `101 Switching Protocols`, or a 2xx to CONNECT, the decoder stops: the rest of
/// the bytes belong to the new protocol ([`is_switched`](ResponseDecoder::is_switched)).
///
/// # Examples
/// ```
/// use codec_http::{ResponseDecoder, ResponseEvent};
///
/// let mut dec = ResponseDecoder::new();
/// let mut buf: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
///                        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
/// let mut got = Vec::new();
/// loop {
///     let d = dec.decode(buf).unwrap();
///     match d.event {
///         Some(ResponseEvent::Head(h)) => got.push(h.status().to_string()),
///         Some(ResponseEvent::Body(b)) => got.push(String::from_utf8_lossy(b).into_owned()),
///         Some(ResponseEvent::End) => break,
///         None => unreachable!("the whole response is in the buffer"),
///     }
///     buf = &buf[d.consumed..];
/// }
/// assert_eq!(got, ["100", "200", "hi"]);
/// ```
#[derive(Debug)]
pub struct ResponseDecoder {
    limits: Limits,
    state: State,
    scan: HeadScanner,
    parts: ResponseParts,
    body: BodyDecoder,
    head_request: bool,
    connect_request: bool,
    error: Option<Error>,
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> ResponseDecoder {
        Self::with_limits(Limits::default())
    }

    /// A decoder with custom limits.
    pub fn with_limits(limits: Limits) -> ResponseDecoder {
        ResponseDecoder {
            limits,
            state: State::Head,
            scan: HeadScanner::default(),
            parts: ResponseParts::default(),
            body: BodyDecoder::new(),
            head_request: false,
            connect_request: false,
            error: None,
        }
    }

    /// Says which method the next response answers (`HEAD` and `CONNECT` change its
    /// framing). It applies until that response's `End`.
    pub fn request_method(&mut self, method: &[u8]) {
        self.head_request = method == b"HEAD";
        self.connect_request = method == b"CONNECT";
    }

    /// Whether the connection switched protocols (101, or 2xx to CONNECT): the bytes after the
    /// last head are not HTTP/1.1.
    pub fn is_switched(&self) -> bool {
        self.state == State::Switched
    }

    /// Whether the decoder is between responses with nothing of the next one seen yet.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && !self.scan.started() && self.error.is_none()
    }

    /// The trailer fields of the last chunked response body, readable after its `End`.
    pub fn trailers(&self) -> Trailers<'_> {
        self.body.trailers()
    }

    /// Decodes the next event from `buf`.
    ///
    /// # Errors
    /// A malformed or over-limit response. The error is sticky.
    pub fn decode<'b>(&'b mut self, buf: &'b [u8]) -> Result<ResponseDecoded<'b>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let step = match self.step(buf) {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return Err(e);
            }
        };
        Ok(match step {
            Step::NeedMore(consumed) => ResponseDecoded {
                consumed,
                event: None,
            },
            Step::Head { skip, end } => ResponseDecoded {
                consumed: end,
                event: Some(ResponseEvent::Head(ClientResponse {
                    raw: &buf[skip..end],
                    parts: &self.parts,
                })),
            },
            Step::Body {
                start,
                end,
                consumed,
            } => ResponseDecoded {
                consumed,
                event: Some(ResponseEvent::Body(&buf[start..end])),
            },
            Step::End(consumed) => ResponseDecoded {
                consumed,
                event: Some(ResponseEvent::End),
            },
        })
    }

    fn step(&mut self, buf: &[u8]) -> Result<Step, Error> {
        match self.state {
            State::Head => {
                let (parts, limits) = (&mut self.parts, &self.limits);
                let mut framing = Framing::Length(0);
                let found = self.scan.read(buf, limits, false, &mut |raw| {
                    let r = parse_response(parts, limits, raw)?;
                    if let Some((n, f)) = r {
                        framing = f;
                        return Ok(Some(n));
                    }
                    Ok(None)
                })?;
                let (skip, end) = match found {
                    HeadStep::NeedMore(n) => return Ok(Step::NeedMore(n)),
                    HeadStep::Done { skip, end } => (skip, end),
                };
                let status = self.parts.status;
                if status == 101 || (self.connect_request && (200..300).contains(&status)) {
                    self.state = State::Switched;
                } else if status >= 200 {
                    let bodiless = self.head_request || status == 204 || status == 304;
                    match framing {
                        _ if bodiless => self.body.start_empty(),
                        Framing::Length(n) => self.body.start_length(n),
                        Framing::Chunked => self.body.start_chunked(),
                        Framing::CloseDelimited => self.body.start_close(),
                    }
                    if self.body.is_close_delimited() {
                        self.parts.keep_alive = false;
                    }
                    self.state = if bodiless || framing == Framing::Length(0) {
                        State::End
                    } else {
                        State::Body
                    };
                }
                Ok(Step::Head { skip, end })
            }
            State::Body => match self.body.step(buf, &self.limits)? {
                BodyStep::NeedMore(n) => Ok(Step::NeedMore(n)),
                BodyStep::Data {
                    start,
                    end,
                    consumed,
                } => Ok(Step::Body {
                    start,
                    end,
                    consumed,
                }),
                BodyStep::End(n) => {
                    self.finish();
                    Ok(Step::End(n))
                }
            },
            State::End => {
                self.finish();
                Ok(Step::End(0))
            }
            State::Switched => Ok(Step::NeedMore(0)),
        }
    }

    fn finish(&mut self) {
        self.state = State::Head;
        self.head_request = false;
        self.connect_request = false;
    }

    /// Tells the decoder the connection closed; `rest` is what the caller still holds
    /// undiscarded. Returns `End` if that ends a close-delimited body.
    ///
    /// # Errors
    /// [`ErrorKind::UnexpectedEof`] if the stream ended inside a response.
    pub fn eof(&mut self, rest: &[u8]) -> Result<Option<ResponseEvent<'static>>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::Body if self.body.is_close_delimited() && rest.is_empty() => {
                self.finish();
                return Ok(Some(ResponseEvent::End));
            }
            State::Head if !self.scan.started() && rest.is_empty() => return Ok(None),
            State::Switched => return Ok(None),
            _ => {}
        }
        let e = Error::new(ErrorKind::UnexpectedEof);
        self.error = Some(e);
        Err(e)
    }
}

enum Step {
    NeedMore(usize),
    Head {
        skip: usize,
        end: usize,
    },
    Body {
        start: usize,
        end: usize,
        consumed: usize,
    },
    End(usize),
}

/// Parses a response head at the start of `raw` into `parts`; returns its length and how its
/// body is framed (before HEAD, 1xx, 204 and 304 are taken into account).
fn parse_response(
    parts: &mut ResponseParts,
    limits: &Limits,
    raw: &[u8],
) -> Result<Option<(usize, Framing)>, Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let max = limits.max_headers.min(HEADER_SLOTS);
    let mut res = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let n = match config.parse_response_with_uninit_headers(&mut res, raw, &mut slots[..max]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_httparse_error(e, raw, false)),
    };
    let raw = &raw[..n];
    let (Some(minor), Some(status), Some(reason)) = (res.version, res.code, res.reason) else {
        return Err(ErrorKind::InvalidStatus.into());
    };
    if status < 100 {
        return Err(ErrorKind::InvalidStatus.into());
    }
    check_head_end(raw)?;
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    parts.status = status;
    parts.reason = Span::of(raw, reason.as_bytes());
    parts.version = version;
    parts.headers.clear();
    let mut fields = Fields::default();
    let mut crlf = true;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let name_span = Span::of(raw, name);
        crlf &= crlf_before(raw, name_span.start());
        parts.headers.push((name_span, Span::of(raw, h.value)));
        fields.see(name, h.value)?;
    }
    if !crlf {
        return Err(ErrorKind::BareLf.into());
    }
    let mut keep_alive = match version {
        Version::Http11 => !fields.conn_close,
        Version::Http10 => fields.conn_keep_alive && !fields.conn_close,
    };
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and then the connection
    // closes after the response; a coding list not ending in chunked runs until close.
    let framing = match (fields.coding, fields.content_length) {
        (Some(_), _) if version == Version::Http10 => {
            return Err(ErrorKind::TransferEncodingInHttp10.into());
        }
        (Some(Coding::Chunked), cl) => {
            keep_alive &= cl.is_none();
            Framing::Chunked
        }
        (Some(Coding::Unknown), _) => return Err(ErrorKind::UnknownTransferCoding.into()),
        (Some(Coding::NotChunked), _) => Framing::CloseDelimited,
        (None, Some(n)) => {
            if limits.max_body.is_some_and(|max| n > max) {
                return Err(ErrorKind::BodyTooLarge.into());
            }
            Framing::Length(n)
        }
        (None, None) => Framing::CloseDelimited,
    };
    parts.keep_alive = keep_alive;
    Ok(Some((n, framing)))
}

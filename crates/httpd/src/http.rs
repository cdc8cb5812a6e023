//! HTTP over codec-chain: codec-http's decoder and encoder as the chain's `Decoder` and
//! `Encoder`, the `Request` the app reads and the `Head` it writes, and [`serve`], which runs
//! an app on one connection and answers malformed requests itself.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use codec_chain::{Buffer, Decoder, Encoder, ReadHalf, WriteHalf, chain, wrap_stream};
use codec_http::{
    DATE_LEN, DateCache, ErrorKind, Event, Framing, RequestDecoder, RequestHead, RequestParts,
    ResponseEncoder, ResponseHead, Version,
};
use futures_io::{AsyncRead, AsyncWrite};

/// The app's reader: decoded [`Item`]s.
pub type Reader<S = uvlite::TcpStream> = codec_chain::Reader<S, HttpDecoder>;
/// The app's writer: [`Head`]s and body bytes.
pub type Writer<S = uvlite::TcpStream> = codec_chain::Writer<S, HttpEncoder>;

/// What the app reads: a request head, body chunks, and the end of each request's body.
#[derive(Debug)]
pub enum Item {
    /// A request head (the seed's `req`).
    Head(Request),
    /// Some body bytes (never empty).
    Body(Chunk),
    /// The end of the current request's body (the seed's `""`).
    End,
}

/// Most buffers kept per thread for reuse by requests and body chunks.
const POOL_MAX: usize = 256;

thread_local! {
    static BYTES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static PARTS: RefCell<Vec<RequestParts>> = const { RefCell::new(Vec::new()) };
}

fn take_bytes() -> Vec<u8> {
    BYTES.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

fn give_bytes(mut v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > 64 * 1024 {
        return;
    }
    v.clear();
    BYTES.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(v);
        }
    });
}

/// A request head, owned: its bytes are copied out of the read buffer into a pooled buffer,
/// so the app can keep it while it reads the body. Steady state allocates nothing.
pub struct Request {
    raw: Vec<u8>,
    parts: RequestParts,
}

impl Request {
    fn from_head(head: &RequestHead<'_>) -> Request {
        let mut raw = take_bytes();
        raw.extend_from_slice(head.raw());
        let mut parts = PARTS.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        parts.clone_from(head.parts());
        Request { raw, parts }
    }

    /// The codec's view of the head (every accessor of [`RequestHead`]).
    pub fn head(&self) -> RequestHead<'_> {
        self.parts.view(&self.raw)
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.head().method()
    }

    /// The request target as sent, e.g. `/a?b=c` (the seed's `req.path`).
    pub fn path(&self) -> &str {
        self.head().path()
    }

    /// The request target's bytes.
    pub fn target(&self) -> &[u8] {
        self.head().target()
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.head().version()
    }

    /// Whether the client keeps the connection open for another request (the seed's
    /// `req.keepAlive`).
    pub fn keep_alive(&self) -> bool {
        self.head().keep_alive()
    }

    /// The header fields in arrival order, case and duplicates kept.
    pub fn headers(&self) -> codec_http::Headers<'_> {
        self.head().headers()
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head().header(name)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        give_bytes(std::mem::take(&mut self.raw));
        let parts = std::mem::take(&mut self.parts);
        PARTS.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_MAX {
                p.push(parts);
            }
        });
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.path())
            .field("version", &self.version())
            .finish()
    }
}

/// Body bytes, in a pooled buffer.
pub struct Chunk(Vec<u8>);

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        give_bytes(std::mem::take(&mut self.0));
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len())
    }
}

/// An HTTP error on a connection.
#[derive(Debug)]
pub enum HttpError {
    /// The request was malformed or over a limit (the server answers it with
    /// `status_hint()` and closes), or the app's response was (a bug: 500).
    Http(codec_http::Error),
    /// The connection failed.
    Io(io::Error),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Http(e) => write!(f, "{e} ({})", e.status_hint()),
            HttpError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

impl From<codec_http::Error> for HttpError {
    fn from(e: codec_http::Error) -> Self {
        HttpError::Http(e)
    }
}

/// What the decoder tells the encoder about the request being answered.
#[derive(Debug, Default)]
struct Exchange {
    keep_alive: Cell<bool>,
    head_request: Cell<bool>,
    /// The request failed to decode; the server answers it.
    decode_error: Cell<Option<codec_http::Error>>,
    /// A response head was written and its body is not finished.
    in_body: Cell<bool>,
    /// Body bytes of the current response are dropped (a HEAD request).
    discard: Cell<bool>,
    /// Responses started on this connection.
    responses: Cell<u64>,
    /// Requests decoded on this connection.
    requests: Cell<u64>,
}

/// A new decoder and encoder sharing what they know about the current request.
pub fn codec() -> (HttpDecoder, HttpEncoder) {
    let exchange = Rc::new(Exchange::default());
    (
        HttpDecoder {
            inner: RequestDecoder::new(),
            exchange: exchange.clone(),
        },
        HttpEncoder {
            inner: ResponseEncoder::new(),
            exchange,
        },
    )
}

/// codec-http's request decoder as a chain [`Decoder`].
pub struct HttpDecoder {
    inner: RequestDecoder,
    exchange: Rc<Exchange>,
}

impl Decoder for HttpDecoder {
    type Item = Item;
    type Error = HttpError;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Item>, HttpError> {
        // codec-http pauses after an Upgrade or CONNECT request; httpd switches to no other
        // protocol, so it declines and goes on reading HTTP/1.1.
        self.inner.resume();
        let decoded = match self.inner.decode(src.as_slice()) {
            Ok(d) => d,
            Err(e) => {
                self.exchange.decode_error.set(Some(e));
                return Err(e.into());
            }
        };
        let consumed = decoded.consumed;
        let item = match decoded.event {
            None => None,
            Some(Event::Head(head)) => {
                let ex = &self.exchange;
                ex.keep_alive.set(head.keep_alive());
                ex.head_request.set(head.method() == "HEAD");
                ex.requests.set(ex.requests.get() + 1);
                Some(Item::Head(Request::from_head(&head)))
            }
            Some(Event::Body(bytes)) => {
                let mut v = take_bytes();
                v.extend_from_slice(bytes);
                Some(Item::Body(Chunk(v)))
            }
            Some(Event::End) => Some(Item::End),
        };
        src.consume(consumed);
        Ok(item)
    }

    fn decode_eof(&mut self, src: &mut Buffer) -> Result<Option<Item>, HttpError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        self.inner.eof(src.as_slice())?;
        Ok(None)
    }
}

/// Most header fields a [`Head`] holds without allocating.
const INLINE_HEADERS: usize = 16;

/// A header value: bytes, or a number formatted when the head is encoded.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// Bytes as given.
    Bytes(&'a [u8]),
    /// A decimal number.
    Num(u64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Bytes(s.as_bytes())
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(s: &'a [u8]) -> Self {
        Value::Bytes(s)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Value<'a> {
    fn from(s: &'a [u8; N]) -> Self {
        Value::Bytes(s)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Bytes(s.as_bytes())
    }
}
impl From<usize> for Value<'_> {
    fn from(n: usize) -> Self {
        Value::Num(n as u64)
    }
}
impl From<u64> for Value<'_> {
    fn from(n: u64) -> Self {
        Value::Num(n)
    }
}

/// A response head, built like the seed's `{ code = 200, {"Server", "Luvit"}, ... }` table.
///
/// `Content-Length` and `Transfer-Encoding: chunked` given as headers set the framing; with
/// neither, a body is sent chunked (or, to an HTTP/1.0 client, until the connection closes).
/// `Date` is added, and `Connection: close` when the connection will close after this
/// response. Up to 16 fields are held without allocating.
#[derive(Clone, Debug)]
pub struct Head<'a> {
    /// Status code.
    pub status: u16,
    inline: [(&'a str, Value<'a>); INLINE_HEADERS],
    len: usize,
    extra: Vec<(&'a str, Value<'a>)>,
    framing: Option<Framing>,
    close: bool,
}

impl<'a> Head<'a> {
    /// A head with status `status` and no fields yet.
    pub fn new(status: u16) -> Head<'a> {
        Head {
            status,
            inline: [("", Value::Num(0)); INLINE_HEADERS],
            len: 0,
            extra: Vec::new(),
            framing: None,
            close: false,
        }
    }

    /// Adds a field (`head[#head + 1] = {name, value}`).
    pub fn header(&mut self, name: &'a str, value: impl Into<Value<'a>>) -> &mut Self {
        let value = value.into();
        if name.eq_ignore_ascii_case("content-length") {
            if let Some(n) = value_number(value) {
                self.framing = Some(Framing::Length(n));
                return self;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if let Value::Bytes(b) = value
                && b.eq_ignore_ascii_case(b"chunked")
            {
                self.framing = Some(Framing::Chunked);
                return self;
            }
        } else if name.eq_ignore_ascii_case("connection")
            && let Value::Bytes(b) = value
        {
            self.close |= b.eq_ignore_ascii_case(b"close");
        }
        if self.len < INLINE_HEADERS {
            self.inline[self.len] = (name, value);
            self.len += 1;
        } else {
            self.extra.push((name, value));
        }
        self
    }

    /// Sets `Content-Length`.
    pub fn content_length(&mut self, n: usize) -> &mut Self {
        self.framing = Some(Framing::Length(n as u64));
        self
    }

    fn fields(&self) -> impl Iterator<Item = &(&'a str, Value<'a>)> {
        self.inline[..self.len].iter().chain(self.extra.iter())
    }

    fn has(&self, name: &str) -> bool {
        self.fields().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

fn value_number(v: Value<'_>) -> Option<u64> {
    match v {
        Value::Num(n) => Some(n),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

/// The end of a response body (the seed's `write("")`); needed only for chunked bodies.
#[derive(Clone, Copy, Debug)]
pub struct End;

/// codec-http's response encoder as a chain [`Encoder`].
pub struct HttpEncoder {
    inner: ResponseEncoder,
    exchange: Rc<Exchange>,
}

impl HttpEncoder {
    /// Whether the connection will close after the current response (the client asked for
    /// it, or the response said so).
    pub fn closing(&self) -> bool {
        !self.exchange.keep_alive.get()
    }

    fn encode_head(&mut self, head: &Head<'_>, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let ex = self.exchange.clone();
        if ex.in_body.get() {
            return Err(codec_http::Error::from(ErrorKind::InvalidState).into());
        }
        if head.close {
            ex.keep_alive.set(false);
        }
        let framing = match head.framing {
            Some(f) => f,
            None if ex.keep_alive.get() && ex.head_request.get() => Framing::Length(0),
            None if ex.keep_alive.get() => Framing::Chunked,
            None => Framing::CloseDelimited,
        };
        let add_close = !ex.keep_alive.get() && !head.has("connection");
        self.inner.head_request(ex.head_request.get());
        if head.extra.is_empty() {
            // The common case: every field fits inline, numbers are formatted on the stack.
            let mut nums = [itoa::Buffer::new(); INLINE_HEADERS];
            let mut list: [(&str, &[u8]); INLINE_HEADERS + 1] = [("", &[]); INLINE_HEADERS + 1];
            let mut n = 0;
            for ((slot, num), (name, value)) in list
                .iter_mut()
                .zip(nums.iter_mut())
                .zip(head.inline[..head.len].iter())
            {
                *slot = (*name, value_bytes(*value, num));
                n += 1;
            }
            if add_close {
                list[n] = ("Connection", b"close");
                n += 1;
            }
            self.write_head(head.status, &list[..n], framing, dst)?;
        } else {
            let values: Vec<Vec<u8>> = head
                .fields()
                .map(|(_, v)| match v {
                    Value::Bytes(b) => b.to_vec(),
                    Value::Num(n) => n.to_string().into_bytes(),
                })
                .collect();
            let mut list: Vec<(&str, &[u8])> = head
                .fields()
                .zip(&values)
                .map(|((name, _), v)| (*name, v.as_slice()))
                .collect();
            if add_close {
                list.push(("Connection", b"close"));
            }
            self.write_head(head.status, &list, framing, dst)?;
        }
        if head.status >= 200 {
            ex.responses.set(ex.responses.get() + 1);
            ex.discard.set(ex.head_request.get());
            if self.inner.is_complete() {
                self.inner.end(dst)?;
            } else {
                ex.in_body.set(true);
            }
        }
        Ok(())
    }

    fn write_head(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        framing: Framing,
        dst: &mut Vec<u8>,
    ) -> Result<(), HttpError> {
        let head = ResponseHead {
            status,
            reason: None,
            headers,
            framing,
        };
        with_date(|date| self.inner.head(&head, Some(date), dst))?;
        Ok(())
    }

    fn encode_body(&mut self, bytes: &[u8], dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let ex = self.exchange.clone();
        if !ex.in_body.get() {
            if ex.discard.get() || bytes.is_empty() {
                return Ok(());
            }
            return Err(codec_http::Error::from(ErrorKind::InvalidState).into());
        }
        self.inner.body(bytes, dst)?;
        if self.inner.is_complete() {
            self.inner.end(dst)?;
            ex.in_body.set(false);
        }
        Ok(())
    }
}

fn value_bytes<'v>(value: Value<'v>, num: &'v mut itoa::Buffer) -> &'v [u8] {
    match value {
        Value::Bytes(b) => b,
        Value::Num(n) => num.format(n).as_bytes(),
    }
}

impl Encoder<&Head<'_>> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, head: &Head<'_>, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_head(head, dst)
    }
}

impl Encoder<&[u8]> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, bytes: &[u8], dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_body(bytes, dst)
    }
}

impl<const N: usize> Encoder<&[u8; N]> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, bytes: &[u8; N], dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_body(bytes, dst)
    }
}

impl Encoder<&str> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, s: &str, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_body(s.as_bytes(), dst)
    }
}

impl Encoder<&Vec<u8>> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, bytes: &Vec<u8>, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        self.encode_body(bytes, dst)
    }
}

impl Encoder<End> for HttpEncoder {
    type Error = HttpError;
    fn encode(&mut self, _: End, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        if self.exchange.in_body.replace(false) {
            self.inner.end(dst)?;
        }
        Ok(())
    }
}

struct DateState {
    next_tick: Instant,
    cache: DateCache,
}

thread_local! {
    static DATE: RefCell<Option<DateState>> = const { RefCell::new(None) };
}

/// Runs `f` with the current `Date` value, reformatted at most once a second (the loop's
/// cached time decides when, so this costs a comparison per response).
pub fn with_date<R>(f: impl FnOnce(&[u8; DATE_LEN]) -> R) -> R {
    let now = uvlite::now();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        let stale = d.as_ref().is_none_or(|s| now >= s.next_tick);
        if stale {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let next_tick =
                now + Duration::from_nanos(1_000_000_000 - u64::from(wall.subsec_nanos()));
            match d.as_mut() {
                Some(s) => {
                    s.cache.update(wall.as_secs());
                    s.next_tick = next_tick;
                }
                None => {
                    *d = Some(DateState {
                        next_tick,
                        cache: DateCache::new(wall.as_secs()),
                    })
                }
            }
        }
        f(d.as_ref().expect("set above").cache.get())
    })
}

/// Runs `app` on one connection: the seed's
/// `chain(httpServer.decoder, app, httpServer.encoder)(wrapStream(socket))`.
///
/// A request that fails to decode is answered here, with its status (400, 413, 414, 431, 501
/// or 505) and `Connection: close`, when the app had not started a response; then the
/// connection closes. An app error or panic ends this connection only.
///
/// # Errors
/// The pipeline's error: the app's, a stream failure, or a panic.
pub async fn serve<S, A, F>(stream: S, app: A) -> Result<(), codec_chain::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: FnOnce(Reader<S>, Writer<S>) -> F,
    F: Future<Output = Result<(), HttpError>>,
{
    let (read, write): (ReadHalf<S>, WriteHalf<S>) = wrap_stream(stream);
    let mut errors = write.clone();
    let (decoder, encoder) = codec();
    let exchange = decoder.exchange.clone();
    chain(
        decoder,
        move |r, w| async move {
            let res = app(r, w).await;
            let Some(e) = exchange.decode_error.get() else {
                return res;
            };
            if e.kind() != ErrorKind::UnexpectedEof && !exchange.in_body.get() {
                let status = e.status_hint();
                let mut enc = ResponseEncoder::new();
                let body = codec_http::reason(status).unwrap_or("Error");
                errors.queue(|out| {
                    let head = ResponseHead::new(
                        status,
                        &[("Content-Type", b"text/plain"), ("Connection", b"close")],
                        Framing::Length(body.len() as u64 + 1),
                    );
                    with_date(|date| enc.head(&head, Some(date), out))?;
                    enc.body(body.as_bytes(), out)?;
                    enc.body(b"\n", out)?;
                    enc.end(out)
                })??;
            }
            Ok(())
        },
        encoder,
    )(read, write)
    .await
}

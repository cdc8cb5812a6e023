//! HTTP over codec-chain: codec-http's decoder and encoder as the chain's `Decoder` and
//! `Encoder`, the [`Request`] the app reads and the [`Head`] it writes, and [`serve`], which
//! runs an app on one connection, applies the connection policy (keep-alive, `100 Continue`,
//! HEAD, limits, deadlines, draining) and answers requests that cannot be read.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use codec_chain::{
    Buffer, Clock, Config, Decoder, Encoder, Handle, Phase, Pipeline, Then, Timeouts, Timer,
    WriteHalf, chain, wrap_stream_with,
};
use codec_http::{
    BodyKind, DATE_LEN, DateCache, ErrorKind, Event, Framing, Limits, RequestDecoder, RequestHead,
    RequestParts, ResponseEncoder, ResponseHead, Version,
};
use futures_io::{AsyncRead, AsyncWrite};

pub use codec_http::HeaderBlock;

use crate::log;
use crate::pool::Pool;

/// The app's reader: decoded [`Item`]s.
pub type Reader<S = uvlite::TcpStream> = codec_chain::Reader<S, HttpDecoder<S>>;
/// The app's writer: [`Head`]s and body bytes.
pub type Writer<S = uvlite::TcpStream> = codec_chain::Writer<S, HttpEncoder>;

/// Largest request body a buffering app accepts by default (1 MiB): more gets 413.
pub const MAX_BODY: u64 = 1024 * 1024;

/// Most bytes of a request body the app did not read that the server reads and drops to
/// keep the connection; a larger remainder closes the connection instead.
pub const DRAIN_MAX: u64 = 64 * 1024;

/// How long a connection that is idle when draining starts may stay idle before it is
/// closed (it gets its next answer with `Connection: close` if a request comes first).
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// Idle time left, when draining, to a connection whose response announced keep-alive before
/// the drain began (at least what is left of the drain's own grace).
pub const AFTER_RESPONSE_GRACE: Duration = Duration::from_millis(500);

/// Connection settings shared by every connection of a server.
#[derive(Clone)]
pub struct Settings {
    /// Head, field, target limits (431, 414); the decoder's own body limit stays off:
    /// streaming apps see bodies of any size.
    pub limits: Limits,
    /// Largest body a buffering app ([`crate::handler`], `echo`) reads ([`MAX_BODY`], 413).
    pub max_body: u64,
    /// Requests per connection before it closes (`None`: no limit).
    pub max_requests: Option<u64>,
    /// Deadlines of each phase of a connection.
    pub timeouts: Timeouts,
    /// Queued output above which the app's writes wait (and reading stops).
    pub high_water: usize,
    /// Idle time a connection keeps once draining starts ([`DRAIN_IDLE`]).
    pub drain_idle: Duration,
    /// Time and timers for the deadlines; `None` disables them.
    pub clock: Option<Rc<dyn Clock>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            limits: Limits::default(),
            max_body: MAX_BODY,
            max_requests: None,
            timeouts: Timeouts::default(),
            high_water: codec_chain::HIGH_WATER,
            drain_idle: DRAIN_IDLE,
            clock: None,
        }
    }
}

impl Settings {
    /// These settings with deadlines on uvlite's loop (the clock of every httpd worker).
    pub fn with_uvlite_clock(mut self) -> Settings {
        self.clock = Some(Rc::new(UvClock));
        self
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("limits", &self.limits)
            .field("max_body", &self.max_body)
            .field("max_requests", &self.max_requests)
            .field("timeouts", &self.timeouts)
            .field("high_water", &self.high_water)
            .field("drain_idle", &self.drain_idle)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

/// uvlite's loop as codec-chain's clock: the per-turn cached time and resettable timers.
#[derive(Debug, Clone, Copy)]
pub struct UvClock;

struct UvTimer(uvlite::Sleep);

impl Clock for UvClock {
    fn now(&self) -> Instant {
        uvlite::now()
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(UvTimer(uvlite::Sleep::new(deadline)))
    }
}

impl Timer for UvTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.reset(deadline);
    }

    fn deadline(&self) -> Instant {
        self.0.deadline()
    }

    fn poll_fire(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

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
    /// The storage of dropped requests: head bytes and offsets, reused together (boxed: a
    /// `Request` hands its box over as it is).
    #[allow(clippy::vec_box)]
    static HEADS: RefCell<Vec<Box<RequestData>>> = const { RefCell::new(Vec::new()) };
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

/// A request head, owned: its bytes are copied out of the read buffer into pooled storage,
/// so the app can keep it while it reads the body. Steady state allocates nothing.
///
/// A `Request` is one pointer to its storage, a [`RequestData`] whose fields and methods it
/// offers through `Deref`: an app's future that holds a request, or the [`Item`] it came in,
/// stays small for as long as the connection lives.
pub struct Request {
    /// `None` only once the storage went back to the pool (in `drop`).
    data: Option<Box<RequestData>>,
}

/// The storage of a [`Request`]: the head's bytes and offsets, and what an app buffered.
pub struct RequestData {
    raw: Vec<u8>,
    parts: RequestParts,
    /// The body, when an app buffered it (see [`RequestReader::read_body`]).
    pub body: Vec<u8>,
    /// Trailer fields after a chunked body, when an app buffered it (see
    /// [`crate::handler::Handler`]).
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Request {
    fn from_head(head: &RequestHead<'_>) -> Request {
        let mut data = HEADS.with(|p| p.borrow_mut().pop()).unwrap_or_else(|| {
            Box::new(RequestData {
                raw: Vec::new(),
                parts: RequestParts::default(),
                body: Vec::new(),
                trailers: Vec::new(),
            })
        });
        data.raw.clear();
        data.raw.extend_from_slice(head.raw());
        data.parts.clone_from(head.parts());
        Request { data: Some(data) }
    }
}

impl std::ops::Deref for Request {
    type Target = RequestData;

    #[inline]
    fn deref(&self) -> &RequestData {
        self.data
            .as_deref()
            .expect("a request has its storage until dropped")
    }
}

impl std::ops::DerefMut for Request {
    #[inline]
    fn deref_mut(&mut self) -> &mut RequestData {
        self.data
            .as_deref_mut()
            .expect("a request has its storage until dropped")
    }
}

impl RequestData {
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
        let Some(mut data) = self.data.take() else {
            return;
        };
        if data.body.capacity() > 0 {
            give_bytes(std::mem::take(&mut data.body));
        }
        if data.raw.capacity() <= 64 * 1024 {
            data.trailers = Vec::new();
            HEADS.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL_MAX {
                    p.push(data);
                }
            });
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Debug for RequestData {
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
    /// The connection failed or timed out.
    Io(io::Error),
    /// The server refuses the request with this status (e.g. 501 for CONNECT: this server
    /// is not a proxy), answers it and closes.
    Refused(u16),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Http(e) => write!(f, "{e} ({})", e.status_hint()),
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::Refused(status) => write!(f, "request refused with {status}"),
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

/// One connection's state, shared by its decoder, its encoder and the server's registry.
pub(crate) struct Exchange {
    /// The current response may leave the connection open.
    keep_alive: Cell<bool>,
    /// The current request is the client's last: it said `Connection: close` (or is an
    /// HTTP/1.0 request without keep-alive), and it asks for no protocol switch.
    client_done: Cell<bool>,
    version: Cell<Version>,
    head_request: Cell<bool>,
    /// The request expects `100 Continue` and it has not been sent.
    expect_continue: Cell<bool>,
    /// `100 Continue` went out for the current request.
    continue_sent: Cell<bool>,
    /// The decoder produced the End of the current request.
    body_done: Cell<bool>,
    /// Body bytes of the current request not yet read, when known.
    body_left: Cell<Option<u64>>,
    /// The request failed to decode; the server answers it.
    decode_error: Cell<Option<codec_http::Error>>,
    /// The server refused the request with this status; it answers it.
    refused: Cell<Option<u16>>,
    /// A response head was written and its body is not finished.
    in_body: Cell<bool>,
    /// Body bytes of the current response are dropped (a HEAD request).
    discard: Cell<bool>,
    /// The final response to the current request is complete.
    answered: Cell<bool>,
    /// Requests decoded on this connection.
    requests: Cell<u64>,
    /// The server wants this connection closed after its current or next response.
    closing: Cell<bool>,
    /// When draining began, the deadline for idle waits it set.
    drain_until: Cell<Option<Instant>>,
    handle: Handle,
    peer: Option<SocketAddr>,
    /// What the access log needs, when it is on (boxed: most servers do not log).
    log: Option<Box<LogState>>,
}

/// The access log's view of the current request.
struct LogState {
    /// The request line.
    request_line: RefCell<Vec<u8>>,
    status: Cell<u16>,
    /// Body bytes of the current response.
    sent_body: Cell<u64>,
}

impl Exchange {
    pub(crate) fn new(handle: Handle, peer: Option<SocketAddr>) -> Exchange {
        Exchange {
            keep_alive: Cell::new(true),
            client_done: Cell::new(false),
            version: Cell::new(Version::Http11),
            head_request: Cell::new(false),
            expect_continue: Cell::new(false),
            continue_sent: Cell::new(false),
            body_done: Cell::new(true),
            body_left: Cell::new(Some(0)),
            decode_error: Cell::new(None),
            refused: Cell::new(None),
            in_body: Cell::new(false),
            discard: Cell::new(false),
            answered: Cell::new(true),
            requests: Cell::new(0),
            closing: Cell::new(false),
            drain_until: Cell::new(None),
            handle,
            peer,
            log: log::enabled().then(|| {
                Box::new(LogState {
                    request_line: RefCell::new(Vec::new()),
                    status: Cell::new(0),
                    sent_body: Cell::new(0),
                })
            }),
        }
    }

    /// The peer's address, when known.
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Starts draining: the next response says `Connection: close`, and an idle connection
    /// closes once `grace` has passed without a request.
    pub(crate) fn drain(&self, idle_deadline: Instant) {
        self.closing.set(true);
        self.drain_until.set(Some(idle_deadline));
        if self.answered.get() {
            self.handle.idle_until(idle_deadline);
        }
    }

    fn begin(&self, head: &RequestHead<'_>, max_requests: Option<u64>) {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        if max_requests.is_some_and(|max| n >= max) {
            self.closing.set(true);
        }
        self.keep_alive.set(head.keep_alive());
        self.client_done
            .set(!head.keep_alive() && !head.is_upgrade() && !head.is_connect());
        self.version.set(head.version());
        // The head starts with its request line: no text conversion needed.
        self.head_request.set(head.raw().starts_with(b"HEAD "));
        let body = head.body_kind();
        self.body_done.set(false);
        self.body_left.set(match body {
            BodyKind::Empty => Some(0),
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked => None,
        });
        self.expect_continue
            .set(head.expect_continue() && body != BodyKind::Empty);
        self.continue_sent.set(false);
        self.answered.set(false);
        if let Some(log) = &self.log {
            log.sent_body.set(0);
            let mut line = log.request_line.borrow_mut();
            line.clear();
            line.extend_from_slice(head.method().as_bytes());
            line.push(b' ');
            line.extend_from_slice(head.target());
            line.push(b' ');
            line.extend_from_slice(head.version().as_str().as_bytes());
        }
    }

    /// Called when a final response is complete.
    fn finish(&self) {
        self.answered.set(true);
        self.in_body.set(false);
        crate::server::count_request();
        if let Some(log) = &self.log {
            log::record(
                self.peer,
                &log.request_line.borrow(),
                log.status.get(),
                log.sent_body.get(),
            );
        }
        if !self.keep_alive.get() {
            // Read no further request: the reader reports the end at the next boundary.
            self.handle.close_when_idle();
        } else if let Some(until) = self.drain_until.get() {
            // Draining began while this response was on its way with keep-alive announced:
            // a busy client sends its next request at once (and gets it answered with
            // `Connection: close`); a quiet one is closed after a short grace.
            self.handle
                .idle_until(until.max(uvlite::now() + AFTER_RESPONSE_GRACE));
        }
    }
}

/// A new decoder and encoder for one connection, sharing what they know of the current
/// request. `out` is the connection's writing half (the decoder queues `100 Continue` there).
pub fn codec<S: 'static>(
    out: &WriteHalf<S>,
    settings: &Rc<Settings>,
    peer: Option<SocketAddr>,
) -> (HttpDecoder<S>, HttpEncoder) {
    let exchange = Rc::new(Exchange::new(out.handle(), peer));
    (
        HttpDecoder {
            inner: None,
            exchange: exchange.clone(),
            out: out.clone(),
            settings: settings.clone(),
        },
        HttpEncoder {
            inner: ResponseEncoder::new(),
            exchange,
        },
    )
}

thread_local! {
    /// Decoders of this thread's idle connections, given back while they wait (boxed: a
    /// connection keeps one pointer for it).
    static DECODERS: RefCell<Pool<Box<RequestDecoder>>> = const { RefCell::new(Pool::new()) };
}

/// codec-http's request decoder as a chain [`Decoder`].
///
/// A connection holds its codec-http decoder only while it reads a request: when it waits
/// idle for the next one, the decoder goes back to a per-thread pool (see [`Decoder::park`]),
/// so ten thousand idle keep-alive connections do not keep ten thousand decoders.
pub struct HttpDecoder<S> {
    /// `None` while parked: the state of a fresh decoder.
    inner: Option<Box<RequestDecoder>>,
    exchange: Rc<Exchange>,
    out: WriteHalf<S>,
    settings: Rc<Settings>,
}

impl<S> HttpDecoder<S> {
    /// The connection settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn exchange(&self) -> &Rc<Exchange> {
        &self.exchange
    }

    /// The trailer fields of the last chunked body, once its `End` was read (until the next
    /// read).
    pub fn trailers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.inner.iter().flat_map(|d| d.trailers())
    }

    /// Whether the decoder is idle (parked, or between requests with nothing seen).
    fn is_idle(&self) -> bool {
        self.inner.as_ref().is_none_or(|d| d.is_idle())
    }
}

/// A codec-http decoder for a connection with `settings`, from the pool if it has one.
fn take_decoder(settings: &Settings) -> Box<RequestDecoder> {
    let limits = Limits {
        max_body: None,
        ..settings.limits
    };
    // (`try_with`: at thread exit the pool may be gone before the last connection.)
    match DECODERS.try_with(|p| p.borrow_mut().take()).ok().flatten() {
        // The pool serves every server of the thread; their limits may differ.
        Some(mut d) if *d.limits() == limits => {
            d.reset();
            d
        }
        _ => Box::new(RequestDecoder::with_limits(limits)),
    }
}

impl<S> Drop for HttpDecoder<S> {
    fn drop(&mut self) {
        if let Some(d) = self.inner.take() {
            // The next connection takes it (`take_decoder` resets it): cheaper than a fresh
            // decoder and the growth of its header index.
            let _ = DECODERS.try_with(|p| p.borrow_mut().give(d));
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Decoder for HttpDecoder<S> {
    type Item = Item;
    type Error = HttpError;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Item>, HttpError> {
        // codec-http pauses after an Upgrade or CONNECT request; httpd switches to no other
        // protocol, so it declines and goes on reading HTTP/1.1.
        if self.inner.is_none() && src.is_empty() {
            // Parked, and nothing to decode (a `100 Continue` is only owed inside a body).
            return Ok(None);
        }
        let settings = &self.settings;
        let inner = self.inner.get_or_insert_with(|| take_decoder(settings));
        inner.resume();
        let ex = &self.exchange;
        if ex.expect_continue.replace(false) && src.is_empty() && !ex.in_body.get() {
            // The app reads the body of a request that waits for our go-ahead
            // (RFC 9110 §10.1.1): send `100 Continue` now, ahead of the final response.
            self.out
                .queue(|out| out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"))?;
            ex.continue_sent.set(true);
        }
        let decoded = match inner.decode(src.as_slice()) {
            Ok(d) => d,
            Err(e) => {
                ex.decode_error.set(Some(e));
                // An answer to a HEAD request carries no body, even an error's.
                ex.head_request.set(src.as_slice().starts_with(b"HEAD "));
                if let Some(log) = &ex.log
                    && ex.answered.get()
                {
                    // A head that could not be read: log its first line as it came.
                    let bytes = src.as_slice();
                    let end = memchr_line(bytes).min(1024);
                    let mut line = log.request_line.borrow_mut();
                    line.clear();
                    line.extend_from_slice(&bytes[..end]);
                    ex.answered.set(false);
                }
                return Err(e.into());
            }
        };
        let consumed = decoded.consumed;
        let item = match decoded.event {
            None => None,
            Some(Event::Head(head)) => {
                ex.begin(&head, self.settings.max_requests);
                if head.is_connect() {
                    // An origin server does not tunnel (RFC 9110 §9.3.6): refuse, and read
                    // nothing more from this connection.
                    ex.refused.set(Some(501));
                    src.consume(consumed);
                    return Err(HttpError::Refused(501));
                }
                Some(Item::Head(Request::from_head(&head)))
            }
            Some(Event::Body(bytes)) => {
                if let Some(left) = ex.body_left.get() {
                    ex.body_left
                        .set(Some(left.saturating_sub(bytes.len() as u64)));
                }
                let mut v = take_bytes();
                v.extend_from_slice(bytes);
                Some(Item::Body(Chunk(v)))
            }
            Some(Event::End) => {
                ex.body_done.set(true);
                ex.expect_continue.set(false);
                // The client's last request, read whole with nothing after it: the close
                // after the answer need not linger for its EOF (codec-chain's
                // `set_peer_done`; nginx's `lingering_close on` decides the same way).
                self.out
                    .set_peer_done(ex.client_done.get() && consumed == src.len());
                Some(Item::End)
            }
        };
        src.consume(consumed);
        Ok(item)
    }

    fn decode_eof(&mut self, src: &mut Buffer) -> Result<Option<Item>, HttpError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let Some(inner) = self.inner.as_mut() else {
            // Parked: the connection ended between requests.
            return Ok(None);
        };
        if let Err(e) = inner.eof(src.as_slice()) {
            self.exchange.decode_error.set(Some(e));
            return Err(e.into());
        }
        Ok(None)
    }

    fn between_items(&self) -> bool {
        self.is_idle()
    }

    fn needs_bytes(&self) -> bool {
        // Idle between requests: an empty buffer decodes to nothing (and the pending
        // `100 Continue` is only sent inside a body).
        self.is_idle()
    }

    fn park(&mut self) {
        if let Some(d) = self.inner.take_if(|d| d.is_idle()) {
            let _ = DECODERS.try_with(|p| p.borrow_mut().give(d));
        }
    }

    fn in_payload(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|d| !d.is_idle() && !d.in_head())
    }
}

/// The length of the first line of `bytes` (without its line end).
fn memchr_line(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len())
}

/// Reading whole requests and bodies, for apps that do not want item-level control.
#[allow(async_fn_in_trait)] // Readers are !Send by design: one loop per thread.
pub trait RequestReader {
    /// The next request head, after dropping what the app left unread of the previous
    /// request's body (at most [`DRAIN_MAX`] bytes; a larger remainder closed the connection
    /// when the response went out). `None` at the end of the connection.
    ///
    /// # Errors
    /// A malformed request, a timeout or a stream error.
    async fn next_request(&mut self) -> Result<Option<Request>, HttpError>;

    /// Reads the rest of the current request's body into `body`, at most `limit` bytes.
    ///
    /// # Errors
    /// [`ErrorKind::BodyTooLarge`] past `limit` (the server answers 413 and closes), or the
    /// errors of [`next_request`](RequestReader::next_request).
    async fn read_body(&mut self, body: &mut Vec<u8>, limit: u64) -> Result<(), HttpError>;
}

impl<S: AsyncRead + AsyncWrite + Unpin> RequestReader for Reader<S> {
    async fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        loop {
            let ex = self.decoder().exchange();
            if ex.answered.get() && !ex.keep_alive.get() {
                return Ok(None);
            }
            match self.read().await? {
                Some(Item::Head(req)) => return Ok(Some(req)),
                Some(Item::Body(_) | Item::End) => {}
                None => return Ok(None),
            }
        }
    }

    async fn read_body(&mut self, body: &mut Vec<u8>, limit: u64) -> Result<(), HttpError> {
        let ex = self.decoder().exchange().clone();
        if ex.body_done.get() {
            return Ok(());
        }
        if ex.body_left.get().is_some_and(|n| n > limit) {
            // Refuse before reading (and before any `100 Continue`).
            ex.expect_continue.set(false);
            let e = codec_http::Error::from(ErrorKind::BodyTooLarge);
            ex.decode_error.set(Some(e));
            return Err(e.into());
        }
        loop {
            match self.read().await? {
                Some(Item::Body(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        let e = codec_http::Error::from(ErrorKind::BodyTooLarge);
                        ex.decode_error.set(Some(e));
                        return Err(e.into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Some(Item::End) | None => return Ok(()),
                Some(Item::Head(_)) => unreachable!("a head before the end of the body"),
            }
        }
    }
}

/// Most header fields a [`Head`] holds without allocating.
const INLINE_HEADERS: usize = 8;

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
/// `Date` is added; so is `Connection: close` when the connection closes after this response
/// (replacing a `Connection` field the app gave), and `Connection: keep-alive` for an HTTP/1.0
/// client that keeps it. Up to 8 fields are held without allocating, and handed to the encoder
/// as they are. Fields that every response carries can come as a [`HeaderBlock`], checked once
/// (see [`block`](Head::block)).
#[derive(Clone, Debug)]
pub struct Head<'a> {
    /// Status code.
    pub status: u16,
    /// Fields checked once, written before the others.
    block: HeaderBlock<'a>,
    fields: [(&'a str, &'a [u8]); INLINE_HEADERS],
    len: usize,
    /// Fields past the inline ones.
    extra: Vec<(&'a str, &'a [u8])>,
    /// Numeric values, by field index (their bytes are formatted when the head is encoded).
    nums: Vec<(usize, u64)>,
    framing: Option<Framing>,
    close: bool,
}

impl<'a> Head<'a> {
    /// A head with status `status` and no fields yet.
    pub fn new(status: u16) -> Head<'a> {
        Head {
            status,
            block: HeaderBlock::EMPTY,
            fields: [("", b""); INLINE_HEADERS],
            len: 0,
            extra: Vec::new(),
            nums: Vec::new(),
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
        let bytes = match value {
            Value::Bytes(b) => b,
            Value::Num(n) => {
                self.nums.push((self.len + self.extra.len(), n));
                b""
            }
        };
        if self.len < INLINE_HEADERS {
            self.fields[self.len] = (name, bytes);
            self.len += 1;
        } else {
            self.extra.push((name, bytes));
        }
        self
    }

    /// Adds the fields of `block`, written as they are, before those of [`header`](Head::header),
    /// with no check per response (they were checked when the block was made). A head has one
    /// block; a second replaces the first. A block with a `Connection` field is taken field by
    /// field, as [`header`](Head::header) takes them, since the server may replace that field.
    pub fn block(&mut self, block: HeaderBlock<'a>) -> &mut Self {
        if block.has_connection() {
            for (name, value) in block.fields() {
                self.header(name, value);
            }
        } else {
            self.block = block;
        }
        self
    }

    /// Sets `Content-Length`.
    pub fn content_length(&mut self, n: usize) -> &mut Self {
        self.framing = Some(Framing::Length(n as u64));
        self
    }

    fn fields(&self) -> impl Iterator<Item = &(&'a str, &'a [u8])> {
        self.fields[..self.len].iter().chain(self.extra.iter())
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
    /// Whether the connection stays open after the current response.
    pub fn keep_alive(&self) -> bool {
        self.exchange.keep_alive.get()
    }

    fn encode_head(&mut self, head: &Head<'_>, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let ex = self.exchange.clone();
        if ex.in_body.get() {
            return Err(codec_http::Error::from(ErrorKind::InvalidState).into());
        }
        let interim = head.status < 200;
        let framing = match head.framing {
            Some(f) => f,
            None if ex.head_request.get() => Framing::CloseDelimited,
            None if ex.version.get() == Version::Http11 => Framing::Chunked,
            None => Framing::CloseDelimited,
        };
        if !interim {
            // `100 Continue` still owed: the client may hold the body back for ever.
            let expect_unanswered = ex.expect_continue.replace(false);
            let mut keep = ex.keep_alive.get() && !ex.closing.get() && !head.close;
            if framing == Framing::CloseDelimited && !ex.head_request.get() {
                keep = false;
            }
            if !ex.body_done.get() {
                // The app answers before reading the whole body: keep the connection only if
                // the rest is small and on its way.
                let small = ex.body_left.get().is_some_and(|n| n <= DRAIN_MAX);
                keep &= small && !expect_unanswered;
            }
            ex.keep_alive.set(keep);
            if let Some(log) = &ex.log {
                log.status.set(head.status);
            }
        }
        let keep = ex.keep_alive.get();
        let add_close = !interim && !keep;
        let add_keep_alive =
            !interim && keep && ex.version.get() == Version::Http10 && !head.has("connection");
        self.inner.head_request(ex.head_request.get());
        if head.extra.is_empty() && head.nums.is_empty() {
            if !add_close && !add_keep_alive {
                // The common case: the app's fields go to the encoder as they are.
                self.write_head(head, &head.fields[..head.len], framing, dst)?;
            } else {
                // A `Connection` field decided here replaces the app's.
                let mut list: [(&str, &[u8]); INLINE_HEADERS + 1] = [("", b""); INLINE_HEADERS + 1];
                let mut n = 0;
                for field in &head.fields[..head.len] {
                    if add_close && field.0.eq_ignore_ascii_case("connection") {
                        continue;
                    }
                    list[n] = *field;
                    n += 1;
                }
                list[n] = if add_close {
                    ("Connection", b"close")
                } else {
                    ("Connection", b"keep-alive")
                };
                self.write_head(head, &list[..=n], framing, dst)?;
            }
        } else {
            // More than 8 fields, or numbers to format: the slow path.
            let mut values: Vec<Vec<u8>> = head.fields().map(|(_, v)| v.to_vec()).collect();
            for (i, n) in &head.nums {
                values[*i] = n.to_string().into_bytes();
            }
            let mut list: Vec<(&str, &[u8])> = head
                .fields()
                .zip(&values)
                .filter(|((name, _), _)| !(add_close && name.eq_ignore_ascii_case("connection")))
                .map(|((name, _), v)| (*name, v.as_slice()))
                .collect();
            if add_close {
                list.push(("Connection", b"close"));
            } else if add_keep_alive {
                list.push(("Connection", b"keep-alive"));
            }
            self.write_head(head, &list, framing, dst)?;
        }
        if !interim {
            ex.discard.set(ex.head_request.get());
            if self.inner.is_complete() {
                self.inner.end(dst)?;
                ex.finish();
            } else {
                ex.in_body.set(true);
            }
        }
        Ok(())
    }

    /// Writes `head`'s status and block, then `headers` (the head's other fields, with the
    /// server's `Connection`).
    fn write_head(
        &mut self,
        head: &Head<'_>,
        headers: &[(&str, &[u8])],
        framing: Framing,
        dst: &mut Vec<u8>,
    ) -> Result<(), HttpError> {
        let head = ResponseHead::new(head.status, headers, framing).with_block(head.block);
        with_date(|date| self.inner.head(&head, Some(date), dst))?;
        Ok(())
    }

    fn encode_body(&mut self, bytes: &[u8], dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let ex = &self.exchange;
        if !ex.in_body.get() {
            if ex.discard.get() || bytes.is_empty() {
                return Ok(());
            }
            return Err(codec_http::Error::from(ErrorKind::InvalidState).into());
        }
        self.inner.body(bytes, dst)?;
        if let Some(log) = &ex.log
            && !ex.discard.get()
        {
            log.sent_body.set(log.sent_body.get() + bytes.len() as u64);
        }
        if self.inner.is_complete() {
            self.inner.end(dst)?;
            ex.finish();
        }
        Ok(())
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
        if self.exchange.in_body.get() {
            self.inner.end(dst)?;
            self.exchange.finish();
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

/// Runs `app` on one connection with default [`Settings`] (no deadlines without a clock):
/// the seed's `chain(httpServer.decoder, app, httpServer.encoder)(wrapStream(socket))`.
///
/// # Errors
/// As `serve_with`: the pipeline's error (the app's, a stream failure, or a panic).
pub async fn serve<S, A, F>(stream: S, app: A) -> Result<(), codec_chain::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    A: FnOnce(Reader<S>, Writer<S>) -> F,
    F: Future<Output = Result<(), HttpError>>,
{
    let settings = Rc::new(Settings::default());
    let config = stream_config(&settings);
    serve_with(stream, &settings, &config, None, |_| {}, app).await
}

/// The stream tuning of `settings`, made once and shared by the connections that use them.
pub(crate) fn stream_config(settings: &Settings) -> Rc<Config> {
    Rc::new(Config {
        high_water: settings.high_water,
        timeouts: settings.timeouts,
        clock: settings.clock.clone(),
        ..Config::default()
    })
}

/// The pipeline that runs `app` on one connection.
///
/// A request that cannot be read is answered by it when the app had not started a response:
/// its status (400, 413, 414, 431, 501 or 505) or 408 for a head that did not arrive in time,
/// with `Connection: close`; then the connection closes. `register` sees the connection's
/// state first (the server keeps it to drain the connection). An app error or panic ends
/// this connection only.
///
/// The pipeline's error is the app's (other than the client's mistakes and timeouts, which
/// are answered or end the connection quietly), a stream failure, or a panic.
///
/// (A plain function returning the pipeline, not an `async fn`: the connection's task holds
/// the pipeline alone, without a second copy of the arguments.)
pub(crate) fn serve_with<S, A, F>(
    stream: S,
    settings: &Rc<Settings>,
    config: &Rc<Config>,
    peer: Option<SocketAddr>,
    register: impl FnOnce(&Rc<Exchange>),
    app: A,
) -> Pipeline<S, F, Answer<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    A: FnOnce(Reader<S>, Writer<S>) -> F,
    F: Future<Output = Result<(), HttpError>>,
{
    let (read, write) = wrap_stream_with(stream, config.clone());
    let errors = write.clone();
    let (decoder, encoder) = codec(&write, settings, peer);
    let exchange = decoder.exchange.clone();
    register(&exchange);
    chain(decoder, app, encoder)(read, write).then(Answer { exchange, errors })
}

/// After the app's end, the answer to a request that could not be read (see [`serve_with`]).
pub(crate) struct Answer<S> {
    exchange: Rc<Exchange>,
    /// The connection's writing half, for the answer.
    errors: WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Then<HttpError> for Answer<S> {
    fn then(mut self, res: Result<(), HttpError>) -> Result<(), HttpError> {
        answer(&self.exchange, &mut self.errors, res)
    }
}

/// After the app returned `res`: answers a request that could not be read, on `errors`.
fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    exchange: &Exchange,
    errors: &mut WriteHalf<S>,
    res: Result<(), HttpError>,
) -> Result<(), HttpError> {
    let status = match (exchange.decode_error.get(), exchange.handle.timed_out()) {
        _ if exchange.refused.get().is_some() => exchange.refused.get(),
        (Some(e), _) if e.kind() != ErrorKind::UnexpectedEof => Some(e.status_hint()),
        (_, Some(Phase::Item)) => Some(408),
        (Some(_), _) | (_, Some(_)) => None,
        (None, None) => return res,
    };
    if let Some(status) = status
        && !exchange.in_body.get()
    {
        let body = codec_http::reason(status).unwrap_or("Error");
        let mut enc = ResponseEncoder::new();
        enc.head_request(exchange.head_request.get());
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
        if let Some(log) = &exchange.log {
            let line = log.request_line.borrow();
            let line: &[u8] = if exchange.answered.get() { b"-" } else { &line };
            log::record(exchange.peer, line, status, body.len() as u64 + 1);
        }
    }
    // The client's mistake or silence, answered above: not an app failure.
    Ok(())
}

//! `chain(decoder, app, encoder)`: an app between a decoder and an encoder, over one stream.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::stream::{Handle, ReadHalf, Shared, WriteHalf};
use crate::time::Phase;
use crate::{Decoder, Encoder};

/// The app's side of the input: items decoded from the stream, one at a time.
pub struct Reader<S, D> {
    half: ReadHalf<S>,
    decoder: D,
    /// The phase being waited in and when it began. For [`Phase::Item`], when the item's head
    /// began (the connection's start for the first item), kept until the item is whole; for
    /// the other phases, reset by bytes, so the idle and payload deadlines run from the last
    /// progress. `None` once an item came out, until the next wait.
    since: Option<(Phase, Instant)>,
    /// Whether an item has been produced on this stream.
    served: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin, D: Decoder> Reader<S, D> {
    /// A reader decoding `half` with `decoder`.
    pub fn new(half: ReadHalf<S>, decoder: D) -> Self {
        let now = half.shared.now().unwrap_or_else(Instant::now);
        Reader {
            half,
            decoder,
            since: Some((Phase::Item, now)),
            served: false,
        }
    }

    /// The next item; `None` at the end of the stream.
    ///
    /// The stream is read only when the buffered bytes hold no complete item, so an app that
    /// stops calling `read` stops the reading (backpressure), and pipelined items come out in
    /// order.
    ///
    /// # Errors
    /// The decoder's errors, and the stream's read errors converted into them.
    pub fn read(&mut self) -> impl Future<Output = Result<Option<D::Item>, D::Error>> + '_ {
        // A plain poll function rather than an `async fn`: no state machine of its own.
        poll_fn(move |cx| self.poll_read(cx))
    }

    /// Poll form of [`read`](Reader::read).
    ///
    /// # Errors
    /// As [`read`](Reader::read).
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<D::Item>, D::Error>> {
        loop {
            let shared = &self.half.shared;
            if shared.control.closing.get() && self.decoder.between_items() {
                return Poll::Ready(Ok(None));
            }
            // An idle keep-alive connection with nothing buffered: go straight to the stream.
            let skip = self.half.buf.is_empty() && self.decoder.needs_bytes();
            if !skip && let Some(item) = self.decoder.decode(&mut self.half.buf)? {
                self.served = true;
                self.since = None;
                return Poll::Ready(Ok(Some(item)));
            }
            if self.half.eof {
                return Poll::Ready(self.decoder.decode_eof(&mut self.half.buf));
            }
            // The decoder needs bytes: which deadline applies while we wait for them?
            let phase = if self.decoder.in_payload() {
                Phase::Payload
            } else if self.served && self.decoder.between_items() && self.half.buf.is_empty() {
                Phase::Idle
            } else {
                Phase::Item
            };
            if phase == Phase::Item
                && let Some(now) = shared.now()
            {
                // A head trickling in byte by byte still has to be whole by its deadline.
                let since = match self.since {
                    Some((Phase::Item, since)) => since,
                    _ => {
                        self.since = Some((Phase::Item, now));
                        now
                    }
                };
                if shared.poll_deadline(cx, phase, since, now).is_ready() {
                    return Poll::Ready(Err(self.timed_out(phase).into()));
                }
            }
            match self.half.poll_fill(cx) {
                Poll::Ready(Ok(_)) => {
                    // Progress: the idle and payload deadlines start again.
                    if self.since.is_some_and(|(p, _)| p != Phase::Item) {
                        self.since = None;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {
                    let shared = &self.half.shared;
                    if phase == Phase::Idle {
                        // Hold no buffer while idle (a pool gives one back on the next read).
                        self.half.buf.release();
                        self.decoder.park();
                    }
                    // The clock is read once per wait, not once per read.
                    let Some(now) = shared.now() else {
                        if phase == Phase::Idle {
                            shared.set_reader_waker(cx);
                        }
                        return Poll::Pending;
                    };
                    let since = match self.since {
                        Some((p, since)) if p == phase => since,
                        _ => {
                            self.since = Some((phase, now));
                            now
                        }
                    };
                    // The deadline first: it compares the waker with the one its timer has.
                    if shared.poll_deadline(cx, phase, since, now).is_ready() {
                        return Poll::Ready(Err(self.timed_out(phase).into()));
                    }
                    if phase == Phase::Idle {
                        shared.set_reader_waker(cx);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Records a timeout; an item phase with nothing of the item received counts as idle.
    fn timed_out(&self, phase: Phase) -> io::Error {
        let phase = if phase == Phase::Item && self.half.buf.is_empty() {
            Phase::Idle
        } else {
            phase
        };
        self.half.shared.time_out(phase)
    }

    /// A handle to control the connection from outside ([`Handle`]).
    pub fn handle(&self) -> Handle
    where
        S: 'static,
    {
        self.half.handle()
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The decoder, mutably (to switch protocols, change limits, …).
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The raw reading half (bytes not yet decoded stay in its buffer).
    pub fn half_mut(&mut self) -> &mut ReadHalf<S> {
        &mut self.half
    }
}

/// The app's side of the output: items encoded into the stream's queue.
pub struct Writer<S, E> {
    half: WriteHalf<S>,
    encoder: E,
}

impl<S: AsyncRead + AsyncWrite + Unpin, E> Writer<S, E> {
    /// A writer encoding into `half` with `encoder`.
    pub fn new(half: WriteHalf<S>, encoder: E) -> Self {
        Writer { half, encoder }
    }

    /// Encodes `item` and waits until the kernel took the bytes, or, inside a pipeline, until
    /// less than the high-water mark is queued (the pipeline delivers the rest each time the
    /// app yields, so the responses to a batch of pipelined requests leave in one write).
    ///
    /// # Errors
    /// The encoder's errors, and the stream's write errors converted into them.
    pub fn write<I>(&mut self, item: I) -> impl Future<Output = Result<(), E::Error>>
    where
        E: Encoder<I>,
    {
        // Encoded at the first poll, as an `async fn` would, but with no state machine.
        let mut item = Some(item);
        poll_fn(move |cx| {
            if let Some(item) = item.take() {
                let encoder = &mut self.encoder;
                self.half.queue(|out| encoder.encode(item, out))??;
            }
            self.half.shared.poll_after_write(cx).map_err(Into::into)
        })
    }

    /// Encodes `item` into the output queue now and returns without waiting: the pipeline
    /// hands the bytes to the kernel when the app next yields. Follow it with a
    /// [`write`](Writer::write) or a [`flush`](Writer::flush), which wait for the queue to
    /// drain (below the high-water mark), so output cannot pile up.
    ///
    /// Made for items built on the stack, such as a response head: sent from an inner block,
    /// the item is gone before the next `.await`, so the app's future does not keep room for
    /// it for as long as the connection lives.
    ///
    /// # Errors
    /// The encoder's errors; the stream's earlier error, or `BrokenPipe` after
    /// [`close`](Writer::close).
    pub fn send<I>(&mut self, item: I) -> Result<(), E::Error>
    where
        E: Encoder<I>,
    {
        let encoder = &mut self.encoder;
        self.half.queue(|out| encoder.encode(item, out))?
    }

    /// Waits until every queued byte is with the kernel.
    ///
    /// # Errors
    /// Errors of the stream's write.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.half.flush().await
    }

    /// Flushes and shuts down the write side (the seed's `write()`).
    ///
    /// # Errors
    /// Errors of the stream's write or shutdown.
    pub fn close(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        // A poll function, as `read`: no state machine to keep in the app's future.
        poll_fn(move |cx| self.half.shared.poll_shutdown(cx))
    }

    /// The encoder.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The encoder, mutably.
    pub fn encoder_mut(&mut self) -> &mut E {
        &mut self.encoder
    }

    /// A handle to control the connection from outside ([`Handle`]).
    pub fn handle(&self) -> Handle
    where
        S: 'static,
    {
        self.half.handle()
    }

    /// The raw writing half (clone it to write outside the encoder).
    pub fn half(&self) -> &WriteHalf<S> {
        &self.half
    }
}

/// Why a pipeline ended badly.
#[derive(Debug)]
pub enum Error {
    /// The stream failed while flushing or shutting down.
    Io(io::Error),
    /// The app returned an error.
    App(Box<dyn std::error::Error>),
    /// The app panicked; the message, if it was a string.
    Panic(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "stream error: {e}"),
            Error::App(e) => write!(f, "app error: {e}"),
            Error::Panic(m) => write!(f, "app panicked: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Builds the pipeline of the seed's `chain(decoder, app, encoder)(read, write)`.
///
/// The returned closure takes the halves of a wrapped stream and gives a future that runs
/// `app` with a [`Reader`] (decoded items) and a [`Writer`] (items to encode), then flushes,
/// shuts down the write side and waits for the peer's EOF (so the last bytes are not lost to
/// a reset). Each time the app yields, queued output is handed to the kernel in one write.
/// A panic in the app ends this pipeline only, with [`Error::Panic`].
///
/// # Examples
/// ```
/// # use codec_chain::{Buffer, Decoder, Encoder, chain, wrap_stream};
/// # use std::io;
/// /// Lines in, lines out.
/// struct Lines;
/// impl Decoder for Lines {
///     type Item = String;
///     type Error = io::Error;
///     fn decode(&mut self, src: &mut Buffer) -> io::Result<Option<String>> {
///         let Some(i) = src.as_slice().iter().position(|&b| b == b'\n') else { return Ok(None) };
///         let line = String::from_utf8_lossy(&src.as_slice()[..i]).into_owned();
///         src.consume(i + 1);
///         Ok(Some(line))
///     }
/// }
/// impl Encoder<String> for Lines {
///     type Error = io::Error;
///     fn encode(&mut self, line: String, dst: &mut Vec<u8>) -> io::Result<()> {
///         dst.extend_from_slice(line.as_bytes());
///         dst.push(b'\n');
///         Ok(())
///     }
/// }
/// # let stream = codec_chain::testing::MockStream::new(b"hello\nworld\n");
/// # let output = stream.output();
/// let (read, write) = wrap_stream(stream);
/// let pipeline = chain(Lines, |mut read, mut write| async move {
///     while let Some(line) = read.read().await? {
///         write.write(line.to_uppercase()).await?;
///     }
///     write.close().await
/// }, Lines)(read, write);
/// # codec_chain::testing::block_on(pipeline).unwrap();
/// # assert_eq!(output.borrow().as_slice(), b"HELLO\nWORLD\n");
/// ```
pub fn chain<S, D, A, E, F, AE>(
    decoder: D,
    app: A,
    encoder: E,
) -> impl FnOnce(ReadHalf<S>, WriteHalf<S>) -> Pipeline<S, F>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: Decoder,
    A: FnOnce(Reader<S, D>, Writer<S, E>) -> F,
    F: Future<Output = Result<(), AE>>,
    AE: Into<Box<dyn std::error::Error>>,
{
    move |read, write| {
        let shared = write.shared.clone();
        shared.driven.set(true);
        let app = app(Reader::new(read, decoder), Writer::new(write, encoder));
        Pipeline {
            app: Some(app),
            shared,
            result: None,
            linger_since: None,
            then: Some(AsIs),
        }
    }
}

/// A step a [`Pipeline`] takes when its app has returned, before it flushes and shuts the
/// stream down: it sees the app's result, may queue more output (a server answers a request
/// that the app could not read), and gives the pipeline's result. See [`Pipeline::then`].
pub trait Then<AE> {
    /// Takes the step.
    fn then(self, res: Result<(), AE>) -> Result<(), AE>;
}

/// No step: the app's result as it is (what a pipeline does by default).
#[derive(Clone, Copy, Debug, Default)]
pub struct AsIs;

impl<AE> Then<AE> for AsIs {
    fn then(self, res: Result<(), AE>) -> Result<(), AE> {
        res
    }
}

impl<AE, T: FnOnce(Result<(), AE>) -> Result<(), AE>> Then<AE> for T {
    fn then(self, res: Result<(), AE>) -> Result<(), AE> {
        self(res)
    }
}

pin_project_lite::pin_project! {
    /// The future of one [`chain`]ed connection.
    ///
    /// It holds the app's future inline, not boxed: a task that runs a pipeline keeps the
    /// app's state in its own allocation, so a request touches one allocation less.
    /// `repr(C)`, with the stream (used after every poll of the app) just before the app's
    /// future: the fields a request touches are one run of bytes, which spans a cache line
    /// less, most of the time, than with the stream after the cold fields.
    #[must_use = "a pipeline does nothing unless polled"]
    #[repr(C)]
    pub struct Pipeline<S, F, T = AsIs> {
        shared: Rc<Shared<S>>,
        #[pin]
        app: Option<F>,
        result: Option<Error>,
        linger_since: Option<Instant>,
        // Taken when the app returns.
        then: Option<T>,
    }
}

impl<S, F> Pipeline<S, F> {
    /// This pipeline with a step after the app's end ([`Then`]): a closure or a type of
    /// yours, kept inline (no allocation of its own).
    pub fn then<T>(self, then: T) -> Pipeline<S, F, T> {
        Pipeline {
            app: self.app,
            shared: self.shared,
            result: self.result,
            linger_since: self.linger_since,
            then: Some(then),
        }
    }
}

impl<S, F, T, AE> Future for Pipeline<S, F, T>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = Result<(), AE>>,
    AE: Into<Box<dyn std::error::Error>>,
    T: Then<AE> + Unpin,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(app) = this.app.as_mut().as_pin_mut() {
            match catch_unwind(AssertUnwindSafe(|| app.poll(cx))) {
                Ok(Poll::Pending) => {
                    // Deliver what the app queued before it yielded: one write per turn. If the
                    // stream fails (or the peer takes nothing until the send deadline), the
                    // responses can no longer be delivered: the app is dropped.
                    return match this.shared.poll_flush(cx) {
                        Poll::Ready(Err(e)) => {
                            this.app.set(None);
                            Poll::Ready(Err(Error::Io(e)))
                        }
                        _ => Poll::Pending,
                    };
                }
                Ok(Poll::Ready(res)) => {
                    this.app.set(None);
                    let res = match this.then.take() {
                        Some(then) => then.then(res),
                        None => res,
                    };
                    *this.result = res.err().map(|e| Error::App(e.into()));
                }
                Err(payload) => {
                    this.app.set(None);
                    let msg = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic payload".to_owned());
                    return Poll::Ready(Err(Error::Panic(msg)));
                }
            }
        }
        // The app is done: flush, shut down the write side, and read until the peer's EOF.
        match this.shared.poll_shutdown(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                return Poll::Ready(Err(this.result.take().unwrap_or(Error::Io(e))));
            }
            Poll::Ready(Ok(())) => {}
        }
        // Linger: read (and drop) until the peer closes, so our last bytes are not destroyed
        // by a reset, but no longer than the linger deadline. Not after the peer's EOF, nor
        // after an idle timeout: nothing was sent that a reset could destroy. Nor when the
        // peer is done sending (`set_peer_done`) and the stream has nothing to read: there
        // is no unread input to cause a reset.
        let control = &this.shared.control;
        if this.shared.read_eof.get() || control.timed_out.get() == Some(Phase::Idle) {
            return Poll::Ready(this.result.take().map_or(Ok(()), Err));
        }
        let since = *this
            .linger_since
            .get_or_insert_with(|| this.shared.now().unwrap_or_else(Instant::now));
        let mut scratch = [0u8; 512];
        loop {
            match this.shared.poll_read(cx, &mut scratch) {
                Poll::Pending if control.peer_done.get() => break,
                Poll::Pending => {
                    if this
                        .shared
                        .poll_deadline(cx, Phase::Linger, since, this.shared.now().unwrap_or(since))
                        .is_ready()
                    {
                        let _ = this.shared.time_out(Phase::Linger);
                        break;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0) | Err(_)) => break,
                // It sent more after all: linger until its EOF after all.
                Poll::Ready(Ok(_)) => control.peer_done.set(false),
            }
        }
        Poll::Ready(this.result.take().map_or(Ok(()), Err))
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;
    use crate::testing::{ManualClock, MockStream, Step};
    use crate::{Buffer, Clock, Config, wrap_stream_with};

    /// Lines of text.
    struct Lines;

    impl Decoder for Lines {
        type Item = Vec<u8>;
        type Error = io::Error;
        fn decode(&mut self, src: &mut Buffer) -> io::Result<Option<Vec<u8>>> {
            let Some(i) = src.as_slice().iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let line = src.as_slice()[..i].to_vec();
            src.consume(i + 1);
            Ok(Some(line))
        }
    }

    impl Encoder<Vec<u8>> for Lines {
        type Error = io::Error;
        fn encode(&mut self, line: Vec<u8>, dst: &mut Vec<u8>) -> io::Result<()> {
            dst.extend_from_slice(&line);
            dst.push(b'\n');
            Ok(())
        }
    }

    #[test]
    fn an_idle_wait_holds_no_buffer_however_often_it_is_polled() {
        // Each poll reads the stream, which takes a buffer from the pool: each must give it
        // back, not only the first of the wait.
        for clock in [None, Some(ManualClock::new())] {
            let script = vec![
                Step::Data(b"a\n".to_vec()),
                Step::Wait,
                Step::Wait,
                Step::Stall,
            ];
            let config = Config {
                clock: clock.map(|c| c as Rc<dyn Clock>),
                ..Config::default()
            };
            let (r, _w) = wrap_stream_with(MockStream::scripted(script), config);
            let mut reader = Reader::new(r, Lines);
            let mut cx = Context::from_waker(Waker::noop());
            let first = reader.poll_read(&mut cx);
            assert!(matches!(first, Poll::Ready(Ok(Some(_)))));
            for poll in 0..3 {
                assert!(reader.poll_read(&mut cx).is_pending());
                assert_eq!(reader.half.buf.capacity(), 0, "poll {poll}");
            }
        }
    }

    #[test]
    fn a_pipeline_holds_its_app_inline_and_runs_it() {
        let stream = MockStream::new(b"a\nb\n");
        let output = stream.output();
        let (r, w) = crate::wrap_stream(stream);
        let state = [7u8; 600];
        let pipeline = chain(
            Lines,
            move |mut read: Reader<MockStream, Lines>, mut write: Writer<MockStream, Lines>| async move {
                while let Some(mut line) = read.read().await? {
                    line.push(state[599]);
                    write.write(line).await?;
                }
                Ok::<_, io::Error>(())
            },
            Lines,
        )(r, w);
        // The app's state is in the pipeline itself: a task running it is one allocation.
        assert!(size_of_val(&pipeline) > 600, "{}", size_of_val(&pipeline));
        crate::testing::block_on(pipeline).unwrap();
        assert_eq!(output.borrow().as_slice(), b"a\x07\nb\x07\n");
    }
}

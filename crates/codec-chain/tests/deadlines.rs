//! Deadlines in virtual time: idle, whole head, send, linger; and draining an idle stream.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use codec_chain::testing::{ManualClock, MockStream, Step, block_on_with_clock};
use codec_chain::{
    Buffer, Clock, Config, Decoder, Encoder, Error, HEAD_TIMEOUT, IDLE_TIMEOUT, LINGER_TIMEOUT,
    Phase, SEND_TIMEOUT, Timeouts, chain, wrap_stream_with,
};

struct Lines;

impl Decoder for Lines {
    type Item = String;
    type Error = io::Error;
    fn decode(&mut self, src: &mut Buffer) -> io::Result<Option<String>> {
        let Some(i) = src.as_slice().iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&src.as_slice()[..i]).into_owned();
        src.consume(i + 1);
        Ok(Some(line))
    }
}

impl Encoder<&str> for Lines {
    type Error = io::Error;
    fn encode(&mut self, line: &str, dst: &mut Vec<u8>) -> io::Result<()> {
        dst.extend_from_slice(line.as_bytes());
        dst.push(b'\n');
        Ok(())
    }
}

fn config(clock: &Rc<ManualClock>) -> Config {
    Config {
        clock: Some(clock.clone() as Rc<dyn Clock>),
        ..Config::default()
    }
}

/// Echoes lines until the end of the stream.
async fn echo(
    mut read: codec_chain::Reader<MockStream, Lines>,
    mut write: codec_chain::Writer<MockStream, Lines>,
) -> io::Result<()> {
    while let Some(line) = read.read().await? {
        write.write(line.as_str()).await?;
    }
    write.close().await
}

#[test]
fn an_idle_connection_times_out_after_the_idle_deadline() {
    let clock = ManualClock::new();
    let start = clock.now();
    let stream = MockStream::scripted(vec![Step::Data(b"hi\n".to_vec()), Step::Stall]);
    let out = stream.output();
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    let err = block_on_with_clock(chain(Lines, echo, Lines)(r, w), &clock).unwrap_err();
    assert!(matches!(err, Error::App(_)), "{err}");
    assert_eq!(handle.timed_out(), Some(Phase::Idle));
    assert_eq!(clock.now() - start, IDLE_TIMEOUT);
    assert_eq!(
        out.borrow().as_slice(),
        b"hi\n",
        "the answer went out before the timeout"
    );
}

#[test]
fn the_idle_deadline_runs_from_the_last_item_not_the_first() {
    // The idle timer armed after "a" is not moved when "b" pushes the deadline later (it
    // fires early, once, and is moved on then): that early firing must not end the stream.
    let clock = ManualClock::new();
    let start = clock.now();
    let gap = IDLE_TIMEOUT * 2 / 3;
    let stream = MockStream::scripted(vec![
        Step::Data(b"a\n".to_vec()),
        Step::Pause(gap),
        Step::Data(b"b\n".to_vec()),
        Step::Stall,
    ])
    .with_clock(&clock);
    let out = stream.output();
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    block_on_with_clock(chain(Lines, echo, Lines)(r, w), &clock).unwrap_err();
    assert_eq!(handle.timed_out(), Some(Phase::Idle));
    assert_eq!(clock.now() - start, gap + IDLE_TIMEOUT);
    assert_eq!(out.borrow().as_slice(), b"a\nb\n");
}

#[test]
fn a_trickled_head_must_be_whole_by_its_deadline() {
    let clock = ManualClock::new();
    let start = clock.now();
    // A byte every 3 s: each read makes progress, but the item never completes in time.
    let mut script = Vec::new();
    for _ in 0..20 {
        script.push(Step::Data(b"x".to_vec()));
        script.push(Step::Pause(Duration::from_secs(3)));
    }
    let stream = MockStream::scripted(script).with_clock(&clock);
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    let failed_at = Rc::new(std::cell::Cell::new(None));
    let (c, f) = (clock.clone(), failed_at.clone());
    let app = move |mut read: codec_chain::Reader<MockStream, Lines>, _w| async move {
        let res = read.read().await.map(|_| ());
        f.set(Some(c.now()));
        res
    };
    block_on_with_clock(chain(Lines, app, Lines)(r, w), &clock).unwrap_err();
    assert_eq!(handle.timed_out(), Some(Phase::Item));
    let took = failed_at.get().unwrap() - start;
    assert!(
        took >= HEAD_TIMEOUT && took < HEAD_TIMEOUT + Duration::from_secs(3),
        "timed out after {took:?}"
    );
}

#[test]
fn a_first_item_that_never_starts_counts_as_idle() {
    let clock = ManualClock::new();
    let start = clock.now();
    let stream = MockStream::scripted(vec![Step::Stall]);
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    block_on_with_clock(chain(Lines, echo, Lines)(r, w), &clock).unwrap_err();
    // The head deadline covers the wait for the first byte, and nothing of it came.
    assert_eq!(handle.timed_out(), Some(Phase::Idle));
    assert_eq!(clock.now() - start, HEAD_TIMEOUT);
}

#[test]
fn a_peer_that_never_reads_is_dropped_at_the_send_deadline() {
    let clock = ManualClock::new();
    let start = clock.now();
    let mut stream = MockStream::scripted(vec![Step::Data(b"a\nb\n".to_vec()), Step::Stall]);
    stream.write_blocked = true;
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    let err = block_on_with_clock(chain(Lines, echo, Lines)(r, w), &clock).unwrap_err();
    assert!(
        matches!(err, Error::Io(ref e) if e.kind() == io::ErrorKind::TimedOut),
        "{err}"
    );
    assert_eq!(handle.timed_out(), Some(Phase::Send));
    assert_eq!(clock.now() - start, SEND_TIMEOUT);
}

/// Answers one line and closes; first says the peer is done (as an HTTP server after
/// `Connection: close`) if `peer_done`.
fn answer_one(
    stream: MockStream,
    clock: &Rc<ManualClock>,
    peer_done: bool,
) -> (codec_chain::Handle, impl Future<Output = Result<(), Error>>) {
    let (r, w) = wrap_stream_with(stream, config(clock));
    let handle = r.handle();
    let p = chain(
        Lines,
        move |mut read: codec_chain::Reader<MockStream, Lines>,
              mut write: codec_chain::Writer<MockStream, Lines>| async move {
            let line = read.read().await?.unwrap();
            write.half().set_peer_done(peer_done);
            write.write(line.as_str()).await?;
            write.close().await
        },
        Lines,
    )(r, w);
    (handle, p)
}

#[test]
fn lingering_after_close_ends_at_the_linger_deadline() {
    let clock = ManualClock::new();
    let start = clock.now();
    let stream = MockStream::scripted(vec![Step::Data(b"bye\n".to_vec()), Step::Stall]);
    let out = stream.output();
    let closed = stream.closed.clone();
    let (handle, p) = answer_one(stream, &clock, false);
    block_on_with_clock(p, &clock).unwrap();
    assert!(*closed.borrow());
    assert_eq!(out.borrow().as_slice(), b"bye\n");
    assert_eq!(handle.timed_out(), Some(Phase::Linger));
    assert_eq!(clock.now() - start, LINGER_TIMEOUT);
}

#[test]
fn a_peer_that_is_done_is_not_lingered_for() {
    let clock = ManualClock::new();
    let start = clock.now();
    // The peer keeps its side open (a stall, not an EOF): a lingering close would wait.
    let stream = MockStream::scripted(vec![Step::Data(b"bye\n".to_vec()), Step::Stall]);
    let out = stream.output();
    let closed = stream.closed.clone();
    let (handle, p) = answer_one(stream, &clock, true);
    block_on_with_clock(p, &clock).unwrap();
    assert!(*closed.borrow());
    assert_eq!(out.borrow().as_slice(), b"bye\n");
    assert_eq!(handle.timed_out(), None);
    assert_eq!(clock.now(), start, "closed at once, no linger");
}

#[test]
fn a_done_peer_that_sends_more_is_lingered_for_after_all() {
    let clock = ManualClock::new();
    let start = clock.now();
    let stream = MockStream::scripted(vec![
        Step::Data(b"bye\n".to_vec()),
        Step::Data(b"more".to_vec()),
        Step::Stall,
    ]);
    let closed = stream.closed.clone();
    let (handle, p) = answer_one(stream, &clock, true);
    block_on_with_clock(p, &clock).unwrap();
    assert!(*closed.borrow());
    assert_eq!(handle.timed_out(), Some(Phase::Linger));
    assert_eq!(clock.now() - start, LINGER_TIMEOUT);
}

#[test]
fn no_clock_or_no_timeout_means_no_deadline() {
    let clock = ManualClock::new();
    let stream = MockStream::scripted(vec![Step::Data(b"hi\n".to_vec()), Step::Stall]);
    let cfg = Config {
        timeouts: Timeouts::NONE,
        ..config(&clock)
    };
    let (r, w) = wrap_stream_with(stream, cfg);
    let p = pin!(chain(Lines, echo, Lines)(r, w));
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut p = p;
    assert!(p.as_mut().poll(&mut cx).is_pending());
    assert!(!clock.advance_to_next(), "no timer was armed");
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn close_when_idle_ends_an_idle_reader_but_not_an_item_in_progress() {
    let clock = ManualClock::new();
    // The stream holds one whole line and the start of a second, then stalls.
    let stream = MockStream::scripted(vec![Step::Data(b"one\ntw".to_vec()), Step::Stall]);
    let out = stream.output();
    let (r, w) = wrap_stream_with(stream, config(&clock));
    let handle = r.handle();
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut p = pin!(chain(Lines, echo, Lines)(r, w));
    assert!(p.as_mut().poll(&mut cx).is_pending());
    // Inside the second line: draining must wait for it (Lines is always between items, so
    // here it stops at once; a decoder reporting an item in progress would not).
    handle.close_when_idle();
    let res = loop {
        if let Poll::Ready(r) = p.as_mut().poll(&mut cx) {
            break r;
        }
        assert!(clock.advance_to_next(), "stuck");
    };
    res.unwrap();
    assert_eq!(out.borrow().as_slice(), b"one\n");
    assert!(handle.is_closing());
}

/// A waker that records being woken.
struct Woken(std::sync::atomic::AtomicBool);
impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn an_idle_deadline_wakes_the_task_that_waits_now() {
    // The idle timer, armed while one task waited, still covers the deadline when another
    // task polls the reader: it must wake that one (the timer is polled again, not skipped).
    let clock = ManualClock::new();
    let stream = MockStream::scripted(vec![Step::Data(b"a\n".to_vec()), Step::Stall]);
    let (r, _w) = wrap_stream_with(stream, config(&clock));
    let mut reader = codec_chain::Reader::new(r, Lines);
    let (first, second) = (
        Arc::new(Woken(Default::default())),
        Arc::new(Woken(Default::default())),
    );
    let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
    let (mut cx1, mut cx2) = (Context::from_waker(&w1), Context::from_waker(&w2));
    let woken = |w: &Woken| w.0.swap(false, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        reader.poll_read(&mut cx1),
        Poll::Ready(Ok(Some(_)))
    ));
    // The timer armed for the head fires early, once; the first task moves it on to the
    // idle deadline.
    assert!(reader.poll_read(&mut cx1).is_pending());
    clock.advance(HEAD_TIMEOUT);
    assert!(woken(&first));
    assert!(reader.poll_read(&mut cx1).is_pending());
    // Now the second task waits: the armed timer covers its deadline, but wakes the first.
    assert!(reader.poll_read(&mut cx2).is_pending());
    clock.advance(IDLE_TIMEOUT - HEAD_TIMEOUT);
    assert!(
        woken(&second),
        "the task waiting at the deadline was not woken"
    );
    assert!(!woken(&first));
    let err = match reader.poll_read(&mut cx2) {
        Poll::Ready(Err(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

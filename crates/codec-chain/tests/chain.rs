//! The pipeline over in-memory streams: ordering, batching, backpressure, errors, panics.

use std::io;

use codec_chain::testing::{MockStream, Step, block_on};
use codec_chain::{Buffer, Decoder, Encoder, Error, chain, wrap_stream};

/// Lines in (without the newline), lines out.
struct Lines;

impl Decoder for Lines {
    type Item = String;
    type Error = io::Error;
    fn decode(&mut self, src: &mut Buffer) -> io::Result<Option<String>> {
        let Some(i) = src.as_slice().iter().position(|&b| b == b'\n') else {
            if src.len() > 64 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
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

/// Echoes lines until the end of the stream, then closes (whatever decodes the lines).
async fn echo<D: Decoder<Item = String, Error = io::Error>>(
    mut read: codec_chain::Reader<MockStream, D>,
    mut write: codec_chain::Writer<MockStream, Lines>,
) -> io::Result<()> {
    while let Some(line) = read.read().await? {
        write.write(line.as_str()).await?;
    }
    write.close().await
}

#[test]
fn pipelined_items_are_answered_in_order_in_one_write() {
    let mut input = Vec::new();
    for i in 0..100 {
        input.extend_from_slice(format!("req{i}\n").as_bytes());
    }
    let stream = MockStream::scripted(vec![Step::Data(input), Step::Wait]);
    let out = stream.output();
    let calls = stream.calls.clone();
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, mut write| async move {
            while let Some(line) = read.read().await? {
                write.write(line.replace("req", "res").as_str()).await?;
            }
            write.close().await
        },
        Lines,
    )(r, w);
    block_on(p).unwrap();
    let expected: String = (0..100).map(|i| format!("res{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.borrow()), expected);
    // All 100 answers were queued before the app first yielded: one write.
    assert_eq!(calls.borrow().0, 1);
}

#[test]
fn the_stream_is_read_only_when_the_app_asks() {
    let stream = MockStream::scripted(vec![
        Step::Data(b"one\n".to_vec()),
        Step::Data(b"two\n".to_vec()),
        Step::Data(b"three\n".to_vec()),
    ]);
    let calls = stream.calls.clone();
    let seen = calls.clone();
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, mut write| async move {
            let first = read.read().await?.unwrap();
            assert_eq!(first, "one");
            // The other lines are available, but nothing asked for them: one read so far.
            assert_eq!(seen.borrow().1, 1);
            write.write(first.as_str()).await?;
            write.close().await
        },
        Lines,
    )(r, w);
    block_on(p).unwrap();
    // The lingering close then reads to EOF: the two other data steps, then EOF.
    assert_eq!(calls.borrow().1, 4);
}

#[test]
fn partial_writes_deliver_everything() {
    let mut input = Vec::new();
    for i in 0..50 {
        input.extend_from_slice(format!("{i}\n").as_bytes());
    }
    let mut stream = MockStream::new(&input);
    stream.write_max = 7;
    stream.write_stall = true;
    stream.read_max = 3;
    let out = stream.output();
    let (r, w) = wrap_stream(stream);
    let p = chain(Lines, echo, Lines)(r, w);
    block_on(p).unwrap();
    assert_eq!(out.borrow().as_slice(), input.as_slice());
}

#[test]
fn decode_errors_reach_the_app_and_end_the_pipeline() {
    let stream = MockStream::new(&[b'x'; 100]);
    let closed = stream.closed.clone();
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, write| async move {
            let _keep = write;
            read.read().await.map(|_| ())
        },
        Lines,
    )(r, w);
    let err = block_on(p).unwrap_err();
    assert!(
        matches!(err, Error::App(ref e) if e.to_string() == "line too long"),
        "{err}"
    );
    assert!(
        *closed.borrow(),
        "the write side is shut down after an error"
    );
}

#[test]
fn a_panicking_app_ends_only_its_pipeline() {
    let stream = MockStream::new(b"boom\n");
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, _write: codec_chain::Writer<MockStream, Lines>| async move {
            let line = read.read().await?.unwrap();
            if line == "boom" {
                panic!("app exploded on {line}");
            }
            Ok::<(), io::Error>(())
        },
        Lines,
    )(r, w);
    match block_on(p) {
        Err(Error::Panic(msg)) => assert_eq!(msg, "app exploded on boom"),
        other => panic!("expected a panic error, got {other:?}"),
    }
    // The next connection is unaffected.
    let stream = MockStream::new(b"fine\n");
    let out = stream.output();
    let (r, w) = wrap_stream(stream);
    let p = chain(Lines, echo, Lines)(r, w);
    block_on(p).unwrap();
    assert_eq!(out.borrow().as_slice(), b"fine\n");
}

#[test]
fn eof_in_the_middle_of_an_item_is_an_error() {
    let stream = MockStream::new(b"partial");
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, _w: codec_chain::Writer<MockStream, Lines>| async move {
            read.read().await.map(|_| ())
        },
        Lines,
    )(r, w);
    let err = block_on(p).unwrap_err();
    assert!(err.to_string().contains("ended inside an item"), "{err}");
}

#[test]
fn writes_after_close_fail() {
    let (r, mut w) = wrap_stream(MockStream::new(b""));
    drop(r);
    block_on(async {
        w.write(b"x").await.unwrap();
        w.close().await.unwrap();
        let e = w.write(b"y").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    });
}

/// [`Lines`], counting the calls to `park` and checking that each comes with nothing buffered.
struct Parking {
    parked: std::rc::Rc<std::cell::Cell<usize>>,
    buffered: usize,
}

impl Decoder for Parking {
    type Item = String;
    type Error = io::Error;
    fn decode(&mut self, src: &mut Buffer) -> io::Result<Option<String>> {
        self.buffered = src.len();
        let item = Lines.decode(src);
        self.buffered = src.len();
        item
    }
    fn park(&mut self) {
        assert_eq!(self.buffered, 0, "parked with bytes of an item buffered");
        self.parked.set(self.parked.get() + 1);
    }
}

#[test]
fn the_decoder_is_parked_when_the_reader_waits_idle_and_only_then() {
    // "b" arrives in two parts: the wait between them is inside an item, not idle. The wait
    // after "b" is idle; the end of the stream after "c" is not a wait.
    let script = vec![
        Step::Data(b"a\nb".to_vec()),
        Step::Wait,
        Step::Data(b"\n".to_vec()),
        Step::Wait,
        Step::Data(b"c\n".to_vec()),
    ];
    let stream = MockStream::scripted(script);
    let out = stream.output();
    let parked = std::rc::Rc::new(std::cell::Cell::new(0));
    let decoder = Parking {
        parked: parked.clone(),
        buffered: 0,
    };
    let (r, w) = wrap_stream(stream);
    let p = chain(decoder, echo, Lines)(r, w);
    block_on(p).unwrap();
    assert_eq!(out.borrow().as_slice(), b"a\nb\nc\n");
    assert_eq!(parked.get(), 1);
}

#[test]
fn send_queues_at_once_and_the_pipeline_delivers_in_order() {
    let stream = MockStream::scripted(vec![Step::Data(b"x\ny\n".to_vec())]);
    let out = stream.output();
    let calls = stream.calls.clone();
    let (r, w) = wrap_stream(stream);
    let p = chain(
        Lines,
        |mut read, mut write| async move {
            while let Some(line) = read.read().await? {
                // Nothing to await: the bytes are queued before `send` returns.
                write.send("head")?;
                let queued = write.half().queued();
                assert!(queued >= 5, "{queued} bytes queued after send");
                write.write(line.as_str()).await?;
            }
            write.close().await?;
            let err = write.send("late").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            Ok::<_, io::Error>(())
        },
        Lines,
    )(r, w);
    block_on(p).unwrap();
    assert_eq!(out.borrow().as_slice(), b"head\nx\nhead\ny\n");
    assert_eq!(calls.borrow().0, 1, "both answers in one write");
}

#[test]
fn then_sees_the_apps_result_and_writes_before_the_shutdown() {
    let stream = MockStream::new(b"a\n");
    let out = stream.output();
    let closed = stream.closed.clone();
    let (r, w) = wrap_stream(stream);
    let mut last_words = w.clone();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
    let p = chain(
        Lines,
        |mut read, _write| async move {
            read.read().await?;
            Err::<(), _>(io::Error::other("the app gave up"))
        },
        Lines,
    )(r, w)
    .then({
        let seen = seen.clone();
        move |res: io::Result<()>| {
            *seen.borrow_mut() = res.err().map(|e| e.to_string());
            assert!(
                !*closed.borrow(),
                "the stream was shut down before the step"
            );
            last_words.queue(|out| out.extend_from_slice(b"sorry\n"))?;
            Ok(())
        }
    });
    block_on(p).unwrap();
    assert_eq!(seen.borrow().as_deref(), Some("the app gave up"));
    assert_eq!(out.borrow().as_slice(), b"sorry\n");
}

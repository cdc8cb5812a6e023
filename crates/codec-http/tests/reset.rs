//! `RequestDecoder::reset`: a decoder reused for another connection (servers pool them)
//! carries nothing over from the last one.

use codec_http::{ErrorKind, Event, RequestDecoder};

/// Decodes every event of `bytes`; the method and target of each head, body bytes, `End`.
fn events(dec: &mut RequestDecoder, mut bytes: &[u8]) -> Result<Vec<String>, codec_http::Error> {
    let mut out = Vec::new();
    loop {
        let d = dec.decode(bytes)?;
        let consumed = d.consumed;
        match d.event {
            None => return Ok(out),
            Some(Event::Head(h)) => out.push(format!("{} {}", h.method(), h.path())),
            Some(Event::Body(b)) => out.push(String::from_utf8_lossy(b).into_owned()),
            Some(Event::End) => out.push("End".to_owned()),
        }
        bytes = &bytes[consumed..];
    }
}

#[test]
fn a_reset_decoder_forgets_the_trailers_of_the_last_body() {
    let mut dec = RequestDecoder::new();
    let chunked = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n";
    assert_eq!(
        events(&mut dec, chunked).unwrap(),
        ["POST /a", "abc", "End"]
    );
    assert_eq!(dec.trailers().count(), 1);
    dec.reset();
    assert_eq!(dec.trailers().count(), 0, "another connection's trailers");
    assert!(dec.is_idle());
}

#[test]
fn a_reset_decoder_forgets_an_error_and_a_head_in_progress() {
    let mut dec = RequestDecoder::new();
    let err = events(&mut dec, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateHost);
    assert!(!dec.is_idle(), "the error is sticky before a reset");
    dec.reset();
    assert!(dec.is_idle());
    assert_eq!(
        events(&mut dec, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
        ["GET /b", "End"]
    );

    // Half a head, then a reset: the next bytes start a new head.
    assert!(
        events(&mut dec, b"GET /half HTTP/1.1\r\nHo")
            .unwrap()
            .is_empty()
    );
    assert!(dec.in_head());
    dec.reset();
    assert_eq!(
        events(&mut dec, b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
        ["GET /c", "End"]
    );
}

#[test]
fn a_reset_decoder_is_no_longer_paused_after_an_upgrade() {
    let mut dec = RequestDecoder::new();
    let upgrade =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(events(&mut dec, upgrade).unwrap(), ["GET /ws", "End"]);
    assert!(dec.is_paused());
    dec.reset();
    assert!(!dec.is_paused());
    assert_eq!(
        events(&mut dec, b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
        ["GET /d", "End"]
    );
}

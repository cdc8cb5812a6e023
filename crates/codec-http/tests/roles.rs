//! Both roles: the response encoder (server), the request encoder and the response decoder
//! (client), and each encoder run back to back with the decoder of the other side.

use codec_http::{
    ClientRequest, DateCache, ErrorKind, Event, Framing, HeaderBlock, RequestDecoder,
    RequestEncoder, ResponseDecoder, ResponseEncoder, ResponseEvent, ResponseHead, Version,
};

/// An owned response event.
#[derive(Debug, PartialEq, Eq)]
enum Res {
    Head {
        status: u16,
        reason: Vec<u8>,
        keep_alive: bool,
        headers: Vec<(String, Vec<u8>)>,
    },
    Body(Vec<u8>),
    End,
}

/// Decodes responses from `chunks` (cut anywhere); `methods` are the requests' methods, in
/// order; `eof` says whether the connection closes after the last chunk.
fn responses(
    chunks: &[&[u8]],
    methods: &[&str],
    eof: bool,
) -> Result<(Vec<Res>, Vec<u8>), codec_http::Error> {
    let mut dec = ResponseDecoder::new();
    let mut methods = methods.iter();
    dec.request_method(methods.next().unwrap_or(&"GET").as_bytes());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        if dec.is_switched() {
            // The rest belongs to the new protocol.
            continue;
        }
        loop {
            let d = dec.decode(&buf)?;
            let consumed = d.consumed;
            let Some(ev) = d.event else {
                buf.drain(..consumed);
                break;
            };
            let end = matches!(ev, ResponseEvent::End);
            match ev {
                ResponseEvent::Head(h) => out.push(Res::Head {
                    status: h.status(),
                    reason: h.reason().to_vec(),
                    keep_alive: h.keep_alive(),
                    headers: h
                        .headers()
                        .map(|(n, v)| (n.to_owned(), v.to_vec()))
                        .collect(),
                }),
                ResponseEvent::Body(b) => match out.last_mut() {
                    Some(Res::Body(prev)) => prev.extend_from_slice(b),
                    _ => out.push(Res::Body(b.to_vec())),
                },
                ResponseEvent::End => out.push(Res::End),
            }
            buf.drain(..consumed);
            if end {
                dec.request_method(methods.next().unwrap_or(&"GET").as_bytes());
            }
        }
    }
    if eof && let Some(ResponseEvent::End) = dec.eof(&buf)? {
        out.push(Res::End);
    }
    Ok((out, buf))
}

/// The same responses whole, at every cut and byte by byte.
fn every_split(input: &[u8], methods: &[&str], eof: bool) -> (Vec<Res>, Vec<u8>) {
    let whole = responses(&[input], methods, eof).unwrap();
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(
            responses(&[a, b], methods, eof).unwrap(),
            whole,
            "cut at {cut}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        responses(&bytes, methods, eof).unwrap(),
        whole,
        "byte by byte"
    );
    whole
}

fn status_of(ev: &Res) -> u16 {
    match ev {
        Res::Head { status, .. } => *status,
        _ => 0,
    }
}

#[test]
fn a_response_to_head_has_no_body_despite_its_length() {
    let (got, rest) = every_split(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        &["HEAD", "GET"],
        false,
    );
    assert_eq!(got.len(), 5);
    assert_eq!(got[1], Res::End);
    assert_eq!(got[3], Res::Body(b"hi".to_vec()));
    assert!(rest.is_empty());
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let (got, _) = every_split(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
        &["POST"],
        false,
    );
    let statuses: Vec<u16> = got.iter().map(status_of).collect();
    assert_eq!(statuses, [100, 103, 200, 0, 0]);
    assert_eq!(got[3], Res::Body(b"x".to_vec()));
}

#[test]
fn no_body_for_204_and_304() {
    let (got, _) = every_split(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &["GET", "GET", "GET"],
        false,
    );
    let statuses: Vec<u16> = got.iter().map(status_of).collect();
    assert_eq!(statuses, [204, 0, 304, 0, 200, 0]);
}

#[test]
fn a_body_without_framing_runs_until_the_connection_closes() {
    let (got, _) = every_split(b"HTTP/1.0 200 OK\r\n\r\nall of it", &["GET"], true);
    assert_eq!(got[1], Res::Body(b"all of it".to_vec()));
    assert_eq!(got[2], Res::End);
    let Res::Head { keep_alive, .. } = &got[0] else {
        panic!("a head")
    };
    assert!(!keep_alive);
    // Without the EOF there is no End.
    let (got, _) = responses(&[b"HTTP/1.1 200 OK\r\n\r\nabc"], &["GET"], false).unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn transfer_encoding_wins_over_content_length_and_then_the_connection_closes() {
    let (got, _) = every_split(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        &["GET"],
        false,
    );
    let Res::Head { keep_alive, .. } = &got[0] else {
        panic!("a head")
    };
    assert!(!keep_alive);
    assert_eq!(got[1..], [Res::Body(b"hi".to_vec()), Res::End]);
    // A coding list not ending in chunked: until close.
    let (got, _) = every_split(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
        &["GET"],
        true,
    );
    assert_eq!(got[1..], [Res::Body(b"zzz".to_vec()), Res::End]);
}

#[test]
fn switching_protocols_hands_the_rest_back() {
    let (got, rest) = every_split(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
        &["GET"],
        false,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(status_of(&got[0]), 101);
    assert_eq!(rest, b"\x81\x02hi");
    // A 2xx to CONNECT is a tunnel too; a 407 is not.
    let (got, rest) = every_split(b"HTTP/1.1 200 OK\r\n\r\ntunnel", &["CONNECT"], false);
    assert_eq!((got.len(), rest.as_slice()), (1, &b"tunnel"[..]));
    let (got, _) = every_split(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
        &["CONNECT"],
        false,
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn a_status_line_without_a_reason_is_read() {
    // Found by the fuzz target: httparse gives an empty reason that points outside the input.
    let (got, _) = every_split(
        b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
        &["GET"],
        false,
    );
    let Res::Head { status, reason, .. } = &got[0] else {
        panic!("a head")
    };
    assert_eq!((*status, reason.as_slice()), (200, &b""[..]));
    assert_eq!(got[1], Res::Body(b"x".to_vec()));
    // The fuzz input itself: a bodiless-framed 200 whose body runs until close.
    let (got, _) = responses(
        &[b"HTTP/1.1 200\r\n\r\n\r\n\xa7 OK\r\nnt-Length:i"],
        &["GET"],
        true,
    )
    .unwrap();
    assert_eq!(got.len(), 3);
}

#[test]
fn bad_responses_are_errors() {
    for (raw, kind) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            ErrorKind::DuplicateContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            ErrorKind::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
            ErrorKind::BareLf,
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            ErrorKind::TransferEncodingInHttp10,
        ),
        (b"HTTP/2.0 200 OK\r\n\r\n", ErrorKind::UnsupportedVersion),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", ErrorKind::InvalidStatus),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", ErrorKind::ObsFold),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ErrorKind::InvalidChunkSize,
        ),
    ] {
        let e = responses(&[raw], &["GET"], false).unwrap_err();
        assert_eq!(e.kind(), kind, "{:?}", String::from_utf8_lossy(raw));
    }
    // The stream ending inside a response is an error; between responses it is not.
    let e = responses(
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"],
        &["GET"],
        true,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
    assert!(
        responses(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
            &["GET"],
            true
        )
        .is_ok()
    );
}

#[test]
fn the_response_encoder_refuses_cr_lf_nul_and_writes_nothing() {
    let mut enc = ResponseEncoder::new();
    let mut out = b"kept".to_vec();
    for (name, value) in [
        ("X-A", &b"a\r\nSet-Cookie: x"[..]),
        ("X-A", b"a\nb"),
        ("X-A", b"a\0b"),
        ("X A", b"v"),
        ("", b"v"),
        ("X\r\nY", b"v"),
    ] {
        let fields = [(name, value)];
        let head = ResponseHead::new(200, &fields, Framing::length(0));
        let e = enc.head(&head, None, &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHeaderField);
        assert_eq!(e.status_hint(), 500);
        assert_eq!(out, b"kept");
    }
    let head = ResponseHead {
        reason: Some("OK\r\nX: y"),
        ..ResponseHead::new(200, &[], Framing::length(0))
    };
    assert!(enc.head(&head, None, &mut out).is_err());
    let head = ResponseHead::new(200, &[("Content-Length", b"5")], Framing::length(5));
    assert_eq!(
        enc.head(&head, None, &mut out).unwrap_err().kind(),
        ErrorKind::FramingHeader
    );
    assert_eq!(out, b"kept");
}

#[test]
fn a_header_block_encodes_as_its_fields_would() {
    let date = DateCache::new(784_111_777);
    let blocks: [&[u8]; 3] = [
        b"",
        b"Server: s\r\n",
        b"Server: http-cluster\r\nContent-Type: text/plain; charset=utf-8\r\nX-Long: \
          0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
    ];
    let more: [(&str, &[u8]); 2] = [("X-A", b"1"), ("Cache-Control", b"no-cache")];
    for block in blocks {
        let block = HeaderBlock::new(block).unwrap();
        let mut fields: Vec<(&str, &[u8])> = block.fields().collect();
        fields.extend_from_slice(&more);
        for status in [100, 200, 204, 304, 404, 599] {
            for framing in [
                Framing::length(0),
                Framing::length(12_345_678_901),
                Framing::chunked(),
                Framing::CloseDelimited,
            ] {
                for reason in [None, Some("Fine")] {
                    let mut with_block = b"kept".to_vec();
                    let mut with_fields = b"kept".to_vec();
                    let head = ResponseHead {
                        reason,
                        ..ResponseHead::new(status, &more, framing).with_block(block)
                    };
                    ResponseEncoder::new()
                        .head(&head, Some(date.get()), &mut with_block)
                        .unwrap();
                    let head = ResponseHead {
                        reason,
                        ..ResponseHead::new(status, &fields, framing)
                    };
                    ResponseEncoder::new()
                        .head(&head, Some(date.get()), &mut with_fields)
                        .unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&with_block),
                        String::from_utf8_lossy(&with_fields)
                    );
                }
            }
        }
    }
    // A field given beside a block is still checked.
    let head = ResponseHead::new(200, &[("X", b"a\nb")], Framing::length(0))
        .with_block(HeaderBlock::checked(b"Server: s\r\n"));
    let mut out = Vec::new();
    let e = ResponseEncoder::new()
        .head(&head, None, &mut out)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidHeaderField);
    assert!(out.is_empty());
}

#[test]
fn the_response_encoder_frames_every_kind_of_response() {
    let date = DateCache::new(784_111_777);
    let mut enc = ResponseEncoder::new();
    let mut out = Vec::new();
    // HEAD: the head (with the length a GET would get), no body.
    enc.head_request(true);
    enc.head(
        &ResponseHead::new(200, &[], Framing::length(5)),
        Some(date.get()),
        &mut out,
    )
    .unwrap();
    enc.body(b"hello", &mut out).unwrap();
    enc.end(&mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    );
    // 1xx, then 204 with no framing field and no body allowed.
    out.clear();
    enc.head(
        &ResponseHead::new(100, &[], Framing::length(9)),
        None,
        &mut out,
    )
    .unwrap();
    assert!(enc.is_idle());
    enc.head(
        &ResponseHead::new(204, &[], Framing::length(9)),
        None,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        enc.body(b"x", &mut out).unwrap_err().kind(),
        ErrorKind::BodyNotAllowed
    );
    enc.end(&mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    );
    // 304: its length, no body.
    out.clear();
    enc.head(
        &ResponseHead::new(304, &[], Framing::length(9)),
        None,
        &mut out,
    )
    .unwrap();
    enc.body(b"dropped", &mut out).unwrap();
    enc.end(&mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
    );
    // Chunked, and a length that must be met exactly.
    out.clear();
    enc.head(
        &ResponseHead::new(599, &[], Framing::chunked()),
        None,
        &mut out,
    )
    .unwrap();
    enc.body(b"0123456789abcdefg", &mut out).unwrap();
    enc.end(&mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 599 \r\nTransfer-Encoding: chunked\r\n\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"
    );
    enc.head(
        &ResponseHead::new(200, &[], Framing::length(2)),
        None,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        enc.body(b"abc", &mut out).unwrap_err().kind(),
        ErrorKind::BodyTooLong
    );
    assert_eq!(
        enc.end(&mut out).unwrap_err().kind(),
        ErrorKind::BodyTooShort
    );
}

#[test]
fn every_registered_status_has_its_reason() {
    let mut enc = ResponseEncoder::new();
    for status in 100..=599u16 {
        let Some(reason) = codec_http::reason(status) else {
            continue;
        };
        let mut out = Vec::new();
        enc.head(
            &ResponseHead::new(status, &[], Framing::length(0)),
            None,
            &mut out,
        )
        .unwrap();
        if status >= 200 {
            enc.end(&mut out).unwrap();
        }
        let line = format!("HTTP/1.1 {status} {reason}\r\n");
        assert!(out.starts_with(line.as_bytes()), "{status}");
    }
    assert_eq!(codec_http::reason(418), None);
    assert_eq!(codec_http::reason(425), Some("Too Early"));
}

#[test]
fn the_request_encoder_writes_and_refuses() {
    let mut enc = RequestEncoder::new();
    let mut out = Vec::new();
    let get = ClientRequest::new("GET", b"/a?b", &[("Host", b"h")]);
    enc.head(&get, &mut out).unwrap();
    enc.end(&mut out).unwrap();
    assert_eq!(out, b"GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n");
    out.clear();
    let post = ClientRequest {
        framing: Framing::length(3),
        ..ClientRequest::new("POST", b"/", &[("Host", b"h")])
    };
    enc.head(&post, &mut out).unwrap();
    enc.body(b"abc", &mut out).unwrap();
    enc.end(&mut out).unwrap();
    assert_eq!(
        out,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    );
    out.clear();
    for (method, target) in [
        ("G T", &b"/"[..]),
        ("GET", b"/a b"),
        ("GET", b""),
        ("GET", b"/\r\n"),
    ] {
        let e = enc
            .head(&ClientRequest::new(method, target, &[]), &mut out)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequestLine);
    }
    let bad = ClientRequest::new("GET", b"/", &[("X", b"a\r\nb")]);
    assert_eq!(
        enc.head(&bad, &mut out).unwrap_err().kind(),
        ErrorKind::InvalidHeaderField
    );
    let close = ClientRequest {
        framing: Framing::CloseDelimited,
        ..ClientRequest::new("POST", b"/", &[])
    };
    assert_eq!(
        enc.head(&close, &mut out).unwrap_err().kind(),
        ErrorKind::InvalidFraming
    );
    assert!(out.is_empty());
}

#[test]
fn client_and_server_back_to_back() {
    // Client encodes, server decodes, server answers, client decodes: a ConnectionPair.
    let date = DateCache::new(1_700_000_000);
    let mut wire = Vec::new();
    let mut client = RequestEncoder::new();
    let req = ClientRequest {
        framing: Framing::chunked(),
        ..ClientRequest::new("PUT", b"/file", &[("Host", b"h"), ("X-Id", b"7")])
    };
    client.head(&req, &mut wire).unwrap();
    client.body(b"part one, ", &mut wire).unwrap();
    client.body(b"part two", &mut wire).unwrap();
    client.end(&mut wire).unwrap();
    client
        .head(
            &ClientRequest::new("HEAD", b"/file", &[("Host", b"h")]),
            &mut wire,
        )
        .unwrap();
    client.end(&mut wire).unwrap();

    let mut server = RequestDecoder::new();
    let mut encoder = ResponseEncoder::new();
    let mut answer = Vec::new();
    let mut body = Vec::new();
    let mut input = &wire[..];
    let mut methods = Vec::new();
    while !input.is_empty() || !server.is_idle() {
        let d = server.decode(input).unwrap();
        match d.event {
            Some(Event::Head(h)) => {
                assert_eq!(h.version(), Version::Http11);
                assert_eq!(
                    h.header("x-id"),
                    if h.method() == "PUT" {
                        Some(&b"7"[..])
                    } else {
                        None
                    }
                );
                encoder.head_request(h.method() == "HEAD");
                methods.push(h.method().to_owned());
            }
            Some(Event::Body(b)) => body.extend_from_slice(b),
            Some(Event::End) => {
                let fields = [("Content-Type", &b"text/plain"[..])];
                let head = ResponseHead::new(200, &fields, Framing::length(body.len() as u64));
                encoder.head(&head, Some(date.get()), &mut answer).unwrap();
                encoder.body(&body, &mut answer).unwrap();
                encoder.end(&mut answer).unwrap();
                body.clear();
            }
            None => panic!("the requests are complete"),
        }
        input = &input[d.consumed..];
    }
    assert_eq!(methods, ["PUT", "HEAD"]);
    let refs: Vec<&str> = methods.iter().map(String::as_str).collect();
    let (got, rest) = responses(&[&answer], &refs, false).unwrap();
    assert!(rest.is_empty());
    assert_eq!(got.len(), 5);
    assert_eq!(got[1], Res::Body(b"part one, part two".to_vec()));
    assert_eq!(got[4], Res::End);
}

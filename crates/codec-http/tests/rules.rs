//! One test per rule of RFC 9112 the request decoder enforces, each with its raw bytes, and
//! the regression inputs of the public HTTP/1 advisories of Rust servers. Every rejection is
//! checked whole, at every two-way cut and one byte at a time: the same error each time.

mod util;

use codec_http::{BodyKind, ErrorKind, Event, Limits, RequestDecoder};
use util::{Ev, decode_chunks, decode_chunks_with, every_split, every_split_err, head};

/// Asserts that `raw` fails with `kind` and `status` however it is cut.
#[track_caller]
fn rejects(raw: &[u8], kind: ErrorKind, status: u16) {
    let e = every_split_err(raw);
    assert_eq!(e.kind(), kind, "{:?}", String::from_utf8_lossy(raw));
    assert_eq!(
        e.status_hint(),
        status,
        "{:?}",
        String::from_utf8_lossy(raw)
    );
}

fn get_with(field: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: h\r\n{field}\r\n\r\n").into_bytes()
}

fn post_with(fields: &str, body: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\n\r\n{body}").into_bytes()
}

// RFC 9112 §6.1, §6.3: framing fields.

#[test]
fn content_length_with_transfer_encoding_is_400() {
    rejects(
        &post_with(
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "0\r\n\r\n",
        ),
        ErrorKind::ContentLengthWithTransferEncoding,
        400,
    );
    rejects(
        &post_with(
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "0\r\n\r\n",
        ),
        ErrorKind::ContentLengthWithTransferEncoding,
        400,
    );
}

#[test]
fn repeated_or_differing_content_length_is_400() {
    for fields in [
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: 5\r\nContent-Length: 6",
    ] {
        rejects(
            &post_with(fields, "hello"),
            ErrorKind::DuplicateContentLength,
            400,
        );
    }
}

#[test]
fn content_length_is_digits_only() {
    for value in [
        "+5", "-5", "5 5", "0x5", "5_0", "5,5", "5, 5", "", "5.0", "five", "٥",
    ] {
        rejects(
            &post_with(&format!("Content-Length: {value}"), "hello"),
            ErrorKind::InvalidContentLength,
            400,
        );
    }
    // Optional whitespace around the value is not part of it.
    every_split(
        &post_with("Content-Length:  5 ", "hello"),
        &[
            head("POST", "/", true, &[("Host", "h"), ("Content-Length", "5")]),
            Ev::Body(b"hello".to_vec()),
            Ev::End,
        ],
    );
}

#[test]
fn content_length_above_i64_max_is_400() {
    rejects(
        &post_with("Content-Length: 9223372036854775808", ""),
        ErrorKind::InvalidContentLength,
        400,
    );
    rejects(
        &post_with("Content-Length: 99999999999999999999999", ""),
        ErrorKind::InvalidContentLength,
        400,
    );
}

#[test]
fn repeated_transfer_encoding_is_400() {
    rejects(
        &post_with(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "0\r\n\r\n",
        ),
        ErrorKind::RepeatedTransferEncoding,
        400,
    );
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    rejects(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ErrorKind::TransferEncodingInHttp10,
        400,
    );
}

#[test]
fn transfer_encoding_must_end_in_chunked() {
    // Chunked before another coding, or not at all: the length cannot be known (400).
    for value in [
        "chunked, gzip",
        "gzip",
        "identity",
        "chunked, chunked",
        "xchunked",
    ] {
        let e = every_split_err(&post_with(&format!("Transfer-Encoding: {value}"), ""));
        assert_eq!(e.status_hint(), 400, "{value}");
        assert_eq!(e.kind(), ErrorKind::InvalidTransferEncoding, "{value}");
    }
    // A coding before chunked that this codec does not implement: 501.
    rejects(
        &post_with("Transfer-Encoding: gzip, chunked", "0\r\n\r\n"),
        ErrorKind::UnknownTransferCoding,
        501,
    );
    // Case and empty list elements do not matter (RFC 9110 §5.6.1).
    for value in ["CHUNKED", "Chunked ", ", chunked,"] {
        let got = decode_chunks(&[&post_with(
            &format!("Transfer-Encoding: {value}"),
            "1\r\nZ\r\n0\r\n\r\n",
        )])
        .unwrap();
        assert_eq!(got[1..], [Ev::Body(b"Z".to_vec()), Ev::End], "{value}");
    }
}

#[test]
fn a_request_with_neither_length_has_an_empty_body() {
    // The bytes after it are the next request, never a body read until EOF.
    every_split(
        b"POST /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        &[
            head("POST", "/a", true, &[("Host", "h")]),
            Ev::End,
            head("GET", "/b", true, &[("Host", "h")]),
            Ev::End,
        ],
    );
    let mut dec = RequestDecoder::new();
    let d = dec
        .decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert_eq!(h.body_kind(), BodyKind::Empty);
}

// RFC 9112 §5: field syntax.

#[test]
fn obs_fold_is_400() {
    rejects(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
        ErrorKind::ObsFold,
        400,
    );
    rejects(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n",
        ErrorKind::ObsFold,
        400,
    );
    // Whitespace between the request line and the first field (RFC 9112 §2.2).
    rejects(
        b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        ErrorKind::ObsFold,
        400,
    );
}

#[test]
fn whitespace_before_the_colon_is_400() {
    rejects(
        &get_with("Content-Length : 0"),
        ErrorKind::WhitespaceBeforeColon,
        400,
    );
    rejects(&get_with("X-A\t: 0"), ErrorKind::WhitespaceBeforeColon, 400);
}

#[test]
fn nul_or_cr_inside_a_value_is_400() {
    rejects(&get_with("X-A: a\0b"), ErrorKind::InvalidHeaderValue, 400);
    rejects(&get_with("X-A: a\rb"), ErrorKind::InvalidHeaderValue, 400);
    rejects(&get_with("X-A: a\x01b"), ErrorKind::InvalidHeaderValue, 400);
}

#[test]
fn invalid_field_names_are_400() {
    rejects(&get_with(": empty"), ErrorKind::InvalidHeaderName, 400);
    rejects(&get_with("X(A): 1"), ErrorKind::InvalidHeaderName, 400);
    rejects(&get_with("no colon"), ErrorKind::InvalidHeaderName, 400);
}

#[test]
fn bare_lf_is_400_in_the_head() {
    rejects(b"GET / HTTP/1.1\nHost: h\r\n\r\n", ErrorKind::BareLf, 400);
    rejects(b"GET / HTTP/1.1\r\nHost: h\n\r\n", ErrorKind::BareLf, 400);
    rejects(b"GET / HTTP/1.1\r\nHost: h\r\n\n", ErrorKind::BareLf, 400);
    // LF inside a value ends the line early: a bare LF.
    rejects(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb\r\n\r\n",
        ErrorKind::BareLf,
        400,
    );
    rejects(
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::BareLf,
        400,
    );
}

#[test]
fn a_bare_cr_where_a_line_starts_is_400() {
    rejects(
        b"GET / HTTP/1.1\r\nHost: h\r\n\rX: y\r\n\r\n",
        ErrorKind::InvalidHeaderValue,
        400,
    );
}

// RFC 9112 §3.2: Host.

#[test]
fn missing_host_in_http11_is_400() {
    rejects(b"GET / HTTP/1.1\r\n\r\n", ErrorKind::MissingHost, 400);
    // HTTP/1.0 does not require it.
    assert!(decode_chunks(&[b"GET / HTTP/1.0\r\n\r\n"]).is_ok());
}

#[test]
fn repeated_host_is_400() {
    rejects(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        ErrorKind::DuplicateHost,
        400,
    );
    rejects(
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        ErrorKind::DuplicateHost,
        400,
    );
}

#[test]
fn an_invalid_host_is_400() {
    for host in [
        "a b", "a/b", "a@b", "a:b", "[::1", "[zz]", "a:80:80", "h\"x",
    ] {
        rejects(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
            ErrorKind::InvalidHost,
            400,
        );
    }
    for host in [
        "",
        "example.com",
        "example.com:8080",
        "[::1]:80",
        "127.0.0.1",
        "a=b",
    ] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert!(decode_chunks(&[raw.as_bytes()]).is_ok(), "{host}");
    }
}

// RFC 9112 §3: the request line.

#[test]
fn an_invalid_method_is_400() {
    rejects(
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidMethod,
        400,
    );
    rejects(
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidMethod,
        400,
    );
    rejects(
        b"GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidMethod,
        400,
    );
}

#[test]
fn an_invalid_target_is_400() {
    for target in [
        "/a\x7f",
        "a",
        "localhost:80",
        "ftp://h/",
        "http:/h",
        "*",
        "/caf\u{e9}",
    ] {
        rejects(
            format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
            ErrorKind::InvalidTarget,
            400,
        );
    }
    // Two spaces: an empty target.
    rejects(
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidTarget,
        400,
    );
    // The four forms, each where it belongs.
    for line in [
        "GET /a/b?c=d&e HTTP/1.1",
        "GET /logged?q=\"x\"&r={|} HTTP/1.1",
        "GET http://h/x HTTP/1.1",
        "GET HTTPS://h:443 HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "CONNECT h:443 HTTP/1.1",
    ] {
        let raw = format!("{line}\r\nHost: h\r\n\r\n");
        assert!(decode_chunks(&[raw.as_bytes()]).is_ok(), "{line}");
    }
}

#[test]
fn another_major_version_is_505() {
    rejects(
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        ErrorKind::UnsupportedVersion,
        505,
    );
    rejects(
        b"GET / HTTP/0.9\r\nHost: h\r\n\r\n",
        ErrorKind::UnsupportedVersion,
        505,
    );
    rejects(
        b"GET / HTTP/1.x\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidVersion,
        400,
    );
    rejects(
        b"GET / http/1.1\r\nHost: h\r\n\r\n",
        ErrorKind::InvalidVersion,
        400,
    );
    // A higher minor version of 1 is processed as 1.1 (RFC 9112 §2.3).
    let got = decode_chunks(&[b"GET / HTTP/1.7\r\nHost: h\r\n\r\n"]).unwrap();
    assert_eq!(got, [head("GET", "/", true, &[("Host", "h")]), Ev::End]);
}

// Limits (design.md §6).

#[test]
fn more_than_100_fields_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..100 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    rejects(&raw, ErrorKind::TooManyHeaders, 431);
    // 100 exactly is fine.
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..99 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert!(decode_chunks(&[&raw]).is_ok());
}

#[test]
fn a_head_over_the_limit_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    while raw.len() < 9000 {
        raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let e = decode_chunks(&[&raw]).unwrap_err();
    assert_eq!((e.kind(), e.status_hint()), (ErrorKind::HeadTooLarge, 431));
    let bytes: Vec<&[u8]> = raw.chunks(1).collect();
    assert_eq!(decode_chunks(&bytes).unwrap_err(), e);
    // An unterminated head fails as soon as it passes the limit.
    let e = decode_chunks(&[&raw[..8200]]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge);
}

#[test]
fn a_target_over_the_limit_is_414() {
    let limits = Limits {
        max_target: 100,
        ..Limits::default()
    };
    let raw = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
    let e = util::every_split_err_with(limits, raw.as_bytes());
    assert_eq!((e.kind(), e.status_hint()), (ErrorKind::TargetTooLong, 414));
    // With the default limits a target as long as the head limit is 414 too.
    let raw = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(9000));
    let e = decode_chunks(&[raw.as_bytes()]).unwrap_err();
    assert_eq!(e.status_hint(), 414);
    let bytes: Vec<&[u8]> = raw.as_bytes().chunks(1).collect();
    assert_eq!(decode_chunks(&bytes).unwrap_err(), e);
}

#[test]
fn a_body_over_the_limit_is_413() {
    let limits = Limits {
        max_body: Some(10),
        ..Limits::default()
    };
    let e =
        decode_chunks_with(limits, &[&post_with("Content-Length: 11", "hello world")]).unwrap_err();
    assert_eq!((e.kind(), e.status_hint()), (ErrorKind::BodyTooLarge, 413));
    // Chunks adding up to more than the limit.
    let raw = post_with(
        "Transfer-Encoding: chunked",
        "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
    );
    let e = util::every_split_err_with(limits, &raw);
    assert_eq!(e.kind(), ErrorKind::BodyTooLarge);
    // At the limit is fine, by length or in chunks.
    assert!(decode_chunks_with(limits, &[&post_with("Content-Length: 10", "0123456789")]).is_ok());
    let raw = post_with(
        "Transfer-Encoding: chunked",
        "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
    );
    assert!(decode_chunks_with(limits, &[&raw]).is_ok());
}

#[test]
fn errors_are_sticky() {
    let mut dec = RequestDecoder::new();
    let bad = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n";
    let e1 = dec.decode(bad).unwrap_err();
    assert_eq!(e1.kind(), ErrorKind::InvalidContentLength);
    let good = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(dec.decode(good).unwrap_err(), e1);
    assert_eq!(dec.decode(b"").unwrap_err(), e1);
    assert_eq!(dec.eof(b"").unwrap_err(), e1);
    assert!(!dec.is_idle());
}

// RFC 9112 §7.1: chunked.

#[test]
fn chunk_size_overflow_is_400() {
    rejects(
        &post_with("Transfer-Encoding: chunked", "ffffffffffffffffff\r\n"),
        ErrorKind::ChunkSizeOverflow,
        400,
    );
    rejects(
        &post_with("Transfer-Encoding: chunked", "8000000000000000\r\n"),
        ErrorKind::ChunkSizeOverflow,
        400,
    );
    // 2^64 would wrap to 0 (a last chunk) in arithmetic that does not check: refused.
    rejects(
        &post_with("Transfer-Encoding: chunked", "10000000000000000\r\n"),
        ErrorKind::ChunkSizeOverflow,
        400,
    );
    // The largest size taken is i64::MAX (a limit, or the body, stops it later).
    let mut dec = codec_http::RequestDecoder::new();
    let req = post_with("Transfer-Encoding: chunked", "7fffffffffffffff\r\nab");
    let mut buf = &req[..];
    let mut body = Vec::new();
    while let Ok(d) = dec.decode(buf) {
        match d.event {
            Some(codec_http::Event::Body(b)) => body.extend_from_slice(b),
            Some(_) => {}
            None => break,
        }
        buf = &buf[d.consumed..];
    }
    assert_eq!(body, b"ab");
}

#[test]
fn a_chunk_size_line_is_strict() {
    for size in [
        "",
        " 5",
        "5 ",
        "0x5",
        "-5",
        "+5",
        "5;",
        "5;=x",
        "5; a=\"unterminated",
    ] {
        rejects(
            &post_with(
                "Transfer-Encoding: chunked",
                &format!("{size}\r\nhello\r\n0\r\n\r\n"),
            ),
            ErrorKind::InvalidChunkSize,
            400,
        );
    }
    rejects(
        &post_with("Transfer-Encoding: chunked", "5\nhello\r\n0\r\n\r\n"),
        ErrorKind::BareLf,
        400,
    );
}

#[test]
fn chunk_extensions_are_accepted_bounded_and_without_cr_or_lf() {
    let got = decode_chunks(&[&post_with(
        "Transfer-Encoding: chunked",
        "5 ; a=b ;c; d=\"q\\\"s\"\r\nhello\r\n0;last\r\n\r\n",
    )])
    .unwrap();
    assert_eq!(got[1..], [Ev::Body(b"hello".to_vec()), Ev::End]);
    rejects(
        &post_with(
            "Transfer-Encoding: chunked",
            "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n",
        ),
        ErrorKind::InvalidChunkSize,
        400,
    );
    let long = format!("5;a={}\r\nhello\r\n0\r\n\r\n", "x".repeat(20_000));
    rejects(
        &post_with("Transfer-Encoding: chunked", &long),
        ErrorKind::ChunkMetadataTooLarge,
        400,
    );
    // The limit counts every size line of a body: many small chunks add up.
    let limits = Limits {
        max_chunk_metadata: 10,
        ..Limits::default()
    };
    let small = "1\r\na\r\n".repeat(3);
    let ok = post_with("Transfer-Encoding: chunked", &format!("{small}0\r\n\r\n"));
    assert!(decode_chunks_with(limits, &[&ok]).is_ok());
    let over = post_with(
        "Transfer-Encoding: chunked",
        &format!("{small}1\r\nb\r\n0\r\n\r\n"),
    );
    let e = util::every_split_err_with(limits, &over);
    assert_eq!(e.kind(), ErrorKind::ChunkMetadataTooLarge);
}

#[test]
fn the_crlf_after_chunk_data_is_required() {
    for tail in ["hello0\r\n\r\n", "hello\n0\r\n\r\n", "hello\rX0\r\n\r\n"] {
        rejects(
            &post_with("Transfer-Encoding: chunked", &format!("5\r\n{tail}")),
            ErrorKind::MissingChunkCrlf,
            400,
        );
    }
}

#[test]
fn trailers_are_surfaced_and_bounded() {
    let raw = post_with(
        "Transfer-Encoding: chunked",
        "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:  1 \r\n\r\n",
    );
    let mut dec = RequestDecoder::new();
    let mut buf = &raw[..];
    loop {
        let d = dec.decode(buf).unwrap();
        let end = matches!(d.event, Some(Event::End));
        buf = &buf[d.consumed..];
        if end {
            break;
        }
    }
    let trailers: Vec<(&str, &[u8])> = dec.trailers().collect();
    assert_eq!(trailers, [("X-Sum", &b"abc"[..]), ("X-Other", &b"1"[..])]);
    // A malformed trailer, and too many trailer bytes.
    rejects(
        &post_with("Transfer-Encoding: chunked", "0\r\nX Y: 1\r\n\r\n"),
        ErrorKind::InvalidTrailer,
        400,
    );
    let many = format!("0\r\n{}\r\n", "X-T: aaaaaaaaaaaaaaaaaaaa\r\n".repeat(1000));
    rejects(
        &post_with("Transfer-Encoding: chunked", &many),
        ErrorKind::ChunkMetadataTooLarge,
        400,
    );
}

// Connection management.

#[test]
fn keep_alive_follows_the_version_and_the_connection_list() {
    let cases: &[(&str, &str, bool)] = &[
        ("1.1", "", true),
        ("1.1", "Connection: close\r\n", false),
        ("1.1", "Connection: keep-alive, Upgrade\r\n", true),
        ("1.1", "Connection: Upgrade, CLOSE\r\n", false),
        ("1.0", "", false),
        ("1.0", "Connection: keep-alive\r\n", true),
        ("1.0", "Connection: Keep-Alive, x\r\n", true),
        ("1.0", "Connection: keep-alive, close\r\n", false),
    ];
    for (version, field, keep_alive) in cases {
        let raw = format!("GET / HTTP/{version}\r\nHost: h\r\n{field}\r\n");
        let got = decode_chunks(&[raw.as_bytes()]).unwrap();
        let Ev::Head { keep_alive: k, .. } = &got[0] else {
            panic!("a head");
        };
        assert_eq!(k, keep_alive, "{version} {field:?}");
    }
}

#[test]
fn expect_100_continue_is_surfaced() {
    let raw = post_with("Expect: 100-Continue\r\nContent-Length: 1", "x");
    let mut dec = RequestDecoder::new();
    let d = dec.decode(&raw).unwrap();
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert!(h.expect_continue());
    // Not in HTTP/1.0 (RFC 9110 §10.1.1).
    let mut dec = RequestDecoder::new();
    let d = dec
        .decode(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert!(!h.expect_continue());
}

/// Decodes until the decoder pauses; returns the bytes left for the new protocol.
fn until_paused(dec: &mut RequestDecoder, input: &[u8]) -> Vec<u8> {
    let mut buf = input.to_vec();
    for _ in 0..10 {
        let d = dec.decode(&buf).unwrap();
        let (consumed, none) = (d.consumed, d.event.is_none());
        buf.drain(..consumed);
        if none {
            break;
        }
    }
    assert!(dec.is_paused());
    buf
}

#[test]
fn upgrade_stops_decoding_and_hands_the_rest_back() {
    let raw = b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    let mut dec = RequestDecoder::new();
    let d = dec.decode(raw).unwrap();
    let consumed = d.consumed;
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert!(h.is_upgrade());
    // A server that declines closes: the bytes after may be in the other protocol.
    assert!(!h.keep_alive());
    let rest = until_paused(&mut dec, &raw[consumed..]);
    assert_eq!(rest, b"\x81\x05hello");
    // Paused means no event and nothing consumed, and EOF is fine there.
    let d = dec.decode(&rest).unwrap();
    assert_eq!((d.consumed, d.event.is_none()), (0, true));
    // A server that declines resumes HTTP/1.1.
    let mut dec = RequestDecoder::new();
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    let rest = until_paused(&mut dec, raw);
    dec.resume();
    let d = dec.decode(&rest).unwrap();
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert_eq!(h.path(), "/next");
    // Upgrade without the Connection token, or in HTTP/1.0, is no upgrade.
    let got = decode_chunks(&[
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ])
    .unwrap();
    assert_eq!(got.len(), 4);
}

#[test]
fn connect_stops_decoding_and_hands_the_rest_back() {
    let raw = b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01tls bytes";
    let mut dec = RequestDecoder::new();
    let d = dec.decode(raw).unwrap();
    let consumed = d.consumed;
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert!(h.is_connect());
    assert!(!h.keep_alive());
    let rest = until_paused(&mut dec, &raw[consumed..]);
    assert_eq!(rest, b"\x16\x03\x01tls bytes");
    assert!(dec.eof(&rest).is_ok());
}

// Advisories of Rust HTTP/1 servers (RustSec), as regression inputs.

#[test]
fn hyper_cve_2021_32714_chunk_size_overflow() {
    rejects(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          f0000000000000003\r\nabc\r\n0\r\n\r\n",
        ErrorKind::ChunkSizeOverflow,
        400,
    );
}

#[test]
fn hyper_cve_2021_32715_content_length_with_a_sign() {
    rejects(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx",
        ErrorKind::InvalidContentLength,
        400,
    );
}

#[test]
fn hyper_cve_2021_21299_repeated_transfer_encoding() {
    rejects(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
        ErrorKind::RepeatedTransferEncoding,
        400,
    );
}

#[test]
fn async_h1_rustsec_2020_0093_an_unread_body_is_never_the_next_request() {
    // The body holds bytes that look like a request; they come out as body, and the
    // decoder is back at a head boundary only after them, whether or not the caller looked.
    let smuggled = "GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{smuggled}GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        smuggled.len()
    );
    every_split(
        raw.as_bytes(),
        &[
            head(
                "POST",
                "/",
                true,
                &[
                    ("Host", "h"),
                    ("Content-Length", &smuggled.len().to_string()),
                ],
            ),
            Ev::Body(smuggled.as_bytes().to_vec()),
            Ev::End,
            head("GET", "/next", true, &[("Host", "h")]),
            Ev::End,
        ],
    );
}

#[test]
fn tiny_http_rustsec_2020_0031_transfer_encoding_obfuscation() {
    for value in [
        "xchunked",
        "chunked-false",
        "chunk",
        "chunked\x0b",
        "\"chunked\"",
        "chunked;q=1",
        "chunked, identity",
    ] {
        let raw = post_with(
            &format!("Transfer-Encoding: {value}\r\nContent-Length: 4"),
            "0\r\n\r\n",
        );
        let e = decode_chunks(&[&raw]).unwrap_err();
        assert!([400, 501].contains(&e.status_hint()), "{value:?}: {e}");
    }
    // A TE name with a space before the colon is refused, not ignored.
    rejects(
        &post_with(
            "Transfer-Encoding : chunked\r\nContent-Length: 4",
            "0\r\n\r\n",
        ),
        ErrorKind::WhitespaceBeforeColon,
        400,
    );
}

#[test]
fn conduit_hyper_rustsec_2022_0066_huge_content_length() {
    // With a body limit: 413 from the head alone, before any body byte.
    let limits = Limits {
        max_body: Some(codec_http::MAX_BODY),
        ..Limits::default()
    };
    let mut dec = RequestDecoder::with_limits(limits);
    let e = dec
        .decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n")
        .unwrap_err();
    assert_eq!((e.kind(), e.status_hint()), (ErrorKind::BodyTooLarge, 413));
    // Without one the decoder streams: it announces the length and holds nothing.
    let mut dec = RequestDecoder::new();
    let d = dec
        .decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\nab")
        .unwrap();
    let Some(Event::Head(h)) = d.event else {
        panic!("a head")
    };
    assert_eq!(h.body_kind(), BodyKind::Length(99_999_999_999));
}

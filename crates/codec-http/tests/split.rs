//! Requests decoded whole, at every split point and one byte at a time give the same events.

mod util;

use codec_http::{ErrorKind, RequestDecoder, Version};
use util::{Ev, decode_chunks, every_split, head};

#[test]
fn get() {
    every_split(
        b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
        &[
            head(
                "GET",
                "/index.html?x=1",
                true,
                &[("Host", "example.com"), ("User-Agent", "t")],
            ),
            Ev::End,
        ],
    );
}

#[test]
fn post_with_content_length() {
    every_split(
        b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
        &[
            head(
                "POST",
                "/form",
                true,
                &[("Host", "h"), ("Content-Length", "11")],
            ),
            Ev::Body(b"hello world".to_vec()),
            Ev::End,
        ],
    );
}

#[test]
fn chunked_post_with_extension_and_trailer() {
    every_split(
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n",
        &[
            head(
                "POST",
                "/up",
                true,
                &[("Host", "h"), ("Transfer-Encoding", "chunked")],
            ),
            Ev::Body(b"hello world".to_vec()),
            Ev::End,
        ],
    );
}

#[test]
fn pipelined_requests_in_one_buffer() {
    every_split(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
          POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
          GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
          GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        &[
            head("GET", "/a", true, &[("Host", "h")]),
            Ev::End,
            head(
                "POST",
                "/b",
                true,
                &[("Host", "h"), ("Content-Length", "3")],
            ),
            Ev::Body(b"abc".to_vec()),
            Ev::End,
            Ev::Head {
                method: "GET".into(),
                target: b"/c".to_vec(),
                version: Version::Http10,
                keep_alive: true,
                headers: vec![("Connection".into(), b"keep-alive".to_vec())],
            },
            Ev::End,
            head(
                "GET",
                "/d",
                false,
                &[("Host", "h"), ("Connection", "close")],
            ),
            Ev::End,
        ],
    );
}

#[test]
fn leading_empty_lines_are_ignored() {
    every_split(
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        &[head("GET", "/", true, &[("Host", "h")]), Ev::End],
    );
}

#[test]
fn http10_without_keep_alive_has_an_empty_body() {
    every_split(
        b"POST /x HTTP/1.0\r\n\r\n",
        &[
            Ev::Head {
                method: "POST".into(),
                target: b"/x".to_vec(),
                version: Version::Http10,
                keep_alive: false,
                headers: vec![],
            },
            Ev::End,
        ],
    );
}

#[test]
fn an_unfinished_request_at_eof_is_an_error() {
    let err =
        decode_chunks(&[b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    let err = decode_chunks(&[b"GET / HTTP/1.1\r\nHo"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn errors_are_sticky() {
    let mut dec = RequestDecoder::new();
    let bad = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n";
    let e1 = dec.decode(bad).unwrap_err();
    assert_eq!(e1.kind(), ErrorKind::InvalidContentLength);
    assert_eq!(e1.status_hint(), 400);
    let good = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(dec.decode(good).unwrap_err(), e1);
}

#[test]
fn oversized_head_is_431() {
    let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    while req.len() < 9000 {
        req.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let err = decode_chunks(&[&req]).unwrap_err();
    assert_eq!(err.status_hint(), 431);
}

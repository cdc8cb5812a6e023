//! Properties, over generated input: no panic on any bytes; a valid request stream cut
//! anywhere decodes to the events of the uncut stream; encoder output decodes back to what
//! was encoded, in both roles.

mod util;

use codec_http::{
    ClientRequest, Framing, Limits, RequestDecoder, RequestEncoder, ResponseDecoder,
    ResponseEncoder, ResponseEvent, ResponseHead,
};
use proptest::prelude::*;
use util::{Ev, decode_chunks_with};

/// Cuts `input` at the given points (taken modulo its length).
fn cut<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for p in at {
        chunks.push(&input[prev..p]);
        prev = p;
    }
    chunks.push(&input[prev..]);
    chunks
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    // Visible ASCII and inner spaces; no leading or trailing whitespace (it is trimmed).
    "[!-~]([ -~]{0,20}[!-~])?"
}

/// Header fields that do not touch framing or connection handling.
fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((token(), value()), 0..8)
        .prop_map(|v| v.into_iter().map(|(n, v)| (format!("X-{n}"), v)).collect())
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    Chunked(Vec<Vec<u8>>, bool),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::None),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Length),
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..24), 0..5),
            any::<bool>()
        )
            .prop_map(|(c, t)| Body::Chunked(c, t)),
    ]
}

/// One request's bytes and the events it must decode to.
fn request() -> impl Strategy<Value = (Vec<u8>, Vec<Ev>)> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "X-CUSTOM"]),
        "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,10}){1,3}(\\?[a-z0-9=&]{0,10})?",
        fields(),
        body(),
        any::<bool>(),
    )
        .prop_map(|(method, target, fields, body, ext)| {
            let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n");
            let mut headers = vec![("Host".to_owned(), b"example.com".to_vec())];
            for (n, v) in &fields {
                raw.push_str(&format!("{n}: {v}\r\n"));
                headers.push((n.clone(), v.as_bytes().to_vec()));
            }
            let mut raw = raw.into_bytes();
            let mut events = Vec::new();
            let mut content = Vec::new();
            match &body {
                Body::None => raw.extend_from_slice(b"\r\n"),
                Body::Length(b) => {
                    raw.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes(),
                    );
                    headers.push(("Content-Length".into(), b.len().to_string().into_bytes()));
                    raw.extend_from_slice(b);
                    content.extend_from_slice(b);
                }
                Body::Chunked(chunks, trailer) => {
                    raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                    for c in chunks {
                        let e = if ext { ";a=\"b c\"" } else { "" };
                        raw.extend_from_slice(format!("{:X}{e}\r\n", c.len()).as_bytes());
                        raw.extend_from_slice(c);
                        raw.extend_from_slice(b"\r\n");
                        content.extend_from_slice(c);
                    }
                    raw.extend_from_slice(b"0\r\n");
                    if *trailer {
                        raw.extend_from_slice(b"X-Trailer: t\r\n");
                    }
                    raw.extend_from_slice(b"\r\n");
                }
            }
            events.push(Ev::Head {
                method: method.to_owned(),
                target: target.into_bytes(),
                version: codec_http::Version::Http11,
                keep_alive: true,
                headers,
            });
            if !content.is_empty() {
                events.push(Ev::Body(content));
            }
            events.push(Ev::End);
            (raw, events)
        })
}

fn body_of(events: &[Ev]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Body(b) => Some(b.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        points in prop::collection::vec(any::<usize>(), 0..4),
        prefix in prop::sample::select(vec![
            &b""[..],
            b"GET / HTTP/1.1\r\nHost: h\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ]),
    ) {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        let _ = decode_chunks_with(Limits::default(), &cut(&input, &points));
        // The client's decoder too, fed the same way; every call is bounded.
        let mut dec = ResponseDecoder::new();
        let mut buf = Vec::new();
        'feed: for chunk in cut(&input, &points) {
            buf.extend_from_slice(chunk);
            for _ in 0..=buf.len() + 2 {
                match dec.decode(&buf) {
                    Ok(d) if d.event.is_none() => {
                        let n = d.consumed;
                        buf.drain(..n);
                        break;
                    }
                    Ok(d) => {
                        let n = d.consumed;
                        buf.drain(..n);
                    }
                    Err(_) => break 'feed,
                }
            }
        }
        let _ = dec.eof(&buf);
    }

    #[test]
    fn a_valid_stream_cut_anywhere_decodes_like_the_whole(
        requests in prop::collection::vec(request(), 1..4),
        points in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (raw, events) in requests {
            input.extend_from_slice(&raw);
            expected.extend(events);
        }
        let whole = decode_chunks_with(Limits::default(), &[&input]).unwrap();
        prop_assert_eq!(&whole, &expected);
        let cut_up = decode_chunks_with(Limits::default(), &cut(&input, &points)).unwrap();
        prop_assert_eq!(cut_up, whole);
    }

    #[test]
    fn responses_round_trip(
        status in prop::sample::select(vec![200u16, 201, 204, 206, 301, 304, 404, 500, 599, 299]),
        headers in fields(),
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4),
        chunked in any::<bool>(),
        points in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let body: Vec<u8> = parts.concat();
        let framing = if chunked { Framing::chunked() } else { Framing::length(body.len() as u64) };
        let list: Vec<(&str, &[u8])> =
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let mut enc = ResponseEncoder::new();
        let mut wire = Vec::new();
        enc.head(&ResponseHead::new(status, &list, framing), None, &mut wire).unwrap();
        for p in &parts {
            enc.body(p, &mut wire).unwrap_or(());
        }
        enc.end(&mut wire).unwrap();

        let mut dec = ResponseDecoder::new();
        let mut buf = Vec::new();
        let mut got_body = Vec::new();
        let mut got_head = None;
        let mut ended = false;
        for chunk in cut(&wire, &points) {
            buf.extend_from_slice(chunk);
            loop {
                let d = dec.decode(&buf).unwrap();
                let n = d.consumed;
                let Some(ev) = d.event else { buf.drain(..n); break };
                match ev {
                    ResponseEvent::Head(h) => {
                        let fields: Vec<(String, Vec<u8>)> =
                            h.headers().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
                        got_head = Some((h.status(), h.reason().to_vec(), fields));
                    }
                    ResponseEvent::Body(b) => got_body.extend_from_slice(b),
                    ResponseEvent::End => ended = true,
                }
                buf.drain(..n);
            }
        }
        prop_assert!(ended && buf.is_empty());
        let (got_status, reason, fields) = got_head.unwrap();
        prop_assert_eq!(got_status, status);
        prop_assert_eq!(reason, codec_http::reason(status).unwrap_or("").as_bytes().to_vec());
        let sent: Vec<(String, Vec<u8>)> =
            headers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(&fields[..sent.len()], &sent[..]);
        let bodiless = status == 204 || status == 304;
        prop_assert_eq!(got_body, if bodiless { Vec::new() } else { body });
    }

    #[test]
    fn requests_round_trip(
        (raw, events) in request(),
    ) {
        // Re-encode the generated request with the client's encoder; the server's decoder
        // must see the same head fields and body.
        let Ev::Head { method, target, headers, .. } = &events[0] else { unreachable!() };
        let body = body_of(&events);
        let plain: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding"))
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let chunked = raw.windows(7).any(|w| w == b"chunked");
        let req = ClientRequest {
            framing: if chunked { Framing::chunked() } else { Framing::length(body.len() as u64) },
            ..ClientRequest::new(method, target, &plain)
        };
        let mut enc = RequestEncoder::new();
        let mut wire = Vec::new();
        enc.head(&req, &mut wire).unwrap();
        enc.body(&body, &mut wire).unwrap();
        enc.end(&mut wire).unwrap();
        let got = decode_chunks_with(Limits::default(), &[&wire]).unwrap();
        let Ev::Head { method: m, target: t, headers: h, .. } = &got[0] else { unreachable!() };
        prop_assert_eq!(m, method);
        prop_assert_eq!(t, target);
        prop_assert_eq!(&h[..plain.len()], &headers[..plain.len()]);
        let got_body = body_of(&got);
        prop_assert_eq!(got_body, body);
        prop_assert!(RequestDecoder::new().is_idle());
    }
}

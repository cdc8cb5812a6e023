//! Shared test helpers: decode a request stream cut in any way into comparable events.
#![allow(dead_code, unreachable_pub)]

use codec_http::{Error, Event, Limits, RequestDecoder, Version};

/// An owned request event, so events of different cuts compare equal.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Ev {
    Head {
        method: String,
        target: Vec<u8>,
        version: Version,
        keep_alive: bool,
        headers: Vec<(String, Vec<u8>)>,
    },
    Body(Vec<u8>),
    End,
}

/// Feeds `chunks` one after another, decoding as far as possible after each; body events
/// are merged so that different cuts compare equal. Stops after a request without
/// keep-alive or a pause (what follows is not for this decoder).
pub fn decode_chunks_with(limits: Limits, chunks: &[&[u8]]) -> Result<Vec<Ev>, Error> {
    let mut dec = RequestDecoder::with_limits(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<Ev> = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let d = dec.decode(&buf)?;
            let consumed = d.consumed;
            let Some(ev) = d.event else {
                buf.drain(..consumed);
                break;
            };
            match ev {
                Event::Head(h) => out.push(Ev::Head {
                    method: h.method().to_owned(),
                    target: h.target().to_vec(),
                    version: h.version(),
                    keep_alive: h.keep_alive(),
                    headers: h
                        .headers()
                        .map(|(n, v)| (n.to_owned(), v.to_vec()))
                        .collect(),
                }),
                Event::Body(b) => {
                    assert!(!b.is_empty(), "empty body event");
                    match out.last_mut() {
                        Some(Ev::Body(prev)) => prev.extend_from_slice(b),
                        _ => out.push(Ev::Body(b.to_vec())),
                    }
                }
                Event::End => out.push(Ev::End),
            }
            buf.drain(..consumed);
        }
    }
    dec.eof(&buf)?;
    Ok(out)
}

pub fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<Ev>, Error> {
    decode_chunks_with(Limits::default(), chunks)
}

/// Every way of cutting `input` in two (for long inputs, 256 evenly spaced ways), byte by
/// byte, and whole.
pub fn cuts(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![input]];
    let step = input.len() / 256 + 1;
    for cut in (0..=input.len()).step_by(step) {
        let (a, b) = input.split_at(cut);
        all.push(vec![a, b]);
    }
    all.push(input.chunks(1).collect());
    all
}

/// Checks that every way of cutting `input` decodes to `expected`.
pub fn every_split(input: &[u8], expected: &[Ev]) {
    for chunks in cuts(input) {
        assert_eq!(
            decode_chunks(&chunks).unwrap(),
            expected,
            "cut into {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }
}

/// Checks that every way of cutting `input` fails with the same error.
pub fn every_split_err_with(limits: Limits, input: &[u8]) -> Error {
    let whole = decode_chunks_with(limits, &[input]).expect_err("the whole input must fail");
    for chunks in cuts(input) {
        let e = decode_chunks_with(limits, &chunks).expect_err("every cut must fail");
        assert_eq!(
            e,
            whole,
            "cut into {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }
    whole
}

pub fn every_split_err(input: &[u8]) -> Error {
    every_split_err_with(Limits::default(), input)
}

pub fn head(method: &str, target: &str, keep_alive: bool, headers: &[(&str, &str)]) -> Ev {
    Ev::Head {
        method: method.into(),
        target: target.as_bytes().to_vec(),
        version: Version::Http11,
        keep_alive,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect(),
    }
}

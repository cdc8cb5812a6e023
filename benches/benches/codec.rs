//! codec-http beside raw `httparse::Request::parse` on the same bytes, in the same run.

use std::hint::black_box;

use benches::GET_6_HEADERS;
use codec_http::{Event, Framing, RequestDecoder, ResponseEncoder, ResponseHead};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_get_6_headers");
    g.throughput(Throughput::Bytes(GET_6_HEADERS.len() as u64));
    g.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut headers);
            black_box(req.parse(black_box(GET_6_HEADERS)).unwrap());
        })
    });
    let mut dec = RequestDecoder::new();
    g.bench_function("codec_http", |b| {
        b.iter(|| {
            let input = black_box(GET_6_HEADERS);
            let d = dec.decode(input).unwrap();
            let n = d.consumed;
            assert!(matches!(d.event, Some(Event::Head(_))));
            let e = dec.decode(&input[n..]).unwrap();
            assert!(matches!(e.event, Some(Event::End)));
            black_box(n)
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let date = codec_http::DateCache::new(1_700_000_000);
    let mut out = Vec::with_capacity(256);
    let mut enc = ResponseEncoder::new();
    c.bench_function("encode_response_head", |b| {
        b.iter(|| {
            out.clear();
            let head = ResponseHead::new(
                200,
                &[("Server", b"http-cluster"), ("Content-Type", b"text/plain")],
                Framing::length(13),
            );
            enc.head(black_box(&head), Some(date.get()), &mut out)
                .unwrap();
            enc.body(b"Hello, World!", &mut out).unwrap();
            enc.end(&mut out).unwrap();
            black_box(out.len())
        })
    });
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

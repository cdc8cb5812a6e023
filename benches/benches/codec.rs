//! codec-http beside raw httparse on the same bytes, in the same run.
//!
//! Run with: `cargo bench -p benches --bench codec -- --warm-up-time 1 --measurement-time 2`.
//! Each `decode_*` group has an `httparse` line (httparse alone: the head, and for the chunked
//! POST `httparse::parse_chunk_size` over the body) and a `codec_http` line (the whole request
//! to its `End`, with every check codec-http makes). docs/benchmarks.md has the figures.

use std::hint::black_box;

use benches::{
    GET_6_HEADERS, GET_20_HEADERS, HEAD_FIELDS, POST_CHUNKED, codec_request, encode_head,
    httparse_request,
};
use codec_http::{DateCache, Framing, RequestDecoder, ResponseEncoder, ResponseHead};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn decode(c: &mut Criterion) {
    for (name, input) in [
        ("decode_get_6_headers", GET_6_HEADERS),
        ("decode_get_20_headers", GET_20_HEADERS),
        ("decode_post_chunked", POST_CHUNKED),
    ] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("httparse", |b| {
            b.iter(|| black_box(httparse_request(black_box(input))))
        });
        let mut dec = RequestDecoder::new();
        g.bench_function("codec_http", |b| {
            b.iter(|| black_box(codec_request(&mut dec, black_box(input))))
        });
        g.finish();
    }
}

fn encode(c: &mut Criterion) {
    let date = DateCache::new(1_700_000_000);
    let mut out = Vec::with_capacity(256);
    let mut enc = ResponseEncoder::new();
    let mut g = c.benchmark_group("encode");
    // The budget's case: a response head (status line, two fields, Content-Length, Date).
    g.bench_function("response_head", |b| {
        b.iter(|| black_box(encode_head(&mut enc, &date, &mut out, false)))
    });
    // The same head with its two fields as one HeaderBlock, checked once (as httpd's hello).
    g.bench_function("response_head_block", |b| {
        b.iter(|| black_box(encode_head(&mut enc, &date, &mut out, true)))
    });
    // The same head with a 13-byte body and the end of the message.
    g.bench_function("response_head_body_end", |b| {
        b.iter(|| {
            out.clear();
            let head = ResponseHead::new(200, black_box(&HEAD_FIELDS), Framing::length(13));
            enc.head(&head, Some(date.get()), &mut out).unwrap();
            enc.body(b"Hello, World!", &mut out).unwrap();
            enc.end(&mut out).unwrap();
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

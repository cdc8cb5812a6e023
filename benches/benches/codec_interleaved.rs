//! The codec pairs of `codec.rs`, timed in alternation: a round of httparse, a round of
//! codec-http, 61 times, then the median and the fastest round of each side and their ratios.
//! On a machine whose load changes while criterion moves from one line to the next, these
//! ratios hold up better; the fastest rounds are the least disturbed. Then the response head
//! of `encode/response_head` (and `_block`), 61 rounds each, against its 50 ns budget.
//!
//! Run with: `cargo bench -p benches --bench codec_interleaved`.

use std::hint::black_box;
use std::time::Instant;

use benches::{
    GET_6_HEADERS, GET_20_HEADERS, POST_CHUNKED, codec_request, encode_head, httparse_request,
};
use codec_http::{DateCache, RequestDecoder, ResponseEncoder};

const ROUNDS: usize = 61;
const PER_ROUND: u32 = 10_000;

/// Nanoseconds per call of `f`, over one round.
fn round(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..PER_ROUND {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(PER_ROUND)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { ROUNDS };
    println!(
        "pair                    httparse ns (median, min)   codec-http ns (median, min)   ratio (medians, mins)"
    );
    for (name, input) in [
        ("decode_get_6_headers", GET_6_HEADERS),
        ("decode_get_20_headers", GET_20_HEADERS),
        ("decode_post_chunked", POST_CHUNKED),
    ] {
        let mut dec = RequestDecoder::new();
        let (mut raw, mut codec) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(round(|| {
                black_box(httparse_request(black_box(input)));
            }));
            codec.push(round(|| {
                black_box(codec_request(&mut dec, black_box(input)));
            }));
        }
        raw.sort_by(f64::total_cmp);
        codec.sort_by(f64::total_cmp);
        let (r, c) = (raw[rounds / 2], codec[rounds / 2]);
        let (rm, cm) = (raw[0], codec[0]);
        println!(
            "{name:24} {r:8.1} {rm:8.1}              {c:8.1} {cm:8.1}                {:.2} {:.2}",
            c / r,
            cm / rm
        );
    }
    // Encoding a head has no httparse side and an absolute budget (50 ns). This machine runs
    // in a fast and a slow phase (httparse's 6-field GET at about 160 ns, or about 270), so
    // each encode round is paired with an httparse round on that GET: its time says which
    // phase the round ran in, and the ratio holds across phases.
    println!(
        "\nencode (+ end)           ns (median, min)   httparse 6-field ns (median, min)   ratio (medians)   budget 50 ns"
    );
    let date = DateCache::new(1_700_000_000);
    let mut out = Vec::with_capacity(256);
    let mut enc = ResponseEncoder::new();
    for (name, block) in [("response_head", false), ("response_head_block", true)] {
        let (mut reference, mut t) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            reference.push(round(|| {
                black_box(httparse_request(black_box(GET_6_HEADERS)));
            }));
            t.push(round(|| {
                black_box(encode_head(&mut enc, &date, &mut out, block));
            }));
        }
        reference.sort_by(f64::total_cmp);
        t.sort_by(f64::total_cmp);
        let (e, r) = (t[rounds / 2], reference[rounds / 2]);
        println!(
            "{name:24} {e:8.1} {:8.1}   {r:8.1} {:8.1}                      {:.3}",
            t[0],
            reference[0],
            e / r
        );
    }
}

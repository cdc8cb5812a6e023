//! Runs one codec operation `N` times, for counting instructions per call under callgrind
//! (repeatable, unlike time on a shared machine): decoding a bench request with codec-http or
//! with httparse, or encoding the bench response head with codec-http (fields as pairs, or
//! as one `HeaderBlock`).
//!
//! ```sh
//! cargo build --release -p benches --example codec_calls
//! for n in 0 10000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!     target/release/examples/codec_calls $n codec get20   # or httparse; get6, get20, post
//! done
//! # instructions per call: (summary of cg.10000 - summary of cg.0) / 10000
//! # encoding: `codec_calls N encode head` or `codec_calls N encode head-block`
//! ```
//!
//! A bad argument prints the usage and exits 2.

use std::hint::black_box;
use std::process::ExitCode;

use codec_http::{DateCache, ResponseEncoder};

const USAGE: &str = "usage: codec_calls N codec|httparse get6|get20|post\n       \
                     codec_calls N encode head|head-block";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|n| n.parse::<usize>().ok());
    let what = (
        args.get(1).map(String::as_str),
        args.get(2).map(String::as_str),
    );
    let Some(n) = n else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let total = match what {
        (Some("encode"), Some("head")) => encode(n, false),
        (Some("encode"), Some("head-block")) => encode(n, true),
        (Some(side @ ("codec" | "httparse")), Some(input)) => {
            let input = match input {
                "get6" => benches::GET_6_HEADERS,
                "get20" => benches::GET_20_HEADERS,
                "post" => benches::POST_CHUNKED,
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            };
            decode(n, side == "codec", input)
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{total}");
    ExitCode::SUCCESS
}

fn decode(n: usize, codec: bool, input: &[u8]) -> usize {
    let mut dec = codec_http::RequestDecoder::new();
    let mut total = 0;
    for _ in 0..n {
        total += if codec {
            benches::codec_request(&mut dec, black_box(input))
        } else {
            benches::httparse_request(black_box(input)).1
        };
    }
    total
}

/// The head of `benches/benches/codec.rs`'s `encode/response_head` (or `_block`), and `end`.
fn encode(n: usize, block: bool) -> usize {
    let date = DateCache::new(1_700_000_000);
    let mut out = Vec::with_capacity(256);
    let mut enc = ResponseEncoder::new();
    let mut total = 0;
    for _ in 0..n {
        total += benches::encode_head(&mut enc, &date, &mut out, block);
    }
    total
}

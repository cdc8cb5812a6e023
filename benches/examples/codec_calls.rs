//! Decodes one bench request `N` times, with codec-http or with httparse, for counting
//! instructions per call under callgrind (repeatable, unlike time on a shared machine):
//!
//! ```sh
//! cargo build --release -p benches --example codec_calls
//! for n in 0 10000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!     target/release/examples/codec_calls $n codec get20   # or httparse; get6, get20, post
//! done
//! # instructions per call: (summary of cg.10000 - summary of cg.0) / 10000
//! ```
//!
//! A bad argument prints the usage and exits 2.

use std::hint::black_box;
use std::process::ExitCode;

const USAGE: &str = "usage: codec_calls N codec|httparse get6|get20|post";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|n| n.parse::<usize>().ok());
    let codec = match args.get(1).map(String::as_str) {
        Some("codec") => Some(true),
        Some("httparse") => Some(false),
        _ => None,
    };
    let input = match args.get(2).map(String::as_str) {
        Some("get6") => Some(benches::GET_6_HEADERS),
        Some("get20") => Some(benches::GET_20_HEADERS),
        Some("post") => Some(benches::POST_CHUNKED),
        _ => None,
    };
    let (Some(n), Some(codec), Some(input)) = (n, codec, input) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut dec = codec_http::RequestDecoder::new();
    let mut total = 0;
    for _ in 0..n {
        total += if codec {
            benches::codec_request(&mut dec, black_box(input))
        } else {
            benches::httparse_request(black_box(input)).1
        };
    }
    println!("{total}");
    ExitCode::SUCCESS
}

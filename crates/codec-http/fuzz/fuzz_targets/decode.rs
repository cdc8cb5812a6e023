//! Any bytes, cut where the first byte says, through both decoders: no panic, no hang.
#![no_main]

use codec_http::{RequestDecoder, ResponseDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let (a, b) = data.split_at(usize::from(cut).min(data.len()));
    let mut req = RequestDecoder::new();
    let mut buf = Vec::new();
    for part in [a, b] {
        buf.extend_from_slice(part);
        while let Ok(d) = req.decode(&buf) {
            let (n, more) = (d.consumed, d.event.is_some());
            buf.drain(..n);
            if !more {
                break;
            }
        }
    }
    let _ = req.eof(&buf);
    let mut res = ResponseDecoder::new();
    let mut rest = data;
    while let Ok(d) = res.decode(rest) {
        let (n, more) = (d.consumed, d.event.is_some());
        rest = &rest[n..];
        if !more {
            break;
        }
    }
    let _ = res.eof(rest);
});

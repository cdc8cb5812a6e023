//! No allocation per message in steady state: 10,000 keep-alive requests decoded and their
//! responses encoded, after a warm-up, allocate nothing (counted by a counting global
//! allocator, per thread). The client role is held to the same.

use codec_http::{
    ClientRequest, DateCache, Event, Framing, RequestDecoder, RequestEncoder, RequestParts,
    ResponseDecoder, ResponseEncoder, ResponseEvent, ResponseHead,
};

/// Three keep-alive requests: a browser-like GET, a POST with a length, a chunked POST with
/// an extension and a trailer.
const REQUESTS: &[u8] = b"GET /plaintext?x=1 HTTP/1.1\r\nHost: localhost:8080\r\n\
Accept: text/plain,text/html;q=0.9\r\nConnection: keep-alive\r\nUser-Agent: wrk\r\n\
Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.5\r\n\r\n\
POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world\
POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n\
5;n=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n";

struct Server {
    dec: RequestDecoder,
    enc: ResponseEncoder,
    date: DateCache,
    out: Vec<u8>,
    kept: RequestParts,
    kept_raw: Vec<u8>,
    body_len: usize,
}

impl Server {
    /// Decodes every request in `input` (arriving in two reads) and answers each.
    fn serve(&mut self, input: &[u8]) -> usize {
        let mut served = 0;
        let (first, second) = input.split_at(input.len() / 2 + 7);
        let mut buf = first;
        let mut carried = 0;
        for part in [first, second] {
            // The caller's buffer: what is left of the last read, then the new bytes. Here the
            // two reads are contiguous in `input`, so a slice of it stands for that buffer.
            let start = part.as_ptr() as usize - input.as_ptr() as usize - carried;
            buf = &input[start..start + carried + part.len()];
            loop {
                let d = self.dec.decode(buf).unwrap();
                let consumed = d.consumed;
                match d.event {
                    Some(Event::Head(h)) => {
                        // Keep the head past the buffer, as httpd's glue does.
                        self.kept_raw.clear();
                        self.kept_raw.extend_from_slice(h.raw());
                        self.kept.clone_from(h.parts());
                        self.enc.head_request(h.method() == "HEAD");
                    }
                    Some(Event::Body(b)) => self.body_len += b.len(),
                    Some(Event::End) => {
                        let view = self.kept.view(&self.kept_raw);
                        let mut len = itoa::Buffer::new();
                        let fields: [(&str, &[u8]); 2] = [
                            ("Server", b"codec-http"),
                            ("X-Path-Len", len.format(view.path().len()).as_bytes()),
                        ];
                        let head = ResponseHead::new(200, &fields, Framing::length(2));
                        self.enc
                            .head(&head, Some(self.date.get()), &mut self.out)
                            .unwrap();
                        self.enc.body(b"ok", &mut self.out).unwrap();
                        self.enc.end(&mut self.out).unwrap();
                        served += 1;
                    }
                    None => {
                        buf = &buf[consumed..];
                        carried = buf.len();
                        break;
                    }
                }
                buf = &buf[consumed..];
            }
        }
        assert!(buf.is_empty() && self.dec.is_idle());
        served
    }
}

#[test]
fn ten_thousand_keep_alive_requests_allocate_nothing() {
    let mut server = Server {
        dec: RequestDecoder::new(),
        enc: ResponseEncoder::new(),
        date: DateCache::new(1_700_000_000),
        out: Vec::with_capacity(64 * 1024),
        kept: RequestParts::default(),
        kept_raw: Vec::new(),
        body_len: 0,
    };
    // Warm-up: buffers reach their working size.
    for _ in 0..10 {
        server.serve(REQUESTS);
        server.out.clear();
    }
    let mut served = 0;
    let info = allocation_counter::measure(|| {
        while served < 10_000 {
            served += server.serve(REQUESTS);
            server.date.update(1_700_000_000 + served as u64 / 3000);
            server.out.clear();
        }
    });
    assert!(served >= 10_000);
    assert_eq!(server.body_len, (10 + served / 3) * 22);
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn the_client_role_allocates_nothing_either() {
    let mut enc = RequestEncoder::new();
    let mut dec = ResponseDecoder::new();
    let mut out = Vec::with_capacity(4096);
    let responses: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
2\r\nok\r\n0\r\nX-T: 1\r\n\r\n";
    let mut round = |out: &mut Vec<u8>| {
        out.clear();
        let req = ClientRequest {
            framing: Framing::length(2),
            ..ClientRequest::new(
                "POST",
                b"/x",
                &[("Host", b"h"), ("Expect", b"100-continue")],
            )
        };
        enc.head(&req, out).unwrap();
        enc.body(b"hi", out).unwrap();
        enc.end(out).unwrap();
        let mut buf = responses;
        let mut ends = 0;
        while ends < 2 {
            let d = dec.decode(buf).unwrap();
            if let Some(ResponseEvent::End) = d.event {
                ends += 1;
            }
            buf = &buf[d.consumed..];
        }
        assert!(buf.is_empty());
    };
    for _ in 0..10 {
        round(&mut out);
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..5_000 {
            round(&mut out);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

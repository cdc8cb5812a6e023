//! Inputs and loops shared by the benches under `benches/`: requests as clients send them,
//! and the two ways of reading them that the codec benches compare.
#![forbid(unsafe_code)]

use codec_http::{
    DateCache, Event, Framing, HeaderBlock, RequestDecoder, ResponseEncoder, ResponseHead,
};

/// httparse on a head, as a server using it directly would (32 header slots); returns the
/// head's length.
///
/// # Panics
/// If `input` does not start with a complete, valid head (the bench inputs do).
pub fn httparse_head(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => panic!("a complete head"),
    }
}

/// httparse's chunk-size parser over a chunked body, as a server using it would; returns the
/// body's length.
///
/// # Panics
/// If `body` is not a complete chunked body.
pub fn httparse_chunks(mut body: &[u8]) -> usize {
    let mut total = 0;
    loop {
        let Ok(httparse::Status::Complete((n, size))) = httparse::parse_chunk_size(body) else {
            panic!("a chunk size");
        };
        body = &body[n..];
        if size == 0 {
            return total;
        }
        total += size as usize;
        body = &body[size as usize + 2..];
    }
}

/// The httparse side of a pair: the head, then a chunked body if there is one.
pub fn httparse_request(input: &[u8]) -> (usize, usize) {
    let n = httparse_head(input);
    let body = if n < input.len() {
        httparse_chunks(&input[n..])
    } else {
        0
    };
    (n, body)
}

/// The codec-http side of a pair: the whole request, head to `End`; returns the body length.
///
/// # Panics
/// If `input` is not one complete, valid request.
pub fn codec_request(dec: &mut RequestDecoder, mut input: &[u8]) -> usize {
    let mut body = 0;
    loop {
        let d = dec.decode(input).expect("a valid request");
        match d.event {
            Some(Event::Head(_)) => {}
            Some(Event::Body(b)) => body += b.len(),
            Some(Event::End) => return body,
            None => panic!("a complete request"),
        }
        input = &input[d.consumed..];
    }
}

/// The bench response head's two fields, as pairs (criterion's `encode/response_head`).
pub const HEAD_FIELDS: [(&str, &[u8]); 2] =
    [("Server", b"http-cluster"), ("Content-Type", b"text/plain")];

/// The same two fields as one block, checked when compiled (`encode/response_head_block`,
/// as httpd's hello app sends them).
pub const HEAD_BLOCK: HeaderBlock<'static> =
    HeaderBlock::checked(b"Server: http-cluster\r\nContent-Type: text/plain\r\n");

/// Encodes the bench response head (200, the two fields as pairs or as `HEAD_BLOCK`,
/// `Content-Length: 0`, `Date`) into `out`, cleared first, and ends the message; returns
/// the head's length.
///
/// # Panics
/// If the encoder refuses (it is between messages and the head is valid, so it does not).
pub fn encode_head(
    enc: &mut ResponseEncoder,
    date: &DateCache,
    out: &mut Vec<u8>,
    block: bool,
) -> usize {
    out.clear();
    let head = if block {
        ResponseHead::new(200, &[], Framing::length(0)).with_block(std::hint::black_box(HEAD_BLOCK))
    } else {
        ResponseHead::new(200, std::hint::black_box(&HEAD_FIELDS), Framing::length(0))
    };
    enc.head(&head, Some(date.get()), out)
        .expect("a valid head");
    enc.end(out).expect("a complete message");
    out.len()
}

/// A 6-header plaintext GET (TechEmpower's plaintext request, as wrk sends it).
pub const GET_6_HEADERS: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
\r\n";

/// A 20-header GET as a desktop browser sends it (navigation with cookies and client hints).
pub const GET_20_HEADERS: &[u8] = b"GET /articles/2024/http-parsing?page=2&sort=new HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/articles/2024/http-parsing\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n\
Cookie: session=8f2b1c9e4a7d4e0fb3c2a1d0e9f8a7b6; theme=dark; _ga=GA1.2.123456789.1700000000\r\n\
If-None-Match: \"5f3c-1a2b3c4d\"\r\n\
If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n\
Priority: u=0, i\r\n\
\r\n";

/// A chunked POST: a 5-header head and a 1 KiB body in four chunks, one with an extension,
/// and a trailer.
pub const POST_CHUNKED: &[u8] = b"POST /upload HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Type: application/octet-stream\r\n\
Transfer-Encoding: chunked\r\n\
\r\n\
100\r\n\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\
100;part=2\r\n\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\
100\r\n\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\
100\r\n\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\
0\r\n\
X-Checksum: 8c1f\r\n\
\r\n";

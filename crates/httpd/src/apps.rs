//! httpd's built-in apps: `path` (the seed's app, line for line), `hello` (TechEmpower
//! plaintext) and `echo` (how the server read the request, as JSON).

use std::future::Future;

use futures_io::{AsyncRead, AsyncWrite};

use crate::handler::Response;
use crate::http::{Head, HeaderBlock, HttpError, Item, Reader, Request, Writer};

/// The seed's app (Luvit's `bench/http-cluster/app.lua`): answers every request with its path
/// and a newline, as `text/plain`, keeping the connection alive when the client does.
///
/// ```lua
/// for req in read do
///   repeat local chunk = read() until not chunk or chunk == ""
///   local body = req.path .. "\n"
///   write({ code = 200, {"Server","Luvit"}, {"Content-Type","text/plain"},
///           {"Content-Length", #body}, req.keepAlive and {"Connection","Keep-Alive"} or nil })
///   write(body)
///   if not req.keepAlive then break end
/// end
/// write()
/// ```
///
/// (Written as a function returning an `async move` block rather than an `async fn`: an
/// `async fn` keeps its arguments twice in its future, and this future lives as long as the
/// connection, idle or not.)
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn path<S>(
    mut read: Reader<S>,
    mut write: Writer<S>,
) -> impl Future<Output = Result<(), HttpError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async move {
        let mut body = Vec::new(); // reused: no allocation per request
        // (`match`, not `while let`: the item read is not kept across the awaits below.)
        loop {
            let keep_alive = match read.read().await? {
                Some(Item::Head(req)) => {
                    body.clear();
                    body.extend_from_slice(req.target());
                    body.push(b'\n'); // local body = req.path .. "\n"
                    req.keep_alive()
                }
                _ => break,
            };
            while let Some(Item::Body(_)) = read.read().await? {} // drain the body to its End
            {
                // In a block, sent without waiting: the head is gone before the next await,
                // so the connection's future keeps no room for it.
                let mut head = Head::new(200);
                head.header("Server", "http-cluster");
                head.header("Content-Type", "text/plain");
                head.header("Content-Length", body.len());
                if keep_alive {
                    head.header("Connection", "keep-alive");
                }
                write.send(&head)?;
            }
            write.write(&body).await?;
            if !keep_alive {
                break;
            }
        }
        write.close().await?; // write(): flush and shut the connection down
        Ok(())
    }
}

/// TechEmpower's plaintext test: `Hello, World!` for every request. The fields that never
/// change are one [`HeaderBlock`], checked when compiled and copied as they are.
#[allow(clippy::manual_async_fn)] // as `path`: no second copy of the arguments
pub fn hello<S>(
    mut read: Reader<S>,
    mut write: Writer<S>,
) -> impl Future<Output = Result<(), HttpError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    const BODY: &[u8] = b"Hello, World!";
    const FIELDS: HeaderBlock<'static> =
        HeaderBlock::checked(b"Server: http-cluster\r\nContent-Type: text/plain\r\n");
    async move {
        loop {
            // As in `path`: the item is not kept across the awaits below.
            let keep_alive = match read.read().await? {
                Some(Item::Head(req)) => req.keep_alive(),
                _ => break,
            };
            while let Some(Item::Body(_)) = read.read().await? {}
            {
                // As in `path`: no room for the head in the connection's future.
                let mut head = Head::new(200);
                head.block(FIELDS);
                head.header("Content-Length", BODY.len());
                write.send(&head)?;
            }
            write.write(BODY).await?;
            if !keep_alive {
                break;
            }
        }
        write.close().await?;
        Ok(())
    }
}

/// How the server read the request, as the JSON body of a 200 (`application/json`):
/// `{"method": …, "target": …, "version": …, "headers": [[name, value], …], "body_b64": …}`.
/// Headers come in arrival order with case and duplicates kept (trailer fields of a chunked
/// body last); method, target, names and
/// values map each byte to the code point of the same value, so the JSON is exact for any
/// byte; the body is base64. Use it with [`Handler`](crate::handler::Handler).
pub fn echo(req: &Request) -> Response {
    let mut out = Vec::with_capacity(256 + req.body.len() * 4 / 3);
    out.extend_from_slice(b"{\"method\": ");
    json_latin1(req.method().as_bytes(), &mut out);
    out.extend_from_slice(b", \"target\": ");
    json_latin1(req.target(), &mut out);
    out.extend_from_slice(b", \"version\": ");
    json_latin1(req.version().as_str().as_bytes(), &mut out);
    out.extend_from_slice(b", \"headers\": [");
    let trailers = req.trailers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    for (i, (name, value)) in req.headers().chain(trailers).enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.push(b'[');
        json_latin1(name.as_bytes(), &mut out);
        out.extend_from_slice(b", ");
        json_latin1(value, &mut out);
        out.push(b']');
    }
    out.extend_from_slice(b"], \"body_b64\": \"");
    base64(&req.body, &mut out);
    out.extend_from_slice(b"\"}\n");
    Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_body(out)
}

/// A JSON string whose code points are the bytes of `bytes` (latin-1), escaped as JSON needs.
fn json_latin1(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            0x80..=0xff => {
                // U+0080..U+00FF in UTF-8.
                out.push(0xc0 | (b >> 6));
                out.push(0x80 | (b & 0x3f));
            }
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
    }
    out.push(b'"');
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64(input.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn every_byte_maps_to_its_code_point() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        json_latin1(&bytes, &mut out);
        let text = String::from_utf8(out).unwrap();
        // Decode the JSON string by hand: escapes and UTF-8 back to code points.
        let inner = &text[1..text.len() - 1];
        let mut decoded = Vec::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next().unwrap() {
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        decoded.push(u32::from_str_radix(&hex, 16).unwrap());
                    }
                    e => decoded.push(e as u32),
                }
            } else {
                decoded.push(c as u32);
            }
        }
        assert_eq!(decoded, (0..=255).collect::<Vec<u32>>());
    }
}

//! `drip`: a diagnostic app that streams a response slowly, like httpbin's `/drip`, to watch
//! what a drain, a reload or an upgrade does to a response in flight.
//!
//! `GET /anything?chunks=N&size=BYTES&delay=MS` answers 200 with `Content-Length: N*BYTES`
//! and sends the body as `N` chunks of `BYTES` bytes, flushing each and waiting `MS`
//! milliseconds between two. Chunk `i` (from 0) is `BYTES` copies of the letter
//! `b'a' + i % 26`, so a client can check the body byte for byte ([`body`]). Defaults:
//! 10 chunks of 10 bytes, 100 ms apart. A query that does not parse, or asks for more than
//! [`MAX_CHUNKS`] chunks, [`MAX_SIZE`] bytes per chunk or [`MAX_DELAY`], gets 400.

use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

use crate::http::{Head, HttpError, Item, Reader, Writer};

/// Most chunks per response.
pub const MAX_CHUNKS: u64 = 100_000;
/// Largest chunk.
pub const MAX_SIZE: u64 = 1 << 20;
/// Longest wait between two chunks.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// What a drip request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drip {
    /// Number of chunks.
    pub chunks: u64,
    /// Bytes per chunk.
    pub size: u64,
    /// Wait between two chunks.
    pub delay: Duration,
}

impl Default for Drip {
    fn default() -> Drip {
        Drip {
            chunks: 10,
            size: 10,
            delay: Duration::from_millis(100),
        }
    }
}

impl Drip {
    /// Reads `chunks`, `size` and `delay` (milliseconds) from a request target's query.
    ///
    /// # Errors
    /// A message for the 400 body: an unknown key, a value that is not a number, or one over
    /// its limit.
    pub fn from_target(target: &[u8]) -> Result<Drip, String> {
        let mut d = Drip::default();
        let Some(q) = target.iter().position(|&b| b == b'?') else {
            return Ok(d);
        };
        let query = std::str::from_utf8(&target[q + 1..]).map_err(|_| "query is not UTF-8")?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let n: u64 = v
                .parse()
                .map_err(|_| format!("{k}={v:?} is not a number"))?;
            match k {
                "chunks" if n <= MAX_CHUNKS => d.chunks = n,
                "size" if n <= MAX_SIZE => d.size = n,
                "delay" if n <= MAX_DELAY.as_millis() as u64 => d.delay = Duration::from_millis(n),
                "chunks" | "size" | "delay" => return Err(format!("{k}={n} is over the limit")),
                _ => return Err(format!("unknown parameter {k:?} (chunks, size, delay)")),
            }
        }
        Ok(d)
    }
}

/// The body a drip of `chunks` chunks of `size` bytes sends.
pub fn body(chunks: u64, size: u64) -> Vec<u8> {
    (0..chunks)
        .flat_map(|i| std::iter::repeat_n(b'a' + (i % 26) as u8, size as usize))
        .collect()
}

/// The app (see the [module docs](self)).
pub async fn drip<S>(mut read: Reader<S>, mut write: Writer<S>) -> Result<(), HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut chunk = Vec::new();
    while let Some(Item::Head(req)) = read.read().await? {
        while let Some(Item::Body(_)) = read.read().await? {}
        let d = match Drip::from_target(req.target()) {
            Ok(d) => d,
            Err(msg) => {
                let msg = format!("{msg}\n");
                let mut head = Head::new(400);
                head.header("Content-Type", "text/plain");
                head.header("Content-Length", msg.len());
                write.write(&head).await?;
                write.write(msg.as_bytes()).await?;
                if !req.keep_alive() {
                    break;
                }
                continue;
            }
        };
        let mut head = Head::new(200);
        head.header("Server", "http-cluster");
        head.header("Content-Type", "application/octet-stream");
        head.header("Content-Length", d.chunks * d.size);
        write.write(&head).await?;
        write.flush().await?;
        for i in 0..d.chunks {
            if i > 0 {
                uvlite::sleep(d.delay).await;
            }
            chunk.clear();
            chunk.resize(d.size as usize, b'a' + (i % 26) as u8);
            write.write(&chunk).await?;
            write.flush().await?;
        }
        if !req.keep_alive() {
            break;
        }
    }
    write.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_sets_chunks_size_and_delay_within_limits() {
        assert_eq!(Drip::from_target(b"/drip"), Ok(Drip::default()));
        assert_eq!(
            Drip::from_target(b"/drip?chunks=3&size=5&delay=250"),
            Ok(Drip {
                chunks: 3,
                size: 5,
                delay: Duration::from_millis(250)
            })
        );
        assert!(Drip::from_target(b"/?chunks=x").is_err());
        assert!(Drip::from_target(b"/?size=2000000").is_err());
        assert!(Drip::from_target(b"/?delay=60001").is_err());
        assert!(Drip::from_target(b"/?colour=blue").is_err());
        assert_eq!(body(3, 2), b"aabbcc");
        assert_eq!(body(27, 1)[26], b'a');
    }
}

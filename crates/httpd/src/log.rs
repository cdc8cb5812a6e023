//! The access log: off by default; Common Log Format lines, buffered per worker and written
//! when the buffer fills, once a second, and when the worker stops.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;

/// Bytes buffered before a write.
const FLUSH_AT: usize = 32 * 1024;

struct Log {
    out: Box<dyn Write>,
    buf: Vec<u8>,
}

thread_local! {
    static LOG: RefCell<Option<Log>> = const { RefCell::new(None) };
}

/// Where the access log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file, appended to (opened by each worker, `O_APPEND`, so lines never interleave
    /// within a write).
    File(std::path::PathBuf),
}

/// Starts logging on this thread.
///
/// # Errors
/// The file cannot be opened for appending.
pub fn init(target: &Target) -> io::Result<()> {
    let out: Box<dyn Write> = match target {
        Target::Stdout => Box::new(io::stdout()),
        Target::File(p) => Box::new(open(p)?),
    };
    LOG.with(|l| {
        *l.borrow_mut() = Some(Log {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 512),
        })
    });
    Ok(())
}

fn open(p: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

/// Whether this thread logs.
pub fn enabled() -> bool {
    LOG.with(|l| l.borrow().is_some())
}

/// Appends one line: `host - - [date] "request line" status bytes`.
pub(crate) fn record(peer: Option<SocketAddr>, request_line: &[u8], status: u16, bytes: u64) {
    LOG.with(|l| {
        let mut l = l.borrow_mut();
        let Some(log) = l.as_mut() else {
            return;
        };
        let b = &mut log.buf;
        match peer {
            Some(p) => {
                let _ = write!(b, "{}", p.ip());
            }
            None => b.push(b'-'),
        }
        b.extend_from_slice(b" - - [");
        crate::http::with_date(|d| clf_date(d, b));
        b.extend_from_slice(b"] \"");
        for &c in request_line {
            // Escape what would break the line apart or be read as a quote.
            match c {
                b'"' | b'\\' => {
                    b.push(b'\\');
                    b.push(c);
                }
                0x20..=0x7e => b.push(c),
                _ => {
                    let _ = write!(b, "\\x{c:02x}");
                }
            }
        }
        b.extend_from_slice(b"\" ");
        b.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
        b.push(b' ');
        if bytes == 0 {
            b.push(b'-');
        } else {
            b.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes());
        }
        b.push(b'\n');
        if b.len() >= FLUSH_AT {
            flush_log(log);
        }
    });
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → `06/Nov/1994:08:49:37 +0000`.
fn clf_date(imf: &[u8; codec_http::DATE_LEN], out: &mut Vec<u8>) {
    out.extend_from_slice(&imf[5..7]);
    out.push(b'/');
    out.extend_from_slice(&imf[8..11]);
    out.push(b'/');
    out.extend_from_slice(&imf[12..16]);
    out.push(b':');
    out.extend_from_slice(&imf[17..25]);
    out.extend_from_slice(b" +0000");
}

fn flush_log(log: &mut Log) {
    if !log.buf.is_empty() {
        if let Err(e) = log.out.write_all(&log.buf).and_then(|()| log.out.flush()) {
            eprintln!("httpd: access log: {e}");
        }
        log.buf.clear();
    }
}

/// Writes out the buffered lines.
pub fn flush() {
    LOG.with(|l| {
        if let Some(log) = l.borrow_mut().as_mut() {
            flush_log(log);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_date_from_imf() {
        let mut out = Vec::new();
        clf_date(b"Sun, 06 Nov 1994 08:49:37 GMT", &mut out);
        assert_eq!(out, b"06/Nov/1994:08:49:37 +0000");
    }
}

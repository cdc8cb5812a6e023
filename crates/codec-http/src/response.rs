//! The server side of the wire: encoding responses.

use crate::error::{Error, ErrorKind};
use crate::{DATE_LEN, tchar};

/// How a message body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`; exactly `n` body bytes must follow.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing header; the body runs until the connection closes (HTTP/1.0 style). The
    /// caller must close the connection after the message.
    CloseDelimited,
}

impl Framing {
    /// `Content-Length: n`.
    pub const fn length(n: u64) -> Framing {
        Framing::Length(n)
    }

    /// `Transfer-Encoding: chunked`.
    pub const fn chunked() -> Framing {
        Framing::Chunked
    }
}

/// A response head to encode.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    /// Status code, 100..=999.
    pub status: u16,
    /// Reason phrase; `None` uses the registered one (or an empty phrase).
    pub reason: Option<&'a str>,
    /// Header fields, written in order. `Content-Length` and `Transfer-Encoding` are not
    /// allowed here: they come from `framing`.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// How the body is delimited. Ignored for 1xx and 204, which have no body and no framing
    /// header; a 304 writes its `Content-Length` but no body.
    pub framing: Framing,
}

impl<'a> ResponseHead<'a> {
    /// A head with the registered reason phrase.
    pub fn new(status: u16, headers: &'a [(&'a str, &'a [u8])], framing: Framing) -> Self {
        ResponseHead {
            status,
            reason: None,
            headers,
            framing,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Ready for a head.
    Idle,
    /// Inside a body of known length; `discard` drops body bytes (HEAD, 304).
    Length { remaining: u64, discard: bool },
    /// Inside a chunked body.
    Chunked { discard: bool },
    /// Inside a close-delimited body.
    Close { discard: bool },
    /// A message that has no body at all (204, 1xx final state never reached).
    NoBody,
}

/// Encodes HTTP/1.1 responses into a caller's `Vec<u8>`.
///
/// The encoder frames the body by what the head declared: with [`Framing::Length`] it checks
/// that exactly that many bytes are written, with [`Framing::Chunked`] it wraps each
/// [`body`](ResponseEncoder::body) in a chunk. For a response to HEAD (see
/// [`head_request`](ResponseEncoder::head_request)), and for 204 and 304, body bytes are
/// dropped. Header names must be tokens; CR, LF or NUL in a value is an error, never stripped.
///
/// # Examples
/// ```
/// use codec_http::{Framing, ResponseEncoder, ResponseHead};
///
/// let mut enc = ResponseEncoder::new();
/// let mut out = Vec::new();
/// let head = ResponseHead::new(200, &[("Content-Type", b"text/plain")], Framing::length(5));
/// enc.head(&head, None, &mut out).unwrap();
/// enc.body(b"hello", &mut out).unwrap();
/// enc.end(&mut out).unwrap();
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
/// ```
#[derive(Debug)]
pub struct ResponseEncoder {
    state: State,
    head_request: bool,
}

impl Default for ResponseEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseEncoder {
    /// A new encoder, ready for a head.
    pub fn new() -> ResponseEncoder {
        ResponseEncoder {
            state: State::Idle,
            head_request: false,
        }
    }

    /// Says whether the request being answered is a HEAD: its response carries the head only.
    pub fn head_request(&mut self, is_head: bool) {
        self.head_request = is_head;
    }

    /// Whether the current message needs nothing more before [`end`](ResponseEncoder::end):
    /// it has no body, its body is dropped (HEAD, 304), or its `Content-Length` is reached.
    pub fn is_complete(&self) -> bool {
        match self.state {
            State::NoBody => true,
            State::Length { remaining, discard } => remaining == 0 || discard,
            State::Chunked { discard } | State::Close { discard } => discard,
            State::Idle => false,
        }
    }

    /// Whether the encoder is between messages.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Writes a status line and header fields; `date` adds a `Date` field.
    ///
    /// An interim (1xx) response leaves the encoder ready for the final response.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] inside a message, [`ErrorKind::InvalidStatusCode`],
    /// [`ErrorKind::InvalidHeaderField`], [`ErrorKind::FramingHeader`]. Nothing is written
    /// on error.
    pub fn head(
        &mut self,
        head: &ResponseHead<'_>,
        date: Option<&[u8; DATE_LEN]>,
        dst: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.state != State::Idle {
            return Err(ErrorKind::InvalidState.into());
        }
        let status = head.status;
        if !(100..=999).contains(&status) {
            return Err(ErrorKind::InvalidStatusCode.into());
        }
        let reason = head.reason.or_else(|| crate::reason(status)).unwrap_or("");
        if !valid_value(reason.as_bytes()) {
            return Err(ErrorKind::InvalidHeaderField.into());
        }
        for (name, value) in head.headers {
            check_field(name.as_bytes(), value)?;
        }
        let informational = status < 200;
        let no_body = informational || status == 204;
        let start = dst.len();
        dst.extend_from_slice(b"HTTP/1.1 ");
        dst.extend_from_slice(&[
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
            b' ',
        ]);
        dst.extend_from_slice(reason.as_bytes());
        dst.extend_from_slice(b"\r\n");
        for (name, value) in head.headers {
            dst.extend_from_slice(name.as_bytes());
            dst.extend_from_slice(b": ");
            dst.extend_from_slice(value);
            dst.extend_from_slice(b"\r\n");
        }
        if !no_body {
            match head.framing {
                Framing::Length(n) => {
                    dst.extend_from_slice(b"Content-Length: ");
                    dst.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    dst.extend_from_slice(b"\r\n");
                }
                Framing::Chunked => dst.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                Framing::CloseDelimited => {}
            }
        }
        if let Some(date) = date {
            dst.extend_from_slice(b"Date: ");
            dst.extend_from_slice(date);
            dst.extend_from_slice(b"\r\n");
        }
        dst.extend_from_slice(b"\r\n");
        debug_assert!(dst.len() > start);

        if informational {
            return Ok(());
        }
        let discard = self.head_request || status == 304;
        self.state = if status == 204 {
            State::NoBody
        } else {
            match head.framing {
                Framing::Length(n) => State::Length {
                    remaining: n,
                    discard,
                },
                Framing::Chunked => State::Chunked { discard },
                Framing::CloseDelimited => State::Close { discard },
            }
        };
        Ok(())
    }

    /// Writes body bytes, framed as the head declared.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyNotAllowed`] for a 204,
    /// [`ErrorKind::BodyTooLong`] past the declared `Content-Length`.
    pub fn body(&mut self, chunk: &[u8], dst: &mut Vec<u8>) -> Result<(), Error> {
        match &mut self.state {
            State::Idle => Err(ErrorKind::InvalidState.into()),
            State::NoBody if chunk.is_empty() => Ok(()),
            State::NoBody => Err(ErrorKind::BodyNotAllowed.into()),
            State::Length { remaining, discard } => {
                let n = chunk.len() as u64;
                if n > *remaining {
                    return Err(ErrorKind::BodyTooLong.into());
                }
                *remaining -= n;
                if !*discard {
                    dst.extend_from_slice(chunk);
                }
                Ok(())
            }
            State::Chunked { discard } => {
                if !*discard && !chunk.is_empty() {
                    write_chunk_size(chunk.len(), dst);
                    dst.extend_from_slice(chunk);
                    dst.extend_from_slice(b"\r\n");
                }
                Ok(())
            }
            State::Close { discard } => {
                if !*discard {
                    dst.extend_from_slice(chunk);
                }
                Ok(())
            }
        }
    }

    /// Ends the message (the last chunk for a chunked body).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyTooShort`] if fewer
    /// bytes than the declared `Content-Length` were written (the connection must then close).
    pub fn end(&mut self, dst: &mut Vec<u8>) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        self.head_request = false;
        match state {
            State::Idle => Err(ErrorKind::InvalidState.into()),
            State::Length {
                remaining,
                discard: false,
            } if remaining > 0 => Err(ErrorKind::BodyTooShort.into()),
            State::Chunked { discard: false } => {
                dst.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn write_chunk_size(n: usize, dst: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    let mut i = 16;
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = HEX[v & 0xf];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    dst.extend_from_slice(&buf[i..]);
}

/// Checks one outgoing field: a token name that is not a framing header, and a value without
/// CR, LF or NUL.
pub(crate) fn check_field(name: &[u8], value: &[u8]) -> Result<(), Error> {
    if name.is_empty() || !name.iter().all(|&b| tchar(b)) || !valid_value(value) {
        return Err(ErrorKind::InvalidHeaderField.into());
    }
    if name.eq_ignore_ascii_case(b"content-length")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
    {
        return Err(ErrorKind::FramingHeader.into());
    }
    Ok(())
}

fn valid_value(v: &[u8]) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, v).is_none()
}

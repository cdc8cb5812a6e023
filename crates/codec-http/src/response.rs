//! Encoding messages: the server's response encoder, and the body framing both encoders share.

use crate::error::{Error, ErrorKind};
use crate::swar::{HIGH, ONES, word};
use crate::{DATE_LEN, HeaderBlock};

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
    /// Fields checked once and written as they are, before `headers` (empty by default).
    pub block: HeaderBlock<'a>,
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
            block: HeaderBlock::EMPTY,
            headers,
            framing,
        }
    }

    /// This head with `block` written before its `headers`.
    pub fn with_block(self, block: HeaderBlock<'a>) -> Self {
        ResponseHead { block, ..self }
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
    /// A message that has no body at all (204).
    NoBody,
}

/// Frames body bytes as a head declared; shared by [`ResponseEncoder`] and
/// [`RequestEncoder`](crate::RequestEncoder).
#[derive(Debug)]
pub(crate) struct BodyEncoder {
    state: State,
}

impl BodyEncoder {
    pub(crate) const fn new() -> BodyEncoder {
        BodyEncoder { state: State::Idle }
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    pub(crate) fn is_complete(&self) -> bool {
        match self.state {
            State::NoBody => true,
            State::Length { remaining, discard } => remaining == 0 || discard,
            State::Chunked { discard } | State::Close { discard } => discard,
            State::Idle => false,
        }
    }

    /// Starts a body: `None` for a message that cannot have one.
    pub(crate) fn start(&mut self, framing: Option<Framing>, discard: bool) {
        self.state = match framing {
            None => State::NoBody,
            Some(Framing::Length(n)) => State::Length {
                remaining: n,
                discard,
            },
            Some(Framing::Chunked) => State::Chunked { discard },
            Some(Framing::CloseDelimited) => State::Close { discard },
        };
    }

    pub(crate) fn body(&mut self, chunk: &[u8], dst: &mut Vec<u8>) -> Result<(), Error> {
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

    pub(crate) fn end(&mut self, dst: &mut Vec<u8>) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Idle);
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

/// Encodes HTTP/1.1 responses into a caller's `Vec<u8>` (the server's side).
///
/// The encoder frames the body by what the head declared: with [`Framing::Length`] it checks
/// that exactly that many bytes are written, with [`Framing::Chunked`] it wraps each
/// [`body`](ResponseEncoder::body) in a chunk. For a response to HEAD (see
/// [`head_request`](ResponseEncoder::head_request)), and for 304, body bytes are dropped; a
/// 204 or 1xx has no body and no framing field. Header names must be tokens; CR, LF or NUL in
/// a value is an error, never stripped.
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
    body: BodyEncoder,
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
            body: BodyEncoder::new(),
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
        self.body.is_complete()
    }

    /// Whether the encoder is between messages.
    pub fn is_idle(&self) -> bool {
        self.body.is_idle()
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
        if !self.body.is_idle() {
            return Err(ErrorKind::InvalidState.into());
        }
        let status = head.status;
        if !(100..=999).contains(&status) {
            return Err(ErrorKind::InvalidStatusCode.into());
        }
        let line = match head.reason {
            None => crate::status::status_line(status),
            Some(_) => None,
        };
        let reason = match head.reason {
            Some(r) if !valid_value(r.as_bytes()) => {
                return Err(ErrorKind::InvalidHeaderField.into());
            }
            Some(r) => r,
            None => "",
        };
        let fields = check_fields(head.headers)?;
        let informational = status < 200;
        let no_body = informational || status == 204;
        let mut num = itoa::Buffer::new();
        let (framing, digits): (&[u8], &[u8]) = match head.framing {
            _ if no_body => (b"", b""),
            Framing::Length(n) => (b"Content-Length: ", num.format(n).as_bytes()),
            Framing::Chunked => (b"Transfer-Encoding: chunked", b""),
            Framing::CloseDelimited => (b"", b""),
        };
        let framing_len = match framing.len() + digits.len() {
            0 => 0,
            n => n + 2,
        };
        let line_len = line.map_or(13 + reason.len() + 2, <[u8]>::len);
        let block = head.block.as_bytes();
        let len = line_len
            + block.len()
            + fields
            + framing_len
            + if date.is_some() { DATE_FIELD_LEN } else { 0 }
            + 2;
        // The head's bytes are counted above: one `resize` makes room for all of them, and
        // each piece is then copied into its place, with word moves for short pieces rather
        // than a `memcpy` call and a capacity check each.
        let at = dst.len();
        dst.resize(at + len, 0);
        let buf = &mut dst[at..];
        let mut pos = match line {
            Some(line) => put(buf, 0, line),
            None => {
                buf[..13].copy_from_slice(&status_start(status));
                let pos = put(buf, 13, reason.as_bytes());
                put(buf, pos, b"\r\n")
            }
        };
        pos = put(buf, pos, block);
        for (name, value) in head.headers {
            pos = put(buf, pos, name.as_bytes());
            pos = put(buf, pos, b": ");
            pos = put(buf, pos, value);
            pos = put(buf, pos, b"\r\n");
        }
        if framing_len > 0 {
            pos = put(buf, pos, framing);
            pos = put(buf, pos, digits);
            pos = put(buf, pos, b"\r\n");
        }
        if let Some(date) = date {
            let field = &mut buf[pos..pos + DATE_FIELD_LEN];
            field[..6].copy_from_slice(b"Date: ");
            field[6..6 + DATE_LEN].copy_from_slice(date);
            field[6 + DATE_LEN..].copy_from_slice(b"\r\n");
            pos += DATE_FIELD_LEN;
        }
        put(buf, pos, b"\r\n");
        debug_assert_eq!(pos + 2, len);

        if informational {
            return Ok(());
        }
        let discard = self.head_request || status == 304;
        self.body.start(
            if status == 204 {
                None
            } else {
                Some(head.framing)
            },
            discard,
        );
        Ok(())
    }

    /// Writes body bytes, framed as the head declared.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyNotAllowed`] for a 204,
    /// [`ErrorKind::BodyTooLong`] past the declared `Content-Length`.
    pub fn body(&mut self, chunk: &[u8], dst: &mut Vec<u8>) -> Result<(), Error> {
        self.body.body(chunk, dst)
    }

    /// Ends the message (the last chunk for a chunked body).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] outside a message, [`ErrorKind::BodyTooShort`] if fewer
    /// bytes than the declared `Content-Length` were written (the connection must then close).
    pub fn end(&mut self, dst: &mut Vec<u8>) -> Result<(), Error> {
        self.head_request = false;
        self.body.end(dst)
    }
}

/// `HTTP/1.1 NNN ` for a status without a registered phrase, or with another.
fn status_start(status: u16) -> [u8; 13] {
    [
        b'H',
        b'T',
        b'T',
        b'P',
        b'/',
        b'1',
        b'.',
        b'1',
        b' ',
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]
}

/// `Date: ` with the date and CRLF.
const DATE_FIELD_LEN: usize = 6 + DATE_LEN + 2;

/// Copies `s` into `buf` at `at`; returns where it ends. `buf` must have room.
#[inline(always)]
fn put(buf: &mut [u8], at: usize, s: &[u8]) -> usize {
    let end = at + s.len();
    copy(&mut buf[at..end], s);
    end
}

/// Copies `s` into `d`, of the same length. Pieces of up to 256 bytes (names, values, status
/// lines, header blocks) are copied with a few overlapping word moves instead of a call to
/// `memcpy`, which is most of the cost for pieces this short.
#[inline(always)]
fn copy(d: &mut [u8], s: &[u8]) {
    let n = s.len();
    match n {
        0 => {}
        1..=3 => {
            d[0] = s[0];
            d[n / 2] = s[n / 2];
            d[n - 1] = s[n - 1];
        }
        4..=7 => {
            d[..4].copy_from_slice(&s[..4]);
            d[n - 4..].copy_from_slice(&s[n - 4..]);
        }
        8..=15 => {
            d[..8].copy_from_slice(&s[..8]);
            d[n - 8..].copy_from_slice(&s[n - 8..]);
        }
        16..=256 => {
            let mut i = 0;
            while i + 16 < n {
                d[i..i + 16].copy_from_slice(&s[i..i + 16]);
                i += 16;
            }
            d[n - 16..].copy_from_slice(&s[n - 16..]);
        }
        _ => d.copy_from_slice(s),
    }
}

/// Room for the longest framing field (`Content-Length: ` and 20 digits and CRLF).
const FRAMING_MAX: usize = 40;

/// Writes the framing field of `framing` (none for a close-delimited body).
pub(crate) fn write_framing(framing: Framing, dst: &mut Vec<u8>) {
    match framing {
        Framing::Length(n) => {
            let mut num = itoa::Buffer::new();
            let digits = num.format(n).as_bytes();
            let mut line = [0u8; FRAMING_MAX];
            line[..16].copy_from_slice(b"Content-Length: ");
            line[16..16 + digits.len()].copy_from_slice(digits);
            line[16 + digits.len()..18 + digits.len()].copy_from_slice(b"\r\n");
            dst.extend_from_slice(&line[..18 + digits.len()]);
        }
        Framing::Chunked => dst.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::CloseDelimited => {}
    }
}

/// Checks outgoing fields; returns the bytes they take on the wire.
pub(crate) fn check_fields(headers: &[(&str, &[u8])]) -> Result<usize, Error> {
    let mut len = 0;
    for (name, value) in headers {
        check_field(name.as_bytes(), value)?;
        len += name.len() + value.len() + 4;
    }
    Ok(len)
}

pub(crate) fn write_fields(headers: &[(&str, &[u8])], dst: &mut Vec<u8>) {
    for (name, value) in headers {
        dst.extend_from_slice(name.as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value);
        dst.extend_from_slice(b"\r\n");
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
#[inline(always)]
pub(crate) fn check_field(name: &[u8], value: &[u8]) -> Result<(), Error> {
    if !(plain_name(name) || crate::is_token(name)) || !valid_value(value) {
        return Err(ErrorKind::InvalidHeaderField.into());
    }
    if (name.len() == 14 && name.eq_ignore_ascii_case(b"content-length"))
        || (name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding"))
    {
        return Err(ErrorKind::FramingHeader.into());
    }
    Ok(())
}

/// Whether `v` holds no CR, LF or NUL; eight bytes at a time.
///
/// All three are below 0x0e, so one test per word (is any byte below 0x0e?) clears almost
/// every word; only a word with such a byte (a tab, say) is looked at byte by byte. Values of
/// 8 to 16 bytes are read as two overlapping words, with no loop.
#[inline(always)]
pub(crate) fn valid_value(v: &[u8]) -> bool {
    let exact = |w: &[u8]| w.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n');
    let n = v.len();
    if n < 8 {
        return n == 0 || !maybe_low(small_word(v)) || exact(v);
    }
    if n <= 16 {
        let (a, b) = (word(&v[..8]), word(&v[n - 8..]));
        return !(maybe_low(a) || maybe_low(b)) || exact(v);
    }
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        if maybe_low(word(c)) && !exact(c) {
            return false;
        }
    }
    let rest = chunks.remainder();
    rest.is_empty() || !maybe_low(word(&v[n - 8..])) || exact(rest)
}

/// Whether `name` (1 to 16 bytes) is made of ASCII letters, digits and `-` only, as almost
/// every field name is: two overlapping words, about fifteen operations each. Other names go
/// to the full token table.
#[inline(always)]
fn plain_name(name: &[u8]) -> bool {
    // For bytes below 0x80: the high bit of each byte says whether lo <= byte <= hi.
    let within = |x: u64, lo: u8, hi: u8| {
        ((x | HIGH).wrapping_sub(ONES * u64::from(lo)))
            & (((ONES * u64::from(hi)) | HIGH).wrapping_sub(x))
            & HIGH
    };
    let plain = |x: u64| {
        x & HIGH == 0
            && (within(x | (ONES * 0x20), b'a', b'z')
                | within(x, b'0', b'9')
                | within(x, b'-', b'-'))
                == HIGH
    };
    let n = name.len();
    match n {
        8..=16 => plain(word(name)) && plain(word(&name[n - 8..])),
        1..=7 => plain(small_word(name)),
        _ => false,
    }
}

/// Whether some byte of `x` may be below 0x0e (exact when it says no).
#[inline(always)]
fn maybe_low(x: u64) -> bool {
    x.wrapping_sub(ONES * 0x0e) & !x & HIGH != 0
}

/// Eight bytes that hold every byte of `s` (1 to 7 bytes) and no other, some twice: two
/// overlapping halves, read without a call to `memcpy`. Good for "is every byte ...?".
#[inline(always)]
fn small_word(s: &[u8]) -> u64 {
    let n = s.len();
    if n >= 4 {
        let half = |b: &[u8]| u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        half(&s[..4]) | (half(&s[n - 4..]) << 32)
    } else {
        let (a, b, c) = (s[0], s[n / 2], s[n - 1]);
        u64::from_ne_bytes([a, b, c, a, a, b, c, a])
    }
}

#[cfg(test)]
mod tests {
    use super::valid_value;

    #[test]
    fn put_copies_exactly_the_piece() {
        for len in 0..300 {
            let piece: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut buf = vec![b'.'; len + 8];
            let end = super::put(&mut buf, 3, &piece);
            assert_eq!(end, 3 + len);
            assert_eq!(&buf[..3], b"...", "{len}");
            assert_eq!(&buf[3..end], &piece[..], "{len}");
            assert_eq!(&buf[end..], b".....", "{len}");
        }
    }

    #[test]
    fn plain_names_are_exactly_letters_digits_and_dashes() {
        for b in 0..=255u8 {
            for len in 1..=16 {
                for pos in [0, len / 2, len - 1] {
                    let mut name = vec![b'x'; len];
                    name[pos] = b;
                    let plain = b.is_ascii_alphanumeric() || b == b'-';
                    assert_eq!(super::plain_name(&name), plain, "{b:#x} at {pos} of {len}");
                }
            }
        }
        assert!(!super::plain_name(b""));
        assert!(!super::plain_name(&[b'a'; 17]));
    }

    #[test]
    fn valid_value_finds_cr_lf_nul_anywhere() {
        assert!(valid_value(b""));
        assert!(valid_value(b"text/plain; charset=utf-8 \t\x7f\xff"));
        for len in 1..40 {
            for pos in 0..len {
                for bad in [0u8, b'\r', b'\n'] {
                    let mut v = vec![b'a'; len];
                    v[pos] = bad;
                    assert!(!valid_value(&v), "{bad} at {pos} of {len}");
                }
            }
            assert!(valid_value(&vec![0x0b; len]));
        }
    }
}

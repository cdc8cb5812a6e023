//! Header fields checked once and kept encoded, for fields a server sends with every answer.

use crate::error::{Error, ErrorKind};

/// Header fields already encoded as on the wire (`Name: value\r\n` each) and checked once,
/// when the block is made, by the rules [`ResponseEncoder::head`](crate::ResponseEncoder::head)
/// applies to each field: names are tokens other than `Content-Length` and
/// `Transfer-Encoding`, values hold no CR, LF or NUL.
///
/// An encoder writes a block with one copy and checks nothing again, so fields that are the
/// same in every response (`Server`, a fixed `Content-Type`) cost almost nothing per
/// response. Make the block once, in a `const` where you can: [`HeaderBlock::checked`] then
/// refuses a bad block at compile time.
///
/// # Examples
/// ```
/// use codec_http::{Framing, HeaderBlock, ResponseEncoder, ResponseHead};
///
/// const PLAIN: HeaderBlock<'static> =
///     HeaderBlock::checked(b"Server: example\r\nContent-Type: text/plain\r\n");
///
/// let mut out = Vec::new();
/// let head = ResponseHead::new(200, &[], Framing::length(2)).with_block(PLAIN);
/// ResponseEncoder::new().head(&head, None, &mut out).unwrap();
/// assert_eq!(
///     out,
///     b"HTTP/1.1 200 OK\r\nServer: example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
/// );
/// assert_eq!(
///     PLAIN.fields().collect::<Vec<_>>(),
///     [("Server", &b"example"[..]), ("Content-Type", b"text/plain")]
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeaderBlock<'a> {
    /// INVARIANT: checked by `check`: whole `name: value\r\n` lines of valid fields.
    bytes: &'a [u8],
    /// Whether one of the fields is `Connection`.
    connection: bool,
}

impl Default for HeaderBlock<'_> {
    fn default() -> Self {
        HeaderBlock::EMPTY
    }
}

impl<'a> HeaderBlock<'a> {
    /// A block with no fields.
    pub const EMPTY: HeaderBlock<'static> = HeaderBlock {
        bytes: b"",
        connection: false,
    };

    /// Checks `encoded`: header fields as on the wire, each `Name: value\r\n` (one space after
    /// the colon, which is not part of the value).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidHeaderField`] for a name that is not a token, a value with CR, LF
    /// or NUL, or a line not in the form above (a missing `": "` or CRLF);
    /// [`ErrorKind::FramingHeader`] for `Content-Length` or `Transfer-Encoding`, which come
    /// from a head's framing.
    pub const fn new(encoded: &'a [u8]) -> Result<HeaderBlock<'a>, Error> {
        match check(encoded) {
            Ok(connection) => Ok(HeaderBlock {
                bytes: encoded,
                connection,
            }),
            Err(kind) => Err(Error::new(kind)),
        }
    }

    /// As [`new`](HeaderBlock::new), for blocks written in the source.
    ///
    /// # Panics
    /// If `encoded` is not a valid block (see [`new`](HeaderBlock::new)); in a `const` item,
    /// that is a compile error.
    pub const fn checked(encoded: &'a [u8]) -> HeaderBlock<'a> {
        match check(encoded) {
            Ok(connection) => HeaderBlock {
                bytes: encoded,
                connection,
            },
            Err(_) => panic!("not a valid header block: each line must be `Name: value\\r\\n`"),
        }
    }

    /// The encoded fields, as they go on the wire.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the block has no fields.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether one of the fields is `Connection` (in any case): the field a server's
    /// keep-alive policy must see, known without reading the block again.
    pub const fn has_connection(&self) -> bool {
        self.connection
    }

    /// The fields, in order, as name and value.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let line_end = rest.iter().position(|&b| b == b'\r')?;
            let line = &rest[..line_end];
            rest = &rest[line_end + 2..];
            let colon = line.iter().position(|&b| b == b':')?;
            // Names are tokens, so ASCII.
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            Some((name, &line[colon + 2..]))
        })
    }
}

/// Checks a block, line by line, and says whether it has a `Connection` field; `const` so
/// that a block in a `const` item is checked by the compiler.
const fn check(b: &[u8]) -> Result<bool, ErrorKind> {
    let mut connection = false;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && tchar(b[i]) {
            i += 1;
        }
        if i == start || i + 1 >= b.len() || b[i] != b':' || b[i + 1] != b' ' {
            return Err(ErrorKind::InvalidHeaderField);
        }
        if is(b, start, i, b"content-length") || is(b, start, i, b"transfer-encoding") {
            return Err(ErrorKind::FramingHeader);
        }
        connection |= is(b, start, i, b"connection");
        i += 2;
        while i < b.len() && !matches!(b[i], b'\r' | b'\n' | 0) {
            i += 1;
        }
        if i + 1 >= b.len() || b[i] != b'\r' || b[i + 1] != b'\n' {
            return Err(ErrorKind::InvalidHeaderField);
        }
        i += 2;
    }
    Ok(connection)
}

/// Whether `b[start..end]` is `name` (in lower case), in any case.
const fn is(b: &[u8], start: usize, end: usize, name: &[u8]) -> bool {
    if end - start != name.len() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if b[start + i].to_ascii_lowercase() != name[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `tchar` (RFC 9110 §5.6.2), as a `const fn`.
const fn tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~')
}

#[cfg(test)]
mod tests {
    use super::HeaderBlock;
    use crate::ErrorKind;

    #[test]
    fn good_blocks_are_taken_as_they_are() {
        for block in [
            &b""[..],
            b"Server: x\r\n",
            b"X-Empty: \r\nA: b: c\r\n",
            b"X-Tab: a\tb \xff\r\n",
            b"!#$%&'*+-.^_`|~09az: v\r\n",
        ] {
            let checked = HeaderBlock::new(block).unwrap();
            assert_eq!(checked.as_bytes(), block);
            assert!(!checked.has_connection());
        }
        for block in [&b"CONNECTION: close\r\n"[..], b"A: b\r\nConnection: x\r\n"] {
            assert!(HeaderBlock::new(block).unwrap().has_connection());
        }
        assert!(!HeaderBlock::checked(b"Connections: x\r\nX: connection\r\n").has_connection());
    }

    #[test]
    fn bad_blocks_are_refused() {
        for (block, kind) in [
            (&b"Server: x"[..], ErrorKind::InvalidHeaderField),
            (b"Server: x\n", ErrorKind::InvalidHeaderField),
            (b"Server: x\r", ErrorKind::InvalidHeaderField),
            (b"Server: a\rb\r\n", ErrorKind::InvalidHeaderField),
            (b"Server: a\nb\r\n", ErrorKind::InvalidHeaderField),
            (b"Server: a\0b\r\n", ErrorKind::InvalidHeaderField),
            (b"Server:x\r\n", ErrorKind::InvalidHeaderField),
            (b"Server : x\r\n", ErrorKind::InvalidHeaderField),
            (b": x\r\n", ErrorKind::InvalidHeaderField),
            (b"Ser ver: x\r\n", ErrorKind::InvalidHeaderField),
            (b"\r\n", ErrorKind::InvalidHeaderField),
            (b"A: b\r\n\r\n", ErrorKind::InvalidHeaderField),
            (b"A: b\r\n C: d\r\n", ErrorKind::InvalidHeaderField),
            (b"content-LENGTH: 5\r\n", ErrorKind::FramingHeader),
            (
                b"A: b\r\nTransfer-Encoding: chunked\r\n",
                ErrorKind::FramingHeader,
            ),
        ] {
            let e = HeaderBlock::new(block).unwrap_err();
            assert_eq!(e.kind(), kind, "{:?}", String::from_utf8_lossy(block));
        }
    }

    #[test]
    #[should_panic(expected = "not a valid header block")]
    fn checked_panics_on_a_bad_block() {
        let _ = HeaderBlock::checked(std::hint::black_box(b"X: a\nb\r\n"));
    }

    #[test]
    fn fields_gives_back_names_and_values() {
        let block = HeaderBlock::new(b"A: 1\r\nB-c: x: y\r\nD: \r\n").unwrap();
        let fields: Vec<_> = block.fields().collect();
        assert_eq!(fields, [("A", &b"1"[..]), ("B-c", b"x: y"), ("D", b"")]);
        assert_eq!(HeaderBlock::EMPTY.fields().count(), 0);
        assert!(HeaderBlock::default().is_empty());
    }
}

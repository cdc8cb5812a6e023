//! Message bodies (RFC 9112 §6–7): by length, chunked, or until the connection closes.

use crate::Limits;
use crate::error::{Error, ErrorKind};
use crate::head::{MAX_LENGTH, split_field, trim_ows};
use crate::{swar, tchar};

/// Where a body stands. One flat enum, so that each step dispatches once (the chunked states
/// are variants of their own rather than a nested `Chunked(Chunk)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A body of known length; this many bytes left.
    Length(u64),
    /// A body that runs until the connection closes.
    Close,
    /// Chunked: expecting a chunk-size line.
    ChunkSize,
    /// Chunked: inside chunk data; this many bytes left.
    ChunkData(u64),
    /// Chunked: expecting the CRLF after chunk data.
    ChunkDataEnd,
    /// Chunked: after the last chunk, trailer lines until an empty line.
    Trailers,
}

/// What one step through a body found, as offsets into the input.
pub(crate) enum BodyStep {
    /// Discard this many bytes and call again with more.
    NeedMore(usize),
    /// Body bytes `start..end`; discard `consumed` bytes (at least `end`: the CRLF after a
    /// chunk's last byte goes with it when it is there).
    Data {
        start: usize,
        end: usize,
        consumed: usize,
    },
    /// The body ended; discard this many bytes.
    End(usize),
}

/// Decodes one body at a time; the trailers of the last chunked body stay readable until the
/// next body starts (kept in a buffer that is reused, so steady state does not allocate).
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    mode: Mode,
    seen: u64,
    metadata: usize,
    trailers: Vec<u8>,
}

impl BodyDecoder {
    pub(crate) fn new() -> BodyDecoder {
        BodyDecoder {
            mode: Mode::Length(0),
            seen: 0,
            metadata: 0,
            trailers: Vec::new(),
        }
    }

    /// As new, keeping the trailer buffer's storage.
    pub(crate) fn reset(&mut self) {
        self.start(Mode::Length(0));
    }

    fn start(&mut self, mode: Mode) {
        self.mode = mode;
        self.seen = 0;
        self.metadata = 0;
        self.trailers.clear();
    }

    /// A body of exactly `n` bytes.
    pub(crate) fn start_length(&mut self, n: u64) {
        self.start(Mode::Length(n));
    }

    /// A chunked body.
    pub(crate) fn start_chunked(&mut self) {
        self.start(Mode::ChunkSize);
    }

    /// A body that runs until the connection closes (responses only).
    pub(crate) fn start_close(&mut self) {
        self.start(Mode::Close);
    }

    /// An empty body (no trailers either).
    pub(crate) fn start_empty(&mut self) {
        self.start(Mode::Length(0));
    }

    /// Whether the body runs until the connection closes.
    pub(crate) fn is_close_delimited(&self) -> bool {
        self.mode == Mode::Close
    }

    /// The trailer fields of the last chunked body.
    pub(crate) fn trailers(&self) -> Trailers<'_> {
        Trailers {
            rest: &self.trailers,
        }
    }

    /// The common step through a chunked body, taken without the general state machine: at
    /// a chunk-size line, the whole chunk is in `buf` (a plain size line, the data, and the
    /// CRLF after it). Returns the data's `start..end`; the chunk ends two bytes after `end`.
    /// `None` (with nothing changed) sends the caller to [`step`](BodyDecoder::step).
    #[inline(always)]
    pub(crate) fn whole_chunk(&mut self, buf: &[u8], limits: &Limits) -> Option<(usize, usize)> {
        if self.mode != Mode::ChunkSize {
            return None;
        }
        let (size, line) = plain_size_line(buf)?;
        // A last chunk (size 0) goes on to the trailers: the general path.
        if size == 0 || line > self.metadata_room(limits) {
            return None;
        }
        // Counted as the general path counts it (only under a limit); over it, that path
        // refuses the chunk.
        let seen = self.seen.saturating_add(size);
        if limits.max_body.is_some_and(|max| seen > max) {
            return None;
        }
        let end = line.checked_add(usize::try_from(size).ok()?)?;
        if buf.get(end..end.checked_add(2)?) != Some(b"\r\n") {
            return None;
        }
        if limits.max_body.is_some() {
            self.seen = seen;
        }
        self.metadata += line;
        Some((line, end))
    }

    /// Takes the next step through the body in `buf`.
    pub(crate) fn step(&mut self, buf: &[u8], limits: &Limits) -> Result<BodyStep, Error> {
        match self.mode {
            Mode::Length(0) => Ok(BodyStep::End(0)),
            Mode::Length(remaining) => {
                if buf.is_empty() {
                    return Ok(BodyStep::NeedMore(0));
                }
                let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                self.mode = Mode::Length(remaining - n as u64);
                Ok(BodyStep::Data {
                    start: 0,
                    end: n,
                    consumed: n,
                })
            }
            Mode::Close => {
                if buf.is_empty() {
                    return Ok(BodyStep::NeedMore(0));
                }
                self.seen = self.seen.saturating_add(buf.len() as u64);
                if limits.max_body.is_some_and(|max| self.seen > max) {
                    return Err(ErrorKind::BodyTooLarge.into());
                }
                Ok(BodyStep::Data {
                    start: 0,
                    end: buf.len(),
                    consumed: buf.len(),
                })
            }
            Mode::ChunkSize | Mode::ChunkData(_) | Mode::ChunkDataEnd | Mode::Trailers => {
                self.step_chunked(buf, limits)
            }
        }
    }

    fn step_chunked(&mut self, buf: &[u8], limits: &Limits) -> Result<BodyStep, Error> {
        let mut pos = 0;
        loop {
            match self.mode {
                Mode::Length(_) | Mode::Close => return Ok(BodyStep::End(pos)),
                Mode::ChunkSize => {
                    let (size, line) = match plain_size_line(&buf[pos..]) {
                        // The common line, digits and CRLF: no search for the LF, and no
                        // second pass over the digits.
                        Some((size, line)) if line <= self.metadata_room(limits) => {
                            self.metadata += line;
                            (size, line)
                        }
                        _ => {
                            let Some(line) = self.line(&buf[pos..], limits)? else {
                                return Ok(BodyStep::NeedMore(pos));
                            };
                            (parse_chunk_size(&buf[pos..pos + line - 2])?, line)
                        }
                    };
                    pos += line;
                    if size == 0 {
                        self.mode = Mode::Trailers;
                        continue;
                    }
                    if let Some(max) = limits.max_body {
                        self.seen = self.seen.saturating_add(size);
                        if self.seen > max {
                            return Err(ErrorKind::BodyTooLarge.into());
                        }
                    }
                    // The data usually follows in the same buffer: one step, one event.
                    return Ok(self.chunk_data(buf, pos, size));
                }
                Mode::ChunkData(remaining) => return Ok(self.chunk_data(buf, pos, remaining)),
                Mode::ChunkDataEnd => match &buf[pos..] {
                    [] | [b'\r'] => return Ok(BodyStep::NeedMore(pos)),
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.mode = Mode::ChunkSize;
                    }
                    _ => return Err(ErrorKind::MissingChunkCrlf.into()),
                },
                Mode::Trailers => {
                    if buf.get(pos..pos + 2) == Some(b"\r\n") {
                        // The blank line ends the trailers (the limit always has room for its
                        // two bytes, so it is checked here, before `line`).
                        self.metadata += 2;
                        self.mode = Mode::Length(0);
                        return Ok(BodyStep::End(pos + 2));
                    }
                    let room = self.metadata_room(limits);
                    let window = &buf[pos..buf.len().min(pos.saturating_add(room))];
                    let line = match trailer_line(window) {
                        // The common line, whole, valid and within the limit: one pass.
                        Some(line) => {
                            self.metadata += line;
                            line
                        }
                        // Incomplete, malformed or long: the CRLF first, then the field,
                        // each with the error it earns.
                        _ => {
                            let Some(line) = self.line(&buf[pos..], limits)? else {
                                return Ok(BodyStep::NeedMore(pos));
                            };
                            split_field(&buf[pos..pos + line - 2])?;
                            line
                        }
                    };
                    self.trailers.extend_from_slice(&buf[pos..pos + line]);
                    pos += line;
                }
            }
        }
    }

    /// Up to `remaining` bytes of chunk data from `buf[pos..]`, and the CRLF after the chunk's
    /// last byte if it is there.
    #[inline(always)]
    fn chunk_data(&mut self, buf: &[u8], pos: usize, remaining: u64) -> BodyStep {
        let avail = buf.len() - pos;
        if avail == 0 {
            self.mode = Mode::ChunkData(remaining);
            return BodyStep::NeedMore(pos);
        }
        let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
        let left = remaining - n as u64;
        let end = pos + n;
        let mut consumed = end;
        self.mode = if left > 0 {
            Mode::ChunkData(left)
        } else if buf.get(end..end + 2) == Some(b"\r\n") {
            // The CRLF after the chunk is here: take it now, one step less.
            consumed += 2;
            Mode::ChunkSize
        } else {
            Mode::ChunkDataEnd
        };
        BodyStep::Data {
            start: pos,
            end,
            consumed,
        }
    }

    /// The longest metadata line (CRLF included) the limit still allows: the bytes left,
    /// plus the CRLF, so a line that ends right at the limit passes.
    #[inline(always)]
    fn metadata_room(&self, limits: &Limits) -> usize {
        limits
            .max_chunk_metadata
            .saturating_sub(self.metadata)
            .saturating_add(2)
    }

    /// The length of the CRLF-terminated line at the start of `buf` (CRLF included), or
    /// `None` if it is not complete yet. Counts it against the chunk metadata limit.
    fn line(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        let room = self.metadata_room(limits);
        let window = &buf[..buf.len().min(room)];
        match crate::swar::find(window, 0, b'\n') {
            Some(lf) if lf > 0 && window[lf - 1] == b'\r' => {
                self.metadata += lf + 1;
                Ok(Some(lf + 1))
            }
            Some(_) => Err(ErrorKind::BareLf.into()),
            None if window.len() == room => Err(ErrorKind::ChunkMetadataTooLarge.into()),
            None => Ok(None),
        }
    }
}

/// A plain chunk-size line: 1 to 15 hex digits (so the size is below 2^60 and cannot
/// overflow), then extensions of tokens only (`;name` or `;name=value`, no whitespace, no
/// quoted strings), then CRLF. Returns the size and the line's length, CRLF included. `None`
/// for anything else, which [`parse_chunk_size`] then reads (or refuses) the long way: what
/// passes here is a subset of what passes there, read to the same size.
#[inline(always)]
fn plain_size_line(buf: &[u8]) -> Option<(u64, usize)> {
    let mut size: u64 = 0;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let d = HEX[b as usize];
        if d > 0xf {
            break;
        }
        size = size << 4 | u64::from(d);
        i += 1;
        if i > 15 {
            return None;
        }
    }
    if i == 0 {
        return None;
    }
    let token = |mut j: usize| {
        let start = j;
        while buf.get(j).is_some_and(|&b| tchar(b)) {
            j += 1;
        }
        (j > start).then_some(j)
    };
    while buf.get(i) == Some(&b';') {
        i = token(i + 1)?;
        if buf.get(i) == Some(&b'=') {
            i = token(i + 1)?;
        }
    }
    (buf.get(i..i + 2) == Some(b"\r\n")).then_some((size, i + 2))
}

/// A whole, valid trailer field line at the start of `buf` (`name: value` as
/// [`split_field`] takes it, then CRLF), found in one pass: the first control byte after
/// the colon but a tab must be the CR. Returns its length, CRLF included; `None` for
/// anything else (incomplete or not), which the caller reads the long way.
#[inline(always)]
fn trailer_line(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    let colon = loop {
        let j = swar::find_not_name_letter(buf, i)?;
        match buf[j] {
            b':' if j > 0 => break j,
            b if tchar(b) => i = j + 1,
            _ => return None,
        }
    };
    let mut i = colon + 1;
    let cr = loop {
        let j = swar::find_control(buf, i)?;
        match buf[j] {
            b'\t' => i = j + 1,
            b'\r' => break j,
            _ => return None,
        }
    };
    (buf.get(cr + 1) == Some(&b'\n')).then_some(cr + 2)
}

/// The value of each hex digit; 0xff for other bytes.
static HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `chunk-size [ chunk-ext ]` with the CRLF already removed. The size is 1*HEXDIG with checked
/// arithmetic; extensions are `*( BWS ";" BWS name [ BWS "=" BWS value ] )` and are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    // One pass over the digits. A size that would pass MAX_LENGTH (2^63 - 1) with one more
    // digit is refused before the multiplication: `size * 16 + 15` stays within MAX_LENGTH,
    // so nothing can wrap.
    let mut size: u64 = 0;
    let mut digits = 0;
    for &b in line {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        if size > MAX_LENGTH >> 4 {
            return Err(ErrorKind::ChunkSizeOverflow.into());
        }
        size = size * 16 + u64::from(d);
        digits += 1;
    }
    if digits == 0 {
        return Err(ErrorKind::InvalidChunkSize.into());
    }
    if digits < line.len() {
        check_chunk_ext(&line[digits..])?;
    }
    Ok(size)
}

fn check_chunk_ext(mut ext: &[u8]) -> Result<(), Error> {
    let bad = || Error::new(ErrorKind::InvalidChunkSize);
    loop {
        if ext.is_empty() {
            return Ok(());
        }
        // BWS is allowed before ";" only: trailing whitespace after the size is not.
        ext = trim_start_ows(ext);
        let [b';', rest @ ..] = ext else {
            return Err(bad());
        };
        ext = trim_start_ows(rest);
        let name = ext.iter().take_while(|&&b| tchar(b)).count();
        if name == 0 {
            return Err(bad());
        }
        ext = &ext[name..];
        let after_ws = trim_start_ows(ext);
        if let [b'=', rest @ ..] = after_ws {
            ext = trim_start_ows(rest);
            if let [b'"', rest @ ..] = ext {
                let mut i = 0;
                loop {
                    match rest.get(i) {
                        None => return Err(bad()),
                        Some(b'"') => break,
                        Some(b'\\') if rest.get(i + 1).is_some_and(|&c| qdtext(c)) => i += 2,
                        Some(&c) if qdtext(c) && c != b'\\' => i += 1,
                        Some(_) => return Err(bad()),
                    }
                }
                ext = &rest[i + 1..];
            } else {
                let value = ext.iter().take_while(|&&b| tchar(b)).count();
                if value == 0 {
                    return Err(bad());
                }
                ext = &ext[value..];
            }
        }
    }
}

fn trim_start_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    v
}

/// A byte allowed inside a quoted string (qdtext, or the escaped byte of a quoted-pair).
fn qdtext(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Iterator over the `(name, value)` trailer fields of the last chunked body, in order.
#[derive(Clone, Debug)]
pub struct Trailers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Trailers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let lf = memchr::memchr(b'\n', self.rest)?;
        let line = &self.rest[..lf.saturating_sub(1)];
        self.rest = &self.rest[lf + 1..];
        let colon = memchr::memchr(b':', line).unwrap_or(line.len());
        let name = std::str::from_utf8(&line[..colon]).unwrap_or("");
        Some((name, trim_ows(line.get(colon + 1..).unwrap_or_default())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The long way: the first LF, a CR before it, then `split_field` on what comes before.
    fn trailer_line_long(buf: &[u8]) -> Option<usize> {
        let lf = buf.iter().position(|&b| b == b'\n')?;
        (lf > 0 && buf[lf - 1] == b'\r' && split_field(&buf[..lf - 1]).is_ok()).then_some(lf + 1)
    }

    #[test]
    fn a_trailer_line_reads_in_one_pass_as_the_long_way_does() {
        let base = b"X-Checksum_2.v: some value\twith tab and a longer tail \r\nNext: x\r\n";
        crate::head::each_variant(base, |line| {
            assert_eq!(
                trailer_line(line),
                trailer_line_long(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        });
    }

    #[test]
    fn a_plain_size_line_reads_as_the_long_way_does() {
        // (line, whether the plain reading takes it)
        let lines: [(&[u8], bool); 21] = [
            (b"0\r\n", true),
            (b"1\r\n", true),
            (b"fF\r\n", true),
            (b"00000000000000a\r\n", true),
            (b"fffffffffffffff\r\n", true),
            (b"1;a\r\n", true),
            (b"1;a=b;c;d=ee\r\n", true),
            (b"1000000000000000\r\n", false),
            (b"1;a=\r\n", false),
            (b"1;=b\r\n", false),
            (b"1;\r\n", false),
            (b"1;a=\"b\"\r\n", false),
            (b"1;a =b\r\n", false),
            (b"1 ;a\r\n", false),
            (b"1;a=b \r\n", false),
            (b"1 \r\n", false),
            (b"\r\n", false),
            (b"1\r", false),
            (b"1\n", false),
            (b"1;a\n", false),
            (b"g\r\n", false),
        ];
        for (line, plain) in lines {
            match plain_size_line(line) {
                Some((size, len)) => {
                    assert!(plain, "{line:?}");
                    assert_eq!(len, line.len(), "{line:?}");
                    assert_eq!(parse_chunk_size(&line[..len - 2]), Ok(size), "{line:?}");
                }
                None => assert!(!plain, "{line:?}"),
            }
        }
    }
}

//! The codec's error: a `Copy` value with a kind and the HTTP status a server should answer.

use std::fmt;

/// What went wrong while decoding or encoding a message.
///
/// Decoding errors are sticky: once a decoder returns one, every later call returns the same
/// error, because the framing of the stream can no longer be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The head (start line and fields) is larger than [`Limits::max_head`](crate::Limits).
    HeadTooLarge,
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders,
    /// The request target is longer than [`Limits::max_target`](crate::Limits).
    TargetTooLong,
    /// The method is not a token.
    InvalidMethod,
    /// The request target has bytes a target may not hold, or is empty.
    InvalidTarget,
    /// The version is not `HTTP/1.0` or `HTTP/1.1` and not another well-formed version.
    InvalidVersion,
    /// A well-formed version with a major number other than 1 (e.g. `HTTP/2.0`).
    UnsupportedVersion,
    /// The status line of a response is malformed.
    InvalidStatus,
    /// A field name is empty or has a byte that is not a token character.
    InvalidHeaderName,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// A field value holds NUL, a bare CR, or another forbidden control byte.
    InvalidHeaderValue,
    /// A line ends with LF alone where CRLF is required.
    BareLf,
    /// A field line starts with whitespace (obsolete line folding, RFC 9112 §5.2).
    ObsFold,
    /// `Content-Length` is not a plain decimal number (sign, space, hex, `_`, empty, or larger
    /// than `i64::MAX`).
    InvalidContentLength,
    /// `Content-Length` appears more than once.
    DuplicateContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3).
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` is malformed, or `chunked` is not its final coding.
    InvalidTransferEncoding,
    /// `Transfer-Encoding` appears more than once.
    RepeatedTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message.
    TransferEncodingInHttp10,
    /// A transfer coding this codec does not implement (anything but `chunked`).
    UnknownTransferCoding,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// More than one `Host`.
    DuplicateHost,
    /// A `Host` value that is not `uri-host [ ":" port ]` (RFC 9112 §3.2).
    InvalidHost,
    /// A chunk-size line is malformed (empty size, non-hex digit, bad extension).
    InvalidChunkSize,
    /// A chunk size larger than `i64::MAX` (so it cannot overflow anyone's arithmetic).
    ChunkSizeOverflow,
    /// Chunk data is not followed by CRLF.
    MissingChunkCrlf,
    /// Chunk extensions or trailers are larger than their limits.
    ChunkMetadataTooLarge,
    /// A trailer field is malformed.
    InvalidTrailer,
    /// The body is larger than [`Limits::max_body`](crate::Limits).
    BodyTooLarge,
    /// The stream ended inside a message.
    UnexpectedEof,
    /// Encoder: a status code outside 100..=999.
    InvalidStatusCode,
    /// Encoder: a header name that is not a token, or a value with CR, LF or NUL.
    InvalidHeaderField,
    /// Encoder: `Content-Length` or `Transfer-Encoding` given as a header; pass a
    /// [`Framing`](crate::Framing) instead.
    FramingHeader,
    /// Encoder: body bytes for a message that cannot have a body (1xx, 204, 304).
    BodyNotAllowed,
    /// Encoder: more body bytes than the declared `Content-Length`.
    BodyTooLong,
    /// Encoder: the message ended before the declared `Content-Length` was written.
    BodyTooShort,
    /// Encoder: a call out of order (a body before a head, a head inside a message).
    InvalidState,
    /// Encoder: a request method that is not a token, or a target that is empty or holds
    /// whitespace or control bytes.
    InvalidRequestLine,
    /// Encoder: a framing the message cannot have (a close-delimited request).
    InvalidFraming,
}

/// A decoding or encoding error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind) -> Error {
        Error { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status a server should answer with before closing the connection: 400, 413, 414,
    /// 431, 501 or 505 for decoding errors, 500 for encoding errors (a bug in the application).
    ///
    /// ```
    /// use codec_http::{ErrorKind, RequestDecoder};
    ///
    /// let err = RequestDecoder::new()
    ///     .decode(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n")
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidContentLength);
    /// assert_eq!(err.status_hint(), 400);
    /// ```
    pub fn status_hint(&self) -> u16 {
        use ErrorKind::*;
        match self.kind {
            HeadTooLarge | TooManyHeaders => 431,
            TargetTooLong => 414,
            BodyTooLarge => 413,
            UnknownTransferCoding => 501,
            UnsupportedVersion => 505,
            InvalidStatusCode | InvalidHeaderField | FramingHeader | BodyNotAllowed
            | BodyTooLong | BodyTooShort | InvalidState | InvalidRequestLine | InvalidFraming => {
                500
            }
            _ => 400,
        }
    }

    fn description(&self) -> &'static str {
        use ErrorKind::*;
        match self.kind {
            HeadTooLarge => "message head too large",
            TooManyHeaders => "too many header fields",
            TargetTooLong => "request target too long",
            InvalidMethod => "invalid method",
            InvalidTarget => "invalid request target",
            InvalidVersion => "invalid HTTP version",
            UnsupportedVersion => "unsupported HTTP major version",
            InvalidStatus => "invalid status line",
            InvalidHeaderName => "invalid header field name",
            WhitespaceBeforeColon => "whitespace between a field name and its colon",
            InvalidHeaderValue => "invalid header field value",
            BareLf => "bare LF where CRLF is required",
            ObsFold => "obsolete line folding",
            InvalidContentLength => "invalid Content-Length",
            DuplicateContentLength => "more than one Content-Length",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            InvalidTransferEncoding => "invalid Transfer-Encoding (chunked must be final)",
            RepeatedTransferEncoding => "more than one Transfer-Encoding",
            TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
            UnknownTransferCoding => "unsupported transfer coding",
            MissingHost => "HTTP/1.1 request without Host",
            DuplicateHost => "more than one Host",
            InvalidHost => "invalid Host value",
            InvalidChunkSize => "invalid chunk size line",
            ChunkSizeOverflow => "chunk size too large",
            MissingChunkCrlf => "chunk data not followed by CRLF",
            ChunkMetadataTooLarge => "chunk extensions or trailers too large",
            InvalidTrailer => "invalid trailer field",
            BodyTooLarge => "body larger than the limit",
            UnexpectedEof => "stream ended inside a message",
            InvalidStatusCode => "status code outside 100..=999",
            InvalidHeaderField => "header name not a token, or CR/LF/NUL in a value",
            FramingHeader => "Content-Length/Transfer-Encoding must come from Framing",
            BodyNotAllowed => "this message cannot have a body",
            BodyTooLong => "body longer than its Content-Length",
            BodyTooShort => "body shorter than its Content-Length",
            InvalidState => "encoder call out of order",
            InvalidRequestLine => "request method not a token, or invalid request target",
            InvalidFraming => "a request cannot be close-delimited",
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for Error {}

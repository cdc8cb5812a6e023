#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod block;
mod body;
mod client;
mod date;
mod error;
mod head;
mod request;
mod response;
mod status;
mod swar;

pub use block::HeaderBlock;
pub use body::Trailers;
pub use client::{
    ClientRequest, ClientResponse, RequestEncoder, ResponseDecoded, ResponseDecoder, ResponseEvent,
};
pub use date::{DATE_LEN, DateCache, format_date};
pub use error::{Error, ErrorKind};
pub use head::{HEADER_SLOTS, Headers};
pub use request::{BodyKind, Decoded, Event, RequestDecoder, RequestHead, RequestParts};
pub use response::{Framing, ResponseEncoder, ResponseHead};
pub use status::reason;

/// Largest request head (request line, fields and the blank line), in bytes. 8 KiB, as
/// nginx's `large_client_header_buffers` line limit: larger heads get 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most header fields in one head. 100, as hyper, Apache and Kestrel: more get 431.
pub const MAX_HEADERS: usize = 100;

/// Longest request target, in bytes. 8 KiB: longer targets get 414.
pub const MAX_TARGET: usize = 8 * 1024;

/// Most bytes of chunk-size lines, extensions and trailers in one chunked body. 16 KiB, as
/// hyper: a body that is mostly metadata is an attack, not data.
pub const MAX_CHUNK_METADATA: usize = 16 * 1024;

/// A body limit for apps that buffer whole bodies: 1 MiB, as nginx's `client_max_body_size`
/// (design.md §6). Not the decoder's default, which streams and leaves bodies unbounded; set
/// [`Limits::max_body`] to `Some(MAX_BODY)` when you buffer.
pub const MAX_BODY: u64 = 1024 * 1024;

/// Limits on what a decoder accepts; see the consts for the defaults and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest head in bytes ([`MAX_HEAD`]).
    pub max_head: usize,
    /// Most header fields ([`MAX_HEADERS`]); capped at [`HEADER_SLOTS`].
    pub max_headers: usize,
    /// Longest request target ([`MAX_TARGET`]).
    pub max_target: usize,
    /// Largest body, if any limit: a larger `Content-Length`, or chunks adding up to more,
    /// get 413. None by default, since the decoder streams bodies and never buffers them;
    /// buffering apps set one (see [`MAX_BODY`]).
    pub max_body: Option<u64>,
    /// Most chunk metadata bytes per body ([`MAX_CHUNK_METADATA`]).
    pub max_chunk_metadata: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: MAX_HEAD,
            max_headers: MAX_HEADERS,
            max_target: MAX_TARGET,
            max_body: None,
            max_chunk_metadata: MAX_CHUNK_METADATA,
        }
    }
}

/// An HTTP/1.x version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    #[default]
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2), the bytes of tokens and field names.
pub(crate) fn tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Whether every byte of `s` is a `tchar` and `s` is not empty. Branch-free over the bytes:
/// names are short and almost always valid.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & TCHAR[b as usize])
}

static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
            | b'`' | b'|' | b'~');
        i += 1;
    }
    t
};

#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod buffer;
mod chain;
mod pool;
mod stream;
pub mod testing;
mod time;

pub use buffer::Buffer;
pub use chain::{AsIs, Error, Pipeline, Reader, Then, Writer, chain};
pub use stream::{
    Config, HIGH_WATER, Handle, READ_SIZE, ReadHalf, WriteHalf, wrap_stream, wrap_stream_with,
};
pub use time::{
    BODY_TIMEOUT, Clock, HEAD_TIMEOUT, IDLE_TIMEOUT, LINGER_TIMEOUT, Phase, SEND_TIMEOUT, Timeouts,
    Timer,
};

use std::io;

/// Turns bytes into items (the shape of tokio-util's `Decoder`).
pub trait Decoder {
    /// What the decoder produces.
    type Item;
    /// Its error; stream errors convert into it.
    type Error: From<io::Error>;

    /// Decodes one item from the front of `src`, consuming its bytes, or returns `Ok(None)`
    /// when `src` does not hold a complete item yet (it may consume bytes meanwhile).
    ///
    /// # Errors
    /// Malformed input.
    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Self::Item>, Self::Error>;

    /// Whether the decoder is between items (not inside one). A draining connection stops
    /// here, and a wait here with nothing buffered is an idle wait. By default always.
    fn between_items(&self) -> bool {
        true
    }

    /// Whether [`decode`](Decoder::decode) would surely return `Ok(None)` on an empty buffer
    /// (nothing held back, no state change pending), so the reader may skip that call and go
    /// straight to the stream. By default never: `decode` is always called.
    fn needs_bytes(&self) -> bool {
        false
    }

    /// Called when the reader begins an idle wait (between items, nothing buffered, an item
    /// already served): the decoder may give back storage that it takes again in its next
    /// [`decode`](Decoder::decode), so that a server with many idle connections holds little
    /// for each (the reader gives its buffer back at the same moment). By default nothing.
    fn park(&mut self) {}

    /// Whether the decoder is inside an item's payload (e.g. a request body), where the
    /// deadline runs between reads rather than over the whole item. By default never.
    fn in_payload(&self) -> bool {
        false
    }

    /// Called once the stream has ended: a last item, `Ok(None)` for a clean end, or an error
    /// if the stream ended inside an item.
    ///
    /// # Errors
    /// By default, `UnexpectedEof` if undecoded bytes remain.
    fn decode_eof(&mut self, src: &mut Buffer) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended inside an item",
            )
            .into()),
        }
    }
}

/// Turns items into bytes, appended to the stream's output queue.
pub trait Encoder<Item> {
    /// Its error; stream errors convert into it.
    type Error: From<io::Error>;

    /// Appends the encoding of `item` to `dst`.
    ///
    /// # Errors
    /// An item that cannot be encoded.
    fn encode(&mut self, item: Item, dst: &mut Vec<u8>) -> Result<(), Self::Error>;
}

//! The messages on a worker's pipe (its fd 3), without I/O.
//!
//! The stream opens with the seed's `"."`: one byte that carries the listening socket
//! (`SCM_RIGHTS`). After it, every message is one line of ASCII, so `strace -e read` shows the
//! conversation as it is:
//!
//! | direction       | line                           | meaning                                         |
//! |-----------------|--------------------------------|-------------------------------------------------|
//! | master → worker | `.`                            | the listening socket rides on this byte         |
//! | master → worker | `drain <ms>`                   | stop accepting, finish in-flight work, exit within `ms` |
//! | master → worker | `stop`                         | exit now                                        |
//! | worker → master | `ready`                        | listening and serving (Einhorn's ACK)            |
//! | worker → master | `beat <accepted> <requests> <active>` | heartbeat with the worker's counters     |
//! | new → old master| `ready`                        | binary upgrade: every new worker is ready        |
//!
//! A line longer than [`MAX_LINE`] or one that does not parse is an error: the master kills a
//! worker that sends one, a worker ignores it and logs. End of stream means the other side is
//! gone: a worker that reads EOF drains and exits (its master died).

use std::fmt;
use std::time::Duration;

use crate::Counters;

/// Longest line (without its newline); longer is a protocol error.
pub(crate) const MAX_LINE: usize = 128;

/// One message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// `.`: the listening socket rides on this byte.
    Handle,
    /// `ready`.
    Ready,
    /// `beat <accepted> <requests> <active>`.
    Beat(Counters),
    /// `drain <ms>`.
    Drain(Duration),
    /// `stop`.
    Stop,
}

impl Message {
    /// Appends the message's bytes to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match self {
            Message::Handle => write!(out, "."),
            Message::Ready => writeln!(out, "ready"),
            Message::Beat(c) => writeln!(out, "beat {} {} {}", c.accepted, c.requests, c.active),
            Message::Drain(d) => writeln!(out, "drain {}", d.as_millis()),
            Message::Stop => writeln!(out, "stop"),
        };
    }
}

/// A line that is not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub(crate) String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits the byte stream into messages, whatever the read sizes.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
}

impl Decoder {
    /// Adds received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if any.
    ///
    /// # Errors
    /// A line that is too long or does not parse; the decoder skips it and goes on.
    pub(crate) fn next(&mut self) -> Option<Result<Message, ProtocolError>> {
        let rest = &self.buf[self.pos..];
        if rest.first() == Some(&b'.') {
            self.pos += 1;
            return Some(Ok(Message::Handle));
        }
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                self.pos = self.buf.len();
                return Some(Err(ProtocolError(format!(
                    "a line longer than {MAX_LINE} bytes"
                ))));
            }
            self.compact();
            return None;
        };
        let line = &rest[..nl];
        self.pos += nl + 1;
        if line.len() > MAX_LINE {
            return Some(Err(ProtocolError(format!(
                "a line longer than {MAX_LINE} bytes"
            ))));
        }
        Some(parse(line))
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

fn parse(line: &[u8]) -> Result<Message, ProtocolError> {
    let bad = || {
        ProtocolError(format!(
            "unknown message {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        ))
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut words = text.split(' ');
    let word = words.next().unwrap_or("");
    let mut num = || -> Result<u64, ProtocolError> {
        words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)
    };
    let msg = match word {
        "ready" => Message::Ready,
        "stop" => Message::Stop,
        "drain" => Message::Drain(Duration::from_millis(num()?)),
        "beat" => Message::Beat(Counters {
            accepted: num()?,
            requests: num()?,
            active: num()?,
        }),
        _ => return Err(bad()),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        vec![
            Message::Handle,
            Message::Ready,
            Message::Beat(Counters {
                accepted: 7,
                requests: u64::MAX,
                active: 0,
            }),
            Message::Drain(Duration::from_millis(30_000)),
            Message::Stop,
            Message::Beat(Counters::default()),
        ]
    }

    fn decode(chunks: &[&[u8]]) -> Vec<Result<Message, ProtocolError>> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(m) = d.next() {
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn every_split_gives_the_same_messages() {
        let mut bytes = Vec::new();
        for m in all() {
            m.encode(&mut bytes);
        }
        let want: Vec<_> = all().into_iter().map(Ok).collect();
        assert_eq!(decode(&[&bytes]), want);
        for cut in 0..=bytes.len() {
            assert_eq!(
                decode(&[&bytes[..cut], &bytes[cut..]]),
                want,
                "cut at {cut}"
            );
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&bytewise), want);
    }

    #[test]
    fn bad_lines_are_errors_and_decoding_goes_on() {
        let out = decode(&[b"ready\nhello\nbeat 1 2\nbeat 1 2 3 4\ndrain x\nstop\n"]);
        assert_eq!(out[0], Ok(Message::Ready));
        for e in &out[1..5] {
            assert!(e.is_err(), "{e:?}");
        }
        assert_eq!(out[5], Ok(Message::Stop));
        // A line without end is an error once it passes the limit, then the stream resyncs.
        let long = vec![b'x'; MAX_LINE + 1];
        let out = decode(&[&long, b"yy\nready\n"]);
        assert!(out[0].is_err());
        assert_eq!(out.last(), Some(&Ok(Message::Ready)));
    }
}

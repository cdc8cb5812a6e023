//! Deadlines without a runtime: the pipeline asks a [`Clock`] for the time and for timers, so
//! it runs on uvlite, on another runtime, or on a test clock.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The time and timers of the runtime a pipeline runs on.
pub trait Clock {
    /// The current time (a per-turn cached time is fine).
    fn now(&self) -> Instant;

    /// A timer that fires at `deadline`. The pipeline makes at most two per connection (one
    /// for reads, one for writes) and moves them with [`Timer::reset`].
    fn timer(&self, deadline: Instant) -> Box<dyn Timer>;
}

/// A resettable timer made by a [`Clock`].
pub trait Timer {
    /// Moves the deadline (earlier or later); a fired timer is armed again.
    fn reset(&mut self, deadline: Instant);

    /// The deadline the timer is set for.
    fn deadline(&self) -> Instant;

    /// `Ready` once the deadline has passed; otherwise registers `cx`'s waker.
    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Where a connection waits when a deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between items with nothing buffered (an idle keep-alive connection).
    Idle,
    /// Inside an item's head: from its first byte (or the connection's start, for the first
    /// item) to the decoder producing it. The deadline covers the whole head.
    Item,
    /// Inside an item's payload (a request body): the deadline runs between reads.
    Payload,
    /// Waiting for the peer to take queued output.
    Send,
    /// After the write side was shut down, waiting for the peer's EOF.
    Linger,
}

/// Deadlines of each phase; `None` waits for ever. The defaults are those of an HTTP server
/// facing the open internet (design.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole head of an item, from its first byte ([`HEAD_TIMEOUT`]).
    pub item: Option<Duration>,
    /// An idle connection between items ([`IDLE_TIMEOUT`]).
    pub idle: Option<Duration>,
    /// Between two reads inside a payload ([`BODY_TIMEOUT`]).
    pub payload: Option<Duration>,
    /// Without the peer taking any queued output ([`SEND_TIMEOUT`]).
    pub send: Option<Duration>,
    /// After shutting down the write side, for the peer's EOF ([`LINGER_TIMEOUT`]).
    pub linger: Option<Duration>,
}

/// A whole request head must arrive within 10 s (slowloris defence; h2o uses 10 s).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection is closed after 60 s (nginx: 75 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A request body may pause at most 30 s between reads.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer that takes none of our output for 30 s is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last response, the peer has 5 s to close its side (nginx `lingering_timeout`).
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            item: Some(HEAD_TIMEOUT),
            idle: Some(IDLE_TIMEOUT),
            payload: Some(BODY_TIMEOUT),
            send: Some(SEND_TIMEOUT),
            linger: Some(LINGER_TIMEOUT),
        }
    }
}

impl Timeouts {
    /// No deadline at all.
    pub const NONE: Timeouts = Timeouts {
        item: None,
        idle: None,
        payload: None,
        send: None,
        linger: None,
    };

    /// The timeout of `phase`.
    pub fn of(&self, phase: Phase) -> Option<Duration> {
        match phase {
            Phase::Idle => self.idle,
            Phase::Item => self.item,
            Phase::Payload => self.payload,
            Phase::Send => self.send,
            Phase::Linger => self.linger,
        }
    }
}

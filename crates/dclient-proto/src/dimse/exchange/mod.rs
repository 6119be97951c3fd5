//! The DIMSE service exchanges (PS3.7 9.1, 9.3), SCU and SCP sides, as sans-IO state
//! machines.
//!
//! An exchange is what happens between a request and its final response: C-ECHO's one
//! response, C-FIND's pending responses with their identifiers and the C-CANCEL that ends
//! them early, C-GET's and C-MOVE's pending responses with sub-operation counts and (C-GET)
//! the C-STORE sub-operations the peer performs on the same association, C-STORE's response,
//! the DIMSE-N request/response pairs, Storage Commitment's request and report, and on the
//! SCP side the requests of an association as they arrive. Each exchange checks
//! what the standard says about the order of the messages (a response answers our Message
//! ID, a data set follows when announced, a C-STORE-RQ can only come in a C-GET, ...) and
//! keeps the counts; none does I/O or reads a clock.
//!
//! A driver (the blocking one in `dclient`, the tokio one) runs every exchange the same way,
//! through the [`Exchange`] trait, in the manner of quinn-proto's connection:
//!
//! ```text
//! loop {
//!     while let Some(msg) = ex.poll_transmit() { send msg }       // requests, answers
//!     if let Some(ev) = ex.poll_event() { return ev }             // matches, responses
//!     deadline = ex.poll_timeout()                                 // what we wait for
//!     match read until deadline {
//!         Some(dimse event) => ex.handle(dimse event, now)?,
//!         None              => ex.handle_timeout(now)?,
//!     }
//! }
//! ```
//!
//! Time is an input: every exchange is told `now` with each event and arms its deadline
//! from it; [`Exchange::handle_timeout`] says what a passed deadline means (an error for a
//! silent peer, the end of a C-FIND whose C-CANCEL was never answered).
//!
//! - [`echo`]: C-ECHO (PS3.7 9.1.5).
//! - [`find`]: C-FIND with C-CANCEL (9.1.2, 9.3.2).
//! - [`retrieve`]: C-GET and C-MOVE with sub-operations (9.1.3, 9.1.4).
//! - [`store`]: C-STORE (9.1.1), also as a C-GET or C-MOVE sub-operation.
//! - [`requests`]: the SCP side of an association: its requests, their identifiers and
//!   data sets, and the idle timeout between them.
//! - [`normalized`]: the DIMSE-N services (10.1, 10.3): one request, one response, both
//!   sides.
//! - [`commitment`]: Storage Commitment Push Model (PS3.4 J.3): the transactions waiting
//!   for their reports, how a report is matched, and the SCU's exchange.

pub mod commitment;
pub mod echo;
pub mod find;
pub mod normalized;
pub mod requests;
pub mod retrieve;
pub mod store;

use std::time::{Duration, Instant};

use super::command::CommandSet;
use super::message::DimseEvent;
use crate::error::{Violation, ViolationKind};

/// A DIMSE message an exchange wants sent: a command set on a presentation context, and
/// the data set that follows it, if any (whole; a driver streams large data sets itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The presentation context.
    pub context_id: u8,
    /// The command set.
    pub command: CommandSet,
    /// The data set (an identifier, say), when the command announces one.
    pub data: Option<Vec<u8>>,
}

/// How an exchange failed: the peer broke the rules of the service, or went silent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The peer broke the rules of the exchange; the driver aborts the association.
    #[error("{0}")]
    Violation(Violation),
    /// The deadline passed with nothing from the peer; the driver aborts the association.
    #[error("timed out after {} s waiting for {awaiting}", after.as_secs_f64())]
    Timeout {
        /// What we were waiting for ("the C-ECHO-RSP", "a C-FIND-RSP", ...).
        awaiting: &'static str,
        /// The timeout that ran out.
        after: Duration,
    },
}

impl From<Violation> for ExchangeError {
    fn from(v: Violation) -> Self {
        ExchangeError::Violation(v)
    }
}

/// The surface every exchange shares, through which a driver runs any of them.
pub trait Exchange {
    /// What the exchange reports to its user.
    type Event;

    /// A DIMSE event from the association, at `now`.
    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError>;

    /// The next message to send.
    fn poll_transmit(&mut self) -> Option<Outgoing>;

    /// The next event for the user.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When the exchange gives up waiting (None when it waits for nothing: done, or the
    /// user has to act first).
    fn poll_timeout(&self) -> Option<Instant>;

    /// The clock reached [`poll_timeout`](Exchange::poll_timeout).
    fn handle_timeout(&mut self, now: Instant) -> Result<(), ExchangeError>;

    /// What the exchange waits for, in words, for timeouts and logs.
    fn awaiting(&self) -> &'static str;

    /// True once the exchange has ended (its final response is in its events).
    fn is_done(&self) -> bool;
}

/// The deadline of the message an exchange waits for: armed from `now` with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    timeout: Duration,
    deadline: Option<Instant>,
}

impl Timer {
    /// A timer of `timeout`, not armed.
    pub fn new(timeout: Duration) -> Timer {
        Timer { timeout, deadline: None }
    }

    /// Waits `timeout` from `now` (saturating far in the future).
    pub fn arm(&mut self, now: Instant) {
        self.deadline = Some(now.checked_add(self.timeout).unwrap_or(now + FAR));
    }

    /// Stops waiting.
    pub fn disarm(&mut self) {
        self.deadline = None;
    }

    /// The deadline, when armed.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True when armed and `now` is at or past the deadline.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

/// A deadline beyond any real wait (when `now + timeout` overflows).
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// "a C-FIND-RQ", "a data set fragment": what arrived, for messages.
pub fn describe(event: &DimseEvent) -> String {
    match event {
        DimseEvent::Command { command, .. } => format!("a {}", command.command_field().name()),
        DimseEvent::Data { .. } => "a data set fragment".to_owned(),
    }
}

/// The violation for a DIMSE event the exchange does not allow now.
pub fn unexpected(expected: &str, got: &DimseEvent) -> Violation {
    Violation::new(
        ViolationKind::UnexpectedMessage,
        format!("expected {expected}, got {}", describe(got)),
    )
}

/// A response must answer our request's Message ID (PS3.7 9.3.1.2).
pub fn check_responded_to(response: &str, sent: u16, got: u16) -> Result<(), Violation> {
    if sent != got {
        return Err(Violation::new(
            ViolationKind::WrongMessageId,
            format!("{response} answers message ID {got}, but our request had ID {sent}"),
        ));
    }
    Ok(())
}

/// Collects the fragments of one identifier (a C-FIND match, a retrieve's final
/// identifier), refusing more than `max` bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Identifier {
    buf: Vec<u8>,
}

impl Identifier {
    /// Adds a fragment; the whole identifier when it was the last one.
    pub(crate) fn push(
        &mut self,
        data: Vec<u8>,
        last: bool,
        max: usize,
        what: &str,
    ) -> Result<Option<Vec<u8>>, Violation> {
        if self.buf.len() + data.len() > max {
            return Err(Violation::new(
                ViolationKind::TooLarge,
                format!("{what} larger than {max} bytes"),
            ));
        }
        if !last {
            self.buf.extend_from_slice(&data);
            return Ok(None);
        }
        if self.buf.is_empty() {
            return Ok(Some(data));
        }
        self.buf.extend_from_slice(&data);
        Ok(Some(std::mem::take(&mut self.buf)))
    }
}

/// The largest identifier the exchanges accept (real ones are a few hundred bytes).
pub const MAX_IDENTIFIER_LEN: usize = 1 << 20;

/// A sequence of message IDs (1, 2, 3, ... wrapping past 65535 to 1), one per association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIds {
    next: u16,
}

impl Default for MessageIds {
    fn default() -> Self {
        MessageIds { next: 1 }
    }
}

impl MessageIds {
    /// A fresh sequence starting at 1.
    pub fn new() -> MessageIds {
        MessageIds::default()
    }

    /// The next message ID.
    pub fn next_id(&mut self) -> u16 {
        let id = self.next;
        self.next = self.next.checked_add(1).unwrap_or(1);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_wrap_past_65535_to_1() {
        let mut ids = MessageIds { next: 65535 };
        assert_eq!(ids.next_id(), 65535);
        assert_eq!(ids.next_id(), 1);
        assert_eq!(MessageIds::new().next_id(), 1);
    }

    #[test]
    fn identifiers_are_bounded() {
        let mut id = Identifier::default();
        assert_eq!(id.push(vec![1; 4], false, 10, "x"), Ok(None));
        assert_eq!(id.push(vec![2; 4], true, 10, "x"), Ok(Some(vec![1, 1, 1, 1, 2, 2, 2, 2])));
        let e = id.push(vec![0; 11], true, 10, "C-FIND identifier").expect_err("too large");
        assert_eq!(e.kind, ViolationKind::TooLarge);
        assert_eq!(e.detail, "C-FIND identifier larger than 10 bytes");
    }
}

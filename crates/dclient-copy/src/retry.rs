//! Which failures are worth another try, and how long to wait before it.
//!
//! Transient: an association rejected as transient (PS3.8 9.3.4: a busy archive at its
//! association limit), timeouts, aborts, a dropped or refused connection (an archive
//! restarting), status A7xx (out of resources, PS3.4 C.4, B.2.3), Cxxx "unable to
//! process" (what busy archives answer) and an unrequested FE00. Everything else is
//! permanent: a permanent rejection, no accepted context, A801, A900, a file we cannot
//! read. A transient failure is tried again after `base * 2^(attempt-1)`, at most `cap`,
//! up to `--retries` times; after that it is recorded as failed with the last status and
//! Error Comment, and the job goes on.

use std::time::Duration;

use dclient::proto::dimse::status::Status;

/// Whether a failure may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again after a while.
    Transient,
    /// Record it and move on.
    Permanent,
}

/// The class of a failure status of a C-STORE, C-MOVE, C-GET or C-FIND.
pub fn classify_status(status: Status) -> Class {
    match status.0 {
        0xA700..=0xA7FF | 0xC000..=0xCFFF | 0xFE00 | 0x0213 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// The class of a library error.
pub fn classify_error(e: &dclient::Error) -> Class {
    use dclient::Error as E;
    match e {
        E::Rejected { rj, .. } => {
            if rj.result == 2 {
                Class::Transient
            } else {
                Class::Permanent
            }
        }
        E::Timeout { .. }
        | E::Aborted { .. }
        | E::Io { .. }
        | E::Connect { .. }
        | E::PeerViolation { .. }
        | E::Receive { .. }
        | E::NoReport { .. } => Class::Transient,
        E::Status { status, .. } => classify_status(*status),
        _ => Class::Permanent,
    }
}

/// How many times, and how long between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first (`--retries`).
    pub retries: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 5, base: Duration::from_millis(500), cap: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1`, after `attempt` tries failed (1 or more).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(20);
        self.base.saturating_mul(1u32 << shift).min(self.cap)
    }

    /// True when a failure of `class` after `attempts` tries gets another.
    pub fn again(&self, class: Class, attempts: u32) -> bool {
        class == Class::Transient && attempts <= self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify_status(Status(0xA700)), Class::Transient);
        assert_eq!(classify_status(Status(0xA702)), Class::Transient);
        assert_eq!(classify_status(Status(0xC000)), Class::Transient);
        assert_eq!(classify_status(Status(0xA801)), Class::Permanent);
        assert_eq!(classify_status(Status(0xA900)), Class::Permanent);
        assert_eq!(classify_status(Status(0x0122)), Class::Permanent);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            retries: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(350),
        };
        let d: Vec<u128> = (1..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(d, [100, 200, 350, 350, 350]);
        assert!(p.again(Class::Transient, 3));
        assert!(!p.again(Class::Transient, 4));
        assert!(!p.again(Class::Permanent, 1));
        assert_eq!(p.delay(u32::MAX), Duration::from_millis(350));
    }
}

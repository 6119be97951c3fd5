//! The DIMSE services of the client, one thin module each over the protocol core's
//! exchanges (`dclient_proto::dimse::exchange`) and the blocking driver: they pick the
//! presentation context, encode and decode data sets, write received files, and turn
//! statuses into results; the message order, IDs, counts and timeouts are the exchanges'.

pub(crate) mod commit;
pub(crate) mod echo;
pub(crate) mod find;
pub(crate) mod mpps;
pub(crate) mod retrieve;
pub(crate) mod store;
pub(crate) mod worklist;

use dclient_proto::dimse::command::{tags, CommandSet};
use dclient_proto::dimse::status::{Service, Status};

use crate::error::Error;

/// The error for a failure status, with its meaning and the Error Comment if any.
pub fn status_error(
    operation: &'static str,
    status: Status,
    service: Service,
    cs: &CommandSet,
) -> Error {
    Error::Status {
        operation,
        status,
        meaning: status.meaning(service).to_owned(),
        comment: cs.string(tags::ERROR_COMMENT).filter(|c| !c.is_empty()),
    }
}

/// A new UID under the `2.25.` root (PS3.5 B.2: a UUID as a decimal integer), from 128
/// bits of the operating system's randomness (the keys of std's `RandomState`), the clock,
/// the process ID and a counter: unique across processes and calls.
pub fn new_uid() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(n);
        h.finish()
    };
    // Version 4, variant 1 bits, as a UUID would have them; 122 random bits remain.
    let v = (u128::from(half(1)) << 64 | u128::from(half(2))) & !(0xF << 76) & !(0x3 << 62);
    let v = v | (0x4 << 76) | (0x2 << 62);
    format!("2.25.{v}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_uids_are_valid_and_distinct() {
        let a = super::new_uid();
        let b = super::new_uid();
        assert_ne!(a, b);
        for u in [&a, &b] {
            assert!(u.starts_with("2.25."), "{u}");
            assert!(u.len() <= 64, "{u}");
            assert!(dclient_proto::uids::is_valid_uid(u), "{u}");
        }
    }
}

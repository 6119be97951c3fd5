//! The DIMSE services of the client, one thin module each over the protocol core's
//! exchanges (`dclient_proto::dimse::exchange`) and the blocking driver: they pick the
//! presentation context, encode and decode data sets, write received files, and turn
//! statuses into results; the message order, IDs, counts and timeouts are the exchanges'.

pub(crate) mod echo;
pub(crate) mod find;
pub(crate) mod retrieve;
pub(crate) mod store;

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

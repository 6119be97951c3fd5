//! DIMSE command sets (PS3.7 section 9.3 and Annex E) and the typed DIMSE-C messages.
//!
//! A command set is group 0000 encoded in Implicit VR Little Endian, whatever transfer syntax
//! the presentation context negotiated (PS3.7 6.3.1): per element a tag (group and element,
//! u16 LE each), a value length (u32 LE) and the value. Element (0000,0000)
//! CommandGroupLength holds the byte length of all the elements that follow it.
//!
//! [`CommandSet`] is the raw form: element number to on-wire value bytes, with typed getters
//! and setters. [`Command`] is the parsed form of the DIMSE-C messages a client meets, built
//! from a command set with [`Command::from_command_set`] and turned back with
//! [`Command::to_command_set`].

// One file per concept, as h2 keeps one file per frame type:
//
// - tags.rs: the element numbers of PS3.7 Annex E.
// - set.rs: `CommandSet`, its encoding and decoding, `CommandValue`, `element_info`.
// - field.rs: `CommandField` and `Priority`.
// - fields.rs: what every message shares, written and read once: the request header (message
//   ID, affected SOP class), the response header (message ID being responded to, affected SOP
//   class, status, error comment, offending elements), and the `Fields` reader.
// - one file per message family: echo.rs, store.rs, find.rs, get.rs, move_.rs (with
//   sub_operations.rs, the counts C-GET and C-MOVE responses share) and cancel.rs.
// - dispatch.rs: `Command`, the dispatch on the command field to each message's parser.
//
// The submodules are private; every public item is re-exported below, at the paths it has
// always had (`dimse::command::CommandSet`, `dimse::command::tags::STATUS`, ...).

mod cancel;
mod dispatch;
mod echo;
mod field;
mod fields;
mod find;
mod get;
mod move_;
mod set;
mod store;
mod sub_operations;
pub mod tags;

// The DIMSE-N families (PS3.7 10.3) go here, one file each, in the same shape as the DIMSE-C
// ones (typed request and response, `to_command_set`, `from_fields` on the shared headers of
// `fields`, a `Command` variant in `dispatch`): n_event_report, n_get, n_set, n_action,
// n_create, n_delete. Until then they decode as `Command::Other`.

#[cfg(test)]
mod test_support;

pub use cancel::CCancelRq;
pub use dispatch::Command;
pub use echo::{CEchoRq, CEchoRsp};
pub use field::{CommandField, Priority};
pub use find::{CFindRq, CFindRsp};
pub use get::{CGetRq, CGetRsp};
pub use move_::{CMoveRq, CMoveRsp};
pub use set::{element_info, CommandSet, CommandValue, DATA_SET_PRESENT, NO_DATA_SET};
pub use store::{CStoreRq, CStoreRsp};
pub use sub_operations::SubOperations;

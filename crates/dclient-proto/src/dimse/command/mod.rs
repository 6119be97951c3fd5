//! DIMSE command sets (PS3.7 sections 9.3, 10.3 and Annex E) and the typed DIMSE-C and
//! DIMSE-N messages.
//!
//! A command set is group 0000 encoded in Implicit VR Little Endian, whatever transfer syntax
//! the presentation context negotiated (PS3.7 6.3.1): per element a tag (group and element,
//! u16 LE each), a value length (u32 LE) and the value. Element (0000,0000)
//! CommandGroupLength holds the byte length of all the elements that follow it.
//!
//! [`CommandSet`] is the raw form: element number to on-wire value bytes, with typed getters
//! and setters. [`Command`] is the parsed form of the DIMSE-C and DIMSE-N messages, built
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
mod n_action;
mod n_create;
mod n_delete;
mod n_event_report;
mod n_get;
mod n_set;
mod set;
mod store;
mod sub_operations;
pub mod tags;

#[cfg(test)]
mod test_support;

pub use cancel::CCancelRq;
pub use dispatch::Command;
pub use echo::{CEchoRq, CEchoRsp};
pub use field::{CommandField, Priority};
pub use find::{CFindRq, CFindRsp};
pub use get::{CGetRq, CGetRsp};
pub use move_::{CMoveRq, CMoveRsp};
pub use n_action::{NActionRq, NActionRsp};
pub use n_create::{NCreateRq, NCreateRsp};
pub use n_delete::{NDeleteRq, NDeleteRsp};
pub use n_event_report::{NEventReportRq, NEventReportRsp};
pub use n_get::{NGetRq, NGetRsp};
pub use n_set::{NSetRq, NSetRsp};
pub use set::{element_info, CommandSet, CommandValue, DATA_SET_PRESENT, NO_DATA_SET};
pub use store::{CStoreRq, CStoreRsp};
pub use sub_operations::SubOperations;

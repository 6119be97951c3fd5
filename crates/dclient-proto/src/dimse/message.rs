//! DIMSE messages over P-DATA: assembling commands and data sets from PDVs, and sending them.
//!
//! A DIMSE message is a command set (PDVs with the command bit) optionally followed by a
//! data set (PDVs without it) on the same presentation context (PS3.7 section 6.3.1, PS3.8
//! Annex E). The [`Assembler`] checks the order of fragments and their last-fragment bits,
//! decodes each whole command set, and hands data set fragments on as they arrive, so that
//! a large data set can go to disk without ever being whole in memory.

use super::command::{Command, CommandSet};
use crate::error::ProtoError;
use crate::ul::association::Association;
use crate::ul::pdu::Pdv;

/// The largest command set we assemble. Real ones are a few hundred bytes; a peer sending
/// more is not sending a command.
pub const MAX_COMMAND_LEN: usize = 64 * 1024;

/// What the assembler yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimseEvent {
    /// A whole command set.
    Command {
        /// The presentation context it came on.
        context_id: u8,
        /// The typed command.
        command: Command,
        /// The raw command set (for `command_results`).
        command_set: CommandSet,
    },
    /// A fragment of the data set announced by the preceding command.
    Data {
        /// The presentation context it came on.
        context_id: u8,
        /// The fragment.
        data: Vec<u8>,
        /// True on the data set's last fragment.
        is_last: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Between messages.
    Idle,
    /// Inside a command set on this context.
    Command { context_id: u8, buf: Vec<u8> },
    /// The command announced a data set; it is due (or under way) on this context.
    Data { context_id: u8, started: bool },
}

/// Reassembles DIMSE messages from incoming PDVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembler {
    expect: Expect,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler::new()
    }
}

impl Assembler {
    /// An assembler between messages.
    pub fn new() -> Assembler {
        Assembler { expect: Expect::Idle }
    }

    /// True while a data set announced by a command has not fully arrived.
    pub fn expecting_data(&self) -> bool {
        matches!(self.expect, Expect::Data { .. })
    }

    /// True between messages (no command or data set partly received).
    pub fn is_idle(&self) -> bool {
        self.expect == Expect::Idle
    }

    /// Takes one PDV; returns a whole command or a data fragment when there is one.
    /// Errors are the peer's protocol violations.
    pub fn handle_pdv(&mut self, pdv: Pdv) -> Result<Option<DimseEvent>, ProtoError> {
        let ctx = pdv.context_id;
        match std::mem::replace(&mut self.expect, Expect::Idle) {
            Expect::Idle => {
                if !pdv.is_command {
                    return Err(violation(format!(
                        "data set fragment on presentation context {ctx} without a command \
                         announcing a data set"
                    )));
                }
                self.command_fragment(ctx, Vec::new(), pdv)
            }
            Expect::Command { context_id, buf } => {
                if !pdv.is_command || ctx != context_id {
                    return Err(violation(format!(
                        "command on presentation context {context_id} interrupted by a {} \
                         fragment on context {ctx} before its last fragment",
                        if pdv.is_command { "command" } else { "data set" }
                    )));
                }
                self.command_fragment(ctx, buf, pdv)
            }
            Expect::Data { context_id, started } => {
                if pdv.is_command {
                    return Err(violation(format!(
                        "a new command arrived on context {ctx} while the data set announced \
                         by the previous command was {}",
                        if started { "incomplete" } else { "never sent" }
                    )));
                }
                if ctx != context_id {
                    return Err(violation(format!(
                        "data set fragment on presentation context {ctx}, but its command \
                         came on context {context_id}"
                    )));
                }
                if !pdv.is_last {
                    self.expect = Expect::Data { context_id, started: true };
                }
                Ok(Some(DimseEvent::Data { context_id: ctx, data: pdv.data, is_last: pdv.is_last }))
            }
        }
    }

    fn command_fragment(
        &mut self,
        ctx: u8,
        mut buf: Vec<u8>,
        pdv: Pdv,
    ) -> Result<Option<DimseEvent>, ProtoError> {
        if buf.len() + pdv.data.len() > MAX_COMMAND_LEN {
            return Err(violation(format!(
                "command set on context {ctx} exceeds {MAX_COMMAND_LEN} bytes"
            )));
        }
        if buf.is_empty() && pdv.is_last {
            buf = pdv.data;
        } else {
            buf.extend_from_slice(&pdv.data);
        }
        if !pdv.is_last {
            self.expect = Expect::Command { context_id: ctx, buf };
            return Ok(None);
        }
        let command_set = CommandSet::decode(&buf)?;
        let command = Command::from_command_set(&command_set)?;
        if command.has_data_set() {
            self.expect = Expect::Data { context_id: ctx, started: false };
        }
        Ok(Some(DimseEvent::Command { context_id: ctx, command, command_set }))
    }
}

fn violation(s: String) -> ProtoError {
    ProtoError::PeerViolation(s)
}

/// Sends a command set, and the whole data set if given, on `context_id`, fragmented to the
/// peer's maximum PDU length. Larger data sets can follow with [`send_data`] in pieces.
pub fn send_message(
    assoc: &mut Association,
    context_id: u8,
    command: &CommandSet,
    data: Option<&[u8]>,
) -> Result<(), ProtoError> {
    assoc.send_pdv(context_id, true, &command.encode(), true)?;
    if let Some(d) = data {
        assoc.send_pdv(context_id, false, d, true)?;
    }
    Ok(())
}

/// Sends one piece of a data set; `last` on the final piece.
pub fn send_data(
    assoc: &mut Association,
    context_id: u8,
    data: &[u8],
    last: bool,
) -> Result<(), ProtoError> {
    assoc.send_pdv(context_id, false, data, last)
}

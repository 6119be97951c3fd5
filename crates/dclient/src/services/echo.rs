//! C-ECHO (Verification Service Class, PS3.4 Annex A): SCU and SCP halves.

use dclient_proto::dimse::command::{CEchoRq, CEchoRsp, Command, CommandSet};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;

use crate::error::{Error, Result};
use crate::transport::Connection;

/// Sends a C-ECHO-RQ on `context_id` and waits for its C-ECHO-RSP. Returns the response
/// command set; a non-success status is [`Error::Status`].
pub fn c_echo(conn: &mut Connection, context_id: u8) -> Result<CommandSet> {
    let message_id = conn.next_message_id();
    let rq = CEchoRq { message_id, affected_sop_class_uid: uids::VERIFICATION.into() };
    conn.send_message(context_id, &rq.to_command_set(), None)?;
    match conn.next_event("the C-ECHO-RSP")? {
        DimseEvent::Command { command: Command::CEchoRsp(rsp), command_set, .. } => {
            check_responded_to(conn, message_id, rsp.message_id_being_responded_to, "C-ECHO-RSP")?;
            if rsp.status.is_failure() {
                return Err(status_error("C-ECHO", rsp.status, Service::Echo, &command_set));
            }
            Ok(command_set)
        }
        other => Err(unexpected(conn, "a C-ECHO-RSP", &other)),
    }
}

/// Answers a C-ECHO-RQ with success.
pub fn answer_echo(conn: &mut Connection, context_id: u8, rq: &CEchoRq) -> Result<()> {
    let rsp = CEchoRsp {
        message_id_being_responded_to: rq.message_id,
        affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
        status: Status::SUCCESS,
    };
    conn.send_message(context_id, &rsp.to_command_set(), None)
}

/// The response must answer our request's Message ID (PS3.7 9.3.1.2).
pub fn check_responded_to(conn: &mut Connection, sent: u16, got: u16, what: &str) -> Result<()> {
    if sent != got {
        let e = Error::PeerViolation {
            peer: conn.peer().to_owned(),
            detail: format!("{what} answers message ID {got}, but our request had ID {sent}"),
        };
        conn.abort();
        return Err(e);
    }
    Ok(())
}

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
        comment: cs
            .string(dclient_proto::dimse::command::tags::ERROR_COMMENT)
            .filter(|c| !c.is_empty()),
    }
}

/// The error for a DIMSE event that is not what the exchange allows at this point; the
/// association is aborted.
pub fn unexpected(conn: &mut Connection, expected: &str, got: &DimseEvent) -> Error {
    let what = match got {
        DimseEvent::Command { command, .. } => format!("a {}", command.command_field().name()),
        DimseEvent::Data { .. } => "a data set fragment".to_owned(),
    };
    let e = Error::PeerViolation {
        peer: conn.peer().to_owned(),
        detail: format!("expected {expected}, got {what}"),
    };
    conn.abort();
    e
}

//! C-ECHO (Verification Service Class, PS3.4 Annex A), SCU side, over
//! [`EchoScu`](dclient_proto::dimse::exchange::echo::EchoScu).

use std::time::Instant;

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::echo::EchoScu;
use dclient_proto::dimse::status::Service;

use super::status_error;
use crate::error::{Error, Result};
use crate::transport::Connection;

/// Sends a C-ECHO-RQ on `context_id` and waits for its C-ECHO-RSP. Returns the response
/// command set; a non-success status is [`Error::Status`].
pub fn c_echo(conn: &mut Connection, context_id: u8) -> Result<CommandSet> {
    let id = conn.next_message_id();
    let mut ex = EchoScu::new(context_id, id, conn.timeouts().dimse, Instant::now());
    let rsp = conn.run(&mut ex)?.ok_or(Error::Internal("C-ECHO ended without a response"))?;
    if rsp.status.is_failure() {
        return Err(status_error("C-ECHO", rsp.status, Service::Echo, &rsp.command_set));
    }
    Ok(rsp.command_set)
}

//! What the hostile-peer tests share: a client with short timeouts, the bound every call
//! must return within, and the DIMSE messages the fake peer answers with.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dclient::dataset::{DatasetEncoding, Query};
use dclient::proto::dimse::command::{
    CEchoRsp, CFindRsp, CGetRsp, CMoveRsp, CStoreRq, CStoreRsp, CommandSet, Priority, SubOperations,
};
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::{ClientOptions, DClient};
use dclient_testkit::fake_peer::{Session, Step, Transcript};

/// Every timeout of the client under test.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// A call must return within the timeout plus this.
pub const SLACK: Duration = Duration::from_secs(2);
/// CT Image Storage.
pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A blocking client of `127.0.0.1:port` with every timeout at [`TIMEOUT`].
pub fn blocking_client(port: u16) -> DClient {
    DClient::with_options("127.0.0.1", port, ClientOptions::default().timeout(TIMEOUT))
}

/// Runs `f` and checks that it returned within [`TIMEOUT`] + [`SLACK`].
pub fn bounded<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    assert!(took < TIMEOUT + SLACK, "{what} took {took:?}, more than the timeout + 2 s");
    r
}

/// The client closed the connection (the peer saw the end of the stream or a reset), and
/// the script itself went through.
pub fn assert_closed(t: &Transcript) {
    assert!(t.closed_by_peer, "the client did not close the connection: {t:?}");
}

/// Like [`assert_closed`], and the script ran to its end.
pub fn assert_clean(t: &Transcript) {
    assert!(t.error.is_none(), "the fake peer's script failed: {:?}\n{t:?}", t.error);
    assert_closed(t);
}

/// A C-ECHO-RSP answering `id` with `status`.
pub fn echo_rsp(id: u16, status: Status) -> CommandSet {
    CEchoRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: Some(uids::VERIFICATION.into()),
        status,
    }
    .to_command_set()
}

/// A C-FIND-RSP answering `id`.
pub fn find_rsp(id: u16, status: Status, with_identifier: bool) -> CommandSet {
    CFindRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: Some(uids::PATIENT_ROOT_FIND.into()),
        status,
        has_data_set: with_identifier,
        error_comment: None,
        offending_elements: None,
    }
    .to_command_set()
}

/// Sub-operation counts.
pub fn subs(remaining: u16, completed: u16, failed: u16) -> SubOperations {
    SubOperations {
        remaining: Some(remaining),
        completed: Some(completed),
        failed: Some(failed),
        warning: Some(0),
    }
}

/// A C-GET-RSP answering `id`.
pub fn get_rsp(id: u16, status: Status, s: SubOperations) -> CommandSet {
    CGetRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: Some(uids::STUDY_ROOT_GET.into()),
        status,
        sub_operations: s,
        has_data_set: false,
        error_comment: None,
        offending_elements: None,
    }
    .to_command_set()
}

/// A C-MOVE-RSP answering `id`.
pub fn move_rsp(id: u16, status: Status, s: SubOperations) -> CommandSet {
    CMoveRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: Some(uids::STUDY_ROOT_MOVE.into()),
        status,
        sub_operations: s,
        has_data_set: false,
        error_comment: None,
        offending_elements: None,
    }
    .to_command_set()
}

/// A C-STORE-RQ (a C-GET sub-operation) with message ID `id`.
pub fn store_rq(id: u16, sop_class: &str, sop_instance: &str) -> CommandSet {
    CStoreRq {
        message_id: id,
        affected_sop_class_uid: sop_class.into(),
        affected_sop_instance_uid: sop_instance.into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    }
    .to_command_set()
}

/// A C-STORE-RSP answering `id`.
pub fn store_rsp(id: u16, status: Status) -> CommandSet {
    CStoreRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: None,
        affected_sop_instance_uid: None,
        status,
        error_comment: None,
        offending_elements: None,
    }
    .to_command_set()
}

/// A C-FIND identifier (Explicit VR Little Endian, the syntax the fake peer accepts first).
pub fn identifier(name: &str, pid: &str) -> Vec<u8> {
    Query::from_pairs([
        ("QueryRetrieveLevel", "PATIENT"),
        ("PatientName", name),
        ("PatientID", pid),
    ])
    .unwrap()
    .encode(DatasetEncoding::ExplicitLittle)
    .unwrap()
}

/// A small instance data set for C-STORE sub-operations (Explicit VR Little Endian).
pub fn instance_data(sop_instance: &str) -> Vec<u8> {
    Query::from_pairs([
        ("SOPClassUID", CT),
        ("SOPInstanceUID", sop_instance),
        ("PatientID", "P1"),
        ("StudyInstanceUID", "1.2.3"),
    ])
    .unwrap()
    .encode(DatasetEncoding::ExplicitLittle)
    .unwrap()
}

/// A step sending one DIMSE message on `context_id`.
pub fn send(context_id: u8, cs: CommandSet, data: Option<Vec<u8>>) -> Step {
    Step::run(move |s: &mut Session| s.send_message(context_id, &cs, data.as_deref()))
}

/// Steps: read the request, answer it with `cs` (and `data`) on the request's context.
pub fn answer(cs: CommandSet, data: Option<Vec<u8>>) -> Vec<Step> {
    vec![
        Step::ExpectMessage,
        Step::run(move |s: &mut Session| {
            let ctx = s.last_message()?.context_id;
            s.send_message(ctx, &cs, data.as_deref())
        }),
    ]
}

/// The whole life of a well-behaved C-ECHO SCP after the association: answer, release.
pub fn echo_then_release() -> Vec<Step> {
    let mut v = answer(echo_rsp(1, Status::SUCCESS), None);
    v.extend(Step::release());
    v
}

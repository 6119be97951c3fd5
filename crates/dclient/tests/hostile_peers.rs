//! The client against peers that break the protocol on cue ([`FakePeer`] scripts), one case
//! per misbehaviour, each on the operation where it bites (echo, find, get, move, send).
#![allow(clippy::unwrap_used)]

mod hostile;

use dclient::proto::dimse::status::Status;
use dclient::proto::ul::codec::encode_pdu_to_vec;
use dclient::proto::ul::pdu::Pdu;
use dclient_testkit::fake_peer::{message_bytes, FakePeer, Step};
use hostile::*;

fn find_patients(
    port: u16,
) -> (dclient::Result<Vec<dicom_object::InMemDicomObject>>, dclient::DClient) {
    let mut c = client(port);
    let r = bounded("find", || c.find_patients([("PatientName", "*")]));
    (r, c)
}

// ---------------------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------------------

/// Bug: when C-FIND matches and the A-ABORT (or bytes that are not a PDU) after them came in
/// the same read, the error was returned at once and the matches already received were
/// dropped; how many a caller got depended on how TCP cut the stream.
#[test]
fn regression_matches_in_the_same_read_as_an_abort_are_not_lost() {
    for tail in [
        encode_pdu_to_vec(&Pdu::Abort(dclient::proto::ul::pdu::Abort::by_user())).unwrap(),
        vec![0xAB; 64],
    ] {
        let mut burst = Vec::new();
        for i in 0..3 {
            let id = identifier("Doe^J", &i.to_string());
            burst.extend(message_bytes(1, &find_rsp(1, Status::PENDING, true), Some(&id), 16000));
        }
        burst.extend(tail);
        let peer =
            FakePeer::start(vec![Step::accept_all(), Step::ExpectMessage, Step::Send(burst)]);
        let (r, c) = find_patients(peer.port());
        assert!(r.is_err(), "{r:?}");
        assert_eq!(c.data_results().len(), 3, "{r:?}");
        assert_closed(&peer.finish_one());
    }
}

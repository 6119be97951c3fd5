//! The DIMSE exchanges of `dclient_proto::dimse::exchange`, driven by hand in memory: the
//! SCP halves build the messages the SCU halves check, and the clock is whatever `Instant`
//! a test passes in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dclient_proto::dimse::command::{
    CCancelRq, CEchoRq, CFindRq, CFindRsp, CStoreRq, Command, Priority, SubOperations,
};
use dclient_proto::dimse::exchange::{Exchange, ExchangeError, Outgoing, Timer};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::dimse::status::Status;
use dclient_proto::{uids, ProtoError, ViolationKind};

/// Feeding exchanges by hand: the SCP side builds messages, the SCU side checks them.
mod testing {
    use super::*;

    /// The DIMSE events a peer sending `msg` produces: the command, then the data set in
    /// one fragment.
    pub(crate) fn events_of(msg: &Outgoing) -> Vec<DimseEvent> {
        let command = Command::from_command_set(&msg.command).expect("a valid command");
        let mut v = vec![DimseEvent::Command {
            context_id: msg.context_id,
            command,
            command_set: msg.command.clone(),
        }];
        if let Some(d) = &msg.data {
            v.push(DimseEvent::Data { context_id: msg.context_id, data: d.clone(), is_last: true });
        }
        v
    }

    /// Delivers `msg` to `ex`.
    pub(crate) fn deliver<X: Exchange>(
        ex: &mut X,
        msg: &Outgoing,
        now: Instant,
    ) -> Result<(), ExchangeError> {
        for ev in events_of(msg) {
            ex.handle(ev, now)?;
        }
        Ok(())
    }

    /// Everything `ex` wants sent.
    pub(crate) fn drain<X: Exchange>(ex: &mut X) -> Vec<Outgoing> {
        std::iter::from_fn(|| ex.poll_transmit()).collect()
    }

    /// Everything `ex` reports.
    pub(crate) fn events<X: Exchange>(ex: &mut X) -> Vec<X::Event> {
        std::iter::from_fn(|| ex.poll_event()).collect()
    }
}

mod echo {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::exchange::echo::*;

    const T: Duration = Duration::from_secs(2);

    fn rq_of(out: &Outgoing) -> CEchoRq {
        match Command::from_command_set(&out.command) {
            Ok(Command::CEchoRq(rq)) => rq,
            other => panic!("expected a C-ECHO-RQ, got {other:?}"),
        }
    }

    #[test]
    fn request_then_response() {
        let t0 = Instant::now();
        let mut scu = EchoScu::new(1, 7, T, t0);
        let sent = drain(&mut scu);
        assert_eq!(sent.len(), 1);
        let rq = rq_of(&sent[0]);
        assert_eq!((rq.message_id, rq.affected_sop_class_uid.as_str()), (7, uids::VERIFICATION));
        assert_eq!(scu.poll_timeout(), Some(t0 + T));
        deliver(&mut scu, &echo_response(1, &rq, Status::SUCCESS), t0).expect("valid");
        let got = events(&mut scu);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].status, Status::SUCCESS);
        assert!(scu.is_done());
        assert_eq!(scu.poll_timeout(), None);
    }

    #[test]
    fn wrong_message_id_is_a_violation() {
        let t0 = Instant::now();
        let mut scu = EchoScu::new(1, 1, T, t0);
        let rq = CEchoRq { message_id: 99, affected_sop_class_uid: uids::VERIFICATION.into() };
        let e = deliver(&mut scu, &echo_response(1, &rq, Status::SUCCESS), t0).expect_err("id");
        match e {
            ExchangeError::Violation(v) => {
                assert_eq!(v.kind, ViolationKind::WrongMessageId);
                assert_eq!(v.detail, "C-ECHO-RSP answers message ID 99, but our request had ID 1");
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn a_request_instead_of_the_response_is_a_violation() {
        let t0 = Instant::now();
        let mut scu = EchoScu::new(1, 1, T, t0);
        let sent = drain(&mut scu);
        let e = deliver(&mut scu, &sent[0], t0).expect_err("a request");
        assert_eq!(e.to_string(), "expected a C-ECHO-RSP, got a C-ECHO-RQ");
    }

    #[test]
    fn silence_times_out_at_the_deadline_only() {
        let t0 = Instant::now();
        let mut scu = EchoScu::new(1, 1, T, t0);
        scu.handle_timeout(t0 + T / 2).expect("not yet");
        let e = scu.handle_timeout(t0 + T).expect_err("timed out");
        assert_eq!(e.to_string(), "timed out after 2 s waiting for the C-ECHO-RSP");
    }
}

mod find {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::exchange::find::*;

    const T: Duration = Duration::from_secs(2);
    const CLASS: &str = "1.2.840.10008.5.1.4.1.2.2.1";

    fn scu(t0: Instant) -> (FindScu, FindScp) {
        let mut scu = FindScu::new(3, 5, CLASS, Priority::Medium, b"QUERY".to_vec(), T, t0);
        let sent = drain(&mut scu);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data.as_deref(), Some(&b"QUERY"[..]));
        let rq = match Command::from_command_set(&sent[0].command) {
            Ok(Command::CFindRq(rq)) => rq,
            other => panic!("expected a C-FIND-RQ, got {other:?}"),
        };
        (scu, FindScp::new(3, rq))
    }

    #[test]
    fn matches_then_the_final_response() {
        let t0 = Instant::now();
        let (mut scu, scp) = scu(t0);
        deliver(&mut scu, &scp.pending(Status::PENDING, b"M1".to_vec()), t0).expect("m1");
        deliver(&mut scu, &scp.pending(Status::PENDING_WARNING, b"M2".to_vec()), t0).expect("m2");
        deliver(&mut scu, &scp.final_response(Status::SUCCESS, None), t0).expect("final");
        let got = events(&mut scu);
        assert!(matches!(&got[0], FindEvent::Match { identifier, status, .. }
            if identifier == b"M1" && *status == Status::PENDING));
        assert!(
            matches!(&got[1], FindEvent::Match { status, .. } if *status == Status::PENDING_WARNING)
        );
        assert!(matches!(&got[2], FindEvent::Final { status, identifier: None, .. }
            if *status == Status::SUCCESS));
        assert!(scu.is_done());
    }

    #[test]
    fn cancel_drops_late_matches_and_ends_at_the_final_response() {
        let t0 = Instant::now();
        let (mut scu, scp) = scu(t0);
        deliver(&mut scu, &scp.pending(Status::PENDING, b"M1".to_vec()), t0).expect("m1");
        scu.cancel(t0);
        scu.cancel(t0); // once only
        let sent = drain(&mut scu);
        assert_eq!(sent.len(), 1);
        let cancel = events_of(&sent[0]);
        assert_eq!(scp.is_cancel(&cancel[0]), Ok(true));
        deliver(&mut scu, &scp.pending(Status::PENDING, b"M2".to_vec()), t0).expect("m2");
        deliver(&mut scu, &scp.final_response(Status::CANCEL, None), t0).expect("final");
        let got = events(&mut scu);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[1], FindEvent::Final { status, .. } if *status == Status::CANCEL));
    }

    #[test]
    fn an_unanswered_cancel_ends_the_exchange_after_one_timeout() {
        let t0 = Instant::now();
        let (mut scu, scp) = scu(t0);
        scu.cancel(t0);
        // Matches keep the per-message timer going, but not the drain's deadline.
        let t1 = t0 + T / 2;
        deliver(&mut scu, &scp.pending(Status::PENDING, b"M".to_vec()), t1).expect("m");
        assert_eq!(scu.poll_timeout(), Some(t0 + T));
        scu.handle_timeout(t0 + T).expect("not an error");
        assert_eq!(events(&mut scu), vec![FindEvent::CancelUnanswered]);
        assert!(scu.is_done());
    }

    #[test]
    fn a_final_response_with_an_identifier_is_read_before_it_ends() {
        let t0 = Instant::now();
        let (mut scu, scp) = scu(t0);
        let mut last = scp.final_response(Status::UNABLE_TO_PROCESS, Some("bad key"));
        let rsp = CFindRsp {
            message_id_being_responded_to: 5,
            affected_sop_class_uid: None,
            status: Status::UNABLE_TO_PROCESS,
            has_data_set: true,
            error_comment: None,
            offending_elements: None,
        };
        last.command = rsp.to_command_set();
        last.data = Some(b"ID".to_vec());
        deliver(&mut scu, &last, t0).expect("final");
        assert!(
            matches!(&events(&mut scu)[0], FindEvent::Final { identifier: Some(i), .. } if i == b"ID")
        );
    }

    #[test]
    fn violations_are_typed() {
        let t0 = Instant::now();
        let (mut scu, _) = scu(t0);
        let other = FindScp::new(
            3,
            CFindRq {
                message_id: 99,
                affected_sop_class_uid: CLASS.into(),
                priority: Priority::Medium,
            },
        );
        let e = deliver(&mut scu, &other.final_response(Status::SUCCESS, None), t0)
            .expect_err("wrong id");
        assert_eq!(e.to_string(), "C-FIND-RSP answers message ID 99, but our request had ID 5");
        let (mut scu, scp) = self::scu(t0);
        let e = scp
            .is_cancel(&events_of(&scp.final_response(Status::SUCCESS, None))[0])
            .expect_err("a response is not a cancel");
        assert_eq!(e.detail, "expected nothing or a C-CANCEL-RQ, got a C-FIND-RSP");
        let e = scu
            .handle(DimseEvent::Data { context_id: 3, data: vec![1], is_last: true }, t0)
            .expect_err("data without a response");
        assert_eq!(e.to_string(), "expected a C-FIND-RSP, got a data set fragment");
    }

    #[test]
    fn silence_is_a_timeout_naming_what_was_awaited() {
        let t0 = Instant::now();
        let (mut scu, _) = scu(t0);
        let e = scu.handle_timeout(t0 + T).expect_err("timeout");
        assert_eq!(e.to_string(), "timed out after 2 s waiting for a C-FIND-RSP");
    }
}

mod retrieve {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::exchange::retrieve::*;
    use dclient_proto::dimse::exchange::store::StoreScu;

    const T: Duration = Duration::from_secs(2);
    const GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    fn get(t0: Instant) -> (RetrieveScu, RetrieveScp) {
        let mut scu =
            RetrieveScu::new(RetrieveKind::Get, 1, 9, GET, Priority::Medium, b"K".to_vec(), T, t0);
        let sent = drain(&mut scu);
        let rq = match Command::from_command_set(&sent[0].command) {
            Ok(Command::CGetRq(rq)) => rq,
            other => panic!("expected a C-GET-RQ, got {other:?}"),
        };
        (scu, RetrieveScp::get(1, &rq))
    }

    #[test]
    fn a_c_get_with_two_sub_operations_one_failed() {
        let t0 = Instant::now();
        let (mut scu, mut scp) = get(t0);
        scp.set_total(2);
        for (i, status) in [(1u16, Status::SUCCESS), (2, Status::OUT_OF_RESOURCES)] {
            let uid = format!("1.2.3.{i}");
            let rq = CStoreRq {
                message_id: i,
                affected_sop_class_uid: CT.into(),
                affected_sop_instance_uid: uid.clone(),
                priority: Priority::Medium,
                move_originator_ae: None,
                move_originator_message_id: None,
            };
            let mut sub = StoreScu::new(3, rq, T).for_get(scp.message_id());
            let store = drain(&mut sub).remove(0);
            let mut evs = events_of(&store);
            evs.push(DimseEvent::Data { context_id: 3, data: b"DATA".to_vec(), is_last: true });
            for ev in evs {
                scu.handle(ev, t0).expect("sub-operation");
            }
            let got = events(&mut scu);
            assert!(
                matches!(&got[0], RetrieveEvent::StoreRequest { rq, .. } if rq.affected_sop_instance_uid == uid)
            );
            assert!(matches!(&got[1], RetrieveEvent::StoreData { last: true, .. }));
            assert_eq!(scu.poll_timeout(), None, "our answer is due, nothing awaited");
            scu.answer_store(status, None, t0).expect("answer");
            let rsp = drain(&mut scu).remove(0);
            sub.sent(t0);
            deliver(&mut sub, &rsp, t0).expect("the response");
            let r = events(&mut sub).remove(0);
            scp.tally(r.rsp.status, &uid);
            if let Some(p) = scp.pending() {
                deliver(&mut scu, &p, t0).expect("pending");
                match events(&mut scu).as_slice() {
                    [RetrieveEvent::Pending { sub_operations, .. }] => {
                        assert_eq!(sub_operations.remaining, Some(1));
                    }
                    other => panic!("expected one pending response, got {other:?}"),
                }
            }
        }
        deliver(&mut scu, &scp.final_response(Some(b"FAILED".to_vec())), t0).expect("final");
        let got = events(&mut scu);
        match got.last() {
            Some(RetrieveEvent::Final { status, sub_operations, identifier, .. }) => {
                assert_eq!(*status, Status::WARNING);
                assert_eq!(
                    (sub_operations.completed, sub_operations.failed, sub_operations.remaining),
                    (Some(1), Some(1), Some(0))
                );
                assert_eq!(identifier.as_deref(), Some(&b"FAILED"[..]));
            }
            other => panic!("expected the final response, got {other:?}"),
        }
        assert_eq!(scp.failed_uids(), ["1.2.3.2"]);
    }

    #[test]
    fn a_c_store_rq_on_a_c_move_is_a_violation() {
        let t0 = Instant::now();
        let mut scu = RetrieveScu::new(
            RetrieveKind::Move { destination: "DEST".into() },
            1,
            1,
            "1.2.840.10008.5.1.4.1.2.2.2",
            Priority::Medium,
            vec![],
            T,
            t0,
        );
        let rq = CStoreRq {
            message_id: 1,
            affected_sop_class_uid: CT.into(),
            affected_sop_instance_uid: "1.2".into(),
            priority: Priority::Medium,
            move_originator_ae: None,
            move_originator_message_id: None,
        };
        let msg = drain(&mut StoreScu::new(1, rq, T)).remove(0);
        let e = deliver(&mut scu, &msg, t0).expect_err("store on a move");
        assert_eq!(e.to_string(), "expected a C-MOVE-RSP, got a C-STORE-RQ");
    }

    #[test]
    fn counts_a_response_omits_keep_their_values_and_a_cancel_lists_the_rest() {
        let merged = merge_counts(
            SubOperations { remaining: Some(3), completed: Some(1), failed: None, warning: None },
            SubOperations { remaining: Some(2), completed: None, failed: Some(0), warning: None },
        );
        assert_eq!(
            (merged.remaining, merged.completed, merged.failed),
            (Some(2), Some(1), Some(0))
        );
        let t0 = Instant::now();
        let (_, mut scp) = get(t0);
        scp.set_total(3);
        scp.tally(Status::SUCCESS, "1");
        scp.cancel(["2", "3"]);
        assert_eq!(scp.final_status(), Status::CANCEL);
        assert!(scp.pending().is_none());
        assert_eq!(scp.failed_uids(), ["2", "3"]);
    }

    #[test]
    fn answering_without_a_sub_operation_is_misuse() {
        let t0 = Instant::now();
        let (mut scu, _) = get(t0);
        assert!(matches!(scu.answer_store(Status::SUCCESS, None, t0), Err(ProtoError::Misuse(_))));
    }
}

mod store {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::exchange::store::*;

    const T: Duration = Duration::from_secs(2);

    fn rq(id: u16) -> CStoreRq {
        CStoreRq {
            message_id: id,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            affected_sop_instance_uid: "1.2.3".into(),
            priority: Priority::Medium,
            move_originator_ae: None,
            move_originator_message_id: None,
        }
    }

    #[test]
    fn response_after_the_data_set() {
        let t0 = Instant::now();
        let mut scu = StoreScu::new(1, rq(4), T);
        let sent = drain(&mut scu);
        assert_eq!(sent.len(), 1);
        assert_eq!(scu.poll_timeout(), None, "nothing awaited before the data set is out");
        scu.sent(t0);
        assert_eq!(scu.poll_timeout(), Some(t0 + T));
        deliver(&mut scu, &store_response(1, &rq(4), Status::SUCCESS, None), t0).expect("rsp");
        let r = events(&mut scu).remove(0);
        assert_eq!(r.rsp.status, Status::SUCCESS);
        assert_eq!(r.rsp.affected_sop_instance_uid.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn a_cancel_of_the_c_get_is_noted_in_a_sub_operation_only() {
        let t0 = Instant::now();
        let cancel = Outgoing {
            context_id: 1,
            command: CCancelRq { message_id_being_responded_to: 7 }.to_command_set(),
            data: None,
        };
        let mut sub = StoreScu::new(1, rq(4), T).for_get(7);
        sub.sent(t0);
        deliver(&mut sub, &cancel, t0).expect("a cancel is allowed");
        deliver(&mut sub, &store_response(1, &rq(4), Status::SUCCESS, None), t0).expect("rsp");
        assert!(events(&mut sub)[0].cancel_seen);

        let mut plain = StoreScu::new(1, rq(4), T);
        let e = deliver(&mut plain, &cancel, t0).expect_err("not in a plain C-STORE");
        assert_eq!(e.to_string(), "expected a C-STORE-RSP, got a C-CANCEL-RQ");

        let mut flood = StoreScu::new(1, rq(4), T).for_get(7);
        let ev = events_of(&cancel).remove(0);
        let mut last = Ok(());
        for _ in 0..=MAX_CANCELS {
            last = flood.handle(ev.clone(), t0);
        }
        assert!(last.expect_err("bounded").to_string().contains("C-CANCEL after C-CANCEL"));
    }

    #[test]
    fn invalid_uids_stay_out_of_the_response_and_comments_fit_64_characters() {
        let mut bad = rq(1);
        bad.affected_sop_instance_uid = "not/a/uid".into();
        let out = store_response(1, &bad, Status::OUT_OF_RESOURCES, Some(&"x".repeat(100)));
        match Command::from_command_set(&out.command) {
            Ok(Command::CStoreRsp(r)) => {
                assert_eq!(r.affected_sop_instance_uid, None);
                assert_eq!(r.error_comment.map(|c| c.len()), Some(64));
            }
            other => panic!("expected a C-STORE-RSP, got {other:?}"),
        }
    }
}

mod requests {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::exchange::echo::EchoScu;
    use dclient_proto::dimse::exchange::find::FindScu;
    use dclient_proto::dimse::exchange::requests::*;

    const IDLE: Duration = Duration::from_secs(45);
    const T: Duration = Duration::from_secs(2);

    fn feed(r: &mut Requests, msg: &Outgoing, now: Instant) -> Result<(), ExchangeError> {
        for ev in events_of(msg) {
            r.handle(ev, now)?;
        }
        Ok(())
    }

    #[test]
    fn regression_the_idle_timeout_is_the_one_configured_not_30_s() {
        let t0 = Instant::now();
        let mut r = Requests::new(IDLE, T, 1 << 20, t0);
        assert_eq!(r.poll_timeout(), Some(t0 + IDLE));
        r.handle_timeout(t0 + Duration::from_secs(44)).expect("still idle");
        let e = r.handle_timeout(t0 + IDLE).expect_err("idle too long");
        assert_eq!(e.to_string(), "timed out after 45 s waiting for the next request");
    }

    #[test]
    fn requests_with_identifiers_and_the_idle_clock_restarting_on_ready() {
        let t0 = Instant::now();
        let mut r = Requests::new(IDLE, T, 1 << 20, t0);
        let echo = drain(&mut EchoScu::new(1, 1, T, t0)).remove(0);
        feed(&mut r, &echo, t0).expect("echo");
        assert!(matches!(events(&mut r)[..], [Request::Echo { context_id: 1, .. }]));
        assert_eq!(r.poll_timeout(), None, "busy: the user answers");
        let t1 = t0 + Duration::from_secs(100);
        r.ready(t1);
        assert_eq!(r.poll_timeout(), Some(t1 + IDLE));
        let find = drain(&mut FindScu::new(
            3,
            2,
            "1.2.840.10008.5.1.4.1.2.2.1",
            Priority::Medium,
            b"KEYS".to_vec(),
            T,
            t1,
        ))
        .remove(0);
        let evs = events_of(&find);
        r.handle(evs[0].clone(), t1).expect("command");
        assert_eq!(r.poll_timeout(), Some(t1 + T), "within a message: the DIMSE timeout");
        assert_eq!(r.awaiting(), "the identifier");
        r.handle(evs[1].clone(), t1).expect("identifier");
        match &events(&mut r)[..] {
            [Request::Find { identifier: Some(i), .. }] => assert_eq!(i, b"KEYS"),
            other => panic!("expected the C-FIND, got {other:?}"),
        }
    }

    #[test]
    fn an_identifier_too_large_is_drained_and_given_as_none() {
        let t0 = Instant::now();
        let mut r = Requests::new(IDLE, T, 4, t0);
        let find = drain(&mut FindScu::new(
            3,
            2,
            "1.2.840.10008.5.1.4.1.2.2.1",
            Priority::Medium,
            b"TOO LONG".to_vec(),
            T,
            t0,
        ))
        .remove(0);
        feed(&mut r, &find, t0).expect("drained");
        assert!(matches!(&events(&mut r)[..], [Request::Find { identifier: None, .. }]));
    }

    #[test]
    fn dimse_n_requests_come_typed_with_their_data_sets_and_responses_as_other() {
        use dclient_proto::dimse::exchange::commitment::CommitmentScu;
        use dclient_proto::dimse::exchange::normalized::{n_response, NormalizedScu};
        let t0 = Instant::now();
        let mut r = Requests::new(IDLE, T, 1 << 20, t0);
        let action =
            drain(&mut CommitmentScu::new(5, 3, b"INFO".to_vec(), T, T, None, t0)).remove(0);
        feed(&mut r, &action, t0).expect("N-ACTION");
        let rq = match &events(&mut r)[..] {
            [Request::NAction { context_id: 5, rq, data: Some(d) }] => {
                assert_eq!(d, b"INFO");
                rq.clone()
            }
            other => panic!("expected the N-ACTION, got {other:?}"),
        };
        r.ready(t0);
        let get: Command = dclient_proto::dimse::command::NGetRq {
            message_id: 4,
            requested_sop_class_uid: uids::MPPS.into(),
            requested_sop_instance_uid: "1.2.3".into(),
            attribute_identifier_list: None,
        }
        .into();
        let get = drain(&mut NormalizedScu::new(1, &get, None, T, t0).expect("valid")).remove(0);
        feed(&mut r, &get, t0).expect("N-GET");
        assert!(matches!(&events(&mut r)[..], [Request::NGet { context_id: 1, .. }]));
        r.ready(t0);
        // The answer to a report we (the SCP) sent arrives here too, as Other.
        let rsp = n_response(5, &Command::NActionRq(rq), Status::SUCCESS, None, None).expect("rsp");
        feed(&mut r, &rsp, t0).expect("a response");
        match &events(&mut r)[..] {
            [Request::Other { command: Command::NActionRsp(_), data: None, .. }] => {}
            other => panic!("expected Other, got {other:?}"),
        }
    }

    #[test]
    fn a_request_before_the_previous_answer_or_data_without_a_request_is_a_violation() {
        let t0 = Instant::now();
        let mut r = Requests::new(IDLE, T, 1 << 20, t0);
        let e = r
            .handle(DimseEvent::Data { context_id: 1, data: vec![], is_last: true }, t0)
            .expect_err("data");
        assert_eq!(e.to_string(), "expected a request, got a data set fragment");
        let echo = drain(&mut EchoScu::new(1, 1, T, t0)).remove(0);
        feed(&mut r, &echo, t0).expect("echo");
        let e = feed(&mut r, &echo, t0).expect_err("not answered yet");
        assert!(e.to_string().contains("before we answered"), "{e}");
    }
}

mod timer {
    use super::*;

    #[test]
    fn timer_arms_from_now_and_expires_at_its_deadline() {
        let t0 = Instant::now();
        let mut t = Timer::new(Duration::from_secs(45));
        assert!(!t.expired(t0 + Duration::from_secs(1000)), "not armed");
        t.arm(t0);
        assert!(!t.expired(t0 + Duration::from_secs(44)));
        assert!(t.expired(t0 + Duration::from_secs(45)));
        t.disarm();
        assert_eq!(t.deadline(), None);
    }
}

mod normalized {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::command::{NCreateRq, NDeleteRq, NSetRq};
    use dclient_proto::dimse::exchange::normalized::*;

    const T: Duration = Duration::from_secs(2);

    fn create(id: u16) -> Command {
        NCreateRq {
            message_id: id,
            affected_sop_class_uid: uids::MPPS.into(),
            affected_sop_instance_uid: Some("1.2.3.4".into()),
            has_data_set: true,
        }
        .into()
    }

    #[test]
    fn n_create_and_its_response_with_an_attribute_list() {
        let t0 = Instant::now();
        let rq = create(5);
        let mut scu = NormalizedScu::new(3, &rq, Some(vec![1, 2, 3, 4]), T, t0).expect("valid");
        let sent = drain(&mut scu);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data.as_deref(), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(scu.awaiting(), "the N-CREATE-RSP");
        let rsp = n_response(3, &rq, Status::SUCCESS, None, Some(vec![9, 9])).expect("N-CREATE");
        deliver(&mut scu, &rsp, t0).expect("valid");
        let got = events(&mut scu);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].status, Status::SUCCESS);
        assert_eq!(got[0].data.as_deref(), Some(&[9u8, 9][..]));
        match &got[0].command {
            Command::NCreateRsp(r) => {
                assert_eq!(r.affected_sop_instance_uid.as_deref(), Some("1.2.3.4"));
                assert_eq!(r.message_id_being_responded_to, 5);
            }
            other => panic!("{other:?}"),
        }
        assert!(scu.is_done());
    }

    #[test]
    fn a_response_of_another_operation_or_id_is_a_violation() {
        let t0 = Instant::now();
        let rq = create(5);
        let mut scu = NormalizedScu::new(1, &rq, Some(vec![0; 2]), T, t0).expect("valid");
        let set: Command = NSetRq {
            message_id: 5,
            requested_sop_class_uid: uids::MPPS.into(),
            requested_sop_instance_uid: "1.2.3.4".into(),
        }
        .into();
        let wrong = n_response(1, &set, Status::SUCCESS, None, None).expect("N-SET");
        let e = deliver(&mut scu, &wrong, t0).expect_err("N-SET-RSP");
        assert_eq!(e.to_string(), "expected the N-CREATE-RSP, got a N-SET-RSP");
        let mut scu = NormalizedScu::new(1, &rq, Some(vec![0; 2]), T, t0).expect("valid");
        let other_id = n_response(1, &create(6), Status::SUCCESS, None, None).expect("N-CREATE");
        match deliver(&mut scu, &other_id, t0).expect_err("id") {
            ExchangeError::Violation(v) => assert_eq!(v.kind, ViolationKind::WrongMessageId),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn misuse_and_silence() {
        let t0 = Instant::now();
        let echo: Command = CEchoRq { message_id: 1, affected_sop_class_uid: "1.2".into() }.into();
        assert!(matches!(NormalizedScu::new(1, &echo, None, T, t0), Err(ProtoError::Misuse(_))));
        assert!(matches!(
            NormalizedScu::new(1, &create(1), None, T, t0),
            Err(ProtoError::Misuse(_))
        ));
        let del: Command = NDeleteRq {
            message_id: 2,
            requested_sop_class_uid: "1.2".into(),
            requested_sop_instance_uid: "1.2.3".into(),
        }
        .into();
        let mut scu = NormalizedScu::new(1, &del, None, T, t0).expect("valid");
        scu.handle_timeout(t0 + T / 2).expect("not yet");
        let e = scu.handle_timeout(t0 + T).expect_err("timed out");
        assert_eq!(e.to_string(), "timed out after 2 s waiting for the N-DELETE-RSP");
        // N-DELETE-RSP never carries a data set.
        let rsp = n_response(1, &del, Status::SUCCESS, Some(&"x".repeat(100)), Some(vec![1, 2]))
            .expect("N-DELETE");
        assert!(rsp.data.is_none());
        let cmd = Command::from_command_set(&rsp.command).expect("valid");
        match cmd {
            Command::NDeleteRsp(r) => assert_eq!(r.error_comment.map(|c| c.len()), Some(64)),
            other => panic!("{other:?}"),
        }
        assert!(n_response(1, &echo, Status::SUCCESS, None, None).is_none());
    }
}

mod commitment {
    use super::*;
    use crate::testing::*;
    use dclient_proto::dimse::command::{NActionRsp, NEventReportRq};
    use dclient_proto::dimse::exchange::commitment::*;
    use dclient_proto::dimse::exchange::normalized::n_response;

    const T: Duration = Duration::from_secs(2);
    const WAIT: Duration = Duration::from_secs(10);
    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    fn sop(i: u32) -> SopRef {
        SopRef::new(CT, format!("1.2.3.{i}"))
    }

    fn transaction() -> Transaction {
        Transaction { uid: "2.25.1".into(), instances: vec![sop(1), sop(2), sop(3)] }
    }

    fn report(
        event: u16,
        uid: Option<&str>,
        committed: Vec<SopRef>,
        failed: Vec<FailedRef>,
    ) -> Report {
        Report { event_type_id: event, transaction_uid: uid.map(str::to_owned), committed, failed }
    }

    fn failed(i: u32, reason: u16) -> FailedRef {
        FailedRef { sop: sop(i), failure_reason: Some(reason) }
    }

    #[test]
    fn a_report_is_matched_by_transaction_uid_and_judged_per_instance() {
        let mut p = Pending::new();
        p.add(transaction());
        let v = p.take_report(&report(2, Some("2.25.1"), vec![sop(1)], vec![failed(2, 0x0112)]));
        assert_eq!(v.status, Status::SUCCESS);
        let o = v.outcome.expect("ours");
        assert_eq!(o.instances.len(), 3);
        assert!(o.instances[0].is_committed());
        assert_eq!(o.instances[1].state, InstanceState::Failed { failure_reason: Some(0x0112) });
        assert!(o.instances[1].describe().contains("0x0112 (no such object instance"));
        assert_eq!(o.instances[2].state, InstanceState::NotReported);
        assert_eq!(o.instances[2].describe(), "not confirmed: missing from the report");
        assert!(!o.all_committed());
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert!(p.is_empty(), "the transaction stops waiting");
    }

    #[test]
    fn unknown_transaction_uid_and_event_type_are_refused_and_ours_keeps_waiting() {
        let mut p = Pending::new();
        p.add(transaction());
        let v = p.take_report(&report(1, Some("2.25.999"), vec![sop(1)], vec![]));
        assert_eq!(v.status, Status::INVALID_ARGUMENT_VALUE);
        assert_eq!(v.error_comment.as_deref(), Some("unknown Transaction UID 2.25.999"));
        assert!(v.outcome.is_none());
        let v = p.take_report(&report(1, None, vec![sop(1)], vec![]));
        assert_eq!(v.status, Status::INVALID_ARGUMENT_VALUE);
        let v = p.take_report(&report(7, Some("2.25.1"), vec![sop(1)], vec![]));
        assert_eq!(v.status, Status::NO_SUCH_EVENT_TYPE);
        assert!(v.error_comment.unwrap_or_default().contains("Event Type ID 7"));
        assert!(p.contains("2.25.1"), "still waiting for its real report");
    }

    #[test]
    fn duplicated_contradicting_foreign_and_reclassed_instances() {
        let mut p = Pending::new();
        p.add(transaction());
        let reclassed = SopRef::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.3");
        let r = report(
            1,
            Some("2.25.1"),
            vec![sop(1), sop(1), sop(2), reclassed, sop(42)],
            vec![failed(2, 0x0110)],
        );
        let o = p.take_report(&r).outcome.expect("ours");
        assert!(o.instances[0].is_committed());
        assert_eq!(o.instances[0].note.as_deref(), Some("listed twice"));
        assert_eq!(o.instances[1].state, InstanceState::Failed { failure_reason: Some(0x0110) });
        assert_eq!(o.instances[1].note.as_deref(), Some("reported both committed and failed"));
        assert_eq!(o.instances[2].state, InstanceState::Failed { failure_reason: None });
        assert!(o.instances[2].note.as_deref().unwrap_or_default().contains("as SOP class"));
        assert_eq!(o.warnings.len(), 2, "{:?}", o.warnings);
        assert!(o.warnings[0].contains("1 instance(s) we did not ask about"));
        assert!(o.warnings[1].contains("Event Type ID 1"));
    }

    fn action_rsp(id: u16, status: Status) -> Outgoing {
        let rsp = NActionRsp {
            message_id_being_responded_to: id,
            affected_sop_class_uid: Some(uids::STORAGE_COMMITMENT_PUSH.into()),
            affected_sop_instance_uid: Some(uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into()),
            action_type_id: Some(1),
            status,
            has_data_set: false,
            error_comment: None,
            error_id: None,
            offending_elements: None,
        };
        Outgoing { context_id: 1, command: rsp.to_command_set(), data: None }
    }

    fn report_rq(id: u16, class: &str) -> Outgoing {
        let rq = NEventReportRq {
            message_id: id,
            affected_sop_class_uid: class.into(),
            affected_sop_instance_uid: uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into(),
            event_type_id: 1,
            has_data_set: true,
        };
        Outgoing { context_id: 1, command: rq.to_command_set(), data: Some(vec![7; 10]) }
    }

    #[test]
    fn request_response_then_report_on_the_same_association() {
        let t0 = Instant::now();
        let mut scu = CommitmentScu::new(1, 4, vec![1, 2], T, WAIT, None, t0);
        let sent = drain(&mut scu);
        match Command::from_command_set(&sent[0].command) {
            Ok(Command::NActionRq(rq)) => {
                assert_eq!(rq.action_type_id, 1);
                assert_eq!(rq.requested_sop_instance_uid, uids::STORAGE_COMMITMENT_PUSH_INSTANCE);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(scu.poll_timeout(), Some(t0 + T));
        deliver(&mut scu, &action_rsp(4, Status::SUCCESS), t0).expect("valid");
        assert!(matches!(
            events(&mut scu)[..],
            [CommitEvent::ActionResponse { status: Status::SUCCESS, .. }]
        ));
        assert_eq!(scu.poll_timeout(), Some(t0 + WAIT), "now the report's wait");
        assert!(!scu.is_done());
        deliver(&mut scu, &report_rq(1, uids::STORAGE_COMMITMENT_PUSH), t0).expect("valid");
        let got = events(&mut scu);
        let CommitEvent::Report { rq, data, .. } = &got[0] else { panic!("{got:?}") };
        assert_eq!(data.as_deref(), Some(&[7u8; 10][..]));
        assert_eq!(scu.poll_timeout(), None, "the user answers first");
        let rq = rq.clone();
        scu.answer_report(Status::SUCCESS, None, true);
        let answer = drain(&mut scu);
        let want =
            n_response(1, &Command::NEventReportRq(rq), Status::SUCCESS, None, None).expect("rsp");
        assert_eq!(answer, vec![want]);
        assert!(scu.is_done());
    }

    #[test]
    fn a_report_before_the_response_a_refused_one_and_ticks() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(100);
        let mut scu = CommitmentScu::new(1, 4, vec![1, 2], T, WAIT, Some(tick), t0);
        drain(&mut scu);
        assert_eq!(scu.poll_timeout(), Some(t0 + tick));
        scu.handle_timeout(t0 + tick).expect("a tick");
        assert_eq!(events(&mut scu), vec![CommitEvent::Tick]);
        // Someone else's report first: refused, still waiting.
        deliver(&mut scu, &report_rq(1, uids::STORAGE_COMMITMENT_PUSH), t0).expect("valid");
        assert_eq!(events(&mut scu).len(), 1);
        scu.answer_report(Status::INVALID_ARGUMENT_VALUE, Some("unknown Transaction UID"), false);
        assert_eq!(drain(&mut scu).len(), 1);
        // Ours, before the N-ACTION-RSP (PS3.7 allows one operation each way).
        deliver(&mut scu, &report_rq(2, uids::STORAGE_COMMITMENT_PUSH), t0).expect("valid");
        events(&mut scu);
        scu.answer_report(Status::SUCCESS, None, true);
        drain(&mut scu);
        assert!(!scu.is_done(), "the N-ACTION-RSP is still due");
        deliver(&mut scu, &action_rsp(4, Status::SUCCESS), t0).expect("valid");
        events(&mut scu);
        assert!(scu.is_done());
    }

    #[test]
    fn the_wait_ends_with_report_timeout_and_a_refused_action_ends_at_once() {
        let t0 = Instant::now();
        let mut scu = CommitmentScu::new(1, 4, vec![], T, WAIT, None, t0);
        drain(&mut scu);
        deliver(&mut scu, &action_rsp(4, Status::SUCCESS), t0).expect("valid");
        events(&mut scu);
        scu.handle_timeout(t0 + WAIT).expect("not an error");
        assert_eq!(events(&mut scu), vec![CommitEvent::ReportTimeout]);
        assert!(scu.is_done());

        let mut scu = CommitmentScu::new(1, 4, vec![], T, WAIT, None, t0);
        drain(&mut scu);
        deliver(&mut scu, &action_rsp(4, Status(0x0122)), t0).expect("valid");
        events(&mut scu);
        assert!(scu.is_done());

        let mut scu = CommitmentScu::new(1, 4, vec![], T, WAIT, None, t0);
        drain(&mut scu);
        let e = scu.handle_timeout(t0 + T).expect_err("no N-ACTION-RSP");
        assert_eq!(e.to_string(), "timed out after 2 s waiting for the N-ACTION-RSP");
    }

    #[test]
    fn a_report_of_another_class_or_a_stray_message_is_a_violation() {
        let t0 = Instant::now();
        let mut scu = CommitmentScu::new(1, 4, vec![], T, WAIT, None, t0);
        drain(&mut scu);
        let e = deliver(&mut scu, &report_rq(1, uids::MPPS), t0).expect_err("MPPS report");
        assert!(e.to_string().contains("N-EVENT-REPORT-RQ of SOP class"), "{e}");
        let mut scu = CommitmentScu::new(1, 4, vec![], T, WAIT, None, t0);
        drain(&mut scu);
        let echo = Outgoing {
            context_id: 1,
            command: CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() }
                .to_command_set(),
            data: None,
        };
        let e = deliver(&mut scu, &echo, t0).expect_err("C-ECHO");
        assert_eq!(e.to_string(), "expected the N-ACTION-RSP, got a C-ECHO-RQ");
    }
}

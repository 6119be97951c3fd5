//! PS3.8 Table 9-10, one test per cell: each drives a real endpoint into the state through
//! legitimate inputs, fires the event through the public API (bytes of a real PDU, a local
//! primitive, a transport or timer input) and checks what the action of that cell must do:
//! the next state, the PDU sent, the indication given, the ARTIM timer. Empty cells must
//! change nothing.

use dclient_proto::error::ProtoError;
use dclient_proto::uids;
use dclient_proto::ul::association::{AssocEvent, Association, Role};
use dclient_proto::ul::codec::{encode_pdu_to_vec, Deframer};
use dclient_proto::ul::fsm::{self, Action, Event, State};
use dclient_proto::ul::negotiation::{AcceptorPolicy, ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::*;

fn cfg() -> RequestorConfig {
    RequestorConfig {
        contexts: vec![ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE])],
        ..RequestorConfig::default()
    }
}

fn policy() -> AcceptorPolicy {
    AcceptorPolicy {
        supported: [(uids::VERIFICATION.to_owned(), vec![])].into_iter().collect(),
        max_pdu: 16384,
        ..AcceptorPolicy::default()
    }
}

fn rq() -> AssociateRq {
    cfg().build_rq().expect("valid request")
}

fn ac() -> AssociateAc {
    policy().answer(&rq())
}

fn bytes(p: &Pdu) -> Vec<u8> {
    encode_pdu_to_vec(p).expect("encodable")
}

fn pdata() -> Pdu {
    Pdu::PData(PData {
        pdvs: vec![Pdv { context_id: 1, is_command: true, is_last: true, data: vec![0; 8] }],
    })
}

/// Takes everything the endpoint wants to send, as PDUs.
fn sent(a: &mut Association) -> Vec<Pdu> {
    let mut d = Deframer::new(0);
    d.push(a.transmit());
    let n = a.transmit().len();
    a.advance_transmit(n);
    let mut v = Vec::new();
    while let Some(p) = d.next_pdu().expect("we only send valid PDUs") {
        v.push(p);
    }
    v
}

fn events(a: &mut Association) -> Vec<AssocEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn feed(a: &mut Association, p: &Pdu) {
    a.handle_input(&bytes(p)).expect("input accepted");
}

/// A requestor and an acceptor, established over an in-memory link.
fn pair() -> (Association, Association) {
    let mut r = Association::request(&cfg()).expect("request");
    r.handle_transport_connected().expect("connected");
    let mut a = Association::accept_transport(16384);
    let out = r.transmit().to_vec();
    r.advance_transmit(out.len());
    a.handle_input(&out).expect("rq in");
    match a.poll_event() {
        Some(AssocEvent::AssociateIndication(rq)) => {
            a.accept(policy().answer(&rq)).expect("accept")
        }
        other => panic!("expected an indication, got {other:?}"),
    }
    let out = a.transmit().to_vec();
    a.advance_transmit(out.len());
    r.handle_input(&out).expect("ac in");
    assert_eq!(r.poll_event(), Some(AssocEvent::Established));
    assert_eq!((r.state(), a.state()), (State::Sta6, State::Sta6));
    (r, a)
}

fn reach(s: State) -> Association {
    let mut a = match s {
        State::Sta1 => {
            let mut r = Association::request(&cfg()).expect("request");
            r.handle_transport_connected().expect("connected");
            feed(&mut r, &Pdu::AssociateRj(AssociateRj { result: 1, source: 1, reason: 7 }));
            r
        }
        State::Sta2 => Association::accept_transport(16384),
        State::Sta3 => {
            let mut a = Association::accept_transport(16384);
            feed(&mut a, &Pdu::AssociateRq(rq()));
            a
        }
        State::Sta4 => Association::request(&cfg()).expect("request"),
        State::Sta5 => {
            let mut r = Association::request(&cfg()).expect("request");
            r.handle_transport_connected().expect("connected");
            r
        }
        State::Sta6 => pair().0,
        State::Sta7 => {
            let mut r = pair().0;
            r.release().expect("release");
            r
        }
        State::Sta8 => {
            let mut a = pair().1;
            feed(&mut a, &Pdu::ReleaseRq);
            a
        }
        State::Sta9 => {
            let mut r = reach(State::Sta7);
            feed(&mut r, &Pdu::ReleaseRq);
            r
        }
        State::Sta10 => {
            let mut a = pair().1;
            a.release().expect("release");
            feed(&mut a, &Pdu::ReleaseRq);
            a
        }
        State::Sta11 => {
            let mut r = reach(State::Sta9);
            r.release_response().expect("release response");
            r
        }
        State::Sta12 => {
            let mut a = reach(State::Sta10);
            feed(&mut a, &Pdu::ReleaseRp);
            a
        }
        State::Sta13 => {
            let mut r = pair().0;
            r.abort();
            r
        }
    };
    assert_eq!(a.state(), s, "could not reach {s:?}");
    sent(&mut a);
    events(&mut a);
    a
}

fn fire(a: &mut Association, e: Event) -> Option<Result<(), ProtoError>> {
    Some(match e {
        Event::Evt1 => a.associate_request(&cfg()),
        Event::Evt2 => a.handle_transport_connected(),
        Event::Evt3 => a.handle_input(&bytes(&Pdu::AssociateAc(ac()))),
        Event::Evt4 => a.handle_input(&bytes(&Pdu::AssociateRj(AssociateRj {
            result: 1,
            source: 1,
            reason: 7,
        }))),
        Event::Evt5 => a.transport_indication(),
        Event::Evt6 => a.handle_input(&bytes(&Pdu::AssociateRq(rq()))),
        Event::Evt7 => a.accept(ac()),
        Event::Evt8 => a.reject(AssociateRj { result: 1, source: 1, reason: 3 }),
        Event::Evt9 => a.send_pdv(1, true, &[0; 8], true),
        Event::Evt10 => a.handle_input(&bytes(&pdata())),
        Event::Evt11 => a.release(),
        Event::Evt12 => a.handle_input(&bytes(&Pdu::ReleaseRq)),
        Event::Evt13 => a.handle_input(&bytes(&Pdu::ReleaseRp)),
        Event::Evt14 => a.release_response(),
        Event::Evt15 => {
            a.abort();
            return None;
        }
        Event::Evt16 => a.handle_input(&bytes(&Pdu::Abort(Abort::by_user()))),
        Event::Evt17 => {
            a.handle_transport_closed();
            return None;
        }
        Event::Evt18 => {
            a.handle_artim_expired();
            return None;
        }
        // An undefined PDU type: "unrecognized PDU".
        Event::Evt19 => a.handle_input(&[0x0A, 0, 0, 0, 0, 2, 0, 0]),
    })
}

fn check_cell(e: Event, s: State) {
    let mut a = reach(s);
    let artim_before = a.artim_running();
    let result = fire(&mut a, e);
    let out = sent(&mut a);
    let ev = events(&mut a);
    let artim = a.artim_running();
    let Some(action) = fsm::action(s, e) else {
        assert_eq!(a.state(), s, "empty cell {e:?} x {s:?} changed the state");
        assert!(out.is_empty(), "empty cell {e:?} x {s:?} sent {out:?}");
        assert!(ev.is_empty(), "empty cell {e:?} x {s:?} indicated {ev:?}");
        assert_eq!(artim, artim_before);
        if let Some(r) = result {
            assert!(r.is_err(), "empty cell {e:?} x {s:?} was accepted");
        }
        return;
    };
    if let Some(r) = result {
        assert!(r.is_ok(), "{e:?} x {s:?} ({action}) failed: {r:?}");
    }
    let requestor = a.role() == Role::Requestor;
    assert_eq!(a.state(), action.next_state(true, requestor), "{e:?} x {s:?} ({action})");
    let ctx = format!("{e:?} x {s:?} ({action}): sent {out:?}, indicated {ev:?}");
    let one_sent = |f: &dyn Fn(&Pdu) -> bool| out.len() == 1 && f(&out[0]);
    let one_event = |f: &dyn Fn(&AssocEvent) -> bool| ev.len() == 1 && f(&ev[0]);
    let ok = match action {
        Action::Ae1 => out.is_empty() && ev.is_empty(),
        Action::Ae2 => one_sent(&|p| matches!(p, Pdu::AssociateRq(_))),
        Action::Ae3 => one_event(&|x| *x == AssocEvent::Established) && a.negotiated().is_some(),
        Action::Ae4 => one_event(&|x| matches!(x, AssocEvent::Rejected(rj) if rj.reason == 7)),
        Action::Ae5 => artim && out.is_empty(),
        Action::Ae6 => !artim && one_event(&|x| matches!(x, AssocEvent::AssociateIndication(_))),
        Action::Ae7 => one_sent(&|p| matches!(p, Pdu::AssociateAc(_))) && a.negotiated().is_some(),
        Action::Ae8 => artim && one_sent(&|p| matches!(p, Pdu::AssociateRj(rj) if rj.reason == 3)),
        Action::Dt1 | Action::Ar7 => one_sent(&|p| matches!(p, Pdu::PData(_))) && ev.is_empty(),
        Action::Dt2 | Action::Ar6 => {
            one_event(&|x| matches!(x, AssocEvent::PData(_))) && out.is_empty()
        }
        Action::Ar1 => one_sent(&|p| *p == Pdu::ReleaseRq),
        Action::Ar2 => one_event(&|x| *x == AssocEvent::ReleaseIndication { collision: false }),
        Action::Ar3 | Action::Ar10 => one_event(&|x| *x == AssocEvent::ReleaseConfirmation),
        Action::Ar4 => artim && one_sent(&|p| *p == Pdu::ReleaseRp),
        Action::Ar5 | Action::Aa5 => !artim && out.is_empty(),
        Action::Ar8 => one_event(&|x| *x == AssocEvent::ReleaseIndication { collision: true }),
        Action::Ar9 => one_sent(&|p| *p == Pdu::ReleaseRp),
        Action::Aa1 => {
            artim
                && one_sent(&|p| matches!(p, Pdu::Abort(x) if x.source == AbortSource::ServiceUser))
        }
        Action::Aa2 => !artim && out.is_empty(),
        Action::Aa3 => one_event(&|x| matches!(x, AssocEvent::Aborted(_))) && out.is_empty(),
        Action::Aa4 => {
            one_event(&|x| matches!(x, AssocEvent::ProviderAborted(_))) && out.is_empty()
        }
        Action::Aa6 => out.is_empty() && ev.is_empty(),
        Action::Aa7 => {
            one_sent(&|p| matches!(p, Pdu::Abort(x) if x.source == AbortSource::ServiceProvider))
        }
        Action::Aa8 => {
            artim
                && one_sent(
                    &|p| matches!(p, Pdu::Abort(x) if x.source == AbortSource::ServiceProvider),
                )
                && one_event(&|x| matches!(x, AssocEvent::ProviderAborted(_)))
        }
    };
    assert!(ok, "{ctx}");
}

macro_rules! cells {
    ($($name:ident: $e:ident $s:ident;)*) => {
        $(#[test] fn $name() { check_cell(Event::$e, State::$s) })*
    };
}

cells! {
    evt01_sta01: Evt1 Sta1;
    evt01_sta02: Evt1 Sta2;
    evt01_sta03: Evt1 Sta3;
    evt01_sta04: Evt1 Sta4;
    evt01_sta05: Evt1 Sta5;
    evt01_sta06: Evt1 Sta6;
    evt01_sta07: Evt1 Sta7;
    evt01_sta08: Evt1 Sta8;
    evt01_sta09: Evt1 Sta9;
    evt01_sta10: Evt1 Sta10;
    evt01_sta11: Evt1 Sta11;
    evt01_sta12: Evt1 Sta12;
    evt01_sta13: Evt1 Sta13;
    evt02_sta01: Evt2 Sta1;
    evt02_sta02: Evt2 Sta2;
    evt02_sta03: Evt2 Sta3;
    evt02_sta04: Evt2 Sta4;
    evt02_sta05: Evt2 Sta5;
    evt02_sta06: Evt2 Sta6;
    evt02_sta07: Evt2 Sta7;
    evt02_sta08: Evt2 Sta8;
    evt02_sta09: Evt2 Sta9;
    evt02_sta10: Evt2 Sta10;
    evt02_sta11: Evt2 Sta11;
    evt02_sta12: Evt2 Sta12;
    evt02_sta13: Evt2 Sta13;
    evt03_sta01: Evt3 Sta1;
    evt03_sta02: Evt3 Sta2;
    evt03_sta03: Evt3 Sta3;
    evt03_sta04: Evt3 Sta4;
    evt03_sta05: Evt3 Sta5;
    evt03_sta06: Evt3 Sta6;
    evt03_sta07: Evt3 Sta7;
    evt03_sta08: Evt3 Sta8;
    evt03_sta09: Evt3 Sta9;
    evt03_sta10: Evt3 Sta10;
    evt03_sta11: Evt3 Sta11;
    evt03_sta12: Evt3 Sta12;
    evt03_sta13: Evt3 Sta13;
    evt04_sta01: Evt4 Sta1;
    evt04_sta02: Evt4 Sta2;
    evt04_sta03: Evt4 Sta3;
    evt04_sta04: Evt4 Sta4;
    evt04_sta05: Evt4 Sta5;
    evt04_sta06: Evt4 Sta6;
    evt04_sta07: Evt4 Sta7;
    evt04_sta08: Evt4 Sta8;
    evt04_sta09: Evt4 Sta9;
    evt04_sta10: Evt4 Sta10;
    evt04_sta11: Evt4 Sta11;
    evt04_sta12: Evt4 Sta12;
    evt04_sta13: Evt4 Sta13;
    evt05_sta01: Evt5 Sta1;
    evt05_sta02: Evt5 Sta2;
    evt05_sta03: Evt5 Sta3;
    evt05_sta04: Evt5 Sta4;
    evt05_sta05: Evt5 Sta5;
    evt05_sta06: Evt5 Sta6;
    evt05_sta07: Evt5 Sta7;
    evt05_sta08: Evt5 Sta8;
    evt05_sta09: Evt5 Sta9;
    evt05_sta10: Evt5 Sta10;
    evt05_sta11: Evt5 Sta11;
    evt05_sta12: Evt5 Sta12;
    evt05_sta13: Evt5 Sta13;
    evt06_sta01: Evt6 Sta1;
    evt06_sta02: Evt6 Sta2;
    evt06_sta03: Evt6 Sta3;
    evt06_sta04: Evt6 Sta4;
    evt06_sta05: Evt6 Sta5;
    evt06_sta06: Evt6 Sta6;
    evt06_sta07: Evt6 Sta7;
    evt06_sta08: Evt6 Sta8;
    evt06_sta09: Evt6 Sta9;
    evt06_sta10: Evt6 Sta10;
    evt06_sta11: Evt6 Sta11;
    evt06_sta12: Evt6 Sta12;
    evt06_sta13: Evt6 Sta13;
    evt07_sta01: Evt7 Sta1;
    evt07_sta02: Evt7 Sta2;
    evt07_sta03: Evt7 Sta3;
    evt07_sta04: Evt7 Sta4;
    evt07_sta05: Evt7 Sta5;
    evt07_sta06: Evt7 Sta6;
    evt07_sta07: Evt7 Sta7;
    evt07_sta08: Evt7 Sta8;
    evt07_sta09: Evt7 Sta9;
    evt07_sta10: Evt7 Sta10;
    evt07_sta11: Evt7 Sta11;
    evt07_sta12: Evt7 Sta12;
    evt07_sta13: Evt7 Sta13;
    evt08_sta01: Evt8 Sta1;
    evt08_sta02: Evt8 Sta2;
    evt08_sta03: Evt8 Sta3;
    evt08_sta04: Evt8 Sta4;
    evt08_sta05: Evt8 Sta5;
    evt08_sta06: Evt8 Sta6;
    evt08_sta07: Evt8 Sta7;
    evt08_sta08: Evt8 Sta8;
    evt08_sta09: Evt8 Sta9;
    evt08_sta10: Evt8 Sta10;
    evt08_sta11: Evt8 Sta11;
    evt08_sta12: Evt8 Sta12;
    evt08_sta13: Evt8 Sta13;
    evt09_sta01: Evt9 Sta1;
    evt09_sta02: Evt9 Sta2;
    evt09_sta03: Evt9 Sta3;
    evt09_sta04: Evt9 Sta4;
    evt09_sta05: Evt9 Sta5;
    evt09_sta06: Evt9 Sta6;
    evt09_sta07: Evt9 Sta7;
    evt09_sta08: Evt9 Sta8;
    evt09_sta09: Evt9 Sta9;
    evt09_sta10: Evt9 Sta10;
    evt09_sta11: Evt9 Sta11;
    evt09_sta12: Evt9 Sta12;
    evt09_sta13: Evt9 Sta13;
    evt10_sta01: Evt10 Sta1;
    evt10_sta02: Evt10 Sta2;
    evt10_sta03: Evt10 Sta3;
    evt10_sta04: Evt10 Sta4;
    evt10_sta05: Evt10 Sta5;
    evt10_sta06: Evt10 Sta6;
    evt10_sta07: Evt10 Sta7;
    evt10_sta08: Evt10 Sta8;
    evt10_sta09: Evt10 Sta9;
    evt10_sta10: Evt10 Sta10;
    evt10_sta11: Evt10 Sta11;
    evt10_sta12: Evt10 Sta12;
    evt10_sta13: Evt10 Sta13;
    evt11_sta01: Evt11 Sta1;
    evt11_sta02: Evt11 Sta2;
    evt11_sta03: Evt11 Sta3;
    evt11_sta04: Evt11 Sta4;
    evt11_sta05: Evt11 Sta5;
    evt11_sta06: Evt11 Sta6;
    evt11_sta07: Evt11 Sta7;
    evt11_sta08: Evt11 Sta8;
    evt11_sta09: Evt11 Sta9;
    evt11_sta10: Evt11 Sta10;
    evt11_sta11: Evt11 Sta11;
    evt11_sta12: Evt11 Sta12;
    evt11_sta13: Evt11 Sta13;
    evt12_sta01: Evt12 Sta1;
    evt12_sta02: Evt12 Sta2;
    evt12_sta03: Evt12 Sta3;
    evt12_sta04: Evt12 Sta4;
    evt12_sta05: Evt12 Sta5;
    evt12_sta06: Evt12 Sta6;
    evt12_sta07: Evt12 Sta7;
    evt12_sta08: Evt12 Sta8;
    evt12_sta09: Evt12 Sta9;
    evt12_sta10: Evt12 Sta10;
    evt12_sta11: Evt12 Sta11;
    evt12_sta12: Evt12 Sta12;
    evt12_sta13: Evt12 Sta13;
    evt13_sta01: Evt13 Sta1;
    evt13_sta02: Evt13 Sta2;
    evt13_sta03: Evt13 Sta3;
    evt13_sta04: Evt13 Sta4;
    evt13_sta05: Evt13 Sta5;
    evt13_sta06: Evt13 Sta6;
    evt13_sta07: Evt13 Sta7;
    evt13_sta08: Evt13 Sta8;
    evt13_sta09: Evt13 Sta9;
    evt13_sta10: Evt13 Sta10;
    evt13_sta11: Evt13 Sta11;
    evt13_sta12: Evt13 Sta12;
    evt13_sta13: Evt13 Sta13;
    evt14_sta01: Evt14 Sta1;
    evt14_sta02: Evt14 Sta2;
    evt14_sta03: Evt14 Sta3;
    evt14_sta04: Evt14 Sta4;
    evt14_sta05: Evt14 Sta5;
    evt14_sta06: Evt14 Sta6;
    evt14_sta07: Evt14 Sta7;
    evt14_sta08: Evt14 Sta8;
    evt14_sta09: Evt14 Sta9;
    evt14_sta10: Evt14 Sta10;
    evt14_sta11: Evt14 Sta11;
    evt14_sta12: Evt14 Sta12;
    evt14_sta13: Evt14 Sta13;
    evt15_sta01: Evt15 Sta1;
    evt15_sta02: Evt15 Sta2;
    evt15_sta03: Evt15 Sta3;
    evt15_sta04: Evt15 Sta4;
    evt15_sta05: Evt15 Sta5;
    evt15_sta06: Evt15 Sta6;
    evt15_sta07: Evt15 Sta7;
    evt15_sta08: Evt15 Sta8;
    evt15_sta09: Evt15 Sta9;
    evt15_sta10: Evt15 Sta10;
    evt15_sta11: Evt15 Sta11;
    evt15_sta12: Evt15 Sta12;
    evt15_sta13: Evt15 Sta13;
    evt16_sta01: Evt16 Sta1;
    evt16_sta02: Evt16 Sta2;
    evt16_sta03: Evt16 Sta3;
    evt16_sta04: Evt16 Sta4;
    evt16_sta05: Evt16 Sta5;
    evt16_sta06: Evt16 Sta6;
    evt16_sta07: Evt16 Sta7;
    evt16_sta08: Evt16 Sta8;
    evt16_sta09: Evt16 Sta9;
    evt16_sta10: Evt16 Sta10;
    evt16_sta11: Evt16 Sta11;
    evt16_sta12: Evt16 Sta12;
    evt16_sta13: Evt16 Sta13;
    evt17_sta01: Evt17 Sta1;
    evt17_sta02: Evt17 Sta2;
    evt17_sta03: Evt17 Sta3;
    evt17_sta04: Evt17 Sta4;
    evt17_sta05: Evt17 Sta5;
    evt17_sta06: Evt17 Sta6;
    evt17_sta07: Evt17 Sta7;
    evt17_sta08: Evt17 Sta8;
    evt17_sta09: Evt17 Sta9;
    evt17_sta10: Evt17 Sta10;
    evt17_sta11: Evt17 Sta11;
    evt17_sta12: Evt17 Sta12;
    evt17_sta13: Evt17 Sta13;
    evt18_sta01: Evt18 Sta1;
    evt18_sta02: Evt18 Sta2;
    evt18_sta03: Evt18 Sta3;
    evt18_sta04: Evt18 Sta4;
    evt18_sta05: Evt18 Sta5;
    evt18_sta06: Evt18 Sta6;
    evt18_sta07: Evt18 Sta7;
    evt18_sta08: Evt18 Sta8;
    evt18_sta09: Evt18 Sta9;
    evt18_sta10: Evt18 Sta10;
    evt18_sta11: Evt18 Sta11;
    evt18_sta12: Evt18 Sta12;
    evt18_sta13: Evt18 Sta13;
    evt19_sta01: Evt19 Sta1;
    evt19_sta02: Evt19 Sta2;
    evt19_sta03: Evt19 Sta3;
    evt19_sta04: Evt19 Sta4;
    evt19_sta05: Evt19 Sta5;
    evt19_sta06: Evt19 Sta6;
    evt19_sta07: Evt19 Sta7;
    evt19_sta08: Evt19 Sta8;
    evt19_sta09: Evt19 Sta9;
    evt19_sta10: Evt19 Sta10;
    evt19_sta11: Evt19 Sta11;
    evt19_sta12: Evt19 Sta12;
    evt19_sta13: Evt19 Sta13;
}

#[test]
fn ae6_refuses_an_unsupported_protocol_version() {
    let mut a = Association::accept_transport(16384);
    let mut r = rq();
    r.protocol_version = 0x0002;
    feed(&mut a, &Pdu::AssociateRq(r));
    assert_eq!(a.state(), State::Sta13);
    assert!(a.artim_running());
    let out = sent(&mut a);
    assert_eq!(out, vec![Pdu::AssociateRj(AssociateRj { result: 1, source: 2, reason: 2 })]);
}

#[test]
fn release_collision_completes_on_both_sides() {
    let (mut r, mut a) = pair();
    r.release().expect("requestor releases");
    a.release().expect("acceptor releases");
    let rr = r.transmit().to_vec();
    r.advance_transmit(rr.len());
    let aa = a.transmit().to_vec();
    a.advance_transmit(aa.len());
    r.handle_input(&aa).expect("in");
    a.handle_input(&rr).expect("in");
    assert_eq!((r.state(), a.state()), (State::Sta9, State::Sta10));
    // PS3.8 9.2.3: the requestor answers first; the acceptor answers once it has its RP.
    r.release_response().expect("requestor answers");
    let rr = r.transmit().to_vec();
    r.advance_transmit(rr.len());
    a.handle_input(&rr).expect("in");
    assert_eq!(a.state(), State::Sta12);
    a.release_response().expect("acceptor answers");
    let aa = a.transmit().to_vec();
    a.advance_transmit(aa.len());
    r.handle_input(&aa).expect("in");
    assert_eq!(r.state(), State::Sta1);
    assert_eq!(a.state(), State::Sta13);
    a.handle_transport_closed();
    assert_eq!(a.state(), State::Sta1);
}

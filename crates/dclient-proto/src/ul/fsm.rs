//! The upper-layer protocol machine of PS3.8 section 9.2, as its state transition table.
//!
//! ```text
//!  requestor                                         acceptor
//!  Sta1 --Evt1/AE-1--> Sta4 --Evt2/AE-2--> Sta5      Sta1 --Evt5/AE-5--> Sta2
//!  Sta5 --Evt3/AE-3--> Sta6 (established)            Sta2 --Evt6/AE-6--> Sta3 (or Sta13)
//!  Sta5 --Evt4/AE-4--> Sta1 (rejected)               Sta3 --Evt7/AE-7--> Sta6
//!                                                    Sta3 --Evt8/AE-8--> Sta13 (rejected)
//!  Sta6: P-DATA both ways (Evt9/DT-1 send, Evt10/DT-2 receive)
//!  release: Sta6 --Evt11/AR-1--> Sta7 --Evt13/AR-3--> Sta1
//!           Sta6 --Evt12/AR-2--> Sta8 --Evt14/AR-4--> Sta13 --Evt17/AR-5--> Sta1
//!  collision (both sent A-RELEASE-RQ): Sta7 --Evt12/AR-8--> Sta9 (requestor) | Sta10 (acceptor)
//!           Sta9 --Evt14/AR-9--> Sta11 --Evt13/AR-3--> Sta1
//!           Sta10 --Evt13/AR-10--> Sta12 --Evt14/AR-4--> Sta13
//!  abort: any --Evt15/AA-1--> Sta13;  A-ABORT received --AA-3--> Sta1;
//!         unexpected or invalid PDU --AA-8--> Sta13;  transport closed --AA-4--> Sta1
//! ```
//!
//! [`TABLE`] is Table 9-10 of PS3.8 laid out as in the standard: one row per event, one
//! column per state; `__` is an empty cell (the event cannot happen in that state, or for a
//! local primitive, is not allowed). The [`association`](super::association) module performs
//! the actions; this module only says which one.

use std::fmt;

/// The thirteen states of PS3.8 Table 9-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Sta1: Idle.
    Sta1,
    /// Sta2: Transport connection open (awaiting A-ASSOCIATE-RQ PDU).
    Sta2,
    /// Sta3: Awaiting local A-ASSOCIATE response primitive (from local user).
    Sta3,
    /// Sta4: Awaiting transport connection opening to complete (from local transport service).
    Sta4,
    /// Sta5: Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU.
    Sta5,
    /// Sta6: Association established and ready for data transfer.
    Sta6,
    /// Sta7: Awaiting A-RELEASE-RP PDU.
    Sta7,
    /// Sta8: Awaiting local A-RELEASE response primitive (from local user).
    Sta8,
    /// Sta9: Release collision requestor side; awaiting A-RELEASE response (from local user).
    Sta9,
    /// Sta10: Release collision acceptor side; awaiting A-RELEASE-RP PDU.
    Sta10,
    /// Sta11: Release collision requestor side; awaiting A-RELEASE-RP PDU.
    Sta11,
    /// Sta12: Release collision acceptor side; awaiting A-RELEASE response primitive.
    Sta12,
    /// Sta13: Awaiting transport connection close indication (association no longer exists).
    Sta13,
}

impl State {
    /// All states in order.
    pub const ALL: [State; 13] = [
        State::Sta1,
        State::Sta2,
        State::Sta3,
        State::Sta4,
        State::Sta5,
        State::Sta6,
        State::Sta7,
        State::Sta8,
        State::Sta9,
        State::Sta10,
        State::Sta11,
        State::Sta12,
        State::Sta13,
    ];

    /// Index 0..13 of this state.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The state's description in PS3.8 Table 9-1.
    pub fn description(self) -> &'static str {
        match self {
            State::Sta1 => "idle",
            State::Sta2 => "transport connection open, awaiting A-ASSOCIATE-RQ",
            State::Sta3 => "awaiting local A-ASSOCIATE response",
            State::Sta4 => "awaiting transport connection to open",
            State::Sta5 => "awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ",
            State::Sta6 => "association established",
            State::Sta7 => "awaiting A-RELEASE-RP",
            State::Sta8 => "awaiting local A-RELEASE response",
            State::Sta9 => "release collision (requestor), awaiting local A-RELEASE response",
            State::Sta10 => "release collision (acceptor), awaiting A-RELEASE-RP",
            State::Sta11 => "release collision (requestor), awaiting A-RELEASE-RP",
            State::Sta12 => "release collision (acceptor), awaiting local A-RELEASE response",
            State::Sta13 => "awaiting transport connection close",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.description())
    }
}

/// The nineteen events of PS3.8 Table 9-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// Evt1: A-ASSOCIATE request (local user).
    Evt1,
    /// Evt2: Transport connect confirmation (local transport service).
    Evt2,
    /// Evt3: A-ASSOCIATE-AC PDU (received on transport connection).
    Evt3,
    /// Evt4: A-ASSOCIATE-RJ PDU (received on transport connection).
    Evt4,
    /// Evt5: Transport connection indication (local transport service).
    Evt5,
    /// Evt6: A-ASSOCIATE-RQ PDU (received on transport connection).
    Evt6,
    /// Evt7: A-ASSOCIATE response primitive (accept).
    Evt7,
    /// Evt8: A-ASSOCIATE response primitive (reject).
    Evt8,
    /// Evt9: P-DATA request primitive.
    Evt9,
    /// Evt10: P-DATA-TF PDU.
    Evt10,
    /// Evt11: A-RELEASE request primitive.
    Evt11,
    /// Evt12: A-RELEASE-RQ PDU.
    Evt12,
    /// Evt13: A-RELEASE-RP PDU.
    Evt13,
    /// Evt14: A-RELEASE response primitive.
    Evt14,
    /// Evt15: A-ABORT request primitive.
    Evt15,
    /// Evt16: A-ABORT PDU.
    Evt16,
    /// Evt17: Transport connection closed indication (local transport service).
    Evt17,
    /// Evt18: ARTIM timer expired (association reject/release timer).
    Evt18,
    /// Evt19: Unrecognized or invalid PDU received.
    Evt19,
}

impl Event {
    /// All events in order.
    pub const ALL: [Event; 19] = [
        Event::Evt1,
        Event::Evt2,
        Event::Evt3,
        Event::Evt4,
        Event::Evt5,
        Event::Evt6,
        Event::Evt7,
        Event::Evt8,
        Event::Evt9,
        Event::Evt10,
        Event::Evt11,
        Event::Evt12,
        Event::Evt13,
        Event::Evt14,
        Event::Evt15,
        Event::Evt16,
        Event::Evt17,
        Event::Evt18,
        Event::Evt19,
    ];

    /// Index 0..19 of this event.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True for primitives issued by the local user (requests and responses), as opposed to
    /// PDUs, transport indications and the timer.
    pub fn is_local_primitive(self) -> bool {
        matches!(
            self,
            Event::Evt1
                | Event::Evt7
                | Event::Evt8
                | Event::Evt9
                | Event::Evt11
                | Event::Evt14
                | Event::Evt15
        )
    }

    /// The event's description in PS3.8 Table 9-2.
    pub fn description(self) -> &'static str {
        match self {
            Event::Evt1 => "A-ASSOCIATE request (local user)",
            Event::Evt2 => "transport connect confirmation",
            Event::Evt3 => "A-ASSOCIATE-AC PDU received",
            Event::Evt4 => "A-ASSOCIATE-RJ PDU received",
            Event::Evt5 => "transport connection indication",
            Event::Evt6 => "A-ASSOCIATE-RQ PDU received",
            Event::Evt7 => "A-ASSOCIATE response (accept)",
            Event::Evt8 => "A-ASSOCIATE response (reject)",
            Event::Evt9 => "P-DATA request",
            Event::Evt10 => "P-DATA-TF PDU received",
            Event::Evt11 => "A-RELEASE request",
            Event::Evt12 => "A-RELEASE-RQ PDU received",
            Event::Evt13 => "A-RELEASE-RP PDU received",
            Event::Evt14 => "A-RELEASE response",
            Event::Evt15 => "A-ABORT request",
            Event::Evt16 => "A-ABORT PDU received",
            Event::Evt17 => "transport connection closed",
            Event::Evt18 => "ARTIM timer expired",
            Event::Evt19 => "unrecognized or invalid PDU received",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.description())
    }
}

/// The actions of PS3.8 Tables 9-6 to 9-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// AE-1: issue TRANSPORT CONNECT request to the local transport service. Next: Sta4.
    Ae1,
    /// AE-2: send A-ASSOCIATE-RQ PDU. Next: Sta5.
    Ae2,
    /// AE-3: issue A-ASSOCIATE confirmation (accept). Next: Sta6.
    Ae3,
    /// AE-4: issue A-ASSOCIATE confirmation (reject) and close transport. Next: Sta1.
    Ae4,
    /// AE-5: issue transport connection response; start ARTIM. Next: Sta2.
    Ae5,
    /// AE-6: stop ARTIM; if the A-ASSOCIATE-RQ is acceptable by the service-provider, issue
    /// A-ASSOCIATE indication (next: Sta3), otherwise send A-ASSOCIATE-RJ and start ARTIM
    /// (next: Sta13).
    Ae6,
    /// AE-7: send A-ASSOCIATE-AC PDU. Next: Sta6.
    Ae7,
    /// AE-8: send A-ASSOCIATE-RJ PDU and start ARTIM. Next: Sta13.
    Ae8,
    /// DT-1: send P-DATA-TF PDU. Next: Sta6.
    Dt1,
    /// DT-2: issue P-DATA indication. Next: Sta6.
    Dt2,
    /// AR-1: send A-RELEASE-RQ PDU. Next: Sta7.
    Ar1,
    /// AR-2: issue A-RELEASE indication. Next: Sta8.
    Ar2,
    /// AR-3: issue A-RELEASE confirmation and close transport. Next: Sta1.
    Ar3,
    /// AR-4: send A-RELEASE-RP PDU and start ARTIM. Next: Sta13.
    Ar4,
    /// AR-5: stop ARTIM. Next: Sta1.
    Ar5,
    /// AR-6: issue P-DATA indication. Next: Sta7.
    Ar6,
    /// AR-7: send P-DATA-TF PDU. Next: Sta8.
    Ar7,
    /// AR-8: issue A-RELEASE indication (release collision). Next: Sta9 if requestor,
    /// Sta10 if acceptor.
    Ar8,
    /// AR-9: send A-RELEASE-RP PDU. Next: Sta11.
    Ar9,
    /// AR-10: issue A-RELEASE confirmation. Next: Sta12.
    Ar10,
    /// AA-1: send A-ABORT PDU (service-user source) and (re)start ARTIM. Next: Sta13.
    Aa1,
    /// AA-2: stop ARTIM if running; close transport. Next: Sta1.
    Aa2,
    /// AA-3: issue A-ABORT (user-initiated) or A-P-ABORT (provider-initiated) indication and
    /// close transport. Next: Sta1.
    Aa3,
    /// AA-4: issue A-P-ABORT indication. Next: Sta1.
    Aa4,
    /// AA-5: stop ARTIM. Next: Sta1.
    Aa5,
    /// AA-6: ignore PDU. Next: Sta13.
    Aa6,
    /// AA-7: send A-ABORT PDU. Next: Sta13.
    Aa7,
    /// AA-8: send A-ABORT PDU (service-provider source), issue A-P-ABORT indication, start
    /// ARTIM. Next: Sta13.
    Aa8,
}

impl Action {
    /// The action's name as the standard writes it ("AE-1").
    pub fn name(self) -> &'static str {
        match self {
            Action::Ae1 => "AE-1",
            Action::Ae2 => "AE-2",
            Action::Ae3 => "AE-3",
            Action::Ae4 => "AE-4",
            Action::Ae5 => "AE-5",
            Action::Ae6 => "AE-6",
            Action::Ae7 => "AE-7",
            Action::Ae8 => "AE-8",
            Action::Dt1 => "DT-1",
            Action::Dt2 => "DT-2",
            Action::Ar1 => "AR-1",
            Action::Ar2 => "AR-2",
            Action::Ar3 => "AR-3",
            Action::Ar4 => "AR-4",
            Action::Ar5 => "AR-5",
            Action::Ar6 => "AR-6",
            Action::Ar7 => "AR-7",
            Action::Ar8 => "AR-8",
            Action::Ar9 => "AR-9",
            Action::Ar10 => "AR-10",
            Action::Aa1 => "AA-1",
            Action::Aa2 => "AA-2",
            Action::Aa3 => "AA-3",
            Action::Aa4 => "AA-4",
            Action::Aa5 => "AA-5",
            Action::Aa6 => "AA-6",
            Action::Aa7 => "AA-7",
            Action::Aa8 => "AA-8",
        }
    }

    /// The state after this action. `acceptable` decides AE-6 (was the A-ASSOCIATE-RQ
    /// acceptable to the service provider?); `requestor` decides AR-8.
    pub fn next_state(self, acceptable: bool, requestor: bool) -> State {
        use State::*;
        match self {
            Action::Ae1 => Sta4,
            Action::Ae2 => Sta5,
            Action::Ae3 => Sta6,
            Action::Ae4 => Sta1,
            Action::Ae5 => Sta2,
            Action::Ae6 => {
                if acceptable {
                    Sta3
                } else {
                    Sta13
                }
            }
            Action::Ae7 => Sta6,
            Action::Ae8 => Sta13,
            Action::Dt1 | Action::Dt2 => Sta6,
            Action::Ar1 => Sta7,
            Action::Ar2 => Sta8,
            Action::Ar3 => Sta1,
            Action::Ar4 => Sta13,
            Action::Ar5 => Sta1,
            Action::Ar6 => Sta7,
            Action::Ar7 => Sta8,
            Action::Ar8 => {
                if requestor {
                    Sta9
                } else {
                    Sta10
                }
            }
            Action::Ar9 => Sta11,
            Action::Ar10 => Sta12,
            Action::Aa1 => Sta13,
            Action::Aa2 | Action::Aa3 | Action::Aa4 | Action::Aa5 => Sta1,
            Action::Aa6 | Action::Aa7 | Action::Aa8 => Sta13,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const __: Option<Action> = None;
const AE1: Option<Action> = Some(Action::Ae1);
const AE2: Option<Action> = Some(Action::Ae2);
const AE3: Option<Action> = Some(Action::Ae3);
const AE4: Option<Action> = Some(Action::Ae4);
const AE5: Option<Action> = Some(Action::Ae5);
const AE6: Option<Action> = Some(Action::Ae6);
const AE7: Option<Action> = Some(Action::Ae7);
const AE8: Option<Action> = Some(Action::Ae8);
const DT1: Option<Action> = Some(Action::Dt1);
const DT2: Option<Action> = Some(Action::Dt2);
const AR1: Option<Action> = Some(Action::Ar1);
const AR2: Option<Action> = Some(Action::Ar2);
const AR3: Option<Action> = Some(Action::Ar3);
const AR4: Option<Action> = Some(Action::Ar4);
const AR5: Option<Action> = Some(Action::Ar5);
const AR6: Option<Action> = Some(Action::Ar6);
const AR7: Option<Action> = Some(Action::Ar7);
const AR8: Option<Action> = Some(Action::Ar8);
const AR9: Option<Action> = Some(Action::Ar9);
const AR10: Option<Action> = Some(Action::Ar10);
const AA1: Option<Action> = Some(Action::Aa1);
const AA2: Option<Action> = Some(Action::Aa2);
const AA3: Option<Action> = Some(Action::Aa3);
const AA4: Option<Action> = Some(Action::Aa4);
const AA5: Option<Action> = Some(Action::Aa5);
const AA6: Option<Action> = Some(Action::Aa6);
const AA7: Option<Action> = Some(Action::Aa7);
const AA8: Option<Action> = Some(Action::Aa8);

/// PS3.8 Table 9-10, the DICOM upper layer state transition table.
#[rustfmt::skip]
pub const TABLE: [[Option<Action>; 13]; 19] = [
    //        Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
    /*Evt1 */ [AE1, __,  __,  __,  __,  __,  __,  __,  __,  __,   __,   __,   __ ],
    /*Evt2 */ [__,  __,  __,  AE2, __,  __,  __,  __,  __,  __,   __,   __,   __ ],
    /*Evt3 */ [__,  AA1, AA8, __,  AE3, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA6],
    /*Evt4 */ [__,  AA1, AA8, __,  AE4, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA6],
    /*Evt5 */ [AE5, __,  __,  __,  __,  __,  __,  __,  __,  __,   __,   __,   __ ],
    /*Evt6 */ [__,  AE6, AA8, __,  AA8, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA7],
    /*Evt7 */ [__,  __,  AE7, __,  __,  __,  __,  __,  __,  __,   __,   __,   __ ],
    /*Evt8 */ [__,  __,  AE8, __,  __,  __,  __,  __,  __,  __,   __,   __,   __ ],
    /*Evt9 */ [__,  __,  __,  __,  __,  DT1, __,  AR7, __,  __,   __,   __,   __ ],
    /*Evt10*/ [__,  AA1, AA8, __,  AA8, DT2, AR6, AA8, AA8, AA8,  AA8,  AA8,  AA6],
    /*Evt11*/ [__,  __,  __,  __,  __,  AR1, __,  __,  __,  __,   __,   __,   __ ],
    /*Evt12*/ [__,  AA1, AA8, __,  AA8, AR2, AR8, AA8, AA8, AA8,  AA8,  AA8,  AA6],
    /*Evt13*/ [__,  AA1, AA8, __,  AA8, AA8, AR3, AA8, AA8, AR10, AR3,  AA8,  AA6],
    /*Evt14*/ [__,  __,  __,  __,  __,  __,  __,  AR4, AR9, __,   __,   AR4,  __ ],
    /*Evt15*/ [__,  __,  AA1, AA2, AA1, AA1, AA1, AA1, AA1, AA1,  AA1,  AA1,  __ ],
    /*Evt16*/ [__,  AA2, AA3, __,  AA3, AA3, AA3, AA3, AA3, AA3,  AA3,  AA3,  AA2],
    /*Evt17*/ [__,  AA5, AA4, AA4, AA4, AA4, AA4, AA4, AA4, AA4,  AA4,  AA4,  AR5],
    /*Evt18*/ [__,  AA2, __,  __,  __,  __,  __,  __,  __,  __,   __,   __,   AA2],
    /*Evt19*/ [__,  AA1, AA8, __,  AA8, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA7],
];

/// The action for `event` in `state`, or `None` for an empty cell of Table 9-10.
pub fn action(state: State, event: Event) -> Option<Action> {
    TABLE[event.index()][state.index()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table 9-10 transcribed separately, in the standard's own spelling, so that a slip in
    /// [`TABLE`] shows up as a disagreement between the two.
    const TRANSCRIPTION: &str = "
        Evt1  Sta1:AE-1
        Evt2  Sta4:AE-2
        Evt3  Sta2:AA-1 Sta3:AA-8 Sta5:AE-3 Sta6:AA-8 Sta7:AA-8 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-6
        Evt4  Sta2:AA-1 Sta3:AA-8 Sta5:AE-4 Sta6:AA-8 Sta7:AA-8 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-6
        Evt5  Sta1:AE-5
        Evt6  Sta2:AE-6 Sta3:AA-8 Sta5:AA-8 Sta6:AA-8 Sta7:AA-8 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-7
        Evt7  Sta3:AE-7
        Evt8  Sta3:AE-8
        Evt9  Sta6:DT-1 Sta8:AR-7
        Evt10 Sta2:AA-1 Sta3:AA-8 Sta5:AA-8 Sta6:DT-2 Sta7:AR-6 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-6
        Evt11 Sta6:AR-1
        Evt12 Sta2:AA-1 Sta3:AA-8 Sta5:AA-8 Sta6:AR-2 Sta7:AR-8 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-6
        Evt13 Sta2:AA-1 Sta3:AA-8 Sta5:AA-8 Sta6:AA-8 Sta7:AR-3 Sta8:AA-8 Sta9:AA-8 Sta10:AR-10 Sta11:AR-3 Sta12:AA-8 Sta13:AA-6
        Evt14 Sta8:AR-4 Sta9:AR-9 Sta12:AR-4
        Evt15 Sta3:AA-1 Sta4:AA-2 Sta5:AA-1 Sta6:AA-1 Sta7:AA-1 Sta8:AA-1 Sta9:AA-1 Sta10:AA-1 Sta11:AA-1 Sta12:AA-1
        Evt16 Sta2:AA-2 Sta3:AA-3 Sta5:AA-3 Sta6:AA-3 Sta7:AA-3 Sta8:AA-3 Sta9:AA-3 Sta10:AA-3 Sta11:AA-3 Sta12:AA-3 Sta13:AA-2
        Evt17 Sta2:AA-5 Sta3:AA-4 Sta4:AA-4 Sta5:AA-4 Sta6:AA-4 Sta7:AA-4 Sta8:AA-4 Sta9:AA-4 Sta10:AA-4 Sta11:AA-4 Sta12:AA-4 Sta13:AR-5
        Evt18 Sta2:AA-2 Sta13:AA-2
        Evt19 Sta2:AA-1 Sta3:AA-8 Sta5:AA-8 Sta6:AA-8 Sta7:AA-8 Sta8:AA-8 Sta9:AA-8 Sta10:AA-8 Sta11:AA-8 Sta12:AA-8 Sta13:AA-7
    ";

    /// The transcription as (event, state) -> action name; empty cells are absent.
    pub(crate) fn transcribed() -> std::collections::HashMap<(usize, usize), String> {
        let mut m = std::collections::HashMap::new();
        for line in TRANSCRIPTION.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let evt: usize = parts
                .next()
                .and_then(|e| e.strip_prefix("Evt"))
                .map(|n| n.parse().expect("event number"))
                .expect("event");
            for cell in parts {
                let (sta, act) = cell.split_once(':').expect("cell");
                let sta: usize =
                    sta.strip_prefix("Sta").expect("state").parse().expect("state number");
                m.insert((evt - 1, sta - 1), act.to_owned());
            }
        }
        m
    }

    #[test]
    fn table_matches_transcription_cell_by_cell() {
        let t = transcribed();
        let mut filled = 0;
        for e in Event::ALL {
            for s in State::ALL {
                let ours = action(s, e).map(Action::name);
                let theirs = t.get(&(e.index(), s.index())).map(String::as_str);
                assert_eq!(ours, theirs, "cell {e:?} x {s:?}");
                filled += usize::from(ours.is_some());
            }
        }
        assert_eq!(filled, t.len());
        assert_eq!(filled, 123, "Table 9-10 has 123 non-empty cells");
    }

    #[test]
    fn next_states_follow_tables_9_6_to_9_9() {
        assert_eq!(Action::Ae6.next_state(true, false), State::Sta3);
        assert_eq!(Action::Ae6.next_state(false, false), State::Sta13);
        assert_eq!(Action::Ar8.next_state(true, true), State::Sta9);
        assert_eq!(Action::Ar8.next_state(true, false), State::Sta10);
        assert_eq!(Action::Ar10.next_state(true, false), State::Sta12);
        assert_eq!(Action::Aa8.next_state(true, false), State::Sta13);
    }
}

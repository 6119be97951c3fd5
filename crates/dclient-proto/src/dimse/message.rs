//! DIMSE messages over P-DATA: assembling commands and data sets from PDVs, and sending them.
//!
//! A DIMSE message is a command set (PDVs with the command bit) optionally followed by a
//! data set (PDVs without it) on the same presentation context (PS3.7 section 6.3.1, PS3.8
//! Annex E). The [`Assembler`] checks the order of fragments and their last-fragment bits,
//! decodes each whole command set, and hands data set fragments on as they arrive, so that
//! a large data set can go to disk without ever being whole in memory.

use super::command::{Command, CommandSet};
use crate::error::{ProtoError, Violation, ViolationKind};
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
                    return Err(violation_of(
                        ViolationKind::DataSet,
                        format!(
                            "a new command arrived on context {ctx} while the data set announced \
                         by the previous command was {}",
                            if started { "incomplete" } else { "never sent" }
                        ),
                    ));
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
    violation_of(ViolationKind::Fragmentation, s)
}

fn violation_of(kind: ViolationKind, s: String) -> ProtoError {
    ProtoError::PeerViolation(Violation::new(kind, s))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse::command::{CEchoRq, CEchoRsp, CStoreRq, Priority};
    use crate::dimse::status::Status;
    use crate::uids;
    use crate::ul::association::AssocEvent;
    use crate::ul::codec::Deframer;
    use crate::ul::negotiation::{AcceptorPolicy, ProposedContext, RequestorConfig};
    use crate::ul::pdu::PData;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    fn pdv(context_id: u8, is_command: bool, is_last: bool, data: &[u8]) -> Pdv {
        Pdv { context_id, is_command, is_last, data: data.to_vec() }
    }

    fn store_rq() -> CommandSet {
        CStoreRq {
            message_id: 7,
            affected_sop_class_uid: CT.into(),
            affected_sop_instance_uid: "1.2.3.4.5".into(),
            priority: Priority::Medium,
            move_originator_ae: None,
            move_originator_message_id: None,
        }
        .to_command_set()
    }

    fn echo_rq() -> CommandSet {
        CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() }
            .to_command_set()
    }

    /// Feeds PDVs in order; returns the events, or the first error.
    fn run(asm: &mut Assembler, pdvs: Vec<Pdv>) -> Result<Vec<DimseEvent>, ProtoError> {
        let mut out = Vec::new();
        for p in pdvs {
            if let Some(ev) = asm.handle_pdv(p)? {
                out.push(ev);
            }
        }
        Ok(out)
    }

    fn peer_violation(e: ProtoError) -> String {
        match e {
            ProtoError::PeerViolation(v) => v.detail,
            other => panic!("expected a peer violation, got {other:?}"),
        }
    }

    #[test]
    fn command_and_data_in_one_pdu() {
        // One P-DATA-TF holding both PDVs, as DCMTK sends small C-STOREs.
        let cs = store_rq();
        let pdu = PData {
            pdvs: vec![pdv(3, true, true, &cs.encode()), pdv(3, false, true, b"DATASET!")],
        };
        let mut asm = Assembler::new();
        let evs = run(&mut asm, pdu.pdvs).expect("valid message");
        assert_eq!(evs.len(), 2);
        match &evs[0] {
            DimseEvent::Command { context_id: 3, command: Command::CStoreRq(rq), command_set } => {
                assert_eq!(rq.message_id, 7);
                assert_eq!(rq.affected_sop_instance_uid, "1.2.3.4.5");
                assert_eq!(command_set, &cs);
            }
            other => panic!("expected the C-STORE-RQ, got {other:?}"),
        }
        assert_eq!(
            evs[1],
            DimseEvent::Data { context_id: 3, data: b"DATASET!".to_vec(), is_last: true }
        );
        assert!(asm.is_idle());
    }

    #[test]
    fn command_and_data_in_many_pdvs() {
        let bytes = store_rq().encode();
        let mut pdvs: Vec<Pdv> = Vec::new();
        let chunks: Vec<&[u8]> = bytes.chunks(10).collect();
        for (i, c) in chunks.iter().enumerate() {
            pdvs.push(pdv(1, true, i + 1 == chunks.len(), c));
        }
        let data: Vec<u8> = (0..=255u8).collect();
        let dchunks: Vec<&[u8]> = data.chunks(100).collect();
        for (i, c) in dchunks.iter().enumerate() {
            pdvs.push(pdv(1, false, i + 1 == dchunks.len(), c));
        }
        let mut asm = Assembler::new();
        let mut evs = Vec::new();
        for (i, p) in pdvs.into_iter().enumerate() {
            let ev = asm.handle_pdv(p).expect("valid fragment");
            if i + 1 < chunks.len() {
                // Command fragments before the last yield nothing and leave us mid-command.
                assert_eq!(ev, None);
                assert!(!asm.is_idle() && !asm.expecting_data());
            }
            evs.extend(ev);
        }
        assert_eq!(evs.len(), 1 + dchunks.len());
        assert!(matches!(evs[0], DimseEvent::Command { command: Command::CStoreRq(_), .. }));
        let mut got = Vec::new();
        for (i, ev) in evs[1..].iter().enumerate() {
            match ev {
                DimseEvent::Data { context_id: 1, data, is_last } => {
                    assert_eq!(*is_last, i + 1 == dchunks.len(), "last flag of fragment {i}");
                    got.extend_from_slice(data);
                }
                other => panic!("expected a data fragment, got {other:?}"),
            }
        }
        assert_eq!(got, data);
        assert!(asm.is_idle());
    }

    #[test]
    fn command_split_over_fragments_is_decoded_only_at_its_last_fragment() {
        let bytes = echo_rq().encode();
        let (a, rest) = bytes.split_at(1);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut asm = Assembler::new();
        assert_eq!(asm.handle_pdv(pdv(1, true, false, a)).expect("first"), None);
        assert_eq!(asm.handle_pdv(pdv(1, true, false, b)).expect("second"), None);
        // An empty non-last fragment is legal and changes nothing.
        assert_eq!(asm.handle_pdv(pdv(1, true, false, &[])).expect("empty"), None);
        match asm.handle_pdv(pdv(1, true, true, c)).expect("last") {
            Some(DimseEvent::Command { command: Command::CEchoRq(rq), .. }) => {
                assert_eq!(rq.message_id, 1);
            }
            other => panic!("expected the C-ECHO-RQ, got {other:?}"),
        }
        // C-ECHO has no data set: straight back to idle.
        assert!(asm.is_idle());
        assert!(!asm.expecting_data());
    }

    #[test]
    fn last_fragment_flags_are_checked() {
        // A command whose last fragment never came, interrupted by a data set fragment.
        let bytes = store_rq().encode();
        let mut asm = Assembler::new();
        assert_eq!(asm.handle_pdv(pdv(1, true, false, &bytes)).expect("not last"), None);
        let e = asm.handle_pdv(pdv(1, false, true, b"xx")).expect_err("data before command end");
        assert!(peer_violation(e).contains("before its last fragment"));

        // A command set cut short: its "last" fragment leaves it truncated.
        let mut asm = Assembler::new();
        let e = asm
            .handle_pdv(pdv(1, true, true, &bytes[..bytes.len() - 3]))
            .expect_err("truncated command set");
        assert!(matches!(e, ProtoError::Decode(_)), "{e:?}");

        // A data set that keeps going after its last fragment: the next one has no command.
        let mut asm = Assembler::new();
        run(&mut asm, vec![pdv(1, true, true, &bytes), pdv(1, false, true, b"ab")])
            .expect("whole message");
        let e = asm.handle_pdv(pdv(1, false, true, b"cd")).expect_err("data after its last");
        assert!(peer_violation(e).contains("without a command"));
    }

    #[test]
    fn data_set_fragment_without_a_command_is_an_error() {
        let mut asm = Assembler::new();
        let e = asm.handle_pdv(pdv(5, false, true, b"orphan")).expect_err("no command");
        let s = peer_violation(e);
        assert!(s.contains("without a command"), "{s}");
        assert!(s.contains("context 5"), "{s}");

        // A command without a data set (C-ECHO) does not open the door for one either.
        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, true, &echo_rq().encode())).expect("echo");
        let e = asm.handle_pdv(pdv(1, false, true, b"x")).expect_err("echo has no data set");
        assert!(peer_violation(e).contains("without a command"));
    }

    #[test]
    fn new_command_while_data_set_is_due_is_an_error() {
        let store = store_rq().encode();
        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, true, &store)).expect("store rq");
        assert!(asm.expecting_data());
        let e = asm.handle_pdv(pdv(1, true, true, &echo_rq().encode())).expect_err("never sent");
        assert!(peer_violation(e).contains("never sent"));

        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, true, &store)).expect("store rq");
        asm.handle_pdv(pdv(1, false, false, b"part")).expect("first data fragment");
        assert!(asm.expecting_data());
        let e = asm.handle_pdv(pdv(1, true, true, &echo_rq().encode())).expect_err("incomplete");
        assert!(peer_violation(e).contains("incomplete"));
    }

    #[test]
    fn fragments_interleaved_across_contexts_are_an_error() {
        let store = store_rq().encode();
        let (a, b) = store.split_at(20);

        // Command fragments on two contexts.
        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, false, a)).expect("first fragment on 1");
        let e = asm.handle_pdv(pdv(3, true, true, b)).expect_err("continues on 3");
        let s = peer_violation(e);
        assert!(s.contains("context 1") && s.contains("context 3"), "{s}");

        // Data set on another context than its command.
        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, true, &store)).expect("command on 1");
        let e = asm.handle_pdv(pdv(3, false, true, b"data")).expect_err("data on 3");
        let s = peer_violation(e);
        assert!(s.contains("its command came on context 1"), "{s}");

        // ... also once the data set is under way.
        let mut asm = Assembler::new();
        asm.handle_pdv(pdv(1, true, true, &store)).expect("command on 1");
        asm.handle_pdv(pdv(1, false, false, b"da")).expect("data on 1");
        let e = asm.handle_pdv(pdv(3, false, true, b"ta")).expect_err("data on 3");
        assert!(peer_violation(e).contains("context 3"));
    }

    #[test]
    fn command_larger_than_max_command_len_is_an_error() {
        let mut asm = Assembler::new();
        let chunk = vec![0u8; 16 * 1024];
        for _ in 0..MAX_COMMAND_LEN / chunk.len() {
            assert_eq!(asm.handle_pdv(pdv(1, true, false, &chunk)).expect("within limit"), None);
        }
        let e = asm.handle_pdv(pdv(1, true, false, &[0])).expect_err("one byte too many");
        assert!(peer_violation(e).contains(&format!("exceeds {MAX_COMMAND_LEN} bytes")));

        // In a single fragment too.
        let mut asm = Assembler::new();
        let big = vec![0u8; MAX_COMMAND_LEN + 1];
        let e = asm.handle_pdv(pdv(1, true, true, &big)).expect_err("single huge fragment");
        assert!(peer_violation(e).contains("exceeds"));
    }

    // ------------------------------------------------------------- an in-memory pair

    /// Moves everything `from` wants to send into `to`, in 7-byte chunks so that PDUs
    /// straddle reads. Returns how many PDUs went across.
    fn shuttle(from: &mut Association, to: &mut Association) -> usize {
        let bytes = from.transmit().to_vec();
        from.advance_transmit(bytes.len());
        let mut d = Deframer::new(0);
        d.push(&bytes);
        let mut pdus = 0;
        while let Some(_pdu) = d.next_pdu().expect("we send valid PDUs") {
            pdus += 1;
        }
        for c in bytes.chunks(7) {
            to.handle_input(c).expect("input accepted");
        }
        pdus
    }

    /// Every DIMSE event that arrived at `a`, through its assembler.
    fn dimse_events(a: &mut Association, asm: &mut Assembler) -> Vec<DimseEvent> {
        let mut out = Vec::new();
        while let Some(ev) = a.poll_event() {
            match ev {
                AssocEvent::PData(p) => {
                    for v in p.pdvs {
                        assert!(
                            v.data.len() <= 10,
                            "PDV of {} bytes beyond the limit",
                            v.data.len()
                        );
                        out.extend(asm.handle_pdv(v).expect("valid fragment"));
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn c_echo_between_in_memory_endpoints_with_a_16_byte_max_pdu() {
        const TINY: u32 = 16;
        let cfg = RequestorConfig {
            max_pdu: TINY,
            contexts: vec![ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE])],
            ..RequestorConfig::default()
        };
        let policy = AcceptorPolicy {
            supported: [(uids::VERIFICATION.to_owned(), vec![])].into_iter().collect(),
            max_pdu: TINY,
            ..AcceptorPolicy::default()
        };
        let mut rq = Association::request(&cfg).expect("request");
        rq.handle_transport_connected().expect("connected");
        let mut ac = Association::accept_transport(TINY);
        shuttle(&mut rq, &mut ac);
        match ac.poll_event() {
            Some(AssocEvent::AssociateIndication(r)) => ac.accept(policy.answer(&r)).expect("ok"),
            other => panic!("expected the A-ASSOCIATE-RQ, got {other:?}"),
        }
        shuttle(&mut ac, &mut rq);
        assert_eq!(rq.poll_event(), Some(AssocEvent::Established));
        assert!(rq.is_established() && ac.is_established());
        // 16 bytes per P-DATA-TF variable field: 10 bytes of PDV data each.
        assert_eq!(rq.max_pdv_data(), 10);
        assert_eq!(ac.max_pdv_data(), 10);

        // C-ECHO-RQ: requestor -> acceptor.
        let ctx = rq.negotiated().and_then(|n| n.find_accepted(uids::VERIFICATION)).map(|c| c.id);
        let ctx = ctx.expect("verification accepted");
        let cs = echo_rq();
        let len = cs.encode().len();
        send_message(&mut rq, ctx, &cs, None).expect("send echo rq");
        let pdus = shuttle(&mut rq, &mut ac);
        assert_eq!(pdus, len.div_ceil(10), "one PDU per 10 bytes of command set");
        assert!(pdus > 5, "fragmented into many PDUs ({pdus})");
        let mut ac_asm = Assembler::new();
        let evs = dimse_events(&mut ac, &mut ac_asm);
        let rq_id = match evs.as_slice() {
            [DimseEvent::Command { context_id, command: Command::CEchoRq(r), .. }] => {
                assert_eq!(*context_id, ctx);
                assert_eq!(r.affected_sop_class_uid, uids::VERIFICATION);
                r.message_id
            }
            other => panic!("expected one C-ECHO-RQ, got {other:?}"),
        };

        // C-ECHO-RSP: acceptor -> requestor.
        let rsp = CEchoRsp {
            message_id_being_responded_to: rq_id,
            affected_sop_class_uid: Some(uids::VERIFICATION.into()),
            status: Status::SUCCESS,
        };
        send_message(&mut ac, ctx, &rsp.to_command_set(), None).expect("send echo rsp");
        assert!(shuttle(&mut ac, &mut rq) > 5);
        let mut rq_asm = Assembler::new();
        match dimse_events(&mut rq, &mut rq_asm).as_slice() {
            [DimseEvent::Command { command: Command::CEchoRsp(r), command_set, .. }] => {
                assert_eq!(r, &rsp);
                assert_eq!(command_set.u16(crate::dimse::command::tags::STATUS), Some(0));
            }
            other => panic!("expected one C-ECHO-RSP, got {other:?}"),
        }
        assert!(rq_asm.is_idle() && ac_asm.is_idle());

        // And release cleanly.
        rq.release().expect("release");
        shuttle(&mut rq, &mut ac);
        assert_eq!(ac.poll_event(), Some(AssocEvent::ReleaseIndication { collision: false }));
        ac.release_response().expect("answer release");
        shuttle(&mut ac, &mut rq);
        assert_eq!(rq.poll_event(), Some(AssocEvent::ReleaseConfirmation));
        assert!(rq.is_closed());
    }

    #[test]
    fn data_set_through_a_16_byte_max_pdu_arrives_whole() {
        // Same pair, a C-STORE-RQ with a 300-byte data set: ~30 data PDUs, one last flag.
        let cfg = RequestorConfig {
            max_pdu: 16,
            contexts: vec![ProposedContext::new(CT, &[uids::IMPLICIT_VR_LE])],
            ..RequestorConfig::default()
        };
        let policy = AcceptorPolicy {
            supported: [(CT.to_owned(), vec![])].into_iter().collect(),
            max_pdu: 16,
            ..AcceptorPolicy::default()
        };
        let mut rq = Association::request(&cfg).expect("request");
        rq.handle_transport_connected().expect("connected");
        let mut ac = Association::accept_transport(16);
        shuttle(&mut rq, &mut ac);
        match ac.poll_event() {
            Some(AssocEvent::AssociateIndication(r)) => ac.accept(policy.answer(&r)).expect("ok"),
            other => panic!("expected the A-ASSOCIATE-RQ, got {other:?}"),
        }
        shuttle(&mut ac, &mut rq);
        assert_eq!(rq.poll_event(), Some(AssocEvent::Established));
        let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        send_message(&mut rq, 1, &store_rq(), Some(&data)).expect("send store");
        shuttle(&mut rq, &mut ac);
        let mut asm = Assembler::new();
        let evs = dimse_events(&mut ac, &mut asm);
        assert!(matches!(evs[0], DimseEvent::Command { command: Command::CStoreRq(_), .. }));
        let mut got = Vec::new();
        let mut lasts = 0;
        for ev in &evs[1..] {
            if let DimseEvent::Data { data, is_last, .. } = ev {
                got.extend_from_slice(data);
                lasts += usize::from(*is_last);
            }
        }
        assert_eq!(got, data);
        assert_eq!(lasts, 1);
        assert_eq!(evs.len(), 1 + 30);
        assert!(asm.is_idle());
        // Nothing else is on the wire.
        assert_eq!(ac.poll_event(), None);
    }
}

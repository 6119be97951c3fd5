//! # dclient-proto: the DICOM network protocol without the network
//!
//! A sans-IO implementation of the DICOM upper layer (PS3.8) and of DIMSE messaging (PS3.7):
//! PDU codec, the association state machine, presentation context negotiation, command sets,
//! and P-DATA fragmentation and reassembly. It owns no socket, thread or clock: bytes go in
//! with `handle_input`, bytes to send come out of `poll_transmit`, events out of `poll_event`,
//! and time is an input (`handle_timeout`). Two endpoints can be driven against each other in
//! memory; the blocking transport in the `dclient` crate is one thin driver of it.
//!
//! Layers, bottom up:
//! - [`ul::pdu`] and [`ul::codec`]: the seven PDU types and their items, as data and bytes.
//! - [`ul::fsm`]: the PS3.8 state transition table (Sta1-Sta13, Evt1-Evt19).
//! - [`ul::association`]: negotiation and the `handle_*`/`poll_*` association endpoint.
//! - [`dimse`]: command sets, statuses, and message assembly from PDVs.

#![forbid(unsafe_code)]

pub mod dimse;
pub mod error;
pub mod uids;
pub mod ul;

pub use error::{DecodeError, EncodeError, ProtoError, Violation, ViolationKind};

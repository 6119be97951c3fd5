//! The DICOM upper layer (PS3.8): PDUs, their codec, the state machine and the association.

pub mod association;
pub mod codec;
pub mod fsm;
pub mod negotiation;
pub mod pdu;

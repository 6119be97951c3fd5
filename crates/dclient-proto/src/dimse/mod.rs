//! DIMSE messaging (PS3.7): command sets, statuses, and messages assembled from PDVs.

pub mod command;
pub mod exchange;
pub mod message;
pub mod status;

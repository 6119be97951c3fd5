//! The DIMSE services, one module each, over an established [`Connection`](crate::transport::Connection).

pub mod echo;
pub mod find;
pub mod retrieve;
pub mod store;

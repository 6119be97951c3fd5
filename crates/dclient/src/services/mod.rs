//! The DIMSE services, one module each, over an established [`Connection`](crate::transport::Connection).

pub(crate) mod echo;
pub(crate) mod find;
pub(crate) mod retrieve;
pub(crate) mod store;

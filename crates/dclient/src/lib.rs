//! # dclient: a DICOM network client
//!
//! A library modelled on ruby-dicom's `DICOM::DClient`: C-ECHO, association tests, C-FIND at
//! the four query levels, C-GET and C-MOVE, and C-STORE of files, against any PACS (DCMTK,
//! pynetdicom, Orthanc, dcm4chee). The protocol itself lives in the sans-IO crate
//! [`dclient_proto`]; this crate adds the blocking transport, the services and the facade.
//!
//! ```no_run
//! use dclient::DClient;
//!
//! let mut node = DClient::new("127.0.0.1", 11112);
//! node.echo()?;                 // C-ECHO
//! assert!(node.test());         // associate and release
//! for rsp in node.command_results_map() {
//!     println!("{rsp:?}");
//! }
//! # Ok::<(), dclient::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod client;
pub mod dataset;
pub mod error;
pub mod identity;
pub mod names;
pub mod scp;
pub mod send;
pub mod services;
pub mod storage;
pub mod synth;
pub mod tls;
pub mod transport;

pub use client::{ClientOptions, DClient};
pub use dclient_proto as proto;
pub use error::{Error, Result};
pub use identity::UserIdentity;
pub use send::{FileOutcome, FileReport, SendEvent, SendOptions, SendReport};
pub use services::find::{FindRequest, FindStream, FindSummary, InformationModel, QueryLevel};
pub use tls::{TlsClientConfig, TlsServerConfig};
pub use transport::Timeouts;

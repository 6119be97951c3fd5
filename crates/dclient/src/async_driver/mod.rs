//! The async (tokio) client over the same sans-IO protocol core as the blocking one: the
//! same exchanges, the same service operations, the same options, errors and timeouts
//! (measured with tokio's clock). Behind the `tokio` feature.
//!
//! - [`AsyncDClient`]: the facade, one association per call, `command_results` and
//!   `data_results` as on [`DClient`](crate::DClient).
//! - [`AsyncAssociation`]: one association carrying many operations
//!   ([`AsyncDClient::open`]); its module documentation says what a dropped future does,
//!   method by method.
//! - [`AsyncFindStream`] / [`AsyncAssocFind`]: C-FIND matches as a `futures_core::Stream`.
//! - [`AsyncConnection`]: the driver itself, for exchanges of your own.
//!
//! ```no_run
//! # async fn run() -> dclient::Result<()> {
//! use dclient::tokio::AsyncDClient;
//! use dclient::{Contexts, FindRequest, InformationModel, QueryLevel};
//!
//! let node = AsyncDClient::new("127.0.0.1", 11112);
//! let mut assoc = node.open(Contexts::new().find(InformationModel::StudyRoot)).await?;
//! let req = FindRequest::new(QueryLevel::Study, [("PatientName", "Smith*")])?;
//! let mut matches = assoc.find(&req).await?;
//! while let Some(m) = matches.next_match().await? {
//!     println!("{:?}", m.get(dicom_dictionary_std::tags::STUDY_INSTANCE_UID));
//! }
//! drop(matches);
//! assoc.release().await?;
//! # Ok(())
//! # }
//! ```

mod association;
mod client;
mod connection;
mod find;
mod ops;
mod send;
#[cfg(feature = "tls")]
mod tls;
mod workflow;

pub use association::{AsyncAssocFind, AsyncAssociation};
pub use client::AsyncDClient;
pub use connection::{AsyncConnection, AsyncStream};
pub use find::AsyncFindStream;

//! `dclient test HOST PORT`: negotiate an association, print each presentation context's
//! outcome, release.

use dclient::contexts::verification_context;
use dclient::names::describe_uid;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::ProposedContext;

use crate::common::{Common, Outcome};

/// Arguments of `dclient test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// Propose only Verification (as ruby-dicom's `test`), not the query/retrieve and
    /// common storage classes as well.
    #[arg(long)]
    pub verification_only: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The contexts `test` proposes by default: what a client of this tool will need.
fn probe_contexts() -> Vec<ProposedContext> {
    let ts = [uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE];
    let mut v = vec![verification_context()];
    let storage = [
        "1.2.840.10008.5.1.4.1.1.2", // CT Image Storage
        "1.2.840.10008.5.1.4.1.1.4", // MR Image Storage
        "1.2.840.10008.5.1.4.1.1.7", // Secondary Capture Image Storage
    ];
    for sop in uids::QUERY_RETRIEVE.into_iter().chain(storage) {
        v.push(ProposedContext::new(sop, &ts));
    }
    v
}

/// Associates, prints the outcome of every context, releases.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let mut client = a.common.client(&a.host, a.port)?;
    let contexts =
        if a.verification_only { vec![verification_context()] } else { probe_contexts() };
    let report = client.try_test(contexts)?;
    let n = &report.negotiated;
    if !a.common.quiet {
        outln!(
            "association with {} at {} accepted (peer max PDU {}, implementation {} {})",
            a.common.host_ae,
            dclient::names::host_port(&a.host, a.port),
            if n.peer_max_pdu == 0 { "unlimited".to_string() } else { n.peer_max_pdu.to_string() },
            n.peer_implementation_class_uid.as_deref().unwrap_or("?"),
            n.peer_implementation_version_name.as_deref().unwrap_or("")
        );
        for c in n.contexts.values() {
            if c.is_accepted() {
                outln!(
                    "  context {:>3} {}: accepted, {}",
                    c.id,
                    describe_uid(&c.abstract_syntax),
                    describe_uid(&c.transfer_syntax)
                );
            } else {
                outln!("  context {:>3} {}: {}", c.id, describe_uid(&c.abstract_syntax), c.result);
            }
        }
        outln!("association released");
    }
    Ok(Outcome::Success)
}

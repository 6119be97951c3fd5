//! C-FIND with the async client, one line per match as the matches arrive.
//!
//! ```text
//! cargo run -p dclient --features tokio --example async_find -- HOST PORT [KEY=VALUE]...
//! ```
//! Keys as `find` takes them: a keyword (`PatientName=Smith*`) or `GGGG,EEEE`; the query
//! is at STUDY level unless `QueryRetrieveLevel=...` says otherwise. The called AE is
//! `ANY-SCP` unless `DCLIENT_CALLED_AE` says otherwise.

#![forbid(unsafe_code)]

use std::str::FromStr;

use dclient::dataset::{display_value, Query};
use dclient::tokio::AsyncDClient;
use dclient::{ClientOptions, FindRequest, QueryLevel};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), dclient::Error> {
    let mut args = std::env::args().skip(1);
    let usage =
        || dclient::Error::InvalidInput("usage: async_find HOST PORT [KEY=VALUE]...".into());
    let host = args.next().ok_or_else(usage)?;
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or_else(usage)?;
    let mut level = QueryLevel::Study;
    let mut query = Query::new();
    for kv in args {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.eq_ignore_ascii_case("QueryRetrieveLevel") {
            level = QueryLevel::from_str(v)?;
            continue;
        }
        query.set(k, v)?;
    }
    let host_ae = std::env::var("DCLIENT_CALLED_AE").unwrap_or_else(|_| "ANY-SCP".into());
    let node = AsyncDClient::with_options(
        host,
        port,
        ClientOptions { host_ae, ..ClientOptions::default() },
    );
    let mut matches = node.find_stream(&FindRequest::new(level, query)?).await?;
    while let Some(m) = matches.next().await {
        let m = m?;
        let line: Vec<String> = m
            .iter()
            .filter(|e| e.header().tag.group() > 0x0008 || e.header().tag.element() > 0x0005)
            .map(|e| {
                let tag = e.header().tag;
                let name = dclient::dataset::keyword(tag)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:04X},{:04X}", tag.group(), tag.element()));
                format!("{name}={}", display_value(e))
            })
            .collect();
        println!("{}", line.join("  "));
    }
    if let Some(s) = matches.summary() {
        eprintln!("{} matches, status {}", s.matches, s.status);
    }
    Ok(())
}

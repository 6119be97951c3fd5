//! 100 C-FINDs at once from one process with the async client, each on its own
//! association, on a runtime of two threads: a web back end answering 100 viewers.
//!
//! ```text
//! cargo run -p dclient --release --features tokio --example async_many_finds -- HOST PORT [N] [CALLED_AE]
//! ```
//! The peer must accept N associations at once (`dclient serve --max-associations 100`).

#![forbid(unsafe_code)]

use std::time::Instant;

use dclient::tokio::AsyncDClient;
use dclient::{ClientOptions, FindRequest, QueryLevel};

fn main() -> Result<(), dclient::Error> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(11112);
    let n: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(100);
    let host_ae = args.next().unwrap_or_else(|| "ANY-SCP".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| dclient::Error::Io { peer: "runtime".into(), source: e })?;
    rt.block_on(async move {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let mut node = AsyncDClient::with_options(
                host.clone(),
                port,
                ClientOptions { host_ae: host_ae.clone(), ..ClientOptions::default() },
            );
            tasks.spawn(async move {
                let req = FindRequest::new(QueryLevel::Study, [("PatientName", "*")])?;
                node.find(&req).await.map(|m| m.len())
            });
        }
        let (mut ok, mut matches, mut failed) = (0usize, 0usize, 0usize);
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(m)) => {
                    ok += 1;
                    matches += m;
                }
                Ok(Err(e)) => {
                    failed += 1;
                    eprintln!("{e}");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("task: {e}");
                }
            }
        }
        println!(
            "{ok} C-FINDs done ({matches} matches), {failed} failed, in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

//! The driver benchmark's client (scripts/bench-async.py): the same work on the blocking and
//! the async driver.
//!
//! ```text
//! bench_drivers finds-threads  HOST PORT N       N concurrent C-FINDs, one thread each (blocking)
//! bench_drivers finds-async    HOST PORT N       N concurrent C-FINDs, tasks on 2 threads (async)
//! bench_drivers send-blocking  HOST PORT DIR     every file of DIR, one association (blocking)
//! bench_drivers send-async     HOST PORT DIR     every file of DIR, one association (async)
//! bench_drivers finds-per-call HOST PORT N       N C-FINDs, one association each (blocking)
//! bench_drivers finds-one-assoc HOST PORT N      N C-FINDs on one association (blocking)
//! ```
//! The called AE is ANY-SCP unless DCLIENT_CALLED_AE says otherwise. Exit status 1 when
//! any operation failed.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use dclient::tokio::AsyncDClient;
use dclient::{ClientOptions, Contexts, DClient, FindRequest, InformationModel, QueryLevel};

fn options() -> ClientOptions {
    let host_ae = std::env::var("DCLIENT_CALLED_AE").unwrap_or_else(|_| "ANY-SCP".into());
    ClientOptions { host_ae, ..ClientOptions::default() }
        .timeout(std::time::Duration::from_secs(60))
}

fn find_req() -> dclient::Result<FindRequest> {
    FindRequest::new(QueryLevel::Study, [("PatientName", "*")])
}

fn run(mode: &str, host: &str, port: u16, arg: &str) -> dclient::Result<usize> {
    let n: usize = arg.parse().unwrap_or(0);
    match mode {
        "finds-threads" => {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let host = host.to_owned();
                    std::thread::spawn(move || {
                        let mut node = DClient::with_options(host, port, options());
                        node.find(&find_req()?).map(|m| m.len())
                    })
                })
                .collect();
            let mut failed = 0;
            for h in handles {
                match h.join() {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        failed += 1;
                        eprintln!("{e}");
                    }
                    Err(_) => failed += 1,
                }
            }
            Ok(failed)
        }
        "finds-async" | "send-async" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| dclient::Error::Io { peer: "runtime".into(), source: e })?;
            rt.block_on(async {
                if mode == "send-async" {
                    let mut node = AsyncDClient::with_options(host, port, options());
                    let r = node.send(&[arg]).await?;
                    return Ok(r.failed());
                }
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..n {
                    let mut node = AsyncDClient::with_options(host, port, options());
                    tasks.spawn(async move { node.find(&find_req()?).await.map(|m| m.len()) });
                }
                let mut failed = 0;
                while let Some(r) = tasks.join_next().await {
                    match r {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            failed += 1;
                            eprintln!("{e}");
                        }
                        Err(_) => failed += 1,
                    }
                }
                Ok(failed)
            })
        }
        "send-blocking" => {
            let mut node = DClient::with_options(host, port, options());
            Ok(node.send(&[arg])?.failed())
        }
        "finds-per-call" => {
            let mut node = DClient::with_options(host, port, options());
            let req = find_req()?;
            for _ in 0..n {
                node.find(&req)?;
            }
            Ok(0)
        }
        "finds-one-assoc" => {
            let node = DClient::with_options(host, port, options());
            let mut assoc = node.open(Contexts::new().find(InformationModel::StudyRoot))?;
            let req = find_req()?;
            for _ in 0..n {
                assoc.find(&req)?;
            }
            assoc.release()?;
            Ok(0)
        }
        _ => Err(dclient::Error::InvalidInput(format!("unknown mode {mode}"))),
    }
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [mode, host, port, arg] = a.as_slice() else {
        eprintln!("usage: bench_drivers MODE HOST PORT N|DIR");
        return ExitCode::from(2);
    };
    let Ok(port) = port.parse() else {
        eprintln!("bad port {port}");
        return ExitCode::from(2);
    };
    match run(mode, host, port, arg) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{failed} operations failed");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

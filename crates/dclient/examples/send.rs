//! ruby-dicom's `node.send(files)`, in Rust: store files and folders on a peer, one
//! association for all of them, with a report per file.
//!
//! ```text
//! cargo run --example send -- HOST PORT CALLED_AE PATH...
//! ```

#![forbid(unsafe_code)]

use dclient::{ClientOptions, DClient, FileOutcome};

fn main() -> Result<(), dclient::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, host_ae, paths @ ..] = args.as_slice() else {
        eprintln!("usage: send HOST PORT CALLED_AE PATH...");
        std::process::exit(2);
    };
    let port =
        port.parse().map_err(|_| dclient::Error::InvalidInput(format!("bad port {port}")))?;
    let mut node = DClient::with_options(
        host.as_str(),
        port,
        ClientOptions { host_ae: host_ae.clone(), ..Default::default() },
    );
    let report = node.send(paths)?;
    for f in &report.files {
        match &f.outcome {
            FileOutcome::Stored { .. } => {}
            other => println!("{}: {other:?}", f.path.display()),
        }
    }
    println!("{}", report.summary());
    Ok(())
}

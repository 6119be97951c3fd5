//! ruby-dicom's `node.echo` and `node.test`, in Rust.
//!
//! ```text
//! cargo run --example echo -- [HOST] [PORT] [CALLED_AE]
//! ```
//! Start a peer first, e.g. `dclient serve --port 11112 --dir /tmp/pacs --accept-any-ae`.

#![forbid(unsafe_code)]

use dclient::{ClientOptions, DClient};

fn main() -> Result<(), dclient::Error> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(11112);
    let host_ae = args.next().unwrap_or_else(|| "ANY-SCP".into());

    // node = DICOM::DClient.new("10.1.25.200", 104, host_ae: "...")
    let mut node =
        DClient::with_options(host, port, ClientOptions { host_ae, ..ClientOptions::default() });

    // node.test: associate and release
    println!("test: {}", if node.test() { "association accepted" } else { "failed (see the log)" });

    // node.echo: C-ECHO; the response command set is in command_results
    node.echo()?;
    for response in node.command_results_map() {
        for (tag, value) in response {
            println!("  ({tag}) {value}");
        }
    }
    Ok(())
}

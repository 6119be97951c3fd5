//! C-ECHO with the async client.
//!
//! ```text
//! cargo run -p dclient --features tokio --example async_echo -- [HOST] [PORT] [CALLED_AE]
//! ```
//! Start a peer first, e.g. `dclient serve --port 11112 --dir /tmp/pacs --accept-any-ae`.

#![forbid(unsafe_code)]

use dclient::tokio::AsyncDClient;
use dclient::ClientOptions;

#[tokio::main]
async fn main() -> Result<(), dclient::Error> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(11112);
    let host_ae = args.next().unwrap_or_else(|| "ANY-SCP".into());
    let mut node = AsyncDClient::with_options(
        host,
        port,
        ClientOptions { host_ae, ..ClientOptions::default() },
    );
    node.echo().await?;
    for response in node.command_results_map() {
        for (tag, value) in response {
            println!("  ({tag}) {value}");
        }
    }
    Ok(())
}

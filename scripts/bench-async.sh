#!/usr/bin/env bash
# Builds the release binaries, then runs scripts/bench-async.py (the async driver against
# the blocking one). Arguments are passed on, e.g. --rounds 3 --only 2.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
cargo build --release --locked -q -p dclient --features tokio --example bench_drivers
exec python3 scripts/bench-async.py --dclient "$PWD/target/release/dclient" \
    --bench "$PWD/target/release/examples/bench_drivers" \
    --synth "$PWD/target/release/examples/synth" "$@"

#!/usr/bin/env bash
# Builds the release binaries, then runs scripts/bench-send-scale.py (sending 100,000 and
# 1,000,000 files: peak RSS, first C-STORE, throughput). Arguments are passed on, e.g.
# --files 100000 --rounds 3 --old-dclient /path/to/an/older/dclient.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
exec python3 scripts/bench-send-scale.py --dclient "$PWD/target/release/dclient" \
    --synth "$PWD/target/release/examples/synth" "$@"

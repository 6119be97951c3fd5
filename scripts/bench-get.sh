#!/usr/bin/env bash
# C-GET benchmark: dclient get vs DCMTK getscu and pynetdicom getscu, retrieving 1,000
# files of 512 KB from DCMTK dcmqrscp on loopback (TCP_NODELAY=1 for DCMTK), receiving
# without writing and writing files. Needs DCMTK, python3 and pynetdicom (.ci/run installs
# them). Not part of `cargo test`.
#
#   scripts/bench-get.sh [--rounds N] [--py-rounds N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
exec python3 scripts/bench-get.py \
    --dclient "$PWD/target/release/dclient" \
    --synth "$PWD/target/release/examples/synth" "$@"

#!/usr/bin/env bash
# C-STORE benchmark: dclient send vs DCMTK storescu (and pynetdicom storescu) into DCMTK
# storescp on loopback, with the raw sendfile ceiling. Needs DCMTK, python3 and pynetdicom
# (.ci/run installs them). Not part of `cargo test`.
#
#   scripts/bench-send.sh [--rounds N] [--py-rounds N] [--sets abc] [--dir DIR]
#
# Generated data (about 2.6 GB) is kept in DIR (default /tmp/dclient-bench) between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p dclient-cli --bin dclient -p dclient-synth --example synth
exec python3 scripts/bench-send.py \
    --dclient "$PWD/target/release/dclient" \
    --synth "$PWD/target/release/examples/synth" "$@"
